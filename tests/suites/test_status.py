import contextlib
import dataclasses
import json
import os
import pickle
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamer.rundir import RunDir
from suites import jobs, progress, status
from suites.jobs import JobRecord, write_record


def local_record(tmp_path, alive: bool, outcome: str | None = None) -> JobRecord:
    """A local job record: this test process stands in for a live job controller; a dead one has
    a start time no process has, and a submitit result pickle holding `outcome` (None: no result,
    as when the job was killed)."""
    result = tmp_path / f"result-{outcome}.pkl"
    if outcome:
        result.write_bytes(pickle.dumps((outcome, "Traceback ...")))
    started = jobs.process_start(os.getpid()) if alive else 1
    return JobRecord("local", str(os.getpid()), time.time(), "", str(tmp_path / "submitit.err"), str(result), started)


def test_process_start_tells_live_processes_from_gone_ones():
    assert jobs.process_start(os.getpid()) > 0
    assert jobs.process_start(2**22 + 1) == 0  # above pid_max: never a process


@pytest.mark.parametrize("alive, outcome, training, expected", [
    (True, None, True, "running"),
    (True, None, False, "queued"),  # waiting for a local slot: it holds no run lock yet
    (False, "error", False, "failed"),
    (False, None, False, "interrupted"),  # killed: no result
    (False, "success", False, "failed"),  # returned without reaching DONE
    (False, None, True, "running"),  # trained by another process, e.g. started by hand
])
def test_run_state_of_a_recorded_local_job(tmp_path, alive, outcome, training, expected):
    run_dir = tmp_path / "seed0"
    record = local_record(tmp_path, alive, outcome)
    write_record(run_dir, record)
    assert jobs.read_record(run_dir) == record
    with RunDir(run_dir).hold() if training else contextlib.nullcontext():
        assert [s for s, _, _ in status.states([run_dir])] == [expected]
    (run_dir / "DONE").write_text("{}")
    assert [s for s, _, _ in status.states([run_dir])] == ["done"]


@pytest.mark.parametrize("word, expected", [
    ("TIMEOUT", "interrupted"), ("CANCELLED", "interrupted"), ("PREEMPTED", "interrupted"),
    ("NODE_FAIL", "interrupted"), ("FAILED", "failed"), ("OUT_OF_MEMORY", "failed"), ("COMPLETED", "failed")])
def test_an_ended_slurm_job_is_interrupted_or_failed_by_how_it_ended(tmp_path, word, expected):
    record = JobRecord("slurm", "12", time.time(), "", "", "")
    assert status.run_state(tmp_path / "seed0", record, ("ended", word)) == expected


def test_a_job_stopped_by_suites_stop_is_stopped_not_failed(tmp_path, capsys):
    run_dir = tmp_path / "bsuite" / "v" / "catch-0" / "seed0"
    write_record(run_dir, dataclasses.replace(local_record(tmp_path, alive=False), stopped=time.time()))
    RunDir(run_dir).open_logs().close()
    assert [s for s, _, _ in status.states([run_dir])] == ["stopped"]
    assert status.main(["bsuite", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"catch/0\s+0\s+stopped", out) and "1 runs: 1 stopped" in out and "last log lines" not in out


def test_run_state_without_a_record(tmp_path):
    assert status.run_state(tmp_path / "a", None, None) == "new"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.jsonl").write_text("")
    assert status.run_state(tmp_path / "a", None, None) == "partial"


def test_malformed_record_is_named(tmp_path):
    (tmp_path / "job.json").write_text('{"executor": "local"')
    with pytest.raises(status.SuiteError, match="malformed submission record .*job.json"):
        jobs.read_record(tmp_path)


def test_read_last_skips_a_torn_final_line_and_progress_reads_frames_and_score(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1000, "time": 1}\n{"step": 2000, "time": 2}\n{"step": 30')
    (tmp_path / "scores.jsonl").write_text('{"step": 800, "score": 3.5, "length": 200}\n'
                                           '{"step": 1900, "score": -1.0, "length": 275}\n')
    assert RunDir(tmp_path).last_line("metrics") == {"step": 2000, "time": 2}
    assert RunDir(tmp_path / "missing").last_line("metrics") is None
    # No interval rate logged: the mean rate over the run's training time.
    assert progress.read(tmp_path) == progress.Progress(2000, None, -1.0, 1000.0)
    (tmp_path / "DONE").write_text(json.dumps({"step": 2400, "episodes": 9}, indent=2))
    assert progress.read(tmp_path) == progress.Progress(2400, 9, -1.0, 1000.0)


def test_status_table_shows_states_frames_score_and_the_log_tail_of_failures(tmp_path, capsys):
    base = tmp_path / "bsuite" / "dreamerv3-budget2000"
    done, failed = base / "catch-0" / "seed0", base / "catch-0" / "seed1"
    done.mkdir(parents=True)
    (done / "DONE").write_text(json.dumps({"step": 2000}))
    (done / "scores.jsonl").write_text('{"step": 1990, "score": 7.0, "length": 10}\n')
    record = local_record(tmp_path, alive=False, outcome="error")
    write_record(failed, record)
    RunDir(failed).job_log(record.job_id).parent.mkdir()
    RunDir(failed).job_log(record.job_id).write_text("".join(f"line {i}\n" for i in range(30)) + "ValueError: boom\n")
    (failed / "metrics.jsonl").write_text('{"step": 640}\n')
    assert status.main(["bsuite", "--results", str(tmp_path), "--seeds", "3", "--lines", "3"]) == 0
    out = capsys.readouterr().out
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith("dreamerv3")]
    # Empty cells vanish in this split: no score for the failed run, nothing for the missing one.
    assert [r for r in rows if r[1:2] == ["catch/0"]] == [["dreamerv3-budget2000", "catch/0", "0", "done", "2000", "7"],
                        ["dreamerv3-budget2000", "catch/0", "1", "failed", "640", f"local {record.job_id} FAILED"],
                        ["dreamerv3-budget2000", "catch/0", "2", "missing"]]
    assert sum(len(r) > 1 for r in rows) == 3 * 468  # --seeds 3: every bsuite id is expected
    assert "1404 runs: 1 done, 1 failed, 1402 missing" in out
    assert out.endswith("catch/0 seed1 (FAILED), last log lines:\n  line 28\n  line 29\n  ValueError: boom\n")


def test_status_errors_name_the_valid_choices(tmp_path, capsys):
    (tmp_path / "bsuite" / "dreamerv3").mkdir(parents=True)
    assert status.main(["bsuite", "--results", str(tmp_path), "--variant", "dreamerv4"]) == 2
    assert "unknown variant directory under" in capsys.readouterr().err
    assert status.main(["nosuch", "--results", str(tmp_path)]) == 2
    assert "valid: atari100k" in capsys.readouterr().err
    assert status.main(["atari100k", "--results", str(tmp_path)]) == 0
    assert "no runs of atari100k" in capsys.readouterr().out
    missing, afile = tmp_path / "nowhere", tmp_path / "file"
    afile.write_text("x")
    for path, message in ((missing, f"--results {missing}: no such folder"),
                          (afile, f"--results {afile} is a file, not a folder of runs")):
        assert status.main(["atari100k", "--results", str(path)]) == 2
        assert capsys.readouterr() == ("", f"suites.status: error: {message}\n")


def test_a_run_trained_outside_the_launcher_is_running_and_names_its_process(tmp_path, capsys):
    run_dir = tmp_path / "bsuite" / "dreamerv3" / "catch-0" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 10}\n')
    assert status.run_state(run_dir, None, None) == "partial"
    with RunDir(run_dir).hold():  # this test process stands in for `python -m dreamer.train`
        assert status.run_state(run_dir, None, None) == "running"
        assert status.main(["bsuite", "--results", str(tmp_path)]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if "catch/0" in line]
    assert len(row) == 1 and "running" in row[0] and f"pid {os.getpid()} on {socket.gethostname()}" in row[0]


def test_the_error_of_an_ended_job_is_the_exception_line_of_its_last_traceback(tmp_path):
    record = local_record(tmp_path, alive=False, outcome="error")
    log = RunDir(tmp_path / "run").job_log(record.job_id)
    log.parent.mkdir(parents=True)
    log.write_text("job 1 on host\nstep 10 | episodes 1\nTraceback (most recent call last):\n"
                   '  File "a.py", line 1, in <module>\n    raise ValueError("first")\nValueError: first\n'
                   "job 1 again\nTraceback (most recent call last):\n"
                   '  File "dreamer/train.py", line 9, in train\n    loop.run()\n    ^^^^^^^^^^\n'
                   "dreamer.rundir.RunDirError: /x/loop.pt is unreadable (EOFError: Ran out of input); the run\n"
                   "directory was left as is\n")
    assert status.error_line(tmp_path / "run", record) == \
        "dreamer.rundir.RunDirError: /x/loop.pt is unreadable (EOFError: Ran out of input); the run"
    # Stopped: the training log has no traceback, submitit's stderr has the interrupt.
    log.write_text("step 10 | episodes 1\n")
    Path(record.stderr).write_text("submitit INFO starting\nTraceback (most recent call last):\n"
                                   '  File "x.py", line 3, in wait\n    time.sleep(1)\nKeyboardInterrupt\n')
    assert status.error_line(tmp_path / "run", record) == "KeyboardInterrupt"
    Path(record.stderr).unlink()
    assert status.error_line(tmp_path / "run", record) == "step 10 | episodes 1"
    log.unlink()
    assert status.error_line(tmp_path / "run", record) == "(no log)"


def test_status_piped_into_head_ends_without_a_traceback(tmp_path):
    (tmp_path / "bsuite" / "dreamerv3" / "catch-0" / "seed0").mkdir(parents=True)
    # --seeds 10: 4,680 rows, far more than a pipe holds, so the table is written after head has gone
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m suites.status bsuite --seeds 10 --results "
                          f"{shlex.quote(str(tmp_path))} | head -1", shell=True, capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.split() == ["variant", "task", "seed", "state", "frames", "last", "score", "job"]
    assert proc.stderr == ""
