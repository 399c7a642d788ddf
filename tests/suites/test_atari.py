import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from PIL import Image

from suites.atari100k import PROTOCOLS, SUITES, TASKS, make_env, pool_and_resize
from suites.base import SuiteError

NOOP = {"action": np.int32(0)}


def act(index):
    return {"action": np.int32(index)}


def paddle_y(image):
    """Mean row of Pong's green player paddle in a 64×64 observation (it sits at columns 54–58)."""
    region = image[:, 54:59].astype(int)
    rows = np.nonzero(region[..., 1] - region[..., 0] > 60)[0]
    return rows.mean()


@pytest.mark.parametrize("task", TASKS)
def test_every_game_resets_and_steps(task):
    env = make_env(task, 0, 0)
    assert set(env.obs_space) == {"image", "reward", "is_first", "is_last", "is_terminal"}
    assert env.obs_space["image"].shape == (64, 64, 3)
    assert env.act_space["action"].discrete == len(env.action_names) > 1
    first = env.step(NOOP)
    assert first["is_first"] and first["reward"] == 0 and not first["is_last"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs = env.step(act(rng.integers(env.act_space["action"].discrete)))
        assert not obs["is_first"]
        assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
        assert obs["reward"].dtype == np.float32
    env.close()


def test_pong_paddle_follows_actions():
    positions = {}
    for name in ("NOOP", "RIGHT", "LEFT"):  # Pong's minimal set: RIGHT moves up, LEFT down
        env = make_env("atari_pong", 0, 0)
        start = paddle_y(env.step(NOOP)["image"])
        index = env.action_names.index(name)
        for _ in range(6):
            obs = env.step(act(index))
        positions[name] = paddle_y(obs["image"]) - start
    assert positions["NOOP"] == 0
    assert positions["RIGHT"] < -10
    assert positions["LEFT"] > 10


def pillow_bilinear(frames):
    """The reference's observation: Pillow's bilinear resize of the pixel-wise max of `frames`."""
    pooled = np.max(np.stack(frames), axis=0)
    return np.asarray(Image.fromarray(pooled).resize((64, 64), Image.BILINEAR))


def emulate(ale, index, frames):
    """The RGB screens of `frames` emulator frames of minimal action `index`, state restored after."""
    state, screens = ale.cloneState(), []
    for _ in range(frames):
        ale.act(ale.getMinimalActionSet()[index])
        screens.append(ale.getScreenRGB())
    ale.restoreState(state)
    return screens


def test_agent_step_is_four_frames_max_pooled_over_the_last_two():
    env = make_env("atari_pong", 0, 0)
    env.step(NOOP)
    ale = env.ale
    discriminating = 0
    for step in range(60):
        index = step % env.act_space["action"].discrete
        before = ale.getEpisodeFrameNumber()
        frames = emulate(ale, index, 4)
        obs = env.step(act(index))
        assert ale.getEpisodeFrameNumber() - before == 4
        expected = pillow_bilinear(frames[2:])
        np.testing.assert_array_equal(obs["image"], expected)  # byte for byte
        discriminating += not np.array_equal(expected, pillow_bilinear(frames[3:]))
    assert discriminating > 0  # the ball moved, so pooling was visible in some steps


def test_first_observation_is_the_frame_after_the_noops_resized():
    env = make_env("atari_road_runner", 0, 0, {"noops": 0})
    first = env.step(NOOP)
    np.testing.assert_array_equal(first["image"], pillow_bilinear([env.ale.getScreenRGB()]))


def test_a_step_cut_short_before_its_pooled_frames_shows_the_last_frames_rendered():
    # The cap ends step 2 after its first frame (frame 5): nothing of it is rendered, so the
    # observation repeats step 1's. With the cap at frame 7, step 2 ends on its third frame, the
    # first it renders, which is pooled with step 1's last frame (frame 4).
    for cap, expected in ((5, lambda one, two: pillow_bilinear(one[2:])),
                          (7, lambda one, two: pillow_bilinear([one[3], two[2]]))):
        env = make_env("atari_road_runner", 0, 0, {"noops": 0, "max_frames": cap})
        env.step(NOOP)
        one = emulate(env.ale, 1, 4)
        env.step(act(1))
        two = emulate(env.ale, 1, 4)
        obs = env.step(act(1))
        assert obs["is_last"] and obs["is_terminal"]
        np.testing.assert_array_equal(obs["image"], expected(one, two))


def test_pool_and_resize_by_hand():
    # Pooling: the pixel-wise max of the frames.
    a = np.full((4, 4, 3), 100, np.uint8)
    b = np.zeros((4, 4, 3), np.uint8)
    b[..., 1] = 150
    np.testing.assert_array_equal(pool_and_resize([a, b], (2, 2)), np.full((2, 2, 3), [100, 150, 100]))
    # Pillow's bilinear filter, widened by the factor 2: output column 0 weighs input columns 0, 1
    # and 2 by 0.75, 0.75 and 0.25 (÷ 1.75), so a dark half beside a bright one (175) blends into
    # 25 and 150 where area averaging would keep 0 and 175.
    a = np.zeros((4, 4, 3), np.uint8)
    a[:, 2:] = 175
    np.testing.assert_array_equal(pool_and_resize([a], (2, 2))[..., 0], [[25, 150], [25, 150]])


def test_noops_at_reset_are_random_in_0_to_30():
    counts = []
    for seed in range(8):
        env = make_env("atari_pong", 0, seed)
        env.step(NOOP)
        counts.append(env.ale.getEpisodeFrameNumber())
    assert all(0 <= c <= 30 for c in counts)
    assert len(set(counts)) > 2
    env = make_env("atari_pong", 0, 0, {"noops": 0})
    env.step(NOOP)
    assert env.ale.getEpisodeFrameNumber() == 0


def test_life_loss_does_not_end_the_episode():
    env = make_env("atari_breakout", 0, 0)
    env.step(NOOP)
    lives = env.ale.lives()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        obs = env.step(act(rng.integers(env.act_space["action"].discrete)))
        if env.ale.lives() < lives:
            break
    assert env.ale.lives() == lives - 1
    assert not obs["is_last"] and not obs["is_terminal"]


def test_life_done_knob_ends_the_episode_on_a_life_loss():
    env = make_env("atari_breakout", 0, 0, {"life_done": True})
    env.step(NOOP)
    lives = env.ale.lives()
    rng = np.random.default_rng(0)
    for _ in range(3000):
        obs = env.step(act(rng.integers(env.act_space["action"].discrete)))
        if obs["is_last"]:
            break
    assert obs["is_terminal"] and env.ale.lives() == lives - 1


def test_rewards_are_not_clipped():
    env = make_env("atari_ms_pacman", 0, 0)
    env.step(NOOP)
    rewards = set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        rewards.add(float(env.step(act(rng.integers(env.act_space["action"].discrete)))["reward"]))
    assert max(rewards) >= 10


def test_frame_cap_ends_episode_as_terminal_then_resets():
    # The reference sets is_terminal = is_last for every episode end, the cap included.
    env = make_env("atari_pong", 0, 0, {"max_frames": 200, "noops": 0})
    env.step(NOOP)
    for step in range(1, 51):
        obs = env.step(NOOP)
        assert bool(obs["is_last"]) == bool(obs["is_terminal"]) == (step == 50)
    assert env.ale.getEpisodeFrameNumber() == 200
    obs = env.step(NOOP)
    assert obs["is_first"] and obs["reward"] == 0 and env.ale.getEpisodeFrameNumber() == 0


def test_seeding_is_reproducible():
    def rollout(seed, index):
        env = make_env("atari_pong", index, seed, {"sticky": 0.25})
        return np.stack([env.step(act(step % 6))["image"] for step in range(30)])

    np.testing.assert_array_equal(rollout(3, 1), rollout(3, 1))


def test_atari_variant_protocol_uses_sticky_full_action_set():
    assert PROTOCOLS["atari"]["sticky"] == 0.25 and PROTOCOLS["atari"]["full_actions"]
    env = make_env("atari_pong", 0, 0, PROTOCOLS["atari"])
    assert env.act_space["action"].discrete == 18


def test_protocol_records_the_knobs():
    protocol = SUITES["atari100k"].protocol
    assert protocol["pool"] == 2 and protocol["sticky"] == 0.0
    assert protocol["noops"] == 30 and protocol["max_frames"] == 108_000
    assert protocol["full_actions"] is False and protocol["life_done"] is False
    assert protocol["size"] == (64, 64) and protocol["colour"] == "rgb"
    assert protocol["clip_rewards"] is False


def test_bad_inputs_name_the_valid_choices():
    with pytest.raises(SuiteError, match="atari_pong"):
        make_env("atari_pongg", 0, 0)
    with pytest.raises(SuiteError, match="noops"):
        make_env("atari_pong", 0, 0, {"noop": 3})
    with pytest.raises(SuiteError, match="fixed"):
        make_env("atari_pong", 0, 0, {"clip_rewards": True})


def test_frame_cap_counts_the_agent_frames_not_the_noops():
    env = make_env("atari_pong", 0, 3, {"max_frames": 200})
    env.step(NOOP)
    noops = env.ale.getEpisodeFrameNumber()
    assert noops > 0
    for _ in range(50):
        obs = env.step(NOOP)
    assert obs["is_last"] and env.ale.getEpisodeFrameNumber() == noops + 200


def test_broken_ale_py_releases_are_refused_and_excluded(monkeypatch):
    import ale_py

    for version in ("0.10.0", "0.10.1"):
        monkeypatch.setattr(ale_py, "__version__", version)
        with pytest.raises(SuiteError, match=r"ale-py>=0\.10\.2"):
            make_env("atari_pong", 0, 0)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    ale = next(Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("ale-py"))
    assert not ale.specifier.contains("0.10.0") and not ale.specifier.contains("0.10.1")
    assert ale.specifier.contains("0.10.2")
