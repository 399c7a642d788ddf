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
