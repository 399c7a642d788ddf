"""The training loop of one run: environments ↔ agent ↔ replay at the train ratio, logging to and
checkpointing into its run directory (dreamer/rundir.py). `dreamer.train` checks the settings and
holds the run's lock around it.

Resume. The checkpoint holds the agent, the replay, every counter and RNG state, the policy state
and pending action of every environment, and the byte lengths of both JSONL logs; on resume lines
written after it are cut off, so no line appears twice and none the checkpoint covers is lost.
Environments marked `resumable` (dreamer.env) are stored in the checkpoint too and continue their
episodes, so a resumed run steps exactly like an uninterrupted one (bit-identical on CPU with
run.deterministic). Other environments are rebuilt: their episodes in flight are lost, and
environment i is built as make_env(i + envs · resumes), so a resumed run does not replay the
episodes (with their seeds) of its first start. A resume reads the whole checkpoint before it
changes anything in the run directory.
"""
from __future__ import annotations

import functools
import math
import os
import random
import sys
import time
from typing import Callable

import numpy as np
import torch
import tqdm

from dreamer import replay as replay_files
from dreamer.agent import Agent
from dreamer.config import Config, RunConfig, check_image, resume_diff, to_dict
from dreamer.cores import ThreadGovernor
from dreamer.env import SIGNAL_KEYS, Env, Space, agent_keys, factory_name
from dreamer.envpool import EnvError, EnvPool
from dreamer.inspect import Inspector
from dreamer.replay import Replay
from dreamer.rundir import RunDir, RunDirError, RunIdentity

AGENT, LOOP = "agent.pt", "loop.pt"  # the checkpoint's files besides the replay's


def updates_due(train_steps: int, done: int, train_ratio: float, batch_steps: int) -> int:
    """Updates owed after `train_steps` agent steps since training started, `done` of which were
    made: train_ratio / batch_steps updates per agent step (batch_steps = batch_size · batch_length).

    Counting from the step total rather than accumulating fractions keeps the count exactly
    floor(train_steps · train_ratio / batch_steps) over any run length."""
    return int(train_steps * train_ratio // batch_steps) - done


def updates_in_budget(run: RunConfig) -> int | None:
    """The updates a run of `run` settings makes by its frame budget; None for a budget in episodes
    only. Training starts at the step that brings replay to run.train_start steps."""
    if not run.budget:
        return None
    steps = run.budget // run.action_repeat
    return updates_due(max(0, steps - run.train_start + 1), 0, run.train_ratio, run.batch_size * run.batch_length)


def first_update_frames(run: RunConfig) -> int:
    """The smallest frame budget in which a run of `run` settings makes an update."""
    steps = run.train_start - 1 + math.ceil(run.batch_size * run.batch_length / run.train_ratio)
    return steps * run.action_repeat


class Loop:
    """One start of the run in `run_dir`, on `device`, until its budget; `run` returns the final
    summary. `identity` is completed from the one the run directory records, if any."""

    def __init__(self, config: Config, make_env: Callable[[int], Env], run_dir: RunDir, identity: RunIdentity,
                 device: torch.device):
        self.config, self.make_env, self.dir, self.identity, self.device = config, make_env, run_dir, identity, device
        self.bar = None
        self.logs = None

    # ---- setup -------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg, rd = self.config.run, self.dir
        rd.recover_checkpoint(self._say)
        loop = rd.read_checkpoint(LOOP, lambda p: torch.load(p, weights_only=False)) \
            if rd.checkpoint.exists() else None
        stored = rd.identity()
        identity = self.identity if stored is None else self.identity.completed_by(stored, rd.path)
        if loop is not None:
            self._check_same_config(stored is not None)
        if cfg.deterministic:
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        n = cfg.envs
        self.starts = 0 if loop is None else loop["starts"] + 1
        states = [None] * n if loop is None else loop["envs"]
        # A restored environment is the one first built; a rebuilt one gets a new index, so it
        # does not replay the episodes (with their seeds) of an earlier start.
        indices = [i if states[i] is not None else i + n * self.starts for i in range(n)]
        self.pool = EnvPool(self.make_env, indices, states)
        try:
            self._build()
            if loop is None:
                rd.set_aside_logs(self._say)
                rd.write_config(identity, to_dict(self.config), factory_name(self.make_env))
                self._start()
            else:
                self._resume(loop, indices, states)
            self.logs = rd.open_logs(self._mirrors(identity))
            self.inspector = Inspector(rd, cfg, self.logs, self.video_episodes)
            return self._loop()
        finally:
            self.pool.close()
            if self.logs is not None:
                self.logs.close()
            if self.bar is not None:
                self.bar.close()

    def _mirrors(self, identity: RunIdentity) -> list:
        if not self.config.run.wandb:
            return []
        from dreamer.inspect.wandb import WandbMirror

        name = "/".join(str(x) for x in (identity.suite, identity.variant, identity.task, f"seed{identity.seed}") if x)
        return [WandbMirror(self.dir.path, name, to_dict(self.config))]

    def _build(self) -> None:
        """The agent and replay for the environments' spaces."""
        cfg, agent_cfg = self.config.run, self.config.agent
        obs_space, act_space = self.pool.obs_space, self.pool.act_space
        for key, space in obs_space.items():
            if key.startswith("log_") and space.shape != ():
                raise EnvError(f"observation {key!r} has shape {space.shape}; log_ keys must be scalars")
            if space.is_image:
                check_image(space.shape, self.config)
        self.agent = Agent(agent_cfg, obs_space, act_space, self.device)
        keys = [*agent_keys(obs_space), *SIGNAL_KEYS]
        self.replay = Replay(
            {**{k: obs_space[k] for k in keys}, **act_space},
            {"deter": Space((agent_cfg.rssm.deter,), "float32"), "stoch": Space((agent_cfg.rssm.stoch,), "uint8")},
            self.config.replay.capacity, cfg.batch_length + 1, self.config.replay.online, cfg.seed)
        self.log_keys = [k for k in obs_space if k.startswith("log_")]

    def _start(self) -> None:
        cfg = self.config.run
        space = self.pool.act_space["action"]
        self.action = {"action": np.zeros((cfg.envs, *space.shape), space.dtype)}
        self.state = None
        self.episodes_open = [None] * cfg.envs
        self.counters = {"agent_steps": 0, "train_steps": 0, "episodes": 0, "time": 0.0}
        self.video_episodes = 0

    def _resume(self, loop: dict, indices: list[int], states: list) -> None:
        rd = self.dir
        rd.read_checkpoint(AGENT, lambda p: self.agent.load(torch.load(p, map_location=self.device)))
        state = rd.read_checkpoint(replay_files.STATE, Replay.read_state)
        rd.read_checkpoint(replay_files.ARRAYS, lambda p: self.replay.load(p, state))
        self.action, self.counters = loop["action"], loop["counters"]
        self.video_episodes = loop.get("video_episodes", 0)
        self.state = None if loop["state"] is None else {k: v.to(self.device) for k, v in loop["state"].items()}
        # Rebuilt environments start with is_first, which resets their policy state and episode.
        self.episodes_open = loop["episodes_open"]
        rng = loop["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        rd.cut_logs(loop["offsets"], self._say)
        rebuilt = [i for i, s in enumerate(states) if s is None]
        frames = loop["counters"]["agent_steps"] * self.config.run.action_repeat
        self._say(f"resuming at step {frames} (start {self.starts + 1}); "
                  + (f"environments {rebuilt} rebuilt as indices {[indices[i] for i in rebuilt]}, "
                     "their episodes in flight are lost" if rebuilt else "all environments restored"))

    def _check_same_config(self, recorded: bool) -> None:
        path = self.dir.config
        if not recorded:
            raise RunDirError(f"{path} is missing beside a checkpoint; restore it, or move the checkpoint away "
                              "to restart this run from zero")
        diff = resume_diff(self.dir.read_config()["config"], self.config)
        if diff:
            raise RunDirError(f"{path}: this run was started with a different config ({'; '.join(diff)}); "
                              "resume it with the same settings or use another run directory")

    # ---- the loop ----------------------------------------------------------------------------

    def _loop(self) -> dict:
        cfg = self.config.run
        c = self.counters
        self.t0, self.time0 = time.monotonic(), c["time"]
        self.last_log = self.last_ckpt = self.t0
        self.interval = {"metrics": {}, "report": {}, "updates": 0, "frames": 0, "t": self.t0}
        self.last_score = None
        if sys.stderr.isatty():
            self.bar = tqdm.tqdm(total=cfg.budget or None, initial=c["agent_steps"] * cfg.action_repeat,
                                 unit="frame", dynamic_ncols=True)
        governor = ThreadGovernor(torch.get_num_threads())
        while not self._finished():
            obs = self.pool.step(self.action)
            self.action, self.state = self.agent.policy(obs, self.state)
            self._record(obs)
            c["agent_steps"] += cfg.envs
            self.interval["frames"] += cfg.envs * cfg.action_repeat
            if self.bar is not None:
                self.bar.update(cfg.envs * cfg.action_repeat)
            self.inspector.observe(obs, lambda: self.pool.render(0), c["agent_steps"] * cfg.action_repeat)
            if len(self.replay) >= cfg.train_start and self.replay.windows():
                c["train_steps"] += cfg.envs
                for _ in range(updates_due(c["train_steps"], self.agent.updates, cfg.train_ratio,
                                             cfg.batch_size * cfg.batch_length)):
                    self._update()
                if self.inspector.report_due(time.monotonic()):
                    self.interval["report"] = self.inspector.report(self.agent, self.replay, c["agent_steps"] * cfg.action_repeat)
            finished = self._finished()
            if finished and cfg.report_every:  # the last report goes into the last log line
                self.interval["report"] = self.inspector.report(self.agent, self.replay, c["agent_steps"] * cfg.action_repeat)
            now = time.monotonic()
            governor(now)
            if finished or now - self.last_log >= cfg.log_every:
                self._log(now)
            if now - self.last_ckpt >= cfg.checkpoint_every:
                self._checkpoint()
                self.last_ckpt = time.monotonic()
        self._checkpoint()
        summary = {"step": c["agent_steps"] * cfg.action_repeat, "episodes": c["episodes"],
                   "updates": self.agent.updates, "time": self._time()}
        self.dir.write_done(summary)
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
                self.logs.write("scores", {"step": frames, "score": ep["score"], "length": ep["length"],
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
                **{k: total / count for k, (total, count) in sorted(iv["metrics"].items())}, **iv["report"],
                "fps/env": iv["frames"] / seconds,
                "fps/train": iv["updates"] * cfg.batch_size * cfg.batch_length / seconds,
                "updates": self.agent.updates, "episodes": c["episodes"]}
        self.logs.write("metrics", line)
        rate = iv["updates"] / seconds
        if self.bar is not None:
            self.bar.set_postfix(episodes=c["episodes"], score=self.last_score, updates_s=f"{rate:.2f}")
        else:
            score = "-" if self.last_score is None else f"{self.last_score:.4g}"
            print(f"step {line['step']} | episodes {c['episodes']} | score {score} | updates {self.agent.updates} "
                  f"({rate:.2f}/s) | fps {line['fps/env']:.1f}", flush=True)
        self.interval = {"metrics": {}, "report": {}, "updates": 0, "frames": 0, "t": now}
        self.last_log = now

    def _say(self, message: str) -> None:
        (self.bar.write if self.bar is not None else functools.partial(print, flush=True))(message)

    # ---- checkpoint --------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        self.counters["time"] = self._time()
        loop = {
            "counters": dict(self.counters), "starts": self.starts, "action": self.action,
            "state": None if self.state is None else {k: v.cpu() for k, v in self.state.items()},
            "episodes_open": self.episodes_open, "envs": self.pool.states(), "offsets": self.logs.offsets(),
            "video_episodes": self.inspector.episodes,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }

        def fill(folder):
            torch.save(self.agent.save(), folder / AGENT)
            self.replay.save(folder)
            torch.save(loop, folder / LOOP)

        self.dir.write_checkpoint(fill)
