"""An environment pool: steps N environments in lockstep and hands the agent batched observations.

With more than one environment each runs in its own worker process, talking over a pipe; one
environment runs in-process. Workers start by 'forkserver': they fork from a clean server process
that imported the main module once, so no CUDA or thread state of the trainer is inherited and N
workers do not each import torch again. Workers build their environment from the picklable factory `make_env(index)`, and restore
it from a state that `states()` returned earlier (only for environments marked `resumable`, see
dreamer.env). An exception inside a worker is raised in the trainer with the
worker's traceback attached as a note; the original exception is its cause when it can be pickled.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import traceback
from typing import Callable

import numpy as np

from dreamer.env import Env


class EnvError(RuntimeError):
    """An environment failed: one line naming the environment and the error."""


class _Slot:
    """One environment and the commands the pool sends it."""

    def __init__(self, make_env: Callable[[int], Env], index: int, state: bytes | None):
        self.env = make_env(index)
        if state is not None:
            self.env.restore(state)

    def spaces(self):
        return self.env.obs_space, self.env.act_space

    def step(self, action: dict) -> dict:
        return self.env.step(action)

    def state(self) -> bytes | None:
        return pickle.dumps(self.env) if getattr(self.env, "resumable", False) else None

    def render(self):
        return self.env.render() if hasattr(self.env, "render") else None

    def close(self) -> None:
        self.env.close()


def _worker(conn, make_env, index: int, state: bytes | None) -> None:
    slot = None
    try:
        slot = _Slot(make_env, index, state)
        conn.send(("ok", None))
        while True:
            command, arg = conn.recv()
            if command == "close":
                break
            conn.send(("ok", getattr(slot, command)(*arg)))
    except EOFError:  # the trainer is gone; nobody is left to tell
        pass
    except BaseException as exc:  # noqa: BLE001 — every failure must reach the trainer
        summary, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        try:
            conn.send(("error", (exc, summary, tb)))
        except Exception:  # the exception itself does not pickle
            conn.send(("error", (None, summary, tb)))
    finally:
        if slot is not None:
            slot.close()
        conn.close()


class _Process:
    """A `_Slot` in a worker process, with the same methods, split into send and receive."""

    def __init__(self, ctx, make_env, index: int, state: bytes | None):
        self.index = index
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, make_env, index, state), daemon=True)
        self.proc.start()
        child.close()

    def send(self, command: str, *arg) -> None:
        self.conn.send((command, arg))

    def receive(self):
        try:
            status, value = self.conn.recv()
        except (EOFError, ConnectionError):
            self.proc.join(timeout=5)
            raise EnvError(f"environment {self.index} worker died (exit code {self.proc.exitcode})") from None
        if status == "error":
            exc, summary, tb = value
            error = EnvError(f"environment {self.index} failed: {summary}")
            error.add_note(f"traceback in the worker of environment {self.index}:\n{tb}")
            raise error from exc
        return value


class EnvPool:
    """N environments built as make_env(indices[i]) (or restored from states[i] when not None).

    `step(action)` takes {key: (N, ...)} and returns the next observations {key: (N, ...)}.
    """

    def __init__(self, make_env: Callable[[int], Env], indices: list[int],
                 states: list[bytes | None] | None = None):
        states = states or [None] * len(indices)
        self.n = len(indices)
        self.slots: list[_Slot] = []
        self.procs: list[_Process] = []
        if self.n == 1:
            try:
                self.slots.append(_Slot(make_env, indices[0], states[0]))
            except Exception as exc:
                raise EnvError(f"environment {indices[0]} failed: {type(exc).__name__}: {exc}") from exc
        else:
            ctx = mp.get_context("forkserver")
            self.procs = [_Process(ctx, make_env, i, s) for i, s in zip(indices, states)]
            try:
                for p in self.procs:
                    p.receive()
            except EnvError:
                self.close()
                raise
        self.obs_space, self.act_space = self._call("spaces")[0]

    def step(self, action: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs = self._call("step", *[({k: v[i] for k, v in action.items()},) for i in range(self.n)])
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}

    def states(self) -> list[bytes | None]:
        """Each environment pickled if it is `resumable`, else None."""
        return self._call("state")

    def render(self, i: int) -> np.ndarray | None:
        """Environment i's full-resolution frame of where it is now, where it can `render()`."""
        if not self.procs:
            return self.slots[0].render()
        self.procs[i].send("render")
        return self.procs[i].receive()

    def close(self) -> None:
        while self.slots:
            self.slots.pop().close()
        for p in self.procs:
            try:
                p.send("close")
            except (BrokenPipeError, ConnectionError):
                pass
        for p in self.procs:
            p.proc.join(timeout=10)
            if p.proc.is_alive():
                p.proc.terminate()
                p.proc.join()
        self.procs = []

    def _call(self, command: str, *args: tuple) -> list:
        """Run `command` on every environment with args[i] (or no args), in parallel."""
        args = args or [()] * self.n
        if not self.procs:
            return [getattr(self.slots[0], command)(*args[0])]
        for p, a in zip(self.procs, args):
            p.send(command, *a)
        return [p.receive() for p in self.procs]
