import os
import subprocess
import sys
import time

import pytest
import torch

from dreamer.cores import ThreadGovernor, busy_seconds, free_cores


def page_faults_per_block(mib: int, import_dreamer: bool) -> float:
    """Like a train step: 8 blocks of `mib` MiB of activations, all freed together, 5 times after
    3 untimed steps (the heap reaches its size in the first ones)."""
    code = ("import resource, torch\n"
            + ("import dreamer\n" if import_dreamer else "")
            + "def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
              f"def step(): return [torch.ones({mib} << 18) for _ in range(8)]\n"
              "for _ in range(3): step()\n"
              "start = faults()\n"
              "for _ in range(5): step()\n"
              "print((faults() - start) / 40)\n")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings")
def test_importing_dreamer_reuses_freed_activation_memory_instead_of_faulting_it_in_again():
    # A 64 MiB block, like a size1m image update's larger activations, is above the largest mmap
    # threshold glibc allows: by default it is mapped and unmapped, all its 16,384 pages faulted in
    # at every step. (Smaller blocks are no test: glibc's own threshold moves with what was freed,
    # and their faults came and went between runs.) A process importing dreamer faults none in again.
    assert page_faults_per_block(64, False) > 10_000
    assert page_faults_per_block(64, True) < 10


def test_free_cores_counts_what_other_processes_keep_busy():
    # 4 cores over 10 s: 25 CPU-seconds busy, 8 of them ours → others used 1.7 cores → 2 free.
    assert free_cores(4, busy=25.0, own=8.0, wall=10.0) == 2
    assert free_cores(2, busy=4.0, own=3.8, wall=2.0) == 2      # others 0.1 core: noise
    assert free_cores(2, busy=4.0, own=0.0, wall=2.0) == 1      # never fewer than one thread
    assert free_cores(2, busy=3.0, own=3.5, wall=2.0) == 2      # clock skew between the two counters


@pytest.mark.skipif(busy_seconds({0}) is None or len(os.sched_getaffinity(0)) < 2,
                    reason="needs /proc/stat and two cores")
def test_a_run_gives_up_the_threads_another_process_needs():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    governor = ThreadGovernor(wanted=2, every=0.5)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        governor(time.monotonic())
        assert torch.get_num_threads() == 1
    finally:
        busy.kill()
        busy.wait()
        torch.set_num_threads(before)
