import functools

import numpy as np
import pytest

from dreamer.envpool import EnvError, EnvPool
from envs import make_env


def actions(*values):
    return {"action": np.array(values, np.int32)}


def run_alone(index, acts, task="cartpole"):
    """The observations of env `index` stepped in this process, for comparison."""
    env = make_env(task, index, seed=3)
    out = [env.step({"action": np.int32(a)}) for a in acts]
    env.close()
    return out


def test_workers_step_their_own_environment_in_lockstep():
    acts = [0, 1, 1, 0, 1, 0, 0, 1]
    pool = EnvPool(functools.partial(make_env, "cartpole", seed=3), [0, 5])
    procs = [p.proc for p in pool.procs]
    try:
        assert set(pool.obs_space) == {"vector", "reward", "is_first", "is_last", "is_terminal"}
        assert pool.act_space["action"].discrete == 2
        steps = [pool.step(actions(a, 1 - a)) for a in acts]
    finally:
        pool.close()
    first = steps[0]
    assert first["vector"].shape == (2, 4) and first["vector"].dtype == np.float32
    assert first["is_first"].tolist() == [True, True] and first["reward"].tolist() == [0.0, 0.0]
    alone = [run_alone(0, acts), run_alone(5, [1 - a for a in acts])]
    for t, obs in enumerate(steps):
        for i in range(2):
            for k in obs:
                np.testing.assert_array_equal(obs[k][i], alone[i][t][k])
    assert not np.array_equal(steps[0]["vector"][0], steps[0]["vector"][1])  # seeds 3000 and 3005
    assert [p.exitcode for p in procs] == [0, 0]  # closed cleanly


def test_worker_exception_surfaces_with_its_traceback():
    pool = EnvPool(functools.partial(make_env, "cartpole", seed=0), [0, 1])
    procs = [p.proc for p in pool.procs]
    try:
        pool.step(actions(0, 0))
        with pytest.raises(EnvError) as err:
            pool.step(actions(0, 7))  # CartPole accepts only 0 and 1
    finally:
        pool.close()
    assert str(err.value).startswith("environment 1 failed: AssertionError: 7")
    assert isinstance(err.value.__cause__, AssertionError)
    note = "\n".join(err.value.__notes__)
    assert "Traceback" in note and "cartpole.py" in note
    assert all(not p.is_alive() for p in procs)


@pytest.mark.parametrize("n", [1, 2])
def test_factory_error_names_the_valid_tasks(n):
    with pytest.raises(EnvError, match="unknown test task 'cartpol'; valid: cartpole, cartpole-rebuilt") as err:
        EnvPool(functools.partial(make_env, "cartpol", seed=0), list(range(n)))
    assert isinstance(err.value.__cause__, ValueError)


def test_resumable_environments_continue_from_their_saved_state():
    factory = functools.partial(make_env, "cartpole", seed=1)
    pool = EnvPool(factory, [0, 1])
    try:
        for a in [0, 1, 0]:
            pool.step(actions(a, a))
        states = pool.states()
        expected = [pool.step(actions(a, 1 - a)) for a in [1, 1, 0]]
    finally:
        pool.close()
    assert all(isinstance(s, bytes) for s in states)
    restored = EnvPool(factory, [7, 8], states)  # the indices are ignored for restored envs
    try:
        for a, obs in zip([1, 1, 0], expected):
            got = restored.step(actions(a, 1 - a))
            for k in obs:
                np.testing.assert_array_equal(got[k], obs[k])
    finally:
        restored.close()


def test_single_environment_runs_in_process_and_reports_no_state_when_not_resumable():
    pool = EnvPool(functools.partial(make_env, "cartpole-rebuilt", seed=0), [0])
    try:
        assert pool.procs == []
        obs = pool.step(actions(0))
        assert obs["is_first"].tolist() == [True] and obs["vector"].shape == (1, 4)
        assert pool.states() == [None]
    finally:
        pool.close()
