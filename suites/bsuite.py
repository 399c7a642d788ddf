"""BSuite: the 468 bsuite_ids ("catch/0", ...) as tasks, each with bsuite's own episode budget.

Observations are flattened to one float32 vector `obs`. With a `logdir`, bsuite's own logging
wrapper records the run into `{logdir}/bsuite/bsuite_id_-_{id}.csv`, the layout its analysis
(`csv_load.load_bsuite`) reads. Ids whose bsuite setting leaves the environment seed open
(`seed: None`) get one derived from the run seed, env index and id, so runs are reproducible and
replicates stay distinct.

Restarts. The environments are `resumable` (dreamer/env.py): a checkpoint holds the environment,
bsuite's counters and the rows logged so far, so a resumed run continues the episode, the counters
and the log where the checkpoint left them. The log file is rewritten whole (as bsuite's own logger
does) from those rows at the first step after a (re)start, which drops rows a killed run logged
after its checkpoint; a start that fails before stepping changes nothing.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from dreamer.env import Space, env_seed, signal_spaces, signals
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


def log_segments(logdir: str | os.PathLike, task: str) -> list[Path]:
    """Logs of earlier versions, which restarted bsuite's counters at every restart and kept the
    previous file as `.csv.N`: such a run's episodes cannot be put back in order."""
    path = csv_path(logdir, task)
    return sorted(path.parent.glob(f"{path.name}.*[0-9]"))


class CsvLog:
    """bsuite's CSV log of one run (a bsuite `Logger`): every write rewrites the file with all rows,
    through a temporary file, so a kill never leaves it torn."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []

    def write(self, data: dict) -> None:
        self.rows.append(dict(data))
        self.save()

    def save(self) -> None:
        """The file holds exactly `rows` (no file while there are none)."""
        if not self.rows:
            self.path.unlink(missing_ok=True)
            return
        import pandas as pd

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        pd.DataFrame(self.rows).to_csv(tmp, index=False)
        os.replace(tmp, self.path)


def _set_state(obj, state: dict) -> None:
    obj.__dict__.update(state)


def _dumps(obj) -> bytes:
    """Pickle a bsuite environment. Its wrappers forward unknown attributes to the environment they
    wrap, so unpickling them the usual way (which asks the new, empty object for __setstate__)
    recurses without end; their attributes are set directly instead. cloudpickle takes the
    lambdas of the cartpole environments."""
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, o):
            if hasattr(type(o), "__getattr__") and hasattr(o, "__dict__") and not isinstance(o, type):
                return object.__new__, (type(o),), vars(o), None, None, _set_state
            return super().reducer_override(o)

    out = io.BytesIO()
    Pickler(out).dump(obj)
    return out.getvalue()


class BSuite:
    """A bsuite (dm_env) environment, logged into `log` when given, as an `Env` (dreamer/env.py)."""

    resumable = True

    def __init__(self, env, log: CsvLog | None = None):
        self._env, self._log = env, log
        self._done = True
        self._synced = False  # whether the log file holds exactly the rows of this environment
        self._shape = (int(np.prod(env.observation_spec().shape)),)
        self.obs_space = {"obs": Space(self._shape, "float32"), **signal_spaces()}
        self.act_space = {"action": Space((), "int32", discrete=int(env.action_spec().num_values))}

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._synced and self._log is not None:
            self._log.save()
            self._synced = True
        if self._done:
            time_step = self._env.reset()
        else:
            time_step = self._env.step(int(action["action"]))
        self._board = np.asarray(time_step.observation, np.float32)
        last = time_step.last()
        self._done = last
        return {"obs": np.asarray(time_step.observation, np.float32).reshape(self._shape),
                **signals(time_step.reward or 0.0, time_step.first(), last, last and time_step.discount == 0)}

    def render(self) -> np.ndarray | None:
        """The grid of experiments that observe one (catch's board, deep sea's), 16 pixels a cell,
        grey from 0 (black) to its largest value (white); None for the others."""
        board = getattr(self, "_board", None)
        if board is None or board.ndim != 2:
            return None
        grey = np.kron(board / max(float(board.max()), 1e-6), np.ones((16, 16))) * 255
        return np.repeat(grey.clip(0, 255).astype(np.uint8)[..., None], 3, -1)

    def __getstate__(self) -> dict:
        # The log is pickled with the environment that writes to it, so both stay one object.
        return {**vars(self), "_env": None, "_log": None, "pickled": _dumps((self._env, self._log))}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._env, self._log = pickle.loads(self.__dict__.pop("pickled"))
        self._synced = False

    def restore(self, state: bytes) -> None:
        """Take back the environment, counters and logged rows of a pickled run; the log is written
        where this one's factory put it (the run directory now, which may be a continued copy)."""
        restored = pickle.loads(state)
        if restored._log is not None and self._log is not None:
            restored._log.path = self._log.path
        self._env.close()
        self.__dict__.update(restored.__dict__)

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
    from bsuite.utils import wrappers

    kwargs = dict(sweep.SETTINGS[task])
    if "seed" in kwargs and kwargs["seed"] is None:
        entropy = [env_seed(seed, index), list(EXPERIMENTS).index(experiment), int(setting)]
        kwargs["seed"] = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    try:
        env = bsuite.load(experiment, kwargs)
    except OSError as error:  # only the MNIST experiments fetch data on load
        raise SuiteError(f"bsuite {task} needs the MNIST files in /tmp/mnist, downloaded from "
                         f"{MNIST_URL} on first use: {error}") from error
    if logdir is None:
        return BSuite(env)
    if index:
        # One log per run: a second environment, or one rebuilt on resume, would restart it.
        raise SuiteError(f"bsuite logs one environment per run, built once, not environment {index}: use "
                         "run.envs=1, and start again a run checkpointed before bsuite environments resumed")
    log = CsvLog(csv_path(logdir, task))
    return BSuite(wrappers.Logging(env, log), log)


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
        fixed={"run.envs": 1},  # bsuite scores one agent's sequence of episodes, logged as one
    ),
}
