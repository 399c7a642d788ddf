import pytest
import torch

from dreamer.config import to_dict
from suites.base import SuiteError
from suites.registry import SUITE_NAMES, get_suite
from suites.variants import VARIANTS, get_variant


def resolve(variant: str, suite_name: str, task: str | None = None):
    """(config, protocol) of seed 0 of `variant` on a task of `suite_name`."""
    suite = get_suite(suite_name)
    overrides, protocol = get_variant(variant).overrides(suite.name)
    return suite.run_config(task or suite.tasks[0], 0, overrides), suite.check_protocol(protocol)


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_dreamerv3_is_the_suite_config_itself(suite_name):
    suite = get_suite(suite_name)
    config, protocol = resolve("dreamerv3", suite_name)
    assert to_dict(config) == to_dict(suite.run_config(suite.tasks[0], 0))
    assert protocol == suite.protocol


def test_every_variant_resolves_on_every_suite_it_applies_to():
    for name, variant in VARIANTS.items():
        for suite_name in variant.suites or SUITE_NAMES:
            resolve(name, suite_name)  # raises on an unknown config key or protocol knob


def test_dmc2412_runs_dmc_at_action_repeat_1_and_proprio_at_size1m():
    config, _ = resolve("dmc2412", "dmc_proprio")
    assert config.run.action_repeat == 1
    assert (config.size, config.agent.rssm.deter, config.agent.rssm.classes) == ("size1m", 512, 4)
    config, _ = resolve("dmc2412", "dmc_vision")
    assert config.run.action_repeat == 1
    assert (config.size, config.agent.rssm.deter) == ("size12m", 2048)
    # The fixed setting this variant departs from.
    config, _ = resolve("dreamerv3", "dmc_proprio")
    assert (config.run.action_repeat, config.size) == (2, "size12m")


def test_variant_names_the_suites_it_applies_to():
    with pytest.raises(SuiteError, match="applies to dmc_proprio, dmc_vision, not 'atari100k'"):
        get_variant("dmc2412").overrides("atari100k")


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(SuiteError) as e:
        get_variant("no_retnrom")
    assert "did you mean no_retnorm" in str(e.value)
    assert "valid: " + ", ".join(VARIANTS) in str(e.value)


def test_no_retnorm_fixes_the_agents_return_scale_at_one():
    from dreamer.agent import ReturnNorm

    returns = torch.linspace(-50.0, 250.0, 1001)  # P5 = -35, P95 = 235
    config, _ = resolve("no_retnorm", "atari100k")
    rn = config.agent.retnorm
    ablated = ReturnNorm(rn.decay, rn.perclo, rn.perchi, rn.limit)
    fixed = ReturnNorm(0.99, 5.0, 95.0, 1.0)
    for _ in range(300):
        scale, normal = ablated.update(returns), fixed.update(returns)
    assert scale.item() == 1.0
    # The EMAs start at 0: after n updates they hold (1 − 0.99ⁿ) of the percentiles.
    assert normal.item() == pytest.approx(270.0 * (1 - 0.99**300), rel=1e-4)


def test_no_repval_zeroes_only_the_replay_value_loss_scale():
    config, _ = resolve("no_repval", "atari100k")
    base, _ = resolve("dreamerv3", "atari100k")
    assert config.agent.loss.repval == 0.0
    config.agent.loss.repval = base.agent.loss.repval
    assert to_dict(config) == to_dict(base)


def test_atari_variant_plays_with_sticky_actions_and_the_full_action_set():
    from suites.atari100k import make_env

    config, protocol = resolve("atari", "atari100k", "atari_pong")
    assert (protocol["sticky"], protocol["full_actions"]) == (0.25, True)
    assert config.run.action_repeat == 4
    full, minimal = make_env("atari_pong", 0, 0, protocol), make_env("atari_pong", 0, 0)
    try:
        assert (full.act_space["action"].discrete, minimal.act_space["action"].discrete) == (18, 6)
    finally:
        full.close()
        minimal.close()


@pytest.mark.parametrize("variant, suite_name, ratio", [
    ("cpu_learn", "bsuite", 1024), ("cpu_learn", "dmc_proprio", 512), ("cpu_cartpole", "bsuite", 128)])
def test_cpu_checks_change_only_size_and_train_ratio_and_compile(variant, suite_name, ratio):
    suite = get_suite(suite_name)
    smoke, _ = resolve(variant, suite_name)
    assert smoke.size == "size1m" and smoke.run.train_ratio == ratio
    # agent.compile is operational: the same losses (test_agent), only faster.
    same_otherwise = suite.run_config(suite.tasks[0], 0, ["size=size1m", f"run.train_ratio={ratio}", "agent.compile=true"])
    assert to_dict(smoke) == to_dict(same_otherwise)


def test_cpu_atari_changes_only_the_size_and_compile():
    suite = get_suite("atari100k")
    config, protocol = resolve("cpu_atari", "atari100k")
    assert (config.size, config.run.train_ratio, config.run.action_repeat) == ("size1m", 256, 4)
    assert to_dict(config) == to_dict(suite.run_config(suite.tasks[0], 0, ["size=size1m", "agent.compile=true"]))
    assert protocol == suite.protocol
