"""One training run: environments ↔ agent ↔ replay at the train ratio, with logs, checkpoints and
resume (SPEC §1, DESIGN "Contracts").

The run directory holds config.json, metrics.jsonl, scores.jsonl, checkpoint/ and, once the budget
is reached, DONE. Starting a run again continues it from its checkpoint; a run with DONE does
nothing.

Resume. The checkpoint holds the agent, the replay, every counter and RNG state, the policy state
and pending action of every environment, and the byte lengths of both JSONL files; on resume
lines written after it are cut off, so no line appears twice and none the checkpoint covers is
lost. Environments marked `resumable` (dreamer.env) are stored in the checkpoint too and continue
their episodes, so a resumed run steps exactly like an uninterrupted one (bit-identical on CPU with
run.deterministic). Other environments are rebuilt: their episodes in flight are lost, and
environment i is built as make_env(i + envs · resumes), so a resumed run does not replay the
episodes (with their seeds) of its first start.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import tqdm

from dreamer.agent import Agent
from dreamer.config import Config, ConfigError, make_config, resume_diff, to_dict
from dreamer.driver import Driver, EnvError
from dreamer.env import SIGNAL_KEYS, Env, Space, agent_keys
from dreamer.replay import Replay

class RunDirError(RuntimeError):
    """The run directory is inconsistent; the message says what was found and what to do."""


def updates_due(train_steps: int, done: int, train_ratio: float, batch_steps: int) -> int:
    """Updates owed after `train_steps` agent steps since training started, `done` of which were
    made: train_ratio / batch_steps updates per agent step (batch_steps = batch_size · batch_length).

    Counting from the step total rather than accumulating fractions keeps the count exactly
    floor(train_steps · train_ratio / batch_steps) over any run length."""
    return int(train_steps * train_ratio // batch_steps) - done


def train(config: Config, make_env: Callable[[int], Env], run_dir: Path, meta: dict | None = None) -> dict:
    """Run (or continue) one run in `run_dir` until its budget; returns the DONE summary."""
    run_dir = Path(run_dir)
    if (run_dir / "DONE").exists():
        try:
            summary = json.loads((run_dir / "DONE").read_text())
        except ValueError as exc:
            raise RunDirError(f"{run_dir / 'DONE'} is not the JSON summary a finished run writes ({exc}); "
                              "restore it, or delete it to let the run finish again from its checkpoint") from exc
        print(f"{run_dir}: already done at step {summary['step']}; nothing to do", flush=True)
        return summary
    check_config(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    return _Run(config, make_env, run_dir, meta).run()


def check_config(config: Config) -> None:
    """Settings a run cannot start with, as a ConfigError naming them."""
    r = config.run
    if r.budget <= 0 and r.budget_episodes <= 0:
        raise ConfigError("the run has no budget: set run.budget (frames) or run.budget_episodes")
    if r.envs < 1:
        raise ConfigError(f"run.envs must be at least 1, got {r.envs}")
    need = max(r.train_start, r.envs * (r.batch_length + 1))
    if config.replay.capacity < need:
        raise ConfigError(f"replay.capacity {config.replay.capacity} must hold run.train_start steps and "
                          f"one window per environment ({need} steps)")
    if config.agent.rssm.classes > 256:
        raise ConfigError("replay stores stoch classes as uint8: agent.rssm.classes must be ≤ 256")


class _Run:
    def __init__(self, config: Config, make_env, run_dir: Path, meta: dict | None):
        self.config, self.make_env, self.dir = config, make_env, run_dir
        self.meta = {"suite": None, "task": None, "variant": None, "protocol": None,
                     "shortened": False, **(meta or {}), "seed": config.run.seed}
        self.bar = None
        self.ckpt = run_dir / "checkpoint"
        self.logs = {name: run_dir / f"{name}.jsonl" for name in ("metrics", "scores")}
        self.files = {}

    # ---- setup -------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.config.run
        self._recover_checkpoint_dirs()
        loop = self._read(self.ckpt / "loop.pt", lambda p: torch.load(p, weights_only=False)) \
            if self.ckpt.exists() else None
        if loop is None:
            self._set_aside_orphaned_logs()
            (self.dir / "config.json").write_text(json.dumps(self._config_json(), indent=2))
        else:
            self._check_same_config()
            for name, path in self.logs.items():
                self._truncate(path, loop["offsets"][name])
        device = _device(cfg.device)
        if cfg.deterministic:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        n = cfg.envs
        self.starts = 0 if loop is None else loop["starts"] + 1
        states = [None] * n if loop is None else loop["envs"]
        indices = [i + n * self.starts for i in range(n)]
        rebuilt = [i for i in range(n) if states[i] is None]
        if loop is not None:
            frames = loop["counters"]["agent_steps"] * cfg.action_repeat
            self._say(f"resuming at step {frames} (start {self.starts + 1}); "
                      + (f"environments {rebuilt} rebuilt as indices {[indices[i] for i in rebuilt]}, "
                         "their episodes in flight are lost" if rebuilt else "all environments restored"))
        self.driver = Driver(self.make_env, indices, states)
        try:
            return self._run_with_driver(loop, device)
        finally:
            self.driver.close()
            for f in self.files.values():
                f.close()
            if self.bar is not None:
                self.bar.close()

    def _run_with_driver(self, loop: dict | None, device: torch.device) -> dict:
        cfg, agent_cfg = self.config.run, self.config.agent
        obs_space, act_space = self.driver.obs_space, self.driver.act_space
        for key, space in obs_space.items():
            if key.startswith("log_") and space.shape != ():
                raise EnvError(f"observation {key!r} has shape {space.shape}; log_ keys must be scalars")
        self.agent = Agent(agent_cfg, obs_space, act_space, device)
        keys = [*agent_keys(obs_space), *SIGNAL_KEYS]
        self.replay = Replay(
            {**{k: obs_space[k] for k in keys}, **act_space},
            {"deter": Space((agent_cfg.rssm.deter,), "float32"), "stoch": Space((agent_cfg.rssm.stoch,), "uint8")},
            self.config.replay.capacity, cfg.batch_length + 1, self.config.replay.online, cfg.seed)
        self.log_keys = [k for k in obs_space if k.startswith("log_")]
        if loop is None:
            space = act_space["action"]
            self.action = {"action": np.zeros((cfg.envs, *space.shape), space.dtype)}
            self.state = None
            self.episodes_open = [None] * cfg.envs
            self.counters = {"agent_steps": 0, "train_steps": 0, "episodes": 0, "time": 0.0}
        else:
            self._read(self.ckpt / "agent.pt", lambda p: self.agent.load(torch.load(p, map_location=device)))
            self._read(self.ckpt / "replay.npz", lambda p: self.replay.load(p.parent))
            self._restore(loop, device)
        self.files = {name: open(path, "ab") for name, path in self.logs.items()}
        return self._loop()

    def _restore(self, loop: dict, device: torch.device) -> None:
        self.action, self.counters = loop["action"], loop["counters"]
        self.state = None if loop["state"] is None else {k: v.to(device) for k, v in loop["state"].items()}
        # Rebuilt environments start with is_first, which resets their policy state and episode.
        self.episodes_open = loop["episodes_open"]
        rng = loop["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    # ---- the loop ----------------------------------------------------------------------------

    def _loop(self) -> dict:
        cfg = self.config.run
        c = self.counters
        self.t0, self.time0 = time.monotonic(), c["time"]
        self.last_log = self.last_ckpt = self.t0
        self.interval = {"metrics": {}, "updates": 0, "frames": 0, "t": self.t0}
        self.last_score = None
        if sys.stderr.isatty():
            self.bar = tqdm.tqdm(total=cfg.budget or None, initial=c["agent_steps"] * cfg.action_repeat,
                                 unit="frame", dynamic_ncols=True)
        while not self._finished():
            obs = self.driver.step(self.action)
            self.action, self.state = self.agent.policy(obs, self.state)
            self._record(obs)
            c["agent_steps"] += cfg.envs
            self.interval["frames"] += cfg.envs * cfg.action_repeat
            if self.bar is not None:
                self.bar.update(cfg.envs * cfg.action_repeat)
            if len(self.replay) >= cfg.train_start and self.replay.windows():
                c["train_steps"] += cfg.envs
                for _ in range(updates_due(c["train_steps"], self.agent.updates, cfg.train_ratio,
                                             cfg.batch_size * cfg.batch_length)):
                    self._update()
            now = time.monotonic()
            if now - self.last_log >= cfg.log_every:
                self._log(now)
            if now - self.last_ckpt >= cfg.checkpoint_every:
                self._checkpoint()
                self.last_ckpt = time.monotonic()
        if self.interval["frames"]:
            self._log(time.monotonic())
        self._checkpoint()
        summary = {"step": c["agent_steps"] * cfg.action_repeat, "episodes": c["episodes"],
                   "updates": self.agent.updates, "time": self._time()}
        (self.dir / "DONE").write_text(json.dumps(summary) + "\n")
        self._say(f"done: step {summary['step']}, {summary['episodes']} episodes, "
                  f"{summary['updates']} updates, {summary['time']:.0f}s")
        return summary

    def _finished(self) -> bool:
        cfg, c = self.config.run, self.counters
        return ((cfg.budget > 0 and c["agent_steps"] * cfg.action_repeat >= cfg.budget)
                or (cfg.budget_episodes > 0 and c["episodes"] >= cfg.budget_episodes))

    def _record(self, obs: dict[str, np.ndarray]) -> None:
        """Store each environment's step in replay and book-keep its episode."""
        cfg = self.config.run
        deter = self.state["deter"].float().cpu().numpy()
        stoch = self.state["stoch"].cpu().numpy()
        frames = (self.counters["agent_steps"] + cfg.envs) * cfg.action_repeat
        # The action chosen on a last step is never executed (the next step resets): stored as
        # zeros, as the reference does.
        self.action["action"][obs["is_last"]] = 0
        for i in range(cfg.envs):
            step = {k: obs[k][i] for k in self.replay.data_keys if k != "action"}
            self.replay.add(i, {**step, "action": self.action["action"][i], "deter": deter[i], "stoch": stoch[i]})
            if obs["is_first"][i]:
                self.episodes_open[i] = {"score": 0.0, "length": 0,
                                         **{k: [0.0, -np.inf] for k in self.log_keys}}
            ep = self.episodes_open[i]
            ep["score"] += float(obs["reward"][i])
            ep["length"] += 1
            for k in self.log_keys:
                ep[k][0] += float(obs[k][i])
                ep[k][1] = max(ep[k][1], float(obs[k][i]))
            if obs["is_last"][i]:
                self.counters["episodes"] += 1
                self._write("scores", {"step": frames, "score": ep["score"], "length": ep["length"],
                                       **self._log_stats(ep)})
                self.last_score = ep["score"]
                if self.bar is not None:
                    self.bar.set_postfix(episodes=self.counters["episodes"], score=ep["score"], refresh=False)

    def _log_stats(self, ep: dict) -> dict:
        """Per-episode sum, mean and max of each log_ key (as the reference logger reports them)."""
        out = {}
        for k in self.log_keys:
            total, peak = ep[k]
            out.update({f"{k}/sum": total, f"{k}/avg": total / ep["length"], f"{k}/max": peak})
        return out

    def _update(self) -> None:
        cfg = self.config.run
        data, carry, ref = self.replay.sample(cfg.batch_size)
        carry["stoch"] = carry["stoch"].astype(np.int64)
        latents, metrics = self.agent.train(data, carry)
        self.replay.update(ref, {k: v.cpu().numpy() for k, v in latents.items()})
        acc = self.interval["metrics"]
        for k, v in metrics.items():
            total, count = acc.get(k, (0.0, 0))
            acc[k] = (total + v, count + 1)
        self.interval["updates"] += 1

    # ---- logs --------------------------------------------------------------------------------

    def _time(self) -> float:
        return self.time0 + time.monotonic() - self.t0

    def _log(self, now: float) -> None:
        cfg, c, iv = self.config.run, self.counters, self.interval
        seconds = max(now - iv["t"], 1e-9)
        line = {"step": c["agent_steps"] * cfg.action_repeat, "time": round(self._time(), 3),
                **{k: total / count for k, (total, count) in sorted(iv["metrics"].items())},
                "fps/env": iv["frames"] / seconds,
                "fps/train": iv["updates"] * cfg.batch_size * cfg.batch_length / seconds,
                "updates": self.agent.updates, "episodes": c["episodes"]}
        self._write("metrics", line)
        rate = iv["updates"] / seconds
        if self.bar is not None:
            self.bar.set_postfix(episodes=c["episodes"], score=self.last_score, updates_s=f"{rate:.2f}")
        else:
            score = "-" if self.last_score is None else f"{self.last_score:.4g}"
            print(f"step {line['step']} | episodes {c['episodes']} | score {score} | updates {self.agent.updates} "
                  f"({rate:.2f}/s) | fps {line['fps/env']:.1f}", flush=True)
        self.interval = {"metrics": {}, "updates": 0, "frames": 0, "t": now}
        self.last_log = now

    def _write(self, name: str, record: dict) -> None:
        self.files[name].write((json.dumps(record) + "\n").encode())
        self.files[name].flush()

    def _say(self, message: str) -> None:
        (self.bar.write if self.bar is not None else functools.partial(print, flush=True))(message)

    # ---- checkpoint --------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Write checkpoint.tmp/ completely, then swap it in for checkpoint/."""
        self.counters["time"] = self._time()
        for f in self.files.values():
            f.flush()
        tmp, old = self.dir / "checkpoint.tmp", self.dir / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        torch.save(self.agent.save(), tmp / "agent.pt")
        self.replay.save(tmp)
        loop = {
            "counters": dict(self.counters), "starts": self.starts, "action": self.action,
            "state": None if self.state is None else {k: v.cpu() for k, v in self.state.items()},
            "episodes_open": self.episodes_open, "envs": self.driver.states(),
            "offsets": {name: f.tell() for name, f in self.files.items()},
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }
        torch.save(loop, tmp / "loop.pt")
        for path in tmp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if self.ckpt.exists():
            os.replace(self.ckpt, old)
        os.replace(tmp, self.ckpt)
        shutil.rmtree(old, ignore_errors=True)

    def _recover_checkpoint_dirs(self) -> None:
        """Finish or undo a checkpoint swap that a crash interrupted."""
        tmp, old = self.dir / "checkpoint.tmp", self.dir / "checkpoint.old"
        if not self.ckpt.exists() and old.exists():
            os.replace(old, self.ckpt)
            self._say(f"{self.ckpt}: restored the previous checkpoint (the run died while replacing it)")
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
                self._say(f"{leftover}: removed an incomplete checkpoint")

    def _read(self, path: Path, load: Callable):
        try:
            return load(path)
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run over many lines
            raise RunDirError(
                f"{path} is unreadable ({type(exc).__name__}: {reason}); the run directory was left as is. "
                f"Restore the checkpoint, or move {self.ckpt} away to restart this run from zero") from exc

    def _truncate(self, path: Path, offset: int) -> None:
        """Cut `path` back to the `offset` bytes the checkpoint covers."""
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            raise RunDirError(f"{path} holds {size} bytes but the checkpoint covers {offset}: logged lines were "
                              "lost. Restore the file, or move the checkpoint away to restart this run from zero")
        with open(path, "r+b") as f:
            if offset:
                f.seek(offset - 1)
                if f.read(1) != b"\n":
                    raise RunDirError(f"{path}: byte {offset} (where the checkpoint's lines end) is not a line end; "
                                      "the file was changed since. Restore it or move the checkpoint away")
            dropped = f.read()
            if dropped:
                f.truncate(offset)
                lines = dropped.count(b"\n") + (not dropped.endswith(b"\n"))
                self._say(f"{path}: dropped {lines} line(s) written after the checkpoint")

    def _set_aside_orphaned_logs(self) -> None:
        """Logs without a checkpoint cover nothing to resume from; keep them beside a fresh start."""
        for path in self.logs.values():
            if path.exists() and path.stat().st_size:
                n = 1
                while path.with_name(f"{path.name}.orphaned-{n}").exists():
                    n += 1
                aside = path.with_name(f"{path.name}.orphaned-{n}")
                os.replace(path, aside)
                self._say(f"{path}: no checkpoint to resume from; kept the old log as {aside.name} and "
                          "started from zero")

    def _config_json(self) -> dict:
        return {**{k: self.meta[k] for k in ("suite", "task", "variant", "seed", "protocol", "shortened")},
                "config": to_dict(self.config), "versions": _versions(), "git_commit": _git_commit()}

    def _check_same_config(self) -> None:
        path = self.dir / "config.json"
        stored = self._read(path, lambda p: json.loads(p.read_text()))["config"]
        diff = resume_diff(stored, self.config)
        if diff:
            raise RunDirError(f"{path}: this run was started with a different config ({'; '.join(diff)}); "
                              "resume it with the same settings or use another run directory")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _versions() -> dict[str, str]:
    """Python and every installed dependency of this project, with versions."""
    versions = {"python": platform.python_version()}
    for dist in ("dreamer-bench", *_requirements()):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _requirements() -> list[str]:
    try:
        reqs = importlib.metadata.requires("dreamer-bench") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for req in reqs:
        if "extra ==" not in req:
            names.append(req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip())
    return names


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


# ---- command line ----------------------------------------------------------------------------

def _load_factory(path: str):
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"--env {path!r} is not module:function (e.g. suites.bsuite:make_env)")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--env {path!r}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dreamer.train",
        description="Run (or resume) one DreamerV3 training run by hand. Suites start runs with "
                    "`python -m suites.run`; this runs a single one in the given run directory.",
        epilog="example: python -m dreamer.train --run-dir results/runs/manual/catch-0 "
               "--env suites.bsuite:make_env --task catch/0 --seed 0 --set size=size12m run.budget_episodes=1000")
    parser.add_argument("--run-dir", required=True, type=Path,
                        help="run directory (created, or resumed if it holds a checkpoint)")
    parser.add_argument("--env", required=True, metavar="MODULE:FUNCTION",
                        help="environment factory, called as FUNCTION(task, index, seed=seed, "
                             "repeat=run.action_repeat)")
    parser.add_argument("--task", required=True, help="task name passed to the factory")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. size=size1m run.budget=100000 run.train_ratio=512")
    args = parser.parse_args(argv)
    try:
        factory = _load_factory(args.env)
        config = make_config([*args.set, f"run.seed={args.seed}"])
        check_config(config)
    except (ValueError, ConfigError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        train(config, functools.partial(factory, args.task, seed=args.seed, repeat=config.run.action_repeat),
              args.run_dir,
              {"task": args.task, "seed": args.seed})
    except EnvError as exc:
        # A ValueError from the factory is a bad name (task, protocol): a usage error.
        parser.exit(2 if isinstance(exc.__cause__, ValueError) else 1, f"{parser.prog}: error: {exc}\n")
    except RunDirError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
