import json
import os

import pytest

from dreamer.config import to_dict
from dreamer.rundir import RunIdentity
from suites.jobs import RunJob, job_threads
from suites.registry import get_suite


def test_job_threads_never_exceed_the_cores_this_process_may_use():
    cores = len(os.sched_getaffinity(0))
    assert job_threads(cores + 4) == cores
    assert job_threads(1) == 1
    assert job_threads(0) == 1


@pytest.mark.parametrize("repeat", [1, 2])
def test_logged_frames_are_the_frames_the_environment_stepped(tmp_path, repeat):
    """run.action_repeat drives the environment: a dm_control episode is 1000 frames whatever the
    repeat, i.e. 1000/repeat agent steps plus the reset step, which the loop counts as `repeat`
    frames like any other agent step."""
    suite = get_suite("dmc_proprio")
    config = suite.run_config("dmc_cartpole_balance", 0, ["size=size1m", f"run.action_repeat={repeat}", "run.envs=1",
                                                          "run.train_start=100000"], budget=2100)
    identity = RunIdentity("dmc_proprio", "dmc_cartpole_balance", "test", 0, suite.protocol, True)
    RunJob(to_dict(config), identity, str(tmp_path), threads=1)._train(tmp_path)
    episodes = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    length = 1000 // repeat + 1
    assert [(e["step"], e["length"]) for e in episodes] == [(length * repeat, length), (2 * length * repeat, length)]
