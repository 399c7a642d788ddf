"""`python -m suites.stop SUITE`: stop the queued and running runs of a suite, all of them or those
of `--tasks` and `--variant`. Each run keeps its last checkpoint and resumes at the next launch.

Local jobs get SIGINT at their controller (submitit's process, whose pid is the job id), which
passes it on to the training process and kills that a second later. Whatever still lives after
GRACE_SECONDS gets SIGKILL: a controller that missed the signal, its task, and the process that
holds the run's lock (a training whose controller was killed, or a run started by hand). SLURM
jobs are cancelled; the command then waits until slurm has ended them, so that a launch right after
finds them ended and resubmits them.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dreamer.rundir import RunDir
from suites.base import SuiteError
from suites.jobs import JobRecord, SchedulerError, cancel_slurm, process_children, process_start, write_record
from suites.run import select_tasks, task_list
from suites.status import DEFAULT_RESULTS, expected_runs, states, variant_dirs

GRACE_SECONDS = 10.0  # for a local job to end on SIGINT before SIGKILL
KILL_SECONDS = 10.0  # for the processes to go after SIGKILL
SLURM_SECONDS = 120.0  # for slurm to end cancelled jobs (its KillWait is 30 s by default)
POLL_SECONDS = 0.5
LIVE = ("queued", "running")


@dataclass
class Stopping:
    """One queued or running run and what stops it: its slurm job, or its local processes
    (pid → start time, so that a pid reused since is never signalled)."""

    label: str
    run_dir: Path
    record: JobRecord | None
    slurm: bool = False
    controller: int | None = None
    processes: dict[int, int] = field(default_factory=dict)

    def ended(self) -> bool:
        """Locally: every process gone and the lock free (slurm runs are asked in one query)."""
        return (all(process_start(pid) != start for pid, start in self.processes.items())
                and RunDir(self.run_dir).holder() is None)


def local_processes(run: Stopping) -> str | None:
    """Find the run's local processes; returns why they cannot be stopped from here, if so."""
    record, pids = run.record, []
    if record is not None and record.executor == "local" and process_start(int(record.job_id)) == record.started:
        run.controller = int(record.job_id)
        pids += [run.controller, *process_children(run.controller)]
    holder = RunDir(run.run_dir).holder_process()
    if holder is not None:
        pid, host = holder
        if host != socket.gethostname():
            return f"trained by pid {pid} on {host}; stop it there"
        pids.append(pid)
    # Start times tell a process from a later one with its pid; 0: gone already.
    run.processes = {pid: start for pid in pids if (start := process_start(pid))}
    return None


def send(run: Stopping, signum: int, only: int | None = None) -> None:
    """Signal the run's processes that still live (or only process `only`)."""
    for pid, start in run.processes.items():
        if only in (None, pid) and process_start(pid) == start:
            with contextlib.suppress(ProcessLookupError):  # gone since the check
                os.kill(pid, signum)


def stop(runs: list[Stopping]) -> dict[str, str]:
    """Stop `runs`; returns label → why a run is not stopped (gone from the result when it is)."""
    problems = {}
    slurm = [r for r in runs if r.slurm]
    local = [r for r in runs if not r.slurm]
    if slurm:
        try:
            cancel_slurm([r.record.job_id for r in slurm])
        except SchedulerError as e:
            problems.update({r.label: str(e) for r in slurm})
            slurm = []
    for run in local:
        why = local_processes(run)
        if why:
            problems[run.label] = why
    local = [r for r in local if r.label not in problems]
    for run in local:
        send(run, signal.SIGINT, run.controller)  # the controller passes it on; else each process
    start, killed = time.monotonic(), False
    while True:
        local = [r for r in local if not r.ended()]
        if slurm:
            slurm = [r for r, (state, _, _) in zip(slurm, states([r.run_dir for r in slurm])) if state in LIVE]
        waited = time.monotonic() - start
        if local and not killed and waited > GRACE_SECONDS:
            for run in local:
                send(run, signal.SIGKILL)
            killed = True
        local_over = not local or waited > GRACE_SECONDS + KILL_SECONDS
        if local_over and (not slurm or waited > SLURM_SECONDS):
            break
        time.sleep(POLL_SECONDS)
    problems.update({r.label: f"still ending after {waited:.0f} s ({_job(r)})" for r in local + slurm})
    return problems


def _job(run: Stopping) -> str:
    if run.record is not None and (run.slurm or run.controller is not None):
        return f"{run.record.executor} job {run.record.job_id}"
    return "pid " + ", ".join(map(str, run.processes))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m suites.stop",
        description="Stop the queued and running runs of a suite: local jobs (their processes on this "
                    "machine) and SLURM jobs (scancel). Runs keep their last checkpoint; launching the "
                    "same command again resumes them.")
    p.add_argument("suite", help="suite name, e.g. atari100k, dmc_proprio, bsuite")
    p.add_argument("--tasks", help="comma-separated tasks (default: every task)")
    p.add_argument("--variant", help="variant directory, e.g. dreamerv3 or dreamerv3-budget2000 "
                                     "(default: every variant present)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="runs folder (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from suites.registry import get_suite

    try:
        suite = get_suite(args.suite)
        tasks = select_tasks(suite, task_list(args.tasks))
        variants = variant_dirs(suite, args.results, args.variant)
    except SuiteError as e:
        print(f"suites.stop: error: {e}", file=sys.stderr)
        return 2
    selected = set(tasks)
    runs = [(f"{variant} {task} seed {seed}", run_dir) for variant in variants
            for task, seed, run_dir in expected_runs(suite, args.results / suite.name / variant, None)
            if task in selected]
    try:
        found = states([run_dir for _, run_dir in runs])
    except (SchedulerError, SuiteError) as e:
        print(f"suites.stop: error: {e}", file=sys.stderr)
        return 1
    # A run goes to slurm when its slurm job is live; otherwise what trains it is a local process.
    todo = [Stopping(label, run_dir, record, slurm=job is not None and record.executor == "slurm"
                     and job[0] in ("waiting", "running"))
            for (label, run_dir), (state, record, job) in zip(runs, found) if state in LIVE]
    if not todo:
        print(f"nothing to stop: no queued or running run of {suite.name} under {args.results}")
        return 0
    problems = stop(todo)
    for run in todo:
        if run.label in problems:
            print(f"{run.label}: not stopped: {problems[run.label]}", file=sys.stderr)
            continue
        if run.record is not None:
            write_record(run.run_dir, dataclasses.replace(run.record, stopped=time.time()))
        resumes = ("its checkpoint is kept; the next launch resumes it" if RunDir(run.run_dir).checkpoint.exists()
                   else "no checkpoint yet; the next launch starts it again")
        print(f"{run.label}: {'cancelled' if run.slurm else 'stopped'} ({_job(run)}); {resumes}")
    return 1 if problems else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… | head` ends the output quietly, as it does other tools
    sys.exit(main())
