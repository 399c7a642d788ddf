import os
import subprocess
import sys

import pytest


def policy_seen_by_a_fresh_process(env: dict) -> str:
    code = "import dreamer, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_dreamer_makes_openmp_threads_wait_passively_unless_told_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy_seen_by_a_fresh_process(env) == "PASSIVE"
    assert policy_seen_by_a_fresh_process({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def page_faults_per_16mib_allocation(import_dreamer: bool) -> float:
    """Like a train step: 128 MiB of activations in 16 MiB blocks, all freed together, 5 times."""
    code = ("import resource, numpy as np\n"
            + ("import dreamer\n" if import_dreamer else "")
            + "def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
              "def step(): return [np.ones(2 << 20) for _ in range(8)]\n"
              "step()\n"
              "start = faults()\n"
              "for _ in range(5): step()\n"
              "print((faults() - start) / 40)\n")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings")
def test_importing_dreamer_reuses_freed_activation_memory_instead_of_faulting_it_in_again():
    # 16 MiB is 4,096 pages; glibc's defaults give back the heap's freed top, so a fresh process
    # faults some of them in again on every step (515 per block here), one importing dreamer none.
    assert page_faults_per_16mib_allocation(False) > 100
    assert page_faults_per_16mib_allocation(True) < 10
