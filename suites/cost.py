"""What a launch costs on this machine, for `suites.run --dry-run` with the local executor: whether
the suite asks for GPUs the machine does not have, and the hours its runs' updates take here.

Seconds per update come from what can be known cheaply: an update of up to DIRECT_FLOPS is timed
as the runs would make it (their config, batch and precision; eager, with the threads a run would
get now); a bigger one, which could take minutes and tens of GB on a CPU, is estimated from its FLOPs,
counted on the meta device without allocating it, at the FLOP rate of a size12m proprio-shaped
update timed here. Compilation and environment steps are not counted.
"""
from __future__ import annotations

import dataclasses
import math
import statistics

from dreamer.config import AgentConfig, Config, make_config
from suites.base import Resources

# size12m proprio-shaped updates (401 GFLOP) take about a second and 2 GB here: updates up to that
# size are timed; it is the yardstick of bigger ones.
DIRECT_FLOPS = 5e11
YARDSTICK = ("size12m", "proprio")
TIMED_UPDATES = 2  # after one untimed warm-up update, whose FLOPs are counted


def gpu_note(suite: str, resources: Resources) -> str | None:
    """A line when the suite asks for more GPUs per run than this machine has."""
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if resources.gpus <= have:
        return None
    return (f"note: {suite} asks for {resources.gpus} GPU{'s' * (resources.gpus != 1)} per run and this machine has "
            f"{have}: local runs train where run.device says (auto: the CPU)")


def measure(config: Config, obs: str, threads: int) -> tuple[float, str]:
    """(seconds per update, how it was found) for runs of `config` with `obs`-shaped observations
    on this machine, training on `threads` threads."""
    from dreamer.bench import update_flops, using_threads
    from dreamer.device import resolve_device

    device = resolve_device(config.run.device)
    r = config.run
    flops = update_flops(config.agent, obs, r.batch_size, r.batch_length)
    with using_threads(threads):
        on = f"on {device.type} {_precision(config.agent, device)}, {threads} thread{'s' * (threads != 1)}"
        if flops <= DIRECT_FLOPS:
            seconds, _ = _timed(config.agent, obs, r.batch_size, r.batch_length, device)
            how = f"measured: {TIMED_UPDATES} {config.size} {obs}-shaped updates of {r.batch_size}×{r.batch_length} {on}"
        else:
            size, kind = YARDSTICK
            yardstick = make_config([f"size={size}", f"agent.precision={config.agent.precision}"]).agent
            seconds, counted = _timed(yardstick, kind, 16, 64, device)
            rate = counted / seconds
            seconds = flops / rate
            how = (f"{flops / 1e9:,.0f} GFLOP per update (counted, not run) at {rate / 1e9:,.0f} GFLOP/s, the rate of {size} "
                   f"{kind}-shaped updates measured {on}; bigger updates reach a higher rate, so this is likely high")
    if config.agent.compile:
        how += "; measured without compiling: compiled steps are a little faster after a compilation once per run"
    return seconds, how


def _timed(cfg: AgentConfig, obs: str, batch: int, length: int, device) -> tuple[float, int]:
    """(median seconds, FLOPs) of eager updates of `cfg` on a synthetic batch: a FLOP-counted
    warm-up update, then TIMED_UPDATES timed ones."""
    import torch

    from dreamer.bench import agent_for, count_flops, initial_carry, spaces, synthetic_batch, time_updates

    torch.manual_seed(0)
    agent = agent_for(dataclasses.replace(cfg, compile=False), obs, device)
    data = synthetic_batch(*spaces(obs), batch, length, device)
    carry = initial_carry(agent, batch, device)
    _, flops, _ = count_flops(agent.train, data, carry)
    return statistics.median(time_updates(agent, data, carry, TIMED_UPDATES)[0]), flops


def _precision(cfg: AgentConfig, device) -> str:
    from dreamer.agent import resolve_precision

    return resolve_precision(cfg.precision, device)


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
    from dreamer.loop import updates_in_budget

    updates = [updates_in_budget(r.config.run) for r in runs]
    if None in updates:
        return [f"cost here: {seconds:.3g} s per update ({measured}); updates per run unknown: the budget "
                "counts episodes"]
    hours = [n * seconds / 3600 for n in updates]
    at_once = min(slots, len(runs))
    # Runs start in waves of `at_once`; each wave lasts about a mean run.
    total = math.ceil(len(runs) / at_once) * sum(hours) / len(hours)
    return [f"cost here: {_span(updates, ',')} updates per run × {seconds:.3g} s per update ≈ {_span(hours, '.3g')} h "
            f"per run; {len(runs)} run{'s' * (len(runs) != 1)}, {at_once} at a time ≈ {total:.3g} h",
            f"  ({measured}; environment steps not counted)"]


def _span(values: list, spec: str) -> str:
    """'x', or 'x to y' when the runs differ (per-task budgets)."""
    return " to ".join(dict.fromkeys(format(v, spec) for v in (min(values), max(values))))
