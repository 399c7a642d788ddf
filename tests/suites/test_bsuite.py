import numpy as np
import pandas as pd
import pytest

from suites.base import SuiteError
from suites.bsuite import EPISODES, SUBSETS, SUITES, TASKS, csv_path, make_env


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


def test_restart_keeps_the_previous_log(tmp_path):
    run_episode(make_env("catch/0", 0, 0, logdir=str(tmp_path)))
    run_episode(make_env("catch/0", 0, 0, logdir=str(tmp_path)))
    path = csv_path(tmp_path, "catch/0")
    assert path.exists() and path.with_name(path.name + ".1").exists()


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
