"""Torch threads matched to the cores other processes leave free (dreamer/README.md, "Benchmark").

OpenMP threads that wait for each other by spinning are fastest on cores of their own (a size1m
bf16 update on 2 threads: 0.19–0.20 s spinning, 0.55–0.65 s with passive waiting) and slowest on
cores another process also needs (0.65 s spinning beside one busy process, where passive waiting
took 0.32 s and one thread about the same). So threads spin, and a training run checks now and then
how many of its cores other processes keep busy and trains on the rest, never fewer than one thread.
"""
from __future__ import annotations

import os
import time

import torch


def busy_seconds(cpus: set[int]) -> float | None:
    """CPU-seconds the `cpus` have spent not idle since boot (/proc/stat); None where unreadable."""
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and line[3].isdigit()]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal ...: idle and iowait are the idle ones
    return sum(sum(map(int, f[1:4])) + sum(map(int, f[6:9])) for f in lines if int(f[0][3:]) in cpus) / ticks


def free_cores(cpus: int, busy: float, own: float, wall: float) -> int:
    """Of `cpus` cores that were busy `busy` CPU-seconds over `wall` seconds, `own` of them this
    process's, how many other processes left free (at least 1)."""
    others = max(0.0, busy - own) / wall
    return max(1, cpus - round(others))


class ThreadGovernor:
    """Every `every` seconds, torch threads = min(wanted, cores left free over the last interval)."""

    def __init__(self, wanted: int, every: float = 30.0):
        self.wanted, self.every = wanted, every
        self.cpus = os.sched_getaffinity(0)
        self._mark = self._sample(time.monotonic())

    def _sample(self, now: float):
        return now, busy_seconds(self.cpus), time.process_time()

    def __call__(self, now: float) -> None:
        if self.wanted <= 1 or now - self._mark[0] < self.every:
            return
        (then, busy0, own0), (_, busy1, own1) = self._mark, self._sample(now)
        self._mark = (now, busy1, own1)
        if busy0 is None or busy1 is None:
            return
        threads = min(self.wanted, free_cores(len(self.cpus), busy1 - busy0, own1 - own0, now - then))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)


def threads_now(wanted: int, seconds: float = 1.0) -> int:
    """The torch threads a run wanting `wanted` would train on now: the cores of this process that
    other processes left free over the next `seconds` (as `ThreadGovernor` decides), at most `wanted`."""
    cpus = os.sched_getaffinity(0)
    busy0, own0, t0 = busy_seconds(cpus), time.process_time(), time.monotonic()
    time.sleep(seconds)
    busy1, own1 = busy_seconds(cpus), time.process_time()
    if busy0 is None or busy1 is None:
        return wanted
    return min(wanted, free_cores(len(cpus), busy1 - busy0, own1 - own0, time.monotonic() - t0))
