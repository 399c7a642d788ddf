"""What a launch costs on this machine, for `suites.run --dry-run` with the local executor: whether
the suite asks for GPUs the machine does not have, and the hours its runs' updates take here, from
a few updates measured with dreamer.bench's `measure` at the runs' own size, observation kind,
batch, precision and threads. Environment steps are not counted.
"""
from __future__ import annotations

import math

from dreamer.config import Config
from suites.base import Resources

# Timed updates: a few for the small sizes, which take a fraction of a second each on a CPU (a
# size1m measurement then takes about 4 s on a busy 2-core machine); one for bigger sizes, whose
# single update may take a minute on a CPU.
SMALL_PARAMS = 12e6
SMALL_UPDATES = 3


def gpu_note(suite: str, resources: Resources) -> str | None:
    """A line when the suite asks for more GPUs per run than this machine has."""
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if resources.gpus <= have:
        return None
    return (f"note: {suite} asks for {resources.gpus} GPU{'s' * (resources.gpus != 1)} per run and this machine has "
            f"{have}: local runs train where run.device says (auto: the CPU)")


def updates_per_run(config: Config) -> int | None:
    """The updates a run makes until its frame budget; None for a budget in episodes only."""
    from dreamer.loop import updates_due

    r = config.run
    if not r.budget:
        return None
    # Agent steps (of all environments) are frames over the repeat; updates start at train_start.
    steps = max(0, r.budget // r.action_repeat - r.train_start)
    return updates_due(steps, 0, r.train_ratio, r.batch_size * r.batch_length)


def measure(config: Config, obs: str, threads: int) -> tuple[float, str]:
    """(seconds per update, what was measured) for runs of `config` on this machine."""
    import torch

    from dreamer.bench import measure as bench_measure, nominal_params
    from dreamer.device import resolve_device

    device = resolve_device(config.run.device)
    updates = SMALL_UPDATES if nominal_params(config.size) <= SMALL_PARAMS else 1
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # matmul: the bench's yardstick for its FLOP/s fraction, which an estimate does not need;
        # passing a value skips its one-second measurement.
        row = bench_measure(config.size, obs, device, config.agent.precision, config.run.batch_size,
                            config.run.batch_length, updates=updates, warmup=0, matmul=1.0, progress=False)
    finally:
        torch.set_num_threads(before)
    return row["sec_per_update"], (f"{updates} {config.size} {obs}-shaped update{'s' * (updates != 1)} of "
                                   f"{row['batch']}×{row['length']} on {row['device']} {row['precision']}, "
                                   f"{threads} thread{'s' * (threads != 1)}")


def lines(runs: list, obs: str, threads: int, slots: int) -> list[str]:
    """The cost of `runs` (the planned runs to submit, which share their settings but the seed and
    budget) trained here `slots` at a time: updates per run × seconds per update ≈ hours per run,
    and hours for them all. One line saying why when it cannot be measured."""
    if not runs:
        return ["cost here: nothing to submit"]
    try:
        seconds, measured = measure(runs[0].config, obs, threads)
    except Exception as e:  # an estimate only: whatever stops it (no such device, no memory) is said, not raised
        return [f"cost here: not measured ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})"]
    updates = [updates_per_run(r.config) for r in runs]
    if None in updates:
        return [f"cost here: {seconds:.3g} s per update ({measured}); updates per run unknown: the budget "
                "counts episodes"]
    hours = [n * seconds / 3600 for n in updates]
    at_once = min(slots, len(runs))
    # Runs start in waves of `at_once`; each wave lasts about a mean run.
    total = math.ceil(len(runs) / at_once) * sum(hours) / len(hours)
    return [f"cost here: {_span(updates, ',')} updates per run × {seconds:.3g} s per update ≈ {_span(hours, '.3g')} h "
            f"per run; {len(runs)} run{'s' * (len(runs) != 1)}, {at_once} at a time ≈ {total:.3g} h",
            f"  (measured: {measured}; environment steps not counted)"]


def _span(values: list, spec: str) -> str:
    """'x', or 'x to y' when the runs differ (per-task budgets)."""
    return " to ".join(dict.fromkeys(format(v, spec) for v in (min(values), max(values))))
