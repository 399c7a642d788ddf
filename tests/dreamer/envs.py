"""A real environment for the loop tests: gymnasium's CartPole-v1 behind the dreamer.env interface.

`make_env(task, index, seed=0, repeat=1)` follows the suite factory signature, so the CLI can load
it as `envs:make_env` (with tests/dreamer on the path). Tasks: "cartpole" is `resumable` (its
pickle holds the cart-pole state, the episode counters and gymnasium's generator);
"cartpole-rebuilt" is the same game marked not resumable, so a resumed run rebuilds it.
"""
from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np

from dreamer.env import Space, env_seed, signal_spaces, signals


class CartPole:
    resumable = True

    def __init__(self, seed: int, repeat: int = 1):
        self.env = gym.make("CartPole-v1").unwrapped  # the 500-step limit is applied here, in agent steps
        self.seed, self.repeat = seed, repeat
        self.obs_space = {"vector": Space((4,), "float32"), **signal_spaces()}
        self.act_space = {"action": Space((), "int32", discrete=2)}
        self.episodes = 0
        self.length = 0
        self.done = True

    def step(self, action: dict) -> dict:
        if self.done:
            state, _ = self.env.reset(seed=self.seed if self.episodes == 0 else None)
            self.episodes += 1
            self.length = 0
            self.done = False
            return self._obs(state, 0.0, first=True)
        reward, terminal = 0.0, False
        for _ in range(self.repeat):
            state, r, terminal, _, _ = self.env.step(int(action["action"]))
            reward += r
            if terminal:
                break
        self.length += 1
        self.done = terminal or self.length >= 500
        return self._obs(state, reward, last=self.done, terminal=terminal)

    def restore(self, state: bytes) -> None:
        self.env.close()
        self.__dict__.update(pickle.loads(state).__dict__)

    def _obs(self, state, reward, first=False, last=False, terminal=False) -> dict:
        return {"vector": np.asarray(state, np.float32), **signals(reward, first, last, terminal)}

    def close(self) -> None:
        self.env.close()


class RebuiltCartPole(CartPole):
    resumable = False


TASKS = {"cartpole": CartPole, "cartpole-rebuilt": RebuiltCartPole}


def make_env(task: str, index: int, seed: int = 0, repeat: int = 1):
    if task not in TASKS:
        raise ValueError(f"unknown test task {task!r}; valid: {', '.join(TASKS)}")
    return TASKS[task](env_seed(seed, index), repeat)
