"""`python -m suites.stop` on runs trained by stand-in processes (the launches themselves:
tests/integration/test_local_launch.py and test_slurm.py)."""
import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

from dreamer.rundir import RunDir
from suites import jobs, stop

# A process that trains `run_dir` as far as suites.stop can tell: it holds the run's lock until
# killed; with IGNORE it also ignores SIGINT, as a training stuck in native code would for long.
HOLDER = """
import signal, sys, time
from dreamer.rundir import RunDir
if sys.argv[2] == "IGNORE":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
with RunDir(sys.argv[1]).hold():
    print("holding", flush=True)
    time.sleep(600)
"""


def run_dir(results, task: str, seed: int = 0):
    path = results / "bsuite" / "dreamerv3" / task / f"seed{seed}"
    path.mkdir(parents=True)
    return path


def hold(path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "holding\n"
    return proc


def test_runs_trained_by_hand_are_stopped_and_one_ignoring_sigint_is_killed(tmp_path, capsys, monkeypatch):
    # Long enough for the polite one to unwind on a busy machine (1 s was not, beside two trainings).
    monkeypatch.setattr(stop, "GRACE_SECONDS", 3.0)
    polite, stubborn, other = run_dir(tmp_path, "catch-0"), run_dir(tmp_path, "catch-1"), run_dir(tmp_path, "catch-2")
    (polite / "checkpoint").mkdir()
    procs = [hold(polite, "DEFAULT"), hold(stubborn, "IGNORE"), hold(other, "DEFAULT")]
    try:
        started = time.monotonic()
        assert stop.main(["bsuite", "--tasks", "catch/0,catch/1", "--results", str(tmp_path)]) == 0
        took = time.monotonic() - started
        assert [p.wait(timeout=10) for p in procs[:2]] == [-2, -9]  # ended by SIGINT; by SIGKILL
        assert procs[2].poll() is None  # not selected
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert took > 3.0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"dreamerv3 catch/0 seed 0: stopped (pid {procs[0].pid}); its checkpoint is kept; the next "
                   "launch resumes it",
                   f"dreamerv3 catch/1 seed 0: stopped (pid {procs[1].pid}); no checkpoint yet; the next launch "
                   "starts it again"]
    assert RunDir(polite).holder() is None and RunDir(stubborn).holder() is None


def test_a_run_trained_on_another_host_is_named_not_stopped(tmp_path, capsys):
    path = run_dir(tmp_path, "catch-0")
    with open(path / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(json.dumps({"pid": 4242, "host": "node7", "since": "now"}))
        lock.flush()
        assert stop.main(["bsuite", "--results", str(tmp_path)]) == 1
    assert capsys.readouterr().err == ("dreamerv3 catch/0 seed 0: not stopped: trained by pid 4242 on node7; "
                                       "stop it there\n")


def test_a_queued_local_job_whose_controller_is_gone_is_not_live(tmp_path, capsys):
    path = run_dir(tmp_path, "catch-0")
    jobs.write_record(path, jobs.JobRecord("local", str(os.getpid()), time.time(), "", "", str(tmp_path / "none.pkl"), 1))
    assert stop.main(["bsuite", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"nothing to stop: no queued or running run of bsuite under {tmp_path}\n"


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "unknown suite 'nosuch'"),
    (["bsuite", "--tasks", ""], "--tasks names no task; valid: bandit/0,"),
    (["bsuite", "--tasks", "catch/99"], "unknown bsuite task 'catch/99'"),
    (["bsuite", "--variant", "dreamerv4"], "unknown variant directory under"),
    (["bsuite", "--results", "MISSING"], "MISSING: no such folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    run_dir(tmp_path, "catch-0")
    args = [str(tmp_path / a) if a == "MISSING" else a for a in args]
    assert stop.main(args + ([] if "--results" in args else ["--results", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
