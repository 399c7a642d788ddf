import os

import numpy as np
import pytest

from suites.base import SuiteError
from suites.dmc import (DMC, PROPRIO_TASKS, SUITES, VISION_TASKS, make_env, scale_action,
                        split_task)

SIGNALS = {"reward", "is_first", "is_last", "is_terminal"}


def random_action(env, rng):
    return {"action": rng.uniform(-1, 1, env.act_space["action"].shape).astype(np.float32)}


def episode_length(env, rng):
    """Observations in one episode, the first (reset) one included, and the last observation."""
    obs, count = env.step(random_action(env, rng)), 1
    assert obs["is_first"]
    while not obs["is_last"]:
        obs, count = env.step(random_action(env, rng)), count + 1
        assert not obs["is_first"]
    return count, obs


def test_split_task():
    assert split_task("dmc_ball_in_cup_catch") == ("ball_in_cup", "catch")
    assert split_task("dmc_cartpole_balance_sparse") == ("cartpole", "balance_sparse")
    assert split_task("dmc_walker_walk") == ("walker", "walk")


def test_scale_action_clips_then_maps_to_bounds():
    low, high = np.array([-1.0, 0.0, -0.8]), np.array([1.0, 2.0, 0.8])
    np.testing.assert_allclose(scale_action(np.array([0.5, 2.0, -3.0]), low, high),
                               [0.5, 2.0, -0.8])
    np.testing.assert_allclose(scale_action(np.array([0.0, -1.0, 0.5]), low, high),
                               [0.0, 0.0, 0.4])


@pytest.mark.parametrize("task", PROPRIO_TASKS)
def test_proprio_vectors_only_and_1000_frame_episodes(task):
    env = make_env(task, 0, 0)
    keys = set(env.obs_space) - SIGNALS
    assert keys and all(len(env.obs_space[k].shape) == 1 for k in keys)
    assert all(env.obs_space[k].dtype == "float32" for k in keys)
    assert env.act_space["action"].low == -1 and env.act_space["action"].high == 1
    count, last = episode_length(env, np.random.default_rng(0))
    assert count == 501  # the reset observation + 500 agent steps of 2 frames
    assert not last["is_terminal"]  # dm_control's time limit keeps discount 1
    for key in keys:
        assert last[key].shape == env.obs_space[key].shape and last[key].dtype == np.float32
    env.close()


@pytest.mark.parametrize("task", VISION_TASKS)
def test_vision_image_only(task):
    env = make_env(task, 0, 0, suite="dmc_vision")
    assert set(env.obs_space) == {"image", *SIGNALS}
    rng = np.random.default_rng(0)
    for _ in range(2):
        obs = env.step(random_action(env, rng))
        assert set(obs) == {"image", *SIGNALS}
        assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
        assert obs["image"].std() > 1
    env.close()


def test_vision_renders_with_egl_and_quadruped_uses_camera_2():
    env = make_env("dmc_quadruped_walk", 0, 3, suite="dmc_vision")
    image = env.step({"action": np.zeros(12, np.float32)})["image"]
    from dm_control import _render, suite

    assert os.environ["MUJOCO_GL"] == "egl" and _render.BACKEND == "egl"
    reference = suite.load("quadruped", "walk", task_kwargs={"random": 3000})
    reference.reset()
    np.testing.assert_array_equal(image, reference.physics.render(64, 64, camera_id=2))
    assert not np.array_equal(image, reference.physics.render(64, 64, camera_id=0))


def test_repeat_changes_frames_per_step():
    env = make_env("dmc_cartpole_balance", 0, 0, repeat=1)
    count, _ = episode_length(env, np.random.default_rng(0))
    assert count == 1001


def test_terminal_only_when_discount_is_zero():
    os.environ.setdefault("MUJOCO_GL", "egl")  # as make_env does, this test imports dm_control first
    from dm_control.rl import control
    from dm_control.suite import walker

    class FallsAfterTenSteps(walker.PlanarWalker):
        """walker-stand that dm_control ends with discount 0 once 10 control steps have run."""

        def get_termination(self, physics):
            if physics.data.time >= 10 * 0.025 - 1e-9:
                return 0.0

    physics = walker.Physics.from_xml_string(*walker.get_model_and_assets())
    env = control.Environment(physics, FallsAfterTenSteps(move_speed=0, random=0),
                              time_limit=25, control_timestep=0.025)
    adapter = DMC(env, repeat=2)
    count, last = episode_length(adapter, np.random.default_rng(0))
    assert count == 6 and last["is_terminal"]
    assert adapter.step({"action": np.zeros(6, np.float32)})["is_first"]


def test_seed_is_seed_times_1000_plus_index():
    from dm_control import suite

    obs = make_env("dmc_walker_walk", 2, 1).step({"action": np.zeros(6, np.float32)})
    reference = suite.load("walker", "walk", task_kwargs={"random": 1002}).reset().observation
    np.testing.assert_allclose(obs["orientations"], reference["orientations"], rtol=1e-6)
    other = suite.load("walker", "walk", task_kwargs={"random": 1001}).reset().observation
    assert not np.allclose(obs["orientations"], other["orientations"])


def test_suites_declare_the_published_settings():
    proprio, vision = SUITES["dmc_proprio"], SUITES["dmc_vision"]
    assert len(proprio.tasks) == 18 and len(vision.tasks) == 20
    assert set(vision.tasks) - set(proprio.tasks) == {"dmc_quadruped_run", "dmc_quadruped_walk"}
    assert proprio.protocol == {} and vision.protocol == {"size": (64, 64)}
    assert "run.action_repeat=2" in proprio.config and "run.action_repeat=2" in vision.config


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(SuiteError, match="dmc_walker_walk"):
        make_env("dmc_walker_wlak", 0, 0)
    with pytest.raises(SuiteError, match="dmc_quadruped_run"):
        make_env("dmc_quadruped_run", 0, 0)  # a vision-only task
