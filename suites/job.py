"""The submitit job of one run: train (or resume) it in its run directory.

On SLURM time-out or preemption submitit calls `checkpoint`, which resubmits the same job; the
requeued job calls `dreamer.train.train` again, which resumes from `run_dir/checkpoint`.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import socket
import sys
import time
import traceback
from pathlib import Path

import submitit

from suites.status import LOGS

SLOT_POLL_SECONDS = 1.0


class RunJob(submitit.helpers.Checkpointable):
    """One (suite, task, seed) run. `config` is `dreamer.config.to_dict` of the resolved config,
    `meta` the config.json fields (suite, task, variant, protocol, shortened, seed). `threads`:
    torch threads (the CPUs the job got). `slots`: at most that many local jobs train at once on
    this machine, counted with lock files in `slot_dir` (0 = no limit: the scheduler decides)."""

    def __init__(self, config: dict, meta: dict, run_dir: str, threads: int, slots: int = 0,
                 slot_dir: str = ""):
        self.config, self.meta, self.run_dir = config, meta, run_dir
        self.threads, self.slots, self.slot_dir = threads, slots, slot_dir

    def __call__(self) -> dict:
        run_dir = Path(self.run_dir)
        job_id = submitit.JobEnvironment().job_id
        with local_slot(Path(self.slot_dir), self.slots), redirect_output(run_dir / LOGS / f"{job_id}.log"):
            print(f"job {job_id} on {socket.gethostname()} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                  f"{self.meta['suite']} {self.meta['task']} seed {self.meta['seed']} → {run_dir}", flush=True)
            try:
                return self._train(run_dir)
            except Exception:
                traceback.print_exc()  # into the run's log, where suites.status looks
                raise

    def _train(self, run_dir: Path) -> dict:
        import torch

        from dreamer.config import from_dict
        from dreamer.train import train
        from suites.registry import get_suite

        torch.set_num_threads(job_threads(self.threads))
        m = self.meta
        make_env = functools.partial(get_suite(m["suite"]).make_env, m["task"], seed=m["seed"],
                                     protocol=m["protocol"], logdir=str(run_dir),
                                     repeat=self.config["run"]["action_repeat"])
        return train(from_dict(self.config), make_env, run_dir, m)


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
