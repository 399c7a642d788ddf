"""The environment interface the agent and the training loop speak.

Everything an environment library needs to be driven by `dreamer.train` fits here, so the agent
never imports gymnasium, ale-py, dm_control, bsuite or minerl.

An environment is any object with:

- `obs_space: dict[str, Space]`: the observation keys. Always includes `reward` (float32),
  `is_first`, `is_last` and `is_terminal` (bool). Keys starting with `log_` are logged, not
  fed to the agent.
- `act_space: dict[str, Space]`: always the single key `action`, discrete (`Space((), 'int32',
  discrete=N)`) or continuous in [-1, 1] (`Space((A,), 'float32', -1, 1)`).
- `step(action: dict[str, np.ndarray]) -> dict[str, np.ndarray]`: one agent step. The first call,
  and every call after an observation with `is_last`, starts a new episode and ignores the action;
  that first observation has `reward = 0` and `is_first = True`.
- `close()`.
- optional `render() -> np.ndarray`: the current state as a full-resolution (H, W, 3) uint8 frame,
  for episode videos (dreamer/inspect), or None.
- optional `resumable = True`: pickling the environment captures its whole state (the episode in
  flight and its random generators), so a checkpoint can store it and a resumed run continues
  exactly where it stopped. A resumed run builds the environment with its factory again and calls
  `restore(state)` on it with those pickled bytes: the state comes back, while what the factory
  decides now (where the environment writes its own logs: the run directory, which may have moved
  or been continued into a copy) stays the new one's. Environments without it are rebuilt on
  resume (dreamer.train).

Environments are built by factories `make_env(index) -> Env`; the factory owns seeding, with
`env_seed` (seed · 1000 + index).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

SIGNAL_KEYS = ("reward", "is_first", "is_last", "is_terminal")


@dataclass(frozen=True)
class Space:
    """Shape and type of one observation or action key.

    `discrete` > 0 marks a categorical value with that many classes (stored as an integer index);
    `low`/`high` bound continuous values.
    """

    shape: tuple[int, ...]
    dtype: str
    discrete: int = 0
    low: float = -np.inf
    high: float = np.inf

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        np.dtype(self.dtype)  # fail early on a typo

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3 and self.dtype == "uint8"

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype, "discrete": self.discrete,
                "low": float(self.low), "high": float(self.high)}


def signal_spaces() -> dict[str, Space]:
    """The four per-step signals every environment reports besides its observations."""
    return {"reward": Space((), "float32"), "is_first": Space((), "bool"),
            "is_last": Space((), "bool"), "is_terminal": Space((), "bool")}


def signals(reward: float, is_first: bool = False, is_last: bool = False,
            is_terminal: bool = False) -> dict[str, np.ndarray]:
    """The four signals of one step, typed as `signal_spaces` declares them."""
    return {"reward": np.float32(reward), "is_first": np.bool_(is_first), "is_last": np.bool_(is_last),
            "is_terminal": np.bool_(is_terminal)}


def env_seed(seed: int, index: int) -> int:
    """The seed of environment `index` of a run seeded `seed`: distinct per environment and run
    seed for up to 1000 environments."""
    return seed * 1000 + index


def factory_name(make_env: Callable) -> str | None:
    """'module:function' of the environment factory behind `make_env` (partials unwrapped), which a
    run directory records so that tools can build its environment again (dreamer.evaluate); None
    for what cannot be imported by name (a lambda, a local function)."""
    while isinstance(make_env, functools.partial):
        make_env = make_env.func
    name = f"{make_env.__module__}:{make_env.__qualname__}"
    return None if "<" in name else name


def agent_keys(obs_space: dict[str, Space]) -> list[str]:
    """Observation keys the agent encodes: everything but the signals and `log_*` keys."""
    return [k for k in obs_space if k not in SIGNAL_KEYS and not k.startswith("log_")]


class Env(Protocol):
    obs_space: dict[str, Space]
    act_space: dict[str, Space]

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...
