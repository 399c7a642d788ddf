import functools
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from dreamer.config import make_config
from dreamer.rundir import RunDirError
from dreamer.train import train
from suites.base import SuiteError
from suites.bsuite import EPISODES, EXPERIMENTS, SUBSETS, SUITES, TASKS, csv_path, make_env


def run_episode(env, action=1):
    observations = [env.step({"action": np.int32(0)})]
    while not observations[-1]["is_last"]:
        observations.append(env.step({"action": np.int32(action)}))
    return observations


def test_tasks_budgets_and_subsets_match_bsuite():
    from bsuite import sweep

    assert TASKS == tuple(sweep.SWEEP) and len(TASKS) == 468
    assert EPISODES == dict(sweep.EPISODES)
    for tag, ids in sweep.TAGS.items():
        assert SUBSETS[tag] == tuple(ids)
    assert len(SUBSETS["first"]) == 23 and all(t.endswith("/0") for t in SUBSETS["first"])
    suite = SUITES["bsuite"]
    assert suite.task_budget("catch/0") == (0, 10000)
    assert suite.task_budget("cartpole/3") == (0, 1000)
    config = suite.run_config("deep_sea/5", seed=2)
    assert config.run.budget == 0 and config.run.budget_episodes == 10000


def test_every_id_loads():
    for task in TASKS:
        try:
            env = make_env(task, 0, 0)
        except SuiteError as error:  # MNIST needs its data files, fetched on first use
            assert task.startswith("mnist") and "MNIST" in str(error)
            continue
        obs = env.step({"action": np.int32(0)})
        assert obs["is_first"] and obs["reward"] == 0
        assert obs["obs"].dtype == np.float32 and obs["obs"].ndim == 1
        assert obs["obs"].shape == env.obs_space["obs"].shape
        assert env.act_space["action"].discrete >= 2


def test_catch_episode_and_its_csv_log(tmp_path):
    env = make_env("catch/0", 0, 0, logdir=str(tmp_path))
    assert env.obs_space["obs"].shape == (50,)  # the 10×5 board, flattened
    episode = run_episode(env)
    assert len(episode) == 10  # the ball falls 9 rows after the reset observation
    assert episode[-1]["is_terminal"] and episode[-1]["reward"] in (-1, 1)
    assert all(o["reward"] == 0 for o in episode[:-1])
    assert env.step({"action": np.int32(0)})["is_first"]
    log = pd.read_csv(csv_path(tmp_path, "catch/0"))
    assert list(log["episode"]) == [1] and list(log["steps"]) == [9]
    assert log["episode_return"][0] == episode[-1]["reward"]


def test_bsuite_analysis_reads_the_log(tmp_path):
    from bsuite.logging import csv_load

    env = make_env("catch/0", 0, 0, logdir=str(tmp_path))
    for _ in range(3):
        run_episode(env)
    frame, _ = csv_load.load_bsuite(str(tmp_path / "bsuite"))
    assert list(frame["bsuite_id"]) == ["catch/0"] * 3 and list(frame["episode"]) == [1, 2, 3]


def play(env, start, stop):
    """Steps start..stop-1 of one fixed action sequence."""
    return [env.step({"action": np.int32(i * 7 % 3)}) for i in range(start, stop)]


def test_a_restored_environment_continues_its_episodes_counters_and_log(tmp_path):
    twin, killed = (make_env("catch/0", 0, 0, logdir=str(tmp_path / name)) for name in ("twin", "killed"))
    expected = play(twin, 0, 250)
    play(killed, 0, 125)
    checkpoint = pickle.dumps(killed)  # in the middle of episode 13
    play(killed, 125, 200)  # logs episodes 14, 17 and 20, then the run is killed
    resumed = make_env("catch/0", 0, 0, logdir=str(tmp_path / "killed"))  # as a resumed run builds it
    resumed.restore(checkpoint)
    for got, want in zip(play(resumed, 125, 250), expected[125:], strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    # The first step cut the log back to the checkpoint's rows; the resumed run logged the rest.
    assert csv_path(tmp_path / "killed", "catch/0").read_bytes() == csv_path(tmp_path / "twin", "catch/0").read_bytes()
    assert list(pd.read_csv(csv_path(tmp_path / "twin", "catch/0"))["episode"]) == [*range(1, 11), 12, 14, 17, 20, 25]


def test_a_restored_environment_logs_where_its_run_is_now(tmp_path):
    # A run continued in a copy of its directory (or moved) logs into the copy; the original stays.
    env = make_env("catch/0", 0, 0, logdir=str(tmp_path / "short"))
    play(env, 0, 125)
    state = pickle.dumps(env)
    before = csv_path(tmp_path / "short", "catch/0").read_bytes()
    continued = make_env("catch/0", 0, 0, logdir=str(tmp_path / "long"))
    continued.restore(state)
    play(continued, 125, 250)
    assert csv_path(tmp_path / "short", "catch/0").read_bytes() == before
    logged = pd.read_csv(csv_path(tmp_path / "long", "catch/0"))
    assert list(logged["episode"]) == [*range(1, 11), 12, 14, 17, 20, 25]


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if not e.startswith("mnist")])
def test_every_experiment_resumes_where_it_stopped(experiment):
    env = make_env(f"{experiment}/0", 0, 0, logdir=None)
    play(env, 0, 30)
    resumed = make_env(f"{experiment}/0", 0, 0, logdir=None)
    resumed.restore(pickle.dumps(env))
    for got, want in zip(play(resumed, 30, 90), play(env, 30, 90), strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_one_log_per_run(tmp_path):
    with pytest.raises(SuiteError, match="bsuite logs one environment per run, built once, not environment 1"):
        make_env("catch/0", 1, 0, logdir=str(tmp_path))


def test_a_resume_that_fails_changes_nothing(tmp_path):
    config = make_config(["size=size1m", "run.batch_size=2", "run.batch_length=8", "run.train_start=64",
                          "replay.capacity=64", "run.budget=60", "run.device=cpu", "run.log_every=1e9"])
    run_dir = tmp_path / "run"
    train(config, functools.partial(make_env, "catch/0", seed=0, logdir=str(run_dir)), run_dir)
    (run_dir / "DONE").unlink()  # as if it died after its last checkpoint
    (run_dir / "checkpoint" / "agent.pt").write_bytes(b"not a checkpoint")
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name != "lock")
    before = {p: p.read_bytes() for p in files}
    with pytest.raises(RunDirError, match="agent.pt is unreadable"):
        train(config, functools.partial(make_env, "catch/0", seed=0, logdir=str(run_dir)), run_dir)
    assert sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name != "lock") == files
    assert {p: p.read_bytes() for p in files} == before


def test_open_env_seeds_follow_run_seed_index_and_id():
    def first_boards(task, seed, index):
        env = make_env(task, index, seed)
        return [env.step({"action": np.int32(0)})["obs"] for _ in range(40)]

    np.testing.assert_array_equal(first_boards("catch/0", 1, 0), first_boards("catch/0", 1, 0))
    for other in (("catch/0", 2, 0), ("catch/0", 1, 1), ("catch/1", 1, 0)):
        assert not np.array_equal(first_boards("catch/0", 1, 0), first_boards(*other))


def test_unknown_id_names_the_valid_ones():
    with pytest.raises(SuiteError, match="catch/0"):
        make_env("catch/99", 0, 0)
    with pytest.raises(SuiteError, match="protocol knob"):
        make_env("catch/0", 0, 0, {"repeat": 2})
    with pytest.raises(SuiteError, match="run.action_repeat must be 1"):
        make_env("catch/0", 0, 0, repeat=2)


def catch_sequences(count: int, length: int) -> dict[str, np.ndarray]:
    """`count` sequences of `length` steps of catch played at random, as replay gives them (step 0
    the context step; an episode starts at step 1, so the carried latent plays no part)."""
    env, rng, steps = make_env("catch/0", 0, 7), np.random.default_rng(7), []
    action = np.int32(0)
    while len(steps) < count * length + 1:
        obs = env.step({"action": action})
        action = np.int32(rng.integers(3))
        steps.append({**obs, "action": action})
    batch = {k: np.stack([np.stack([s[k] for s in steps[i * length:(i + 1) * length]]) for i in range(count)])
             for k in steps[0]}
    batch["is_first"][:, 1] = True
    return batch


def test_catch_open_loop_sees_the_ball_better_after_training_and_episodes_are_filmed(tmp_path):
    """200 updates on catch: the imagined steps' error on the board's non-zero cells (ball and
    paddle) is lower than an untrained model's on the same sequences. The run reported at its
    first update and at its end, and filmed every 10th episode from bsuite's board."""
    from dreamer.agent import Agent
    from dreamer.inspect import openloop_errors
    from dreamer.inspect.video import read_mp4

    config = make_config(["size=size1m", "run.batch_size=8", "run.batch_length=32", "run.train_start=256",
                          "run.train_ratio=256", "run.budget=455", "run.device=cpu", "run.log_every=1e9",
                          "run.report_every=1e9", "run.video_every=10", "agent.precision=float32"])
    run_dir = tmp_path / "run"
    summary = train(config, functools.partial(make_env, "catch/0", seed=0, logdir=str(run_dir)), run_dir)
    assert summary["updates"] == 200
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == ["vectors_step000000256.png",
                                                                      "vectors_step000000455.png"]
    videos = sorted((run_dir / "videos").iterdir())
    assert [v.name[:12] for v in videos] == [f"episode{n:05d}" for n in range(1, summary["episodes"] + 1, 10)]
    frames = read_mp4(videos[0])
    assert frames.shape == (10, 160, 80, 3)  # the 10 observations of an episode, 10×5 cells of 16 pixels

    env = make_env("catch/0", 0, 0)
    batch = catch_sequences(6, 33)
    carry = {"deter": np.zeros((6, 512), np.float32), "stoch": np.zeros((6, 32), np.int64)}
    errors = []
    for trained in (False, True):
        torch.manual_seed(0)
        agent = Agent(config.agent, env.obs_space, env.act_space)
        if trained:
            agent.load(torch.load(run_dir / "checkpoint" / "agent.pt"))
        _, views = agent.report(batch, carry, context=16)
        truth, pred = views["obs"]
        errors.append(openloop_errors("obs", truth[:, 16:], pred[:, 16:])["report/openloop/obs/nonzero"])
    assert errors[1] < 0.75 * errors[0], errors  # 1.87 → 1.10 here
