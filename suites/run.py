"""`python -m suites.run SUITE --seeds N …`: plan the runs of a suite, submit the ones that need it
(one submitit job per (task, seed); one job array per launch on SLURM), optionally wait.

Idempotent: a finished run is skipped; a run that is queued or running (see suites/status.py) is
not submitted again; any other run is submitted and resumes from its checkpoint. Runs shortened
with `--budget N` live apart from full runs, in the variant directory `{variant}-budget{N}`, and
are marked shortened in their identity (dreamer/rundir.py).
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import re
import shlex
import shutil
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import yaml
from tabulate import tabulate

from dreamer.config import Config, ConfigError, resume_diff, to_dict
from dreamer.rundir import RunDir, RunDirError, RunIdentity
from suites import cost, progress
from suites.base import Resources, Suite, SuiteError, run_dir
from suites.jobs import JobRecord, SchedulerError, job_threads, process_start, redirect_output, write_record
from suites.status import DEFAULT_RESULTS, check_results, error_line, states
from suites.variants import VARIANTS, get_variant

EXECUTORS = ("local", "slurm")
# Profile field → type. Slurm-only fields (partition, account, qos, constraint) are ignored by
# the local executor; the others override the suite's resources on both.
PROFILE_FIELDS = {"partition": str, "account": str, "qos": str, "constraint": str,
                  "gpus_per_task": int, "cpus_per_task": int, "mem_gb": int, "time_min": int,
                  "array_parallelism": int}
TO_SUBMIT = ("new", "partial", "stopped", "interrupted", "failed")
# What the processes a launch starts print outside a run (local job controllers), in submitit's folder.
SUBMISSION_LOG = "submission.log"
POLL_SECONDS = 5.0
# Config keys the launcher sets per run, and the flags that set them.
PER_RUN = {"run.budget": "--budget FRAMES", "run.budget_episodes": "--budget FRAMES", "run.seed": "--seeds N"}


@dataclass
class PlannedRun:
    """One (task, seed) of a plan: where it runs, with what, and where it stands."""

    task: str
    seed: int
    run_dir: Path
    config: Config
    identity: RunIdentity
    state: str = "new"
    record: JobRecord | None = None
    job: tuple[str, str] | None = None  # the scheduler's (state, word) for `record`
    source: Path | None = None  # the finished shorter run this one continues (--continue-from)


@dataclass
class Plan:
    suite: Suite
    variant: str  # the variant directory
    overrides: list[str]  # the variant's and --set config overrides
    runs: list[PlannedRun]
    resources: Resources
    profile: dict
    results: Path


def load_profile(path: Path) -> dict:
    """A scheduler profile (YAML mapping of PROFILE_FIELDS); bad fields raise SuiteError."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SuiteError(f"cannot read profile {path}: {e}") from e
    if not isinstance(data, dict):
        raise SuiteError(f"profile {path} is not a mapping of fields; valid: {', '.join(PROFILE_FIELDS)}")
    for key, value in data.items():
        if key not in PROFILE_FIELDS:
            raise SuiteError(f"unknown profile field {key!r} in {path}; valid: {', '.join(PROFILE_FIELDS)}")
        kind = PROFILE_FIELDS[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise SuiteError(f"profile field {key!r} in {path} must be a "
                             f"{'non-negative integer' if kind is int else 'string'}, got {value!r}")
    return data


def resources(suite: Suite, profile: dict) -> Resources:
    """The suite's per-run resources, overridden by the profile."""
    r = suite.resources
    return Resources(gpus=profile.get("gpus_per_task", r.gpus), cpus=profile.get("cpus_per_task", r.cpus),
                     mem_gb=profile.get("mem_gb", r.mem_gb),
                     hours=profile["time_min"] / 60 if "time_min" in profile else r.hours)


def task_list(text: str | None) -> list[str] | None:
    """The tasks of `--tasks a,b`; None without the flag."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def select_tasks(suite: Suite, tasks: list[str] | None) -> list[str]:
    """`tasks` checked against the suite, duplicates dropped; every task of the suite for None.
    An empty list is an error: `--tasks ""` (say, an empty shell variable) must not mean all."""
    if tasks is None:
        return list(suite.tasks)
    if not tasks:
        raise SuiteError(f"--tasks names no task; valid: {', '.join(suite.tasks)}")
    return list(dict.fromkeys(suite.check_task(t) for t in tasks))


def make_plan(suite_name: str, seeds: int, variant: str = "dreamerv3", sets: list[str] = (),
              tasks: list[str] | None = None, budget: int | None = None,
              results: Path = DEFAULT_RESULTS, profile: dict | None = None, name: str | None = None,
              continue_from: int | None = None) -> Plan:
    """One PlannedRun per (task, seed) with its resolved config and current state; creates nothing.

    Runs live in the directory of `name`, else of the variant when the `sets` overrides change
    nothing a run computes, else of the variant and those overrides (`folder_name`); shortened runs
    in `{that}-budget{budget}`. With `continue_from`, each run not started yet continues the
    finished run of the same settings shortened to that many frames (a copy of it: `continue_run`).

    Raises SuiteError / ConfigError naming the valid choices for a bad suite, task, variant,
    protocol knob, config key or setting, and for a run dir that was started with another config."""
    from suites.registry import get_suite

    suite = get_suite(suite_name)
    if seeds < 1:
        raise SuiteError(f"--seeds must be at least 1, got {seeds}")
    if budget is not None and budget < 1:
        raise SuiteError(f"--budget must be a positive number of frames, got {budget}")
    for key in (s.split("=", 1)[0].strip() for s in sets):
        if key in PER_RUN:
            raise SuiteError(f"--set {key}=… would be overridden: the launcher sets {key} per run; use {PER_RUN[key]}")
    check_results(Path(results), exist=False)
    tasks = select_tasks(suite, tasks)
    config_overrides, protocol = get_variant(variant).overrides(suite.name)
    protocol = suite.check_protocol(protocol)
    overrides = [*config_overrides, *sets]
    name = folder_name(suite, variant, config_overrides, sets, tasks[0], name)
    folder = variant_dir(name, budget)
    if continue_from is not None and (budget is None or not 0 < continue_from < budget):
        raise SuiteError(f"--continue-from {continue_from} needs a larger --budget FRAMES (the runs' new budget)")
    results = Path(results).absolute()
    runs = []
    for task in tasks:
        for seed in range(seeds):
            identity = RunIdentity(suite.name, task, folder, seed, protocol, budget is not None)
            runs.append(PlannedRun(task, seed, run_dir(results, suite.name, folder, task, seed),
                                   suite.run_config(task, seed, overrides, budget), identity))
    for run in runs:
        suite.check_settings(run.config, protocol)
        _check_updates(run.config)
        _check_same_config(run)
    plan = Plan(suite, folder, overrides, runs, resources(suite, profile or {}), profile or {}, results)
    refresh(plan)
    if continue_from is not None:
        for run in plan.runs:
            if run.state == "new":
                run.source = _source(plan, run, variant_dir(name, continue_from))
    return plan


def folder_name(suite: Suite, variant: str, variant_overrides: list[str], sets: list[str], task: str,
            name: str | None) -> str:
    """The directory of the runs of `variant` with `sets` overrides: `name` when given; else the
    variant's, when the overrides change nothing a run computes (they may set what is operational,
    such as run.device); else the variant's followed by each override that changes it, e.g.
    `dreamerv3+size=size1m+run.train_ratio=64`, so that a report never labels them as the variant."""
    if name is not None:
        if not re.fullmatch(r"[\w.=+,-]+", name):
            raise SuiteError(f"--name {name!r} is not a folder name of letters, digits and . _ = + , -")
        return name
    changed = {line.split(":")[0] for line in
               resume_diff(to_dict(suite.run_config(task, 0, variant_overrides)),
                           suite.run_config(task, 0, [*variant_overrides, *sets]))}
    last = {key.strip(): value.strip() for key, _, value in (s.partition("=") for s in sets)}
    parts = [f"{key}={value}" for key, value in last.items() if key in changed]
    return "+".join([variant, *(re.sub(r"[^\w.=,-]", "_", p) for p in parts)])


def variant_dir(variant: str, budget: int | None) -> str:
    """The directory of a variant's runs; shortened runs live apart, in {variant}-budget{N}."""
    return variant if budget is None else f"{variant}-budget{budget}"


def _source(plan: Plan, run: PlannedRun, source_dirname: str) -> Path:
    """The finished run that `run` continues: the same task, seed and settings in `source_dirname`."""
    source = RunDir(run_dir(plan.results, plan.suite.name, source_dirname, run.task, run.seed))
    if not source.done.exists():
        why = "it has not finished" if source.has_progress() else "there is no such run"
        raise SuiteError(f"--continue-from: {source.path} cannot be continued: {why}")
    record = source.read_config()
    diff = [d for d in resume_diff(record["config"], run.config) if not d.startswith("run.budget:")]
    if diff:
        raise SuiteError(f"--continue-from: {source.path} ran with other settings ({'; '.join(diff[:5])})")
    return source.path


def _check_updates(config: Config) -> None:
    """A frame budget that ends before the first update trains nothing."""
    from dreamer.loop import first_update_frames, updates_in_budget

    if updates_in_budget(config.run) == 0:
        r = config.run
        raise SuiteError(f"a budget of {r.budget:,} frames ends before the first update: training starts once "
                         f"replay holds run.train_start={r.train_start} steps; the smallest budget with an update is "
                         f"--budget {first_update_frames(r)}")


def _check_same_config(run: PlannedRun) -> None:
    """A run resumes only with the config it started with (dreamer.train refuses otherwise; this
    says so before anything is submitted)."""
    rd = RunDir(run.run_dir)
    try:
        record = rd.read_config()
        diff = [] if record is None else resume_diff(record["config"], run.config)
    except (RunDirError, KeyError, TypeError, AttributeError) as e:
        raise SuiteError(f"malformed {rd.config}: {e}") from e
    if diff:
        raise ConfigError(f"{run.run_dir} was started with another config ({'; '.join(diff[:5])}); "
                          f"use another --variant, --budget or --results, or delete that run")


def refresh(plan: Plan) -> None:
    """Update every run's state and record from its run dir and the scheduler."""
    for run, (state, record, job) in zip(plan.runs, states([r.run_dir for r in plan.runs])):
        run.state, run.record, run.job = state, record, job


def budget_text(config: Config) -> str:
    parts = [f"{config.run.budget:,} frames" if config.run.budget else "",
             f"{config.run.budget_episodes:,} episodes" if config.run.budget_episodes else ""]
    return " + ".join(p for p in parts if p) or "unbounded"


def resources_text(r: Resources) -> str:
    return f"{r.gpus} gpu, {r.cpus} cpu, {r.mem_gb} GB, {r.hours:g} h"


def print_plan(plan: Plan, executor: str) -> None:
    res = resources_text(plan.resources)
    rows = [[r.task, r.seed, budget_text(r.config), res, r.state, _job_text(r)] for r in plan.runs]
    print(f"suite {plan.suite.name}, variant {plan.variant}, executor {executor}, results {plan.results}")
    print(f"config: the suite's ({' '.join(plan.suite.config)}), then {' '.join(plan.overrides) or 'no overrides'}")
    print(tabulate(rows, headers=["task", "seed", "budget", "resources", "state", "job"]))
    print(summary(plan))


def _job_text(run: PlannedRun) -> str:
    if run.source is not None:
        return f"continues {run.source.parent.parent.name}"
    return f"{run.record.executor} {run.record.job_id}" if run.record and run.state in ("queued", "running") else ""


def summary(plan: Plan) -> str:
    counts = {}
    for r in plan.runs:
        counts[r.state] = counts.get(r.state, 0) + 1
    todo = sum(counts.get(s, 0) for s in TO_SUBMIT)
    return (f"{len(plan.runs)} run{'s' * (len(plan.runs) != 1)}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + f"; {todo} to submit")


def local_slots(plan: Plan) -> int:
    """How many local runs train at once: the profile's array_parallelism, else as many as the
    machine's CPUs hold."""
    return plan.profile.get("array_parallelism") or max(1, (os.cpu_count() or 1) // max(1, plan.resources.cpus))


def submit(plan: Plan, executor: str) -> list[PlannedRun]:
    """Submit every run that needs it as one batch (one job array on SLURM), from a process of its
    own session (`detached`); each job is recorded in its run dir. Returns the submitted runs."""
    todo = [r for r in plan.runs if r.state in TO_SUBMIT]
    for run in todo:
        if run.source is not None:
            RunDir(run.source).continue_into(run.run_dir, run.identity, to_dict(run.config))
    if todo:
        for run, record in zip(todo, detached(lambda: _submit(plan, executor, todo))):
            run.record = record
    return todo


def _submit(plan: Plan, executor: str, todo: list[PlannedRun]) -> list[JobRecord]:
    import submitit

    from suites.jobs import RunJob

    folder = plan.results / ".submitit" / plan.suite.name / plan.variant
    ex = submitit.AutoExecutor(folder=folder, cluster=executor)
    res, p = plan.resources, plan.profile
    params = dict(name=f"{plan.suite.name}-{plan.variant}", tasks_per_node=1, cpus_per_task=res.cpus,
                  mem_gb=res.mem_gb, **({"gpus_per_node": res.gpus} if res.gpus else {}))
    if executor == "slurm":
        params.update(timeout_min=max(1, math.ceil(res.hours * 60)), slurm_additional_parameters={"requeue": True},
                      **{f"slurm_{k}": p[k] for k in ("partition", "account", "qos", "constraint") if k in p})
        if "array_parallelism" in p:
            params["slurm_array_parallelism"] = p["array_parallelism"]
        slots = 0
    else:
        # Local jobs have no time limit (they end at their budget); submitit's default is 2 min.
        params.update(timeout_min=10 * 365 * 24 * 60)
        slots = local_slots(plan)
    ex.update_parameters(**params)
    try:
        # Local controllers inherit these descriptors: what they print (a traceback when stopped)
        # goes to a file, not into the terminal of whoever launched them.
        with redirect_output(folder / SUBMISSION_LOG), ex.batch():
            jobs = [ex.submit(RunJob(to_dict(r.config), r.identity, str(r.run_dir), res.cpus, slots,
                                     str(plan.results / ".submitit" / "local-slots")))
                    for r in todo]
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as e:
        raise SchedulerError("submission failed: " + "; ".join(str(e).strip().splitlines())) from e
    now, records = time.time(), []
    for run, job in zip(todo, jobs):
        started = process_start(int(job.job_id)) if executor == "local" else 0
        records.append(JobRecord(executor, str(job.job_id), now, str(job.paths.stdout), str(job.paths.stderr),
                                 str(job.paths.result_pickle), started))
        write_record(run.run_dir, records[-1])
    return records


T = TypeVar("T")


def detached(fn: Callable[[], T]) -> T:
    """fn() in a forked child that leads a new session; its result, or its exception, comes back
    pickled. What the child starts (local job controllers) then shares neither the launcher's
    process group nor its terminal, so Ctrl-C in a waiting launcher, or closing its terminal,
    leaves the jobs running; `python -m suites.stop` stops them."""
    sys.stdout.flush()  # else the child would write what the parent has buffered a second time
    sys.stderr.flush()
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork() in a process with threads (numpy's BLAS pool here): a lock one
        # of them held stays held in the child. The child uses no BLAS; it pickles and starts processes.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child ends here, whatever happens
        try:
            os.close(read)
            os.setsid()
            try:
                outcome = (True, fn())
            except Exception as e:
                outcome = (False, e)
            with os.fdopen(write, "wb") as f:
                pickle.dump(outcome, f)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        try:
            ok, value = pickle.load(f)
        except EOFError:
            raise SchedulerError("submission failed: the submitting process ended without an answer") from None
    os.waitpid(pid, 0)
    if not ok:
        raise value
    return value


def wait(plan: Plan) -> bool:
    """Show the runs' progress (suites/progress.py) until no run is queued or running, then one
    line per run that did not finish, with its error. True if all are done."""
    display, reached = progress.Display(sys.stderr), {}
    while True:
        refresh(plan)
        live = any(r.state in ("queued", "running") for r in plan.runs)
        runs = [(f"{r.task} seed {r.seed}", r.state, r.config.run, r.run_dir) for r in plan.runs]
        display.show(progress.block(f"{plan.suite.name} {plan.variant}", runs, display.rows(), reached),
                     [r.state for r in plan.runs], final=not live)
        if not live:
            break
        time.sleep(POLL_SECONDS)
    failed = [r for r in plan.runs if r.state != "done"]
    for r in failed:
        print(f"{r.task} seed {r.seed}: {r.state}: {why_not_done(r)}", file=sys.stderr)
    if any(r.state not in ("stopped", "interrupted") for r in failed):
        print(f"their logs: python -m suites.status {plan.suite.name} --variant {plan.variant} --results {plan.results}",
              file=sys.stderr)
    return not failed


def why_not_done(run: PlannedRun) -> str:
    if run.record is None:
        return "no job recorded"
    if run.state == "stopped":
        return f"by suites.stop at {time.strftime('%H:%M:%S', time.localtime(run.record.stopped))}; the next launch resumes it"
    if run.state == "interrupted":
        return f"its job ended without an error ({run.job[1]}); the next launch resumes it"
    return error_line(run.run_dir, run.record)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m suites.run",
        description="Plan and launch the runs of a benchmark suite: one job per (task, seed), seeds "
                    "0..N-1. Finished runs are skipped, queued or running ones are not submitted "
                    "twice, unfinished ones resume from their checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variants:\n" + "\n".join(f"  {v.name:12} {v.description}" for v in VARIANTS.values())
               + "\n\nexamples:\n  python -m suites.run atari100k --seeds 5 --dry-run\n"
                 "  python -m suites.run dmc_proprio --seeds 5 --variant dmc2412 --executor slurm "
                 "--profile slurm/profiles/example.yaml\n"
                 "  python -m suites.run bsuite --tasks catch/0 --seeds 2 --budget 2000 --set size=size1m --wait")
    p.add_argument("suite", help="suite name, e.g. atari100k, dmc_proprio, bsuite")
    p.add_argument("--seeds", type=int, default=1, help="seeds per task (default %(default)s)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: subprocesses on this machine (default); slurm: sbatch, needs --profile")
    p.add_argument("--profile", type=Path, help="YAML scheduler profile, fields: " + ", ".join(PROFILE_FIELDS))
    p.add_argument("--variant", default="dreamerv3", help="named config variant (default %(default)s)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. --set run.train_ratio=64 size=size1m")
    p.add_argument("--tasks", help="comma-separated subset of the suite's tasks")
    p.add_argument("--name", help="the folder (and report label) of these runs (default: the variant's, followed by "
                                  "each --set override that changes what the runs compute, e.g. "
                                  "dreamerv3+size=size1m)")
    p.add_argument("--budget", type=int, metavar="FRAMES",
                   help="shortened runs of this many frames, kept in {variant}-budget{FRAMES}")
    p.add_argument("--continue-from", type=int, metavar="FRAMES",
                   help="start each run by continuing the finished run of the same settings shortened to "
                        "FRAMES (copied from {variant}-budget{FRAMES}, which stays as it is) to --budget")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="runs folder (default %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and exit; creates nothing. With the local executor it also says "
                        "what the runs cost here, from a few updates measured now")
    p.add_argument("--no-estimate", dest="estimate", action="store_false",
                   help="with --dry-run: do not measure updates for the cost estimate")
    p.add_argument("--wait", action="store_true",
                   help="show each run's progress, ETA and score until every run ends")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return launch(args)
    except KeyboardInterrupt:  # before anything was submitted
        print("suites.run: interrupted", file=sys.stderr)
        return 130


def launch(args: argparse.Namespace) -> int:
    try:
        if args.executor == "slurm" and args.profile is None:
            raise SuiteError("--executor slurm needs --profile FILE (e.g. slurm/profiles/local.yaml)")
        profile = load_profile(args.profile) if args.profile else {}
        plan = make_plan(args.suite, args.seeds, args.variant, args.sets, task_list(args.tasks), args.budget,
                         args.results, profile, args.name, args.continue_from)
    except (SuiteError, ConfigError) as e:
        print(f"suites.run: error: {e}", file=sys.stderr)
        return 2
    except SchedulerError as e:
        print(f"suites.run: error: {e}", file=sys.stderr)
        return 1
    if args.dry_run:
        print_plan(plan, args.executor)
        if args.executor == "local":
            print_cost(plan, args.estimate)
        return 0
    if args.executor == "slurm" and shutil.which("sbatch") is None:
        print("suites.run: error: sbatch not found; install SLURM's client or start the local cluster: "
              'eval "$(slurm/local/start)"', file=sys.stderr)
        return 1
    print(summary(plan))
    try:
        submitted = submit(plan, args.executor)
        if submitted:
            ids = ", ".join(r.record.job_id for r in submitted)
            print(f"submitted {len(submitted)} run{'s' * (len(submitted) != 1)} ({args.executor}): jobs {ids}")
        else:
            print("nothing to submit")
        return 0 if not args.wait or wait(plan) else 1
    except SchedulerError as e:
        print(f"suites.run: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"suites.run: interrupted; submitted runs go on; stop them with: {stop_command(args, plan.variant)}",
              file=sys.stderr)
        return 130


def print_cost(plan: Plan, measure: bool) -> None:
    """The local executor's notes on a plan: GPUs asked for that are not here, and the cost here."""
    note = cost.gpu_note(plan.suite.name, plan.resources)
    if note:
        print(note)
    if not measure:
        return
    todo = [r for r in plan.runs if r.state in TO_SUBMIT]
    # The protocol's `size` knob is the image size of the suites that observe images (as in
    # Suite.check_settings); the others observe vectors.
    obs = "image" if todo and "size" in todo[0].identity.protocol else "proprio"
    # Measured with the threads a run would train on now: those of its cores other processes leave free.
    from dreamer.cores import threads_now

    for line in cost.lines(todo, obs, threads_now(job_threads(plan.resources.cpus)), local_slots(plan)):
        print(line)


def stop_command(args: argparse.Namespace, variant: str) -> str:
    """The `suites.stop` command for the runs of this launch, which live in `variant`'s directory."""
    command = ["python", "-m", "suites.stop", args.suite, "--variant", variant]
    if args.tasks is not None:
        command += ["--tasks", args.tasks]
    if args.results.absolute() != DEFAULT_RESULTS.absolute():
        command += ["--results", str(args.results)]
    return shlex.join(command)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… --dry-run | head` ends quietly, as it does other tools
    sys.exit(main())
