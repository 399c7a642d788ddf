"""End to end through the local executor: real submitit subprocesses train real bsuite runs.

Tiny settings keep each run to seconds: size1m, 2×8 batches, 46 updates over 400 frames, a
checkpoint every second. The helpers are shared with test_slurm.py.
"""
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from analysis import load, scoring
from dreamer.rundir import RunDir, RunIdentity
from suites import jobs
from suites import run as launcher

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "slurm" / "profiles" / "local.yaml"  # 1 CPU per run, 2 at once
BUDGET = 400
NAME = "tiny"  # the runs' folder: their settings are not the fixed config's
TINY = ["size=size1m", "run.batch_size=2", "run.batch_length=8", "run.train_ratio=2", "run.train_start=32",
        "run.checkpoint_every=1"]


def launch_command(results: Path, *args: str, budget: int = BUDGET) -> list[str]:
    sets = [a for s in TINY for a in ("--set", s)]
    return [sys.executable, "-m", "suites.run", "bsuite", "--tasks", "catch/0", "--budget", str(budget), *sets,
            "--name", NAME, "--profile", str(PROFILE), "--results", str(results), *args]


def launch(results: Path, *args: str, budget: int = BUDGET) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(results, *args, budget=budget), capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def run_dir(results: Path, seed: int, budget: int = BUDGET) -> Path:
    return results / "bsuite" / f"tiny-budget{budget}" / "catch-0" / f"seed{seed}"


def steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def check_done_run(results: Path, seed: int, executor: str, budget: int = BUDGET) -> dict:
    """The run directory (dreamer/README.md) of a finished run; returns its DONE summary. bsuite environments
    resume where the checkpoint left them, so a resumed run's episodes end where an uninterrupted
    run's do."""
    d = run_dir(results, seed, budget)
    assert RunDir(d).identity() == RunIdentity("bsuite", "catch/0", f"tiny-budget{budget}", seed, {}, True)
    config = json.loads((d / "config.json").read_text())["config"]
    assert config["size"] == "size1m" and config["run"]["budget"] == budget
    assert (d / "checkpoint").is_dir()
    done = json.loads((d / "DONE").read_text())
    assert done["step"] == budget
    # One score line per episode, none twice; catch episodes are 10 agent steps.
    scores = steps(d / "scores.jsonl")
    assert scores == sorted(set(scores)) and len(scores) == done["episodes"]
    assert scores == list(range(10, budget + 1, 10))
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


def kill_after_first_checkpoint(results: Path, *sets: str) -> None:
    """Launch with --wait and config overrides `sets`, kill the launcher, its job controller and the
    training once the run has a checkpoint, and wait until the run is no longer seen running."""
    args = [a for s in sets for a in ("--set", s)]
    first = subprocess.Popen(launch_command(results, "--wait", *args), cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = run_dir(results, 0) / "checkpoint", time.time() + 240
    try:
        while not ckpt.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
    finally:
        # The launcher's group, then the job's: local jobs run in a session of their own.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        os.killpg(os.getpgid(int(jobs.read_record(run_dir(results, 0)).job_id)), signal.SIGKILL)
    assert ckpt.exists() and not (run_dir(results, 0) / "DONE").exists()
    # SIGKILL is asynchronous: a busy machine can take a moment to tear the processes down.
    deadline = time.time() + 30
    while True:
        plan = launcher.make_plan("bsuite", 1, sets=[*TINY, *sets], tasks=["catch/0"], budget=BUDGET,
                                  results=results, name=NAME)
        if plan.runs[0].state != "running" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert plan.runs[0].state == "interrupted"  # its job was killed without a result


def resumed_log(results: Path) -> str:
    """The log of the run's last job, which resumed it."""
    record = json.loads((run_dir(results, 0) / "job.json").read_text())
    log = (run_dir(results, 0) / "logs" / f"{record['job_id']}.log").read_text()
    assert "resuming at step" in log and "all environments restored" in log
    return log


def test_killing_a_local_launch_and_rerunning_it_resumes_the_run(tmp_path):
    kill_after_first_checkpoint(tmp_path)
    proc = launch(tmp_path, "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "1 run: 1 interrupted; 1 to submit" in proc.stdout
    check_done_run(tmp_path, 0, "local")
    resumed_log(tmp_path)


def test_a_killed_and_resumed_bsuite_run_scores_as_its_uninterrupted_twin(tmp_path):
    """bsuite environments travel in the checkpoint with the rows they logged, so the resumed
    run's log is the one of its twin, and so is bsuite's score of it."""
    twin, killed, same = tmp_path / "twin", tmp_path / "killed", "run.deterministic=true"
    uninterrupted = subprocess.Popen(launch_command(twin, "--wait", "--set", same), cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_after_first_checkpoint(killed, same)
    proc = launch(killed, "--wait", "--set", same)
    assert proc.returncode == 0, proc.stderr
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()
    resumed_log(killed)
    logs = [load.load_bsuite(results) for results in (twin, killed)]
    assert len(logs[0]) == 17  # bsuite logs episodes 1..10, 12, 14, 17, 20, 25, 30, 40 (of 10 frames each)
    pd.testing.assert_frame_equal(logs[0].drop(columns="results_dir"), logs[1].drop(columns="results_dir"))
    pd.testing.assert_frame_equal(scoring.bsuite_scores(logs[0]), scoring.bsuite_scores(logs[1]))


def test_finished_runs_continue_to_a_larger_budget_as_if_never_stopped(tmp_path):
    """--continue-from copies each finished shorter run and resumes the copy to the new budget:
    its logs are those of a run launched with the larger budget, and the shorter run stays as it was."""
    same = ["--set", "run.deterministic=true", "run.log_every=0"]
    assert launch(tmp_path, "--wait", *same, budget=200).returncode == 0
    short = run_dir(tmp_path, 0, 200)
    before = {p.relative_to(short): p.read_bytes() for p in short.rglob("*") if p.is_file() and p.name != "lock"}
    dry = launch(tmp_path, "--dry-run", "--no-estimate", "--continue-from", "200", *same)
    assert re.search(r"catch/0\s+0\s+400 frames\s+.*new\s+continues tiny-budget200", dry.stdout), dry.stdout
    proc = launch(tmp_path, "--wait", "--continue-from", "200", *same)
    assert proc.returncode == 0, proc.stderr
    twin = launch(tmp_path / "twin", "--wait", *same)
    assert twin.returncode == 0, twin.stderr
    continued, uninterrupted = run_dir(tmp_path, 0), run_dir(tmp_path / "twin", 0)
    assert json.loads((continued / "DONE").read_text())["step"] == 400
    assert json.loads((continued / "config.json").read_text())["continues"] == {"run": str(short), "step": 200}
    assert "resuming at step 200" in resumed_log(tmp_path)
    assert (continued / "scores.jsonl").read_bytes() == (uninterrupted / "scores.jsonl").read_bytes()
    # Reports follow the clock and each start of a process (a resumed run reports at its first
    # update, as the reference's), so only what training computes is compared.
    untimed = [[{k: v for k, v in json.loads(line).items() if k not in ("time", "fps/env", "fps/train") and not k.startswith("report/")}
                for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (continued, uninterrupted)]
    assert untimed[0] == untimed[1]
    logs = [load.load_bsuite(results) for results in (tmp_path, tmp_path / "twin")]
    logs[0] = logs[0][logs[0].method == "tiny-budget400 (ours)"]
    pd.testing.assert_frame_equal(logs[0].drop(columns="results_dir").reset_index(drop=True),
                                  logs[1].drop(columns="results_dir").reset_index(drop=True))
    after = {p.relative_to(short): p.read_bytes() for p in short.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == before
    bad = launch(tmp_path, "--wait", "--continue-from", "300", *same, budget=500)
    assert bad.returncode == 2 and "tiny-budget300/catch-0/seed0 cannot be continued: there is no such run" in bad.stderr


def test_a_failing_run_is_reported_with_its_error_in_one_line(tmp_path):
    broken = run_dir(tmp_path, 0) / "checkpoint"
    broken.mkdir(parents=True)
    (broken / "loop.pt").write_bytes(b"not a checkpoint")  # dreamer.train refuses to resume it
    proc = launch(tmp_path, "--wait")
    assert proc.returncode == 1
    assert "1 run: 1 partial; 1 to submit" in proc.stdout
    # One line: the exception that ended the job, not the traceback before it.
    failure = [line for line in proc.stderr.splitlines() if line.startswith("catch/0 seed 0: ")]
    assert len(failure) == 1 and "Traceback" not in proc.stderr
    assert failure[0].startswith(f"catch/0 seed 0: failed: dreamer.rundir.RunDirError: {broken / 'loop.pt'} is "
                                 "unreadable (")
    assert proc.stderr.endswith(f"their logs: python -m suites.status bsuite --variant tiny-budget{BUDGET} "
                                f"--results {tmp_path.absolute()}\n")
    table = subprocess.run([sys.executable, "-m", "suites.status", "bsuite", "--results", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
    assert table.returncode == 0, table.stderr
    assert "failed" in table.stdout and "local" in table.stdout
    last = table.stdout.rstrip().splitlines()[-1]
    assert "RunDirError: " in last and "loop.pt is unreadable" in last


def stop_command(line: str) -> list[str]:
    """The `python -m suites.stop …` command at the end of `line`, for this interpreter."""
    command = shlex.split(line[line.index("python -m suites.stop"):])
    return [sys.executable, *command[1:]]


def test_ctrl_c_leaves_local_runs_going_and_stop_ends_them_to_resume_at_the_next_launch(tmp_path):
    budget = 1200  # long enough to still train when the stop comes
    waiting = subprocess.Popen(launch_command(tmp_path, "--wait", budget=budget), cwd=REPO, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d, deadline = run_dir(tmp_path, 0, budget), time.time() + 240
    while not (d / "checkpoint").exists() and time.time() < deadline and waiting.poll() is None:
        time.sleep(0.1)
    record = jobs.read_record(d)
    trainer = RunDir(d).holder_process()
    assert (d / "checkpoint").exists() and trainer is not None
    os.killpg(waiting.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 130 and "Traceback" not in out + err
    interrupted = err.splitlines()[-1]
    assert interrupted == ("suites.run: interrupted; submitted runs go on; stop them with: python -m suites.stop "
                           f"bsuite --variant tiny-budget{budget} --tasks catch/0 --results {tmp_path}")
    assert jobs.process_start(int(record.job_id)) == record.started and RunDir(d).holder() is not None

    stopped = subprocess.run(stop_command(interrupted), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (f"tiny-budget{budget} catch/0 seed 0: stopped (local job {record.job_id}); "
                              "its checkpoint is kept; the next launch resumes it\n")
    assert jobs.process_start(int(record.job_id)) == 0 and jobs.process_start(trainer[0]) == 0
    assert RunDir(d).holder() is None and not (d / "DONE").exists()
    table = subprocess.run([sys.executable, "-m", "suites.status", "bsuite", "--results", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, cwd=REPO).stdout
    assert "1 runs: 1 stopped" in table and "last log lines" not in table

    proc = launch(tmp_path, "--wait", budget=budget)
    assert proc.returncode == 0, proc.stderr
    assert "1 run: 1 stopped; 1 to submit" in proc.stdout
    check_done_run(tmp_path, 0, "local", budget)
    log = (d / "logs" / f"{jobs.read_record(d).job_id}.log").read_text()
    assert "resuming at step" in log


def test_stop_ends_local_jobs_still_waiting_for_a_slot(tmp_path):
    """The test holds every local slot (the profile's 2), so the jobs wait without training."""
    slots = tmp_path / ".submitit" / "local-slots"
    slots.mkdir(parents=True)
    held = [open(slots / f"slot{i}.lock", "w") for i in range(2)]
    try:
        for f in held:
            fcntl.flock(f, fcntl.LOCK_EX)
        proc = launch(tmp_path, "--seeds", "2")
        assert proc.returncode == 0, proc.stderr
        records = [jobs.read_record(run_dir(tmp_path, s)) for s in (0, 1)]
        deadline = time.time() + 60
        while len(tasks := [c for r in records for c in jobs.process_children(int(r.job_id))]) < 2 \
                and time.time() < deadline:
            time.sleep(0.2)
        assert len(tasks) == 2  # each controller has started its task, which waits for a slot
        processes = [int(r.job_id) for r in records] + tasks
        table = subprocess.run([sys.executable, "-m", "suites.status", "bsuite", "--results", str(tmp_path)],
                               capture_output=True, text=True, timeout=120, cwd=REPO).stdout
        assert "2 runs: 2 queued" in table
        stopped = subprocess.run([sys.executable, "-m", "suites.stop", "bsuite", "--results", str(tmp_path)],
                                 capture_output=True, text=True, timeout=120, cwd=REPO)
    finally:
        for f in held:
            f.close()
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"tiny-budget{BUDGET} catch/0 seed {s}: stopped (local job {r.job_id}); no checkpoint yet; the next "
        "launch starts it again" for s, r in zip((0, 1), records)]
    assert [jobs.process_start(pid) for pid in processes] == [0] * 4
    # What the stopped controllers printed went to the launch's log, not to a terminal.
    assert "KeyboardInterrupt" in (tmp_path / ".submitit" / "bsuite" / f"tiny-budget{BUDGET}" /
                                   "submission.log").read_text()
    again = launch(tmp_path, "--seeds", "2", "--dry-run", "--no-estimate")
    assert "2 runs: 2 stopped; 2 to submit" in again.stdout
