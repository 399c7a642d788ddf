"""End to end through the local executor: real submitit subprocesses train real bsuite runs.

Tiny settings keep each run to seconds: size1m, 2×8 batches, 46 updates over 400 frames, a
checkpoint every second. The helpers are shared with test_slurm.py.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from suites import run as launcher

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "slurm" / "profiles" / "local.yaml"  # 1 CPU per run, 2 at once
BUDGET = 400
TINY = ["size=size1m", "run.batch_size=2", "run.batch_length=8", "run.train_ratio=2", "run.train_start=32",
        "run.checkpoint_every=1"]


def launch_command(results: Path, *args: str, budget: int = BUDGET) -> list[str]:
    sets = [a for s in TINY for a in ("--set", s)]
    return [sys.executable, "-m", "suites.run", "bsuite", "--tasks", "catch/0", "--budget", str(budget), *sets,
            "--profile", str(PROFILE), "--results", str(results), *args]


def launch(results: Path, *args: str, budget: int = BUDGET) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(results, *args, budget=budget), capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def run_dir(results: Path, seed: int, budget: int = BUDGET) -> Path:
    return results / "bsuite" / f"dreamerv3-budget{budget}" / "catch-0" / f"seed{seed}"


def steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def check_done_run(results: Path, seed: int, executor: str, resumed: bool = False, budget: int = BUDGET) -> dict:
    """The DESIGN run directory of a finished run; returns its DONE summary. bsuite environments
    are rebuilt on resume (not `resumable`), losing the episode in flight: a resumed run's
    episodes end at other steps."""
    d = run_dir(results, seed, budget)
    meta = json.loads((d / "config.json").read_text())
    assert {k: meta[k] for k in ("suite", "task", "variant", "seed", "protocol", "shortened")} == {
        "suite": "bsuite", "task": "catch/0", "variant": f"dreamerv3-budget{budget}", "seed": seed,
        "protocol": {}, "shortened": True}
    assert meta["config"]["size"] == "size1m" and meta["config"]["run"]["budget"] == budget
    assert (d / "checkpoint").is_dir()
    done = json.loads((d / "DONE").read_text())
    assert done["step"] == budget
    # One score line per episode, none twice; catch episodes are 10 agent steps.
    scores = steps(d / "scores.jsonl")
    assert scores == sorted(set(scores)) and len(scores) == done["episodes"]
    assert resumed or scores == list(range(10, budget + 1, 10))
    metrics = steps(d / "metrics.jsonl")
    assert metrics == sorted(set(metrics)) and metrics[-1] <= budget
    record = json.loads((d / "job.json").read_text())
    assert record["executor"] == executor
    log = (d / "logs" / f"{record['job_id']}.log").read_text()
    assert f"done: step {budget}" in log
    return done


def test_local_launch_trains_every_run_and_a_rerun_submits_nothing(tmp_path):
    proc = launch(tmp_path, "--seeds", "2", "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "2 runs: 2 new; 2 to submit" in proc.stdout and "submitted 2 runs (local)" in proc.stdout
    summaries = [check_done_run(tmp_path, seed, "local") for seed in (0, 1)]
    assert summaries[0]["updates"] == summaries[1]["updates"] > 0
    records = [(run_dir(tmp_path, s) / "job.json").read_text() for s in (0, 1)]

    again = launch(tmp_path, "--seeds", "2")
    assert again.returncode == 0, again.stderr
    assert "2 runs: 2 done; 0 to submit" in again.stdout and "nothing to submit" in again.stdout
    assert [(run_dir(tmp_path, s) / "job.json").read_text() for s in (0, 1)] == records


def test_killing_a_local_launch_and_rerunning_it_resumes_the_run(tmp_path):
    first = subprocess.Popen(launch_command(tmp_path, "--wait"), cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = run_dir(tmp_path, 0) / "checkpoint", time.time() + 240
    try:
        while not ckpt.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the launcher, its job controller and the training
        first.wait()
    assert ckpt.exists() and not (run_dir(tmp_path, 0) / "DONE").exists()
    # SIGKILL is asynchronous: a busy machine can take a moment to tear the processes down.
    deadline = time.time() + 30
    while True:
        plan = launcher.make_plan("bsuite", 1, sets=TINY, tasks=["catch/0"], budget=BUDGET, results=tmp_path)
        if plan.runs[0].state != "running" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert plan.runs[0].state == "failed"  # its job was killed without a result

    proc = launch(tmp_path, "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "1 run: 1 failed; 1 to submit" in proc.stdout
    check_done_run(tmp_path, 0, "local", resumed=True)
    record = json.loads((run_dir(tmp_path, 0) / "job.json").read_text())
    assert "resuming at step" in (run_dir(tmp_path, 0) / "logs" / f"{record['job_id']}.log").read_text()


def test_a_failing_run_is_reported_with_the_tail_of_its_log(tmp_path):
    proc = launch(tmp_path, "--set", "run.envs=0", "--wait")  # dreamer.train refuses it at start
    assert proc.returncode == 1
    assert "catch/0 seed 0: failed; last log lines:" in proc.stderr
    assert "run.envs must be at least 1, got 0" in proc.stderr
    table = subprocess.run([sys.executable, "-m", "suites.status", "bsuite", "--results", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
    assert table.returncode == 0, table.stderr
    assert "failed" in table.stdout and "local" in table.stdout
    assert table.stdout.rstrip().endswith("ConfigError: run.envs must be at least 1, got 0")
