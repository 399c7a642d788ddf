import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from suites.base import Resources, ScoringRule, Suite, SuiteError
from suites.registry import SUITE_NAMES, get_suite

# suites/README.md, "Settings per suite": (size, train ratio, envs, action repeat, budget in frames).
SETTINGS = {
    "atari100k": ("size200m", 256, 1, 4, 440_000),
    "dmc_proprio": ("size12m", 512, 4, 2, 500_000),
    "dmc_vision": ("size12m", 512, 4, 2, 1_000_000),
    "minecraft": ("size200m", 32, 16, 1, 100_000_000),
    "bsuite": ("size12m", 1024, 1, 1, 0),
}


def test_every_suite_loads_by_name():
    assert set(SUITE_NAMES) == set(SETTINGS)
    for name in SUITE_NAMES:
        suite = get_suite(name)
        assert isinstance(suite, Suite) and suite.name == name
        assert isinstance(suite.scoring, ScoringRule) and isinstance(suite.resources, Resources)
        assert len(set(suite.tasks)) == len(suite.tasks) > 0


def test_unknown_suite_names_the_valid_ones():
    with pytest.raises(SuiteError, match="atari100k.*dmc_proprio.*minecraft") as error:
        get_suite("atari")
    assert "did you mean atari100k" in str(error.value)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_unknown_task_lists_the_valid_tasks(name):
    suite = get_suite(name)
    with pytest.raises(SuiteError, match="valid: " + suite.tasks[0]):
        suite.check_task("no_such_task")


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_config_follows_the_spec_table(name):
    size, ratio, envs, repeat, budget = SETTINGS[name]
    suite = get_suite(name)
    config = suite.run_config(suite.tasks[0], seed=3)
    assert (config.size, config.run.train_ratio, config.run.envs) == (size, ratio, envs)
    assert config.run.action_repeat == repeat and "repeat" not in suite.protocol  # one source: the config
    assert suite.budget == budget and config.run.seed == 3


def test_scoring_rules_are_data():
    atari = get_suite("atari100k").scoring
    assert (atari.window, atari.normalise) == ((390_000, 400_000), "human")
    proprio, vision = get_suite("dmc_proprio").scoring, get_suite("dmc_vision").scoring
    assert (proprio.window, proprio.normalise, proprio.scale) == ((450_000, 500_000), "scale", 1000)
    assert (vision.window, vision.normalise, vision.scale) == ((900_000, 1_000_000), "scale", 1000)
    minecraft = get_suite("minecraft").scoring
    assert (minecraft.window, minecraft.normalise) == ((90_000_000, 100_000_000), "none")
    assert minecraft.success == 11.1
    assert get_suite("bsuite").scoring.normalise == "bsuite"


@pytest.mark.parametrize("name", ["atari100k", "dmc_proprio", "dmc_vision", "minecraft"])
def test_task_names_match_the_published_files(name, baselines):
    suite = get_suite(name)
    with gzip.open(baselines / f"{suite.published}-dreamerv3.json.gz") as file:
        published = {run["task"] for run in json.load(file)}
    assert set(suite.tasks) == published


def test_importing_suites_leaves_environment_libraries_unloaded():
    code = ("import sys, suites.atari100k, suites.dmc, suites.bsuite, suites.minecraft; "
            "print([m for m in ('ale_py', 'gymnasium', 'dm_control', 'bsuite', 'minerl', 'PIL') "
            "if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "[]"
