"""The training loop on real CartPole with a real (size1m, tiny-batch) agent."""
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dreamer.config import ConfigError, make_config, override, to_dict
from dreamer.loop import updates_due
from dreamer.rundir import RunDir, RunDirBusy, RunDirError, RunIdentity
from dreamer.train import main, train
from envs import make_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FILES = ["DONE", "checkpoint", "config.json", "lock", "metrics.jsonl", "report", "scores.jsonl", "tensorboard"]


def tiny(*overrides):
    return make_config(["size=size1m", "run.batch_size=2", "run.batch_length=8", "run.train_start=32",
                        "run.train_ratio=8", "replay.capacity=2000", "run.log_every=0",
                        "run.checkpoint_every=1e9", "run.device=cpu", *overrides])


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def snapshot(run_dir, lock=True):
    """Every file's bytes; `lock=False` leaves out the lock, which each start signs with its pid."""
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(Path(run_dir).rglob("*"))
            if p.is_file() and (lock or p.name != "lock")}


def test_updates_due_is_floor_of_steps_times_ratio():
    # Updates per agent step = train_ratio / (16 · 64) (dreamer/README.md, "Training loop").
    assert [updates_due(n, 0, 256, 1024) for n in (0, 3, 4, 1000, 1001)] == [0, 0, 1, 250, 250]
    assert [updates_due(n, 0, 32, 1024) for n in (31, 32, 64, 100_000)] == [0, 1, 2, 3125]
    assert [updates_due(n, 0, 1024, 1024) for n in (1, 7, 110_000)] == [1, 7, 110_000]
    assert updates_due(3, 100, 1024, 24) == 28  # 3 · 1024 / 24 = 128 exactly, despite 1024/24 being inexact


def test_run_writes_the_design_files_with_steps_in_frames_and_a_rerun_does_nothing(tmp_path, capsys):
    config = tiny("run.action_repeat=2", "run.budget=120", "run.train_ratio=4")
    identity = RunIdentity("tests", "cartpole", "dreamerv3", 0, {"repeat": 2}, True)
    summary = train(config, functools.partial(make_env, "cartpole", seed=0, repeat=2), tmp_path, identity)

    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    # 60 agent steps; training starts at step 32 (replay holds 32), so 29 steps × 4 / 16 updates.
    assert summary == {**summary, "step": 120, "updates": 7}
    assert json.loads((tmp_path / "DONE").read_text()) == summary

    stored = json.loads((tmp_path / "config.json").read_text())
    assert list(stored) == ["suite", "task", "variant", "seed", "protocol", "shortened", "config", "env",
                            "versions", "git_commit"]
    assert stored["env"] == "envs:make_env"  # how dreamer.evaluate builds the environment again
    assert RunDir(tmp_path).identity() == identity
    assert stored["config"] == json.loads(json.dumps(to_dict(config)))
    assert stored["versions"]["torch"] == torch.__version__ and "gymnasium" in stored["versions"]

    scores = lines(tmp_path / "scores.jsonl")
    assert len(scores) == summary["episodes"] >= 2
    ends = 0
    for s in scores:  # one env: an episode ends after the lengths so far, each step 2 frames
        ends += s["length"]
        assert s["step"] == 2 * ends
        assert 2 * (s["length"] - 1) - 1 <= s["score"] <= 2 * (s["length"] - 1)  # 1 per frame, first step 0

    metrics = lines(tmp_path / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(2, 121, 2))  # log_every=0: one line per agent step
    for m in metrics:
        assert {"step", "time", "fps/env", "fps/train", "updates", "episodes"} <= set(m)
    trained = [m for m in metrics if m["fps/train"] > 0]
    assert trained and all("loss/rec" in m and "loss/policy" in m for m in trained)
    assert metrics[-1]["updates"] == 7 and metrics[-1]["episodes"] == summary["episodes"]

    before = snapshot(tmp_path)
    capsys.readouterr()
    assert train(config, functools.partial(make_env, "cartpole", seed=0, repeat=2), tmp_path, identity) == summary
    assert "already done at step 120; nothing to do" in capsys.readouterr().out
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("ratio, post_start", [(32, 9), (256, 3), (1024, 2)])
def test_updates_follow_the_train_ratio_after_the_start_threshold(tmp_path, ratio, post_start):
    # B·T = 3·8 = 24, so ratio/24 is fractional for all three; training starts at step 9.
    config = tiny("run.batch_size=3", "run.train_start=9", f"run.train_ratio={ratio}",
                  f"run.budget={8 + post_start}")
    train(config, functools.partial(make_env, "cartpole", seed=0), tmp_path)
    metrics = lines(tmp_path / "metrics.jsonl")
    assert len(metrics) == 8 + post_start
    for m in metrics:  # every agent step is a point of the run
        steps_since_start = max(0, m["step"] - 8)
        assert abs(m["updates"] - steps_since_start * ratio / 24) <= 1
        assert m["updates"] == steps_since_start * ratio // 24
    assert metrics[-1]["updates"] > 0


# ---- resume ----------------------------------------------------------------------------------

def start_cli(run_dir, task, *overrides, python=("-m", "dreamer.train")):
    """`python -m dreamer.train` on the test CartPole in a subprocess (`python`: what runs it)."""
    cmd = [sys.executable, *python, "--run-dir", str(run_dir), "--env", "envs:make_env",
           "--task", task, "--seed", "0", "--set", "size=size1m", "run.batch_size=2", "run.batch_length=8",
           "run.train_start=32", "replay.capacity=2000", "run.device=cpu", "run.log_every=0.2", *overrides]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def kill_after_first_checkpoint(proc, run_dir):
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoint").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL and not (run_dir / "DONE").exists()
    return torch.load(run_dir / "checkpoint" / "loop.pt", weights_only=False)


def assert_same_tensors(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_tensors(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b, strict=True):
            assert_same_tensors(x, y)
    else:
        assert a == b


def test_killed_run_resumes_to_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    sets = ["run.budget=120", "run.train_ratio=4", "run.deterministic=true"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = start_cli(whole, "cartpole", *sets, "run.checkpoint_every=1e9")
    loop = kill_after_first_checkpoint(start_cli(killed, "cartpole", *sets, "run.checkpoint_every=0.5"), killed)
    assert 0 < loop["counters"]["agent_steps"] < 120  # killed in the middle
    out = finish(start_cli(killed, "cartpole", *sets, "run.checkpoint_every=1e9"))
    finish(uninterrupted)
    assert f"resuming at step {loop['counters']['agent_steps']}" in out and "all environments restored" in out

    done = [json.loads((d / "DONE").read_text()) for d in (whole, killed)]
    assert done[0]["step"] == done[1]["step"] == 120
    assert done[0]["updates"] == done[1]["updates"] == (120 - 31) * 4 // 16  # training from step 32
    assert done[0]["episodes"] == done[1]["episodes"]
    assert (whole / "scores.jsonl").read_bytes() == (killed / "scores.jsonl").read_bytes()
    agents = [torch.load(d / "checkpoint" / "agent.pt") for d in (whole, killed)]
    assert_same_tensors(agents[0], agents[1])  # params, optimizer, slow critic, return normaliser


def test_killed_run_with_rebuilt_environments_loses_no_logged_episode(tmp_path):
    sets = ["run.budget=160", "run.train_ratio=2", "run.envs=2"]
    loop = kill_after_first_checkpoint(start_cli(tmp_path, "cartpole-rebuilt", *sets, "run.checkpoint_every=0.5"),
                                       tmp_path)
    covered = (tmp_path / "scores.jsonl").read_bytes()[:loop["offsets"]["scores"]]
    out = finish(start_cli(tmp_path, "cartpole-rebuilt", *sets, "run.checkpoint_every=1e9"))
    assert "environments [0, 1] rebuilt as indices [2, 3], their episodes in flight are lost" in out

    # 80 iterations of 2 envs; training starts once replay holds 32 steps (iteration 16).
    assert json.loads((tmp_path / "DONE").read_text())["updates"] == (160 - 30) * 2 // 16
    scores = (tmp_path / "scores.jsonl").read_bytes()
    assert scores.startswith(covered)
    after = [json.loads(line) for line in scores[len(covered):].splitlines()]
    assert all(s["step"] > loop["counters"]["agent_steps"] for s in after)  # nothing logged twice
    steps = [s["step"] for s in lines(tmp_path / "scores.jsonl")]
    assert steps == sorted(steps)


def test_a_second_writer_is_refused_at_once_and_the_run_ends_as_if_alone(tmp_path):
    """`python -m dreamer.train` on a run another process trains (here before its first checkpoint)
    is refused before it loads anything slow (torch, the environment), naming that process, and
    changes nothing: the run ends with the logs of an undisturbed twin."""
    sets = ["run.budget=200", "run.train_ratio=8", "run.deterministic=true", "run.checkpoint_every=1e9",
            "run.log_every=0"]
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    undisturbed = start_cli(alone, "cartpole", *sets)
    first = start_cli(shared, "cartpole", *sets)
    deadline = time.monotonic() + 120
    while not (shared / "metrics.jsonl").exists() or not (shared / "metrics.jsonl").stat().st_size:
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "the first run logged nothing within 120 s"
        time.sleep(0.01)
    # The same command, with a note at exit of what the process had imported by then.
    loaded = tmp_path / "loaded.json"
    note = (f"import atexit, json, runpy, sys; atexit.register(lambda: open({str(loaded)!r}, 'w').write("
            "json.dumps(sorted(m for m in ('torch', 'envs', 'dreamer.loop') if m in sys.modules)))); "
            "runpy.run_module('dreamer.train', run_name='__main__')")
    second = start_cli(shared, "cartpole", *sets, python=["-c", note])
    out, _ = second.communicate(timeout=120)
    assert first.poll() is None, "the first run ended before the second writer was refused"
    assert second.returncode == 1 and out.count("\n") == 1, out
    assert f"is being trained by pid {first.pid} on {socket.gethostname()}" in out
    assert json.loads(loaded.read_text()) == []
    finish(first)
    finish(undisturbed)
    assert sorted(p.name for p in shared.iterdir()) == FILES
    assert (shared / "scores.jsonl").read_bytes() == (alone / "scores.jsonl").read_bytes()
    untimed = [[{k: v for k, v in m.items() if k not in ("time", "fps/env", "fps/train", "report/seconds")}
                for m in lines(d / "metrics.jsonl")] for d in (shared, alone)]
    assert untimed[0] == untimed[1]


# ---- bad run directories ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished short run without updates (training would start at 64 steps)."""
    run_dir = tmp_path_factory.mktemp("finished")
    torch.set_num_threads(1)
    train(tiny("run.budget=40", "run.train_start=64", "replay.capacity=64"),
          functools.partial(make_env, "cartpole", seed=0), run_dir)
    return run_dir


def reopen(finished, tmp_path):
    """A copy of the finished run without DONE, as if it died right after its last checkpoint."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    (run_dir / "DONE").unlink()
    return run_dir


def resume(run_dir, *overrides, identity=None):
    return train(tiny("run.budget=40", "run.train_start=64", "replay.capacity=64", *overrides),
                 functools.partial(make_env, "cartpole", seed=0), run_dir, identity)


@pytest.mark.parametrize("name", ["loop.pt", "agent.pt", "replay.json", "replay.npz"])
def test_corrupt_checkpoint_is_an_error_naming_the_file_that_touches_nothing(finished, tmp_path, capsys, name):
    run_dir = reopen(finished, tmp_path)
    (run_dir / "checkpoint" / name).write_bytes(b"not a checkpoint")
    with open(run_dir / "scores.jsonl", "ab") as f:
        f.write(b'{"step": 44, "score": 1.0, "length": 3}\n')  # written after the checkpoint: still kept
    before = snapshot(run_dir, lock=False)
    with pytest.raises(RunDirError, match=f"checkpoint/{name} is unreadable .*move .*checkpoint away to restart"):
        resume(run_dir)
    assert snapshot(run_dir, lock=False) == before
    assert "resuming" not in capsys.readouterr().out  # said only once a resume has succeeded


def test_lines_written_after_the_checkpoint_are_dropped_and_reported(finished, tmp_path, capsys):
    run_dir = reopen(finished, tmp_path)
    with open(run_dir / "scores.jsonl", "ab") as f:
        f.write(b'{"step": 44, "sco')  # the run died mid-line
    with open(run_dir / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 42}\n{"step": 44}\n')
    assert resume(run_dir)["step"] == 40
    out = capsys.readouterr().out
    assert "scores.jsonl: dropped 1 line(s) written after the checkpoint" in out
    assert "metrics.jsonl: dropped 2 line(s) written after the checkpoint" in out
    for name in ("scores.jsonl", "metrics.jsonl"):
        assert (run_dir / name).read_bytes() == (finished / name).read_bytes()


def test_log_shorter_than_its_checkpoint_is_an_error(finished, tmp_path):
    run_dir = reopen(finished, tmp_path)
    scores = (run_dir / "scores.jsonl").read_bytes()
    (run_dir / "scores.jsonl").write_bytes(scores[:scores.rstrip(b"\n").rfind(b"\n") + 1])
    with pytest.raises(RunDirError, match="scores.jsonl holds .* bytes but the checkpoint covers"):
        resume(run_dir)


def test_logs_without_a_checkpoint_are_kept_aside_when_starting_over(finished, tmp_path, capsys):
    run_dir = reopen(finished, tmp_path)
    shutil.rmtree(run_dir / "checkpoint")
    resume(run_dir)
    assert "metrics.jsonl: no checkpoint to resume from; kept the old log as metrics.jsonl.orphaned-1" \
        in capsys.readouterr().out
    for name in ("scores.jsonl", "metrics.jsonl"):
        assert (run_dir / f"{name}.orphaned-1").read_bytes() == (finished / name).read_bytes()
    assert (run_dir / "scores.jsonl").read_bytes() == (finished / "scores.jsonl").read_bytes()  # same seed


def test_interrupted_checkpoint_swap_is_recovered(finished, tmp_path, capsys):
    run_dir = reopen(finished, tmp_path)
    os.replace(run_dir / "checkpoint", run_dir / "checkpoint.old")
    (run_dir / "checkpoint.tmp").mkdir()
    (run_dir / "checkpoint.tmp" / "agent.pt").write_bytes(b"half written")
    assert resume(run_dir)["step"] == 40
    out = capsys.readouterr().out
    assert "restored the previous checkpoint" in out and "checkpoint.tmp: removed an incomplete checkpoint" in out
    assert sorted(p.name for p in run_dir.iterdir()) == FILES


def test_malformed_done_is_an_error(finished, tmp_path):
    run_dir = reopen(finished, tmp_path)
    (run_dir / "DONE").write_text('{"step": 4')
    with pytest.raises(RunDirError, match="DONE is not the JSON summary"):
        resume(run_dir)


def test_resuming_with_another_config_is_an_error(finished, tmp_path):
    run_dir = reopen(finished, tmp_path)
    with pytest.raises(RunDirError, match=r"different config \(run\.train_ratio: 8\.0 → 16\.0\)"):
        resume(run_dir, "run.train_ratio=16", "run.log_every=5")  # log_every may change


def test_a_run_another_process_trains_is_refused_naming_it_and_left_as_is(finished, tmp_path):
    run_dir = reopen(finished, tmp_path)
    shutil.rmtree(run_dir / "checkpoint")  # before its first checkpoint: a start would begin anew
    with RunDir(run_dir).hold():  # this test process stands in for the process training the run
        before = snapshot(run_dir)
        with pytest.raises(RunDirBusy, match=f"is being trained by pid {os.getpid()} on {socket.gethostname()}"):
            resume(run_dir, identity=RunIdentity(task="cartpole"))
        assert snapshot(run_dir) == before
    assert RunDir(run_dir).holder() is None  # released with the process (here: the `with`)


def test_a_start_by_hand_keeps_the_identity_its_run_directory_records(finished, tmp_path):
    run_dir = reopen(finished, tmp_path)
    shutil.rmtree(run_dir / "checkpoint")
    recorded = RunIdentity("bsuite", "cartpole", "dreamerv3-budget40", 0, {}, True)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, **vars(recorded)}))
    resume(run_dir, identity=RunIdentity(task="cartpole"))  # what `python -m dreamer.train` knows
    assert RunDir(run_dir).identity() == recorded
    (run_dir / "DONE").unlink()
    with pytest.raises(RunDirError, match="holds another run \\(task: 'cartpole' there, 'walker' here\\)"):
        resume(run_dir, identity=RunIdentity(task="walker"))


# ---- command line ----------------------------------------------------------------------------

def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "--run-dir" in out and "MODULE:FUNCTION" in out and "--set KEY=VALUE" in out


@pytest.mark.parametrize("args, message", [
    (["--env", "envs"], "--env 'envs' is not module:function"),
    (["--env", "envs:nothing"], "--env 'envs:nothing': module 'envs' has no attribute 'nothing'"),
    (["--set", "run.batchsize=2"], "unknown config key 'run.batchsize'; did you mean run.batch_size"),
    (["--set", "run.budget=0"], "the run has no budget"),
    (["--task", "cartpol"], "environment 0 failed: ValueError: unknown test task 'cartpol'; valid: cartpole"),
])
def test_cli_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    argv = ["--run-dir", str(tmp_path / "run"), "--env", "envs:make_env", "--task", "cartpole",
            "--set", "size=size1m", "run.budget=40", "run.device=cpu", *args]  # the last --env/--task wins
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and err.count("\n") == 1


NO_CUDA = "built without CUDA|this machine has 0 CUDA device"


@pytest.mark.parametrize("setting, message", [
    ("run.device=garbage", "run.device 'garbage' is not a device; valid: auto, cpu, cuda, cuda:N"),
    ("agent.precision=fp8", "agent.precision 'fp8' is not one of auto, float32, bfloat16"),
    ("run.train_ratio=-1", "run.train_ratio must be positive, got -1.0"),
    ("run.batch_size=0", "run.batch_size must be positive, got 0"),
    ("run.batch_length=0", "run.batch_length must be positive, got 0"),
    ("run.envs=0", "run.envs must be positive, got 0"),
    pytest.param("run.device=cuda", NO_CUDA, marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
])
def test_settings_that_mean_nothing_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, setting, message):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit:
        main(["--run-dir", str(run_dir), "--env", "envs:make_env", "--task", "cartpole",
              "--set", "size=size1m", "run.budget=40", setting])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and re.search(message, err) and err.count("\n") == 1, err
    assert not run_dir.exists()


def test_config_without_budget_is_rejected_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="no budget"):
        train(tiny(), functools.partial(make_env, "cartpole", seed=0), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_smallest_budget_with_an_update_makes_one(tmp_path):
    from dreamer.loop import first_update_frames, updates_in_budget

    config = tiny("run.action_repeat=2")  # 31 steps fill replay; 2 more bring the first update at ratio 8
    frames = first_update_frames(config.run)
    assert frames == (32 - 1 + 2) * 2
    for budget, updates in ((frames - 2, 0), (frames, 1), (frames + 2 * 2, 2)):
        run = override(config, [f"run.budget={budget}"])
        assert updates_in_budget(run.run) == updates
        summary = train(run, functools.partial(make_env, "cartpole", seed=0, repeat=2), tmp_path / str(budget))
        assert summary["updates"] == updates, budget
