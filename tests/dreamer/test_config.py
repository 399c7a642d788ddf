import pytest

from dreamer.config import SIZES, ConfigError, check_image, from_json, make_config, to_json, valid_keys


def test_default_is_size200m_fixed_config():
    c = make_config()
    assert c.size == "size200m"
    assert (c.agent.rssm.deter, c.agent.rssm.hidden, c.agent.rssm.classes) == (8192, 1024, 64)
    assert c.agent.opt.lr == 4e-5 and c.agent.loss.rep == 0.1 and c.agent.actor.entropy == 3e-4
    assert c.run.batch_size == 16 and c.run.batch_length == 64


@pytest.mark.parametrize("size", list(SIZES))
def test_size_presets_set_every_width(size):
    deter, hidden, classes, depth, units = SIZES[size]
    a = make_config([f"size={size}"]).agent
    assert (a.rssm.deter, a.rssm.hidden, a.rssm.classes, a.enc.depth, a.dec.depth) == (deter, hidden, classes, depth, depth)
    assert {a.enc.units, a.dec.units, a.reward.units, a.cont.units, a.actor.units, a.critic.units} == {units}
    assert a.rssm.stoch == 32 and a.rssm.blocks == 8


def test_explicit_width_override_wins_over_size_in_any_order():
    c = make_config(["agent.rssm.deter=1024", "size=size1m"])
    assert c.agent.rssm.deter == 1024 and c.agent.rssm.hidden == 64


def test_dotted_overrides_are_typed():
    c = make_config(["agent.actor.entropy=1e-3", "run.envs=4", "run.deterministic=true",
                     "agent.enc.mults=(1,2)", "run.device=cpu", "run.train_ratio=32"])
    assert c.agent.actor.entropy == 1e-3 and c.run.envs == 4 and c.run.deterministic is True
    assert c.agent.enc.mults == (1, 2) and c.run.device == "cpu" and c.run.train_ratio == 32.0


def test_unknown_key_names_the_nearest_valid_keys():
    with pytest.raises(ConfigError, match=r"agent\.actor\.entropy"):
        make_config(["agent.actor.entropie=1e-3"])
    with pytest.raises(ConfigError, match="unknown size 'size3m'.*size1m"):
        make_config(["size=size3m"])
    with pytest.raises(ConfigError, match="expects int"):
        make_config(["run.envs=four"])
    with pytest.raises(ConfigError, match="key=value"):
        make_config(["run.envs"])


def test_json_round_trip():
    c = make_config(["size=size12m", "agent.enc.mults=(1,2,3)", "run.seed=7"])
    back = from_json(to_json(c))
    assert back == c
    assert "agent.rssm.free_nats" in valid_keys()


def test_images_must_fit_the_encoder():
    config = make_config(["size=size1m"])
    check_image((64, 64, 3), config)
    for shape in [(60, 60, 3), (64, 48, 3)]:
        with pytest.raises(ConfigError, match="4 stages need square images with a side divisible by 16"):
            check_image(shape, config)


def test_every_config_key_is_read_and_retired_ones_are_gone():
    keys = valid_keys()
    assert "agent.reward.bins" in keys and "agent.critic.bins" in keys
    for key in ("agent.enc.minres", "agent.dec.minres", "agent.cont.bins"):
        assert key not in keys
    with pytest.raises(ConfigError, match="unknown config key 'agent.cont.bins'"):
        make_config(["agent.cont.bins=255"])


def test_the_reward_head_has_the_bins_its_config_names():
    import numpy as np

    from dreamer.agent import Agent
    from dreamer.env import Space, signal_spaces

    cfg = make_config(["size=size1m", "agent.reward.bins=41", "agent.precision=float32"]).agent
    agent = Agent(cfg, {"obs": Space((3,), "float32"), **signal_spaces()}, {"action": Space((), "int32", 2)})
    assert agent.model["reward"].out.out_features == 41 and agent.reward_bins.shape == (41,)
    assert agent.model["critic"].out.out_features == 255
    B, T = 2, 4
    batch = {"obs": np.ones((B, T + 1, 3), np.float32), "reward": np.full((B, T + 1), 2.0, np.float32),
             "is_first": np.eye(T + 1, dtype=bool)[[0, 0]], "is_last": np.zeros((B, T + 1), bool),
             "is_terminal": np.zeros((B, T + 1), bool), "action": np.zeros((B, T + 1), np.int32)}
    carry = {"deter": np.zeros((B, 512), np.float32), "stoch": np.zeros((B, 32), np.int64)}
    _, metrics = agent.train(batch, carry)
    assert np.isfinite(metrics["loss/rew"]) and metrics["loss/rew"] > 0


def test_a_config_stored_with_retired_keys_still_resumes():
    import json

    from dreamer.config import resume_diff, upgrade

    config = make_config(["size=size1m"])
    stored = json.loads(to_json(config))
    stored["agent"]["enc"]["minres"] = stored["agent"]["dec"]["minres"] = 4
    stored["agent"]["cont"]["bins"] = 255
    assert resume_diff(stored, config) == []
    assert to_json(from_json(json.dumps(upgrade(stored)))) == to_json(config)
    stored["agent"]["actor"]["unimix"] = 0.0  # what this version computes: no uniform share
    assert resume_diff(stored, config) == []
    # A run that mixed 1% into its discrete policy (November 2026) computed otherwise: named.
    stored["agent"]["actor"]["unimix"] = 0.01
    stored["agent"]["cont"]["units"] = 7
    assert resume_diff(stored, config) == ["agent.actor.unimix: 0.01 → None", "agent.cont.units: 7 → 64"]
