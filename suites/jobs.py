"""Jobs: what the launcher submits for one run, its record in the run directory, and what the
scheduler says about it.

`RunJob` is the submitit job of one run: it trains (or resumes) the run in its run directory. On
SLURM time-out or preemption submitit calls `checkpoint`, which resubmits the same job; the
requeued job calls `dreamer.train.train` again, which resumes from the checkpoint. A local job
first waits for one of a few slots (lock files), so the machine is not oversubscribed.

The record of a submission (`JobRecord`, the run directory's job file) names the executor, the job
id and submitit's files; `job_states` checks records against the scheduler: squeue, then sacct, for
slurm; for local jobs, whether the job's controller process (pid and start time) is still alive.
`cancel_slurm` and the process helpers serve suites/stop.py.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import getpass
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import submitit

from dreamer.rundir import RunDir, RunIdentity
from suites.base import SuiteError

SLOT_POLL_SECONDS = 1.0
# Slurm job states of a job that has not started (again) yet, and of one still running; any
# other state (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...) has ended.
# How a job ends when something outside the training ends it (a session's end, a kill, scancel,
# its time limit, preemption, its node's failure): the run has no error, and resumes at the next launch.
INTERRUPTIONS = {"killed", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "DEADLINE"}
_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD"}
_RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


class SchedulerError(RuntimeError):
    """The scheduler could not be asked about recorded jobs."""


# ---- the job ---------------------------------------------------------------------------------

class RunJob(submitit.helpers.Checkpointable):
    """One (suite, task, seed) run. `config` is `dreamer.config.to_dict` of the resolved config.
    `threads`: torch threads (the CPUs the job got). `slots`: at most that many local jobs train at
    once on this machine, counted with lock files in `slot_dir` (0 = no limit: the scheduler
    decides)."""

    def __init__(self, config: dict, identity: RunIdentity, run_dir: str, threads: int, slots: int = 0,
                 slot_dir: str = ""):
        self.config, self.identity, self.run_dir = config, identity, run_dir
        self.threads, self.slots, self.slot_dir = threads, slots, slot_dir

    def __call__(self) -> dict:
        run_dir = Path(self.run_dir)
        job_id = submitit.JobEnvironment().job_id
        with local_slot(Path(self.slot_dir), self.slots), redirect_output(RunDir(run_dir).job_log(job_id)):
            i = self.identity
            print(f"job {job_id} on {socket.gethostname()} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                  f"{i.suite} {i.task} seed {i.seed} → {run_dir}", flush=True)
            try:
                return self._train(run_dir)
            except Exception:
                traceback.print_exc()  # into the run's log, where suites.status looks
                raise

    def _train(self, run_dir: Path) -> dict:
        import torch

        from dreamer.config import from_dict, upgrade
        from dreamer.train import train
        from suites.registry import get_suite

        torch.set_num_threads(job_threads(self.threads))
        i = self.identity
        make_env = functools.partial(get_suite(i.suite).make_env, i.task, seed=i.seed, protocol=i.protocol,
                                     logdir=str(run_dir), repeat=self.config["run"]["action_repeat"])
        return train(from_dict(upgrade(self.config)), make_env, run_dir, i)


def job_threads(cpus: int) -> int:
    """Torch threads for a job that asked for `cpus`: no more than the cores this process may
    run on. A machine with fewer cores than a suite asks for (a workstation, a small node) would
    otherwise be oversubscribed, and OpenMP threads spinning against each other ran dmc_proprio's
    6 threads on 2 cores at 0.4× the speed of 2 threads."""
    return max(1, min(cpus, len(os.sched_getaffinity(0))))


@contextlib.contextmanager
def redirect_output(path: Path):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so native libraries and
    child processes too) to `path`, appended, so a run keeps the logs of all its jobs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def local_slot(slot_dir: Path, slots: int):
    """Hold one of `slots` lock files in `slot_dir` (waiting until one is free); no-op for 0."""
    if slots <= 0:
        yield
        return
    slot_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(slots):
            f = open(slot_dir / f"slot{i}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield
            finally:
                f.close()  # releases the lock
            return
        time.sleep(SLOT_POLL_SECONDS)


# ---- records ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobRecord:
    """One submission of a run. `stdout`/`stderr`/`result` are submitit's files for the job;
    `started` is the local controller's start time in clock ticks since boot (guards against a
    reused pid), 0 for slurm; `stopped` the time `suites.stop` stopped the job, 0 if it did not."""

    executor: str
    job_id: str
    submitted: float
    stdout: str
    stderr: str
    result: str
    started: int = 0
    stopped: float = 0.0


def write_record(run_dir: Path, record: JobRecord) -> None:
    path = RunDir(run_dir).job
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(path)


def read_record(run_dir: Path) -> JobRecord | None:
    path = RunDir(run_dir).job
    if not path.exists():
        return None
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise SuiteError(f"malformed submission record {path}: {e}") from e


# ---- the scheduler ---------------------------------------------------------------------------

def process_start(pid: int) -> int:
    """Start time of process `pid` (clock ticks since boot), 0 if it does not exist or is a zombie."""
    fields = _stat(pid)
    return int(fields[19]) if fields else 0


def process_children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    children = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and fields[1] == str(pid):
            children.append(int(entry.name))
    return children


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, parent pid, …); None when the
    process does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name in (…) may contain spaces
    return None if fields[0] == "Z" else fields


def job_states(records: list[JobRecord]) -> dict[JobRecord, tuple[str, str]]:
    """record → (state, scheduler's word): state is 'waiting', 'running', 'ended' or 'unknown'
    (slurm no longer knows the job); the word is e.g. PENDING, FAILED, 'killed'."""
    out = {r: _local_state(r) for r in records if r.executor == "local"}
    slurm = [r for r in records if r.executor == "slurm"]
    if slurm:
        by_id = _slurm_states([r.job_id for r in slurm])
        out.update({r: by_id[r.job_id] for r in slurm})
    return out


def _local_state(record: JobRecord) -> tuple[str, str]:
    if process_start(int(record.job_id)) == record.started:
        return "running", "RUNNING"
    return "ended", _result_word(Path(record.result))


def _result_word(result: Path) -> str:
    """submitit's outcome of an ended job from its result pickle: COMPLETED, FAILED or 'killed'."""
    if not result.exists():
        return "killed"
    with open(result, "rb") as f:
        outcome = pickle.load(f)[0]
    return "COMPLETED" if outcome == "success" else "FAILED"


def _slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    # squeue knows queued jobs sacct may not list yet; -r lists pending array tasks one per line
    # (otherwise they are folded into 12_[3-5]).
    for line in _query(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"]):
        job, state = line.split("|")
        if job in job_ids:
            out[job] = _slurm_state(state)
    rest = [j for j in job_ids if j not in out]
    if rest:
        for line in _query(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(rest)]):
            job, state = line.split("|")
            if job in rest:
                out[job] = _slurm_state(state.split()[0])  # "CANCELLED by 0" → CANCELLED
    return {j: out.get(j, ("unknown", "unknown to slurm")) for j in job_ids}


def _slurm_state(state: str) -> tuple[str, str]:
    return ("waiting" if state in _WAITING else "running" if state in _RUNNING else "ended"), state


def cancel_slurm(job_ids: list[str]) -> None:
    """Cancel slurm jobs (array tasks too, 12_3): slurm ends them without requeueing."""
    _query(["scancel", *job_ids], "cannot cancel slurm jobs")


def _query(command: list[str], failure: str = "cannot ask slurm about recorded jobs") -> list[str]:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SchedulerError(f"{failure} ({command[0]}: {e})") from e
    if proc.returncode != 0:
        raise SchedulerError(f"{failure}: {command[0]}: {proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line.strip()]
