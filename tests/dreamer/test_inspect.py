"""Looking inside a run: open-loop views, videos, the TensorBoard mirror, reports that change
nothing, and `python -m dreamer.evaluate`."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from envs import make_env
from test_train import FILES, HERE, REPO, finish, kill_after_first_checkpoint, lines, start_cli, tiny

from dreamer.inspect import openloop
from dreamer.rundir import RunIdentity
from dreamer.inspect.video import read_mp4, write_mp4
from dreamer.train import train


def test_open_loop_panels_mark_the_imagined_steps_and_grey_where_prediction_is_right():
    truth = np.zeros((2, 4, 6, 6, 3), np.uint8)
    truth[..., 0] = 100
    pred = truth.copy()
    pred[1, 3, 2, 2] = (200, 0, 0)  # one pixel brighter in red, one darker in green
    pred[1, 3, 3, 3] = (100, 0, 0)
    truth[1, 3, 3, 3, 1] = 50
    frames = openloop.video(truth, pred, context=2)
    b = openloop.BORDER
    assert frames.shape == (4, 3 * (6 + 2 * b), 2 * (6 + 2 * b), 3) and frames.dtype == np.uint8
    assert (frames[:2, 0, 0] == openloop.OBSERVED).all() and (frames[2:, 0, 0] == openloop.IMAGINED).all()
    error = frames[:, 2 * (6 + 2 * b) + b:3 * (6 + 2 * b) - b]  # the third panel, inside its border
    left, right = error[:, :, b:b + 6], error[:, :, 6 + 3 * b:6 + 3 * b + 6]
    assert (left == 127).all()  # sequence 0: prediction equal to the truth everywhere
    assert tuple(right[3, 2, 2]) == (177, 127, 127) and tuple(right[3, 3, 3]) == (127, 102, 127)
    strip = openloop.strip(truth, pred, context=2, sequence=1)
    assert strip.shape == (3 * (6 + 2 * b), 4 * (6 + 2 * b), 3)
    np.testing.assert_array_equal(strip[:, 3 * (6 + 2 * b):], frames[3, :, 6 + 2 * b:])


def test_videos_decode_to_their_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.kron(rng.integers(0, 256, (5, 9, 7, 3), dtype=np.uint8), np.ones((1, 8, 8, 1), np.uint8))
    path = write_mp4(tmp_path / "v.mp4", frames)  # 72×56 frames
    decoded = read_mp4(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    # H.264 near-lossless, colours at half resolution (yuv420p, what players show): random colours of
    # 8×8 cells come back within a few levels
    assert np.abs(decoded.astype(int) - frames).mean() < 8
    odd = write_mp4(tmp_path / "odd.mp4", frames[:, :71, :55])
    assert read_mp4(odd).shape == (5, 72, 56, 3)  # padded to even sizes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4", "v.mp4"]


def test_reports_change_nothing_that_training_computes(tmp_path):
    """Open-loop reports every 0.2 s, at whatever updates the clock gives, leave a run's episodes
    and parameters exactly those of a run without them."""
    runs = {}
    for name, every in (("plain", 0), ("reported", 0.2)):
        config = tiny("run.budget=150", "run.train_ratio=8", "run.deterministic=true", f"run.report_every={every}")
        train(config, functools.partial(make_env, "cartpole", seed=0), tmp_path / name)
        runs[name] = torch.load(tmp_path / name / "checkpoint" / "agent.pt")
    figures = sorted((tmp_path / "reported" / "report").glob("vectors_step*.png"))
    assert len(figures) >= 2 and not (tmp_path / "plain" / "report").exists()
    assert (tmp_path / "plain" / "scores.jsonl").read_bytes() == (tmp_path / "reported" / "scores.jsonl").read_bytes()
    for key, value in runs["plain"]["model"].items():
        assert torch.equal(value, runs["reported"]["model"][key]), key
    reported = [m for m in lines(tmp_path / "reported" / "metrics.jsonl") if "report/loss/rec" in m]
    assert reported and all(m["report/seconds"] > 0 for m in reported)
    assert "report/loss/rec" in lines(tmp_path / "reported" / "metrics.jsonl")[-1]  # the end's report


def test_tensorboard_sees_the_scalars_of_the_logs_across_a_kill_and_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sets = ["run.budget=120", "run.train_ratio=4", "run.deterministic=true", "run.log_every=0"]
    kill_after_first_checkpoint(start_cli(tmp_path, "cartpole", *sets, "run.checkpoint_every=0.5"), tmp_path)
    finish(start_cli(tmp_path, "cartpole", *sets, "run.checkpoint_every=1e9"))
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    expected = {}
    for name, prefix in (("metrics", ""), ("scores", "episode/")):
        for line in lines(tmp_path / f"{name}.jsonl"):
            for key, value in line.items():
                if key != "step":
                    expected.setdefault(prefix + key, []).append((line["step"], np.float32(value)))
    assert set(events.Tags()["scalars"]) == set(expected)
    for tag, points in expected.items():
        assert [(e.step, np.float32(e.value)) for e in events.Scalars(tag)] == points, tag


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamer.evaluate", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}"})


def test_evaluate_plays_a_checkpoint_and_says_in_one_line_what_it_cannot(tmp_path):
    run = tmp_path / "run"
    train(tiny("run.budget=100", "run.train_ratio=4"), functools.partial(make_env, "cartpole", seed=0), run,
          RunIdentity(task="cartpole"))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = evaluate("--run-dir", str(run), "--episodes", "3", "--policy", "mode")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{run}: mean score ") and "over 3 episodes, policy mode" in proc.stdout
    (folder,) = (run / "eval").iterdir()
    scores = lines(folder / "scores.jsonl")
    summary = json.loads((folder / "summary.json").read_text())
    assert [s["episode"] for s in scores] == [0, 1, 2] and all(s["length"] >= 2 for s in scores)
    assert summary["mean"] == pytest.approx(np.mean([s["score"] for s in scores]))
    assert (summary["episodes"], summary["policy"]) == (3, "mode")
    assert {p: p.read_bytes() for p in before} == before  # the run itself is untouched

    (run / "checkpoint" / "agent.pt").write_bytes(b"torn")
    for args, message in (([str(tmp_path / "nowhere")], "no config.json; not a run directory"),
                          ([str(run)], "agent.pt is unreadable (")):
        proc = evaluate("--run-dir", *args, "--episodes", "1")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    (run / "checkpoint").rename(run / "elsewhere")
    proc = evaluate("--run-dir", str(run), "--episodes", "1")
    assert proc.returncode == 2 and proc.stderr.endswith("no complete checkpoint yet\n")


def test_evaluating_a_live_run_leaves_it_as_an_undisturbed_twin(tmp_path):
    sets = ["run.budget=200", "run.train_ratio=4", "run.deterministic=true", "run.checkpoint_every=0.3",
            "run.log_every=0"]
    live, twin = tmp_path / "live", tmp_path / "twin"
    undisturbed = start_cli(twin, "cartpole", *sets)
    training = start_cli(live, "cartpole", *sets)
    while not (live / "checkpoint").exists():
        assert training.poll() is None, training.communicate()[0]
        time.sleep(0.05)
    evaluations = 0
    while training.poll() is None:  # as often as it can while the run trains and checkpoints
        proc = evaluate("--run-dir", str(live), "--episodes", "1")
        assert proc.returncode == 0 or "no complete checkpoint" in proc.stderr, proc.stderr
        evaluations += proc.returncode == 0
    finish(training)
    finish(undisturbed)
    assert evaluations >= 1
    assert (live / "scores.jsonl").read_bytes() == (twin / "scores.jsonl").read_bytes()
    untimed = [[{k: v for k, v in m.items() if k not in ("time", "fps/env", "fps/train", "report/seconds")}
                for m in lines(d / "metrics.jsonl")] for d in (live, twin)]
    assert untimed[0] == untimed[1]


def test_weights_and_biases_gets_the_logs_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(tiny("run.budget=80", "run.train_ratio=4", "run.wandb=true", "run.report_every=0"),
          functools.partial(make_env, "cartpole", seed=0), run, RunIdentity(task="cartpole"))
    # W&B stores an offline run as protobuf records in one file (`wandb sync` uploads it), each
    # logged value as its JSON text (whole floats without ".0"): every key and the last line's
    # values are in it.
    (offline,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    stored = offline.read_bytes()
    metrics, scores = (lines(run / f"{name}.jsonl")[-1] for name in ("metrics", "scores"))
    for key, value in [*metrics.items(), *((f"episode/{k}", v) for k, v in scores.items())]:
        if not key.endswith("step"):
            text = json.dumps(int(value) if float(value).is_integer() else value)
            assert key.encode() in stored and text.encode() in stored, (key, text)
