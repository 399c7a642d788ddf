"""BSuite: the 468 bsuite_ids ("catch/0", ...) as tasks, each with bsuite's own episode budget.

Observations are flattened to one float32 vector `obs`. With a `logdir`, bsuite's own CSV logging
wrapper records the run into `{logdir}/bsuite/`, the layout its analysis (`csv_load.load_bsuite`)
reads. Ids whose bsuite setting leaves the environment seed open (`seed: None`) get one derived
from the run seed, env index and id, so runs are reproducible and replicates stay distinct.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dreamer.env import Space, signal_spaces
from suites.base import Resources, ScoringRule, Suite, SuiteError, check_no_repeat

# experiment: (number of settings, episodes per id, bsuite tags) as in bsuite.sweep (0.3.6).
EXPERIMENTS = {
    "bandit": (20, 10000, ("basic",)),
    "bandit_noise": (20, 10000, ("noise",)),
    "bandit_scale": (20, 10000, ("scale",)),
    "cartpole": (20, 1000, ("basic", "credit_assignment", "generalization")),
    "cartpole_noise": (20, 1000, ("noise", "generalization")),
    "cartpole_scale": (20, 1000, ("scale", "generalization")),
    "cartpole_swingup": (20, 1000, ("generalization", "exploration")),
    "catch": (20, 10000, ("basic", "credit_assignment")),
    "catch_noise": (20, 10000, ("noise", "credit_assignment")),
    "catch_scale": (20, 10000, ("scale", "credit_assignment")),
    "deep_sea": (21, 10000, ("exploration",)),
    "deep_sea_stochastic": (21, 10000, ("noise", "exploration")),
    "discounting_chain": (20, 1000, ("credit_assignment",)),
    "memory_len": (23, 10000, ("memory",)),
    "memory_size": (17, 10000, ("memory",)),
    "mnist": (20, 10000, ("basic", "generalization")),
    "mnist_noise": (20, 10000, ("noise", "generalization")),
    "mnist_scale": (20, 10000, ("scale", "generalization")),
    "mountain_car": (20, 1000, ("basic", "generalization")),
    "mountain_car_noise": (20, 1000, ("noise", "generalization")),
    "mountain_car_scale": (20, 1000, ("scale", "generalization")),
    "umbrella_distract": (23, 10000, ("noise", "credit_assignment")),
    "umbrella_length": (23, 10000, ("noise", "credit_assignment")),
}
TASKS = tuple(f"{name}/{i}" for name, (n, _, _) in EXPERIMENTS.items() for i in range(n))
EPISODES = {task: EXPERIMENTS[task.split("/")[0]][1] for task in TASKS}



def _subsets() -> dict[str, tuple[str, ...]]:
    """"first" (one id per experiment) and bsuite's tags ("basic", "memory", ...) → ids."""
    subsets = {"first": tuple(task for task in TASKS if task.endswith("/0"))}
    for tag in sorted({tag for _, _, tags in EXPERIMENTS.values() for tag in tags}):
        subsets[tag] = tuple(t for t in TASKS if tag in EXPERIMENTS[t.split("/")[0]][2])
    return subsets


SUBSETS = _subsets()

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"


def csv_path(logdir: str | os.PathLike, task: str) -> Path:
    """Where bsuite's CSV logger writes `task`'s results under a run's `logdir`."""
    return Path(logdir) / "bsuite" / f"bsuite_id_-_{task.replace('/', '-')}.csv"


def _keep_previous_log(path: Path) -> None:
    """A restarted run starts bsuite's counters afresh; the previous CSV is kept as .csv.N."""
    if path.exists():
        number = 1
        while path.with_name(f"{path.name}.{number}").exists():
            number += 1
        path.rename(path.with_name(f"{path.name}.{number}"))


class BSuite:
    """A bsuite (dm_env) environment as an `Env` (dreamer/env.py)."""

    def __init__(self, env):
        self._env = env
        self._done = True
        self._shape = (int(np.prod(env.observation_spec().shape)),)
        self.obs_space = {"obs": Space(self._shape, "float32"), **signal_spaces()}
        self.act_space = {"action": Space((), "int32", discrete=int(env.action_spec().num_values))}

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._done:
            time_step = self._env.reset()
        else:
            time_step = self._env.step(int(action["action"]))
        last = time_step.last()
        self._done = last
        return {"obs": np.asarray(time_step.observation, np.float32).reshape(self._shape),
                "reward": np.float32(time_step.reward or 0.0),
                "is_first": np.bool_(time_step.first()), "is_last": np.bool_(last),
                "is_terminal": np.bool_(last and time_step.discount == 0)}

    def close(self) -> None:
        self._env.close()


def make_env(task: str, index: int, seed: int, protocol: dict | None = None,
             logdir: str | None = None, *, repeat: int = 1) -> BSuite:
    """Environment `index` of a run of bsuite id `task`; logs bsuite's CSV into `logdir`."""
    suite = SUITES["bsuite"]
    check_no_repeat("bsuite", repeat)
    suite.check_protocol(protocol or {})
    experiment, setting = suite.check_task(task).split("/")
    from bsuite import bsuite, sweep
    from bsuite.logging import csv_logging

    kwargs = dict(sweep.SETTINGS[task])
    if "seed" in kwargs and kwargs["seed"] is None:
        entropy = [seed * 1000 + index, list(EXPERIMENTS).index(experiment), int(setting)]
        kwargs["seed"] = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    try:
        env = bsuite.load(experiment, kwargs)
    except OSError as error:  # only the MNIST experiments fetch data on load
        raise SuiteError(f"bsuite {task} needs the MNIST files in /tmp/mnist, downloaded from "
                         f"{MNIST_URL} on first use: {error}") from error
    if logdir is not None:
        path = csv_path(logdir, task)
        _keep_previous_log(path)
        env = csv_logging.wrap_environment(env, task, str(path.parent))
    return BSuite(env)


SUITES = {
    "bsuite": Suite(
        name="bsuite",
        tasks=TASKS,
        budget=0,  # bsuite budgets are in episodes, per id (task_budgets)
        config=("size=size12m", "run.train_ratio=1024", "run.envs=1", "run.action_repeat=1"),
        protocol={},
        scoring=ScoringRule("bsuite's own analysis score per experiment, from its CSV logs",
                            window=(0, 0), normalise="bsuite"),
        resources=Resources(gpus=1, cpus=2, mem_gb=16, hours=12.0),
        make_env=make_env,
        task_budgets={task: (0, episodes) for task, episodes in EPISODES.items()},
    ),
}
