import os
import subprocess
import sys


def policy_seen_by_a_fresh_process(env: dict) -> str:
    code = "import dreamer, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_dreamer_makes_openmp_threads_wait_passively_unless_told_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy_seen_by_a_fresh_process(env) == "PASSIVE"
    assert policy_seen_by_a_fresh_process({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
