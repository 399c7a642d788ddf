"""`python -m dreamer.evaluate --run-dir DIR --episodes N`: play episodes with a run's latest
checkpoint and write their scores (dreamer/README.md, "Looking inside a run").

It reads the run directory only, and never takes its lock, so it works on a run that is training:
the checkpoint's agent file is opened once (a swap that replaces it later leaves the open file
readable) and nothing of the run is changed. Its results go to `eval/<time>/` in the run directory:
`scores.jsonl` (one line per episode), `summary.json` and, with `--video`, one video per episode.

These are not the scores the paper's protocol reports: those are the training episodes of the
run (its scores.jsonl), played by the policy while it learned, sampling its actions. An evaluation
plays the checkpoint's fixed policy, by default also sampling (`--policy mode` takes the most likely
action), on environments seeded apart from the training ones.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from dreamer.config import ConfigError, from_dict, upgrade
from dreamer.rundir import EVAL, RunDir, RunDirError

# Evaluation environments are built as index EVAL_INDEX: env_seed (seed · 1000 + index) gives them
# seeds of their own, apart from the training environments' 0, 1, ...
EVAL_INDEX = 999


class EvaluateError(ValueError):
    """What stops an evaluation, in one line."""


def load_run(run_dir: Path, env: str | None):
    """(config, identity record, environment factory) of the run in `run_dir`."""
    rd = RunDir(run_dir)
    try:
        record = rd.read_config()
    except RunDirError as exc:
        raise EvaluateError(str(exc)) from None
    if record is None:
        raise EvaluateError(f"{run_dir}: no config.json; not a run directory (or the run has not started)")
    try:
        config = from_dict(upgrade(record["config"]))
    except (KeyError, ConfigError) as exc:
        raise EvaluateError(f"{rd.config}: not a config this version reads ({exc})") from None
    name = env or record.get("env")
    if not name:
        raise EvaluateError(f"{rd.config} records no environment factory; name it with --env MODULE:FUNCTION")
    module, _, function = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError, ValueError) as exc:
        raise EvaluateError(f"environment factory {name!r}: {exc}") from None
    return config, record, factory


def load_agent(run_dir: Path, config, obs_space, act_space, device):
    import torch

    from dreamer.agent import Agent

    rd = RunDir(run_dir)
    try:
        f = rd.open_checkpoint_file("agent.pt")
    except FileNotFoundError:
        raise EvaluateError(f"{run_dir}: no complete checkpoint yet") from None
    with f:
        try:
            state = torch.load(f, map_location=device)
            agent = Agent(config.agent, obs_space, act_space, device)
            agent.load(state)
        except Exception as exc:  # a torn or foreign file: one line, whatever torch raised
            reason = (str(exc).strip().splitlines() or [""])[0]
            raise EvaluateError(f"{f.name} is unreadable ({type(exc).__name__}: {reason})") from None
    return agent


def evaluate(run_dir: Path, episodes: int, mode: bool = False, video: bool = False, env: str | None = None) -> dict:
    """Play `episodes` episodes with the run's checkpoint; returns the summary written beside
    the scores in `run_dir/eval/<time>/`."""
    from dreamer.device import resolve_device
    from dreamer.inspect.video import write_mp4

    config, record, factory = load_run(run_dir, env)
    protocol = {"protocol": record["protocol"]} if record.get("protocol") is not None else {}
    make = functools.partial(factory, record.get("task"), seed=record.get("seed", 0),
                             repeat=config.run.action_repeat, **protocol)
    try:
        environment = make(EVAL_INDEX)
    except Exception as exc:  # the factory's own checks (an unknown task, a missing library): one line
        raise EvaluateError(f"building the environment of {record.get('task')!r} failed: {type(exc).__name__}: {exc}") \
            from None
    device = resolve_device(config.run.device)
    try:
        agent = load_agent(run_dir, config, environment.obs_space, environment.act_space, device)
        out = RunDir(run_dir).path / EVAL / time.strftime("%Y%m%d-%H%M%S")
        out.mkdir(parents=True, exist_ok=False)
        scores = []
        for episode in range(episodes):
            frames = {"obs": [], "render": []}
            # Counted as training counts episodes: every observation, the first (reward 0) included.
            obs, state, score, length = environment.step({"action": _noop(environment)}), None, 0.0, 1
            while True:
                batch = {k: np.asarray(v)[None] for k, v in obs.items()}
                if video:
                    _keep_frames(frames, batch, environment)
                action, state = agent.policy(batch, state, mode=mode)
                if obs["is_last"]:
                    break
                obs = environment.step({k: v[0] for k, v in action.items()})
                score += float(obs["reward"])
                length += 1
            scores.append({"episode": episode, "score": score, "length": length})
            with open(out / "scores.jsonl", "a") as f:
                f.write(json.dumps(scores[-1]) + "\n")
            for kind, images in frames.items():
                if images:
                    write_mp4(out / f"episode{episode:03d}_{kind}.mp4", np.stack(images))
    finally:
        environment.close()
    values = [s["score"] for s in scores]
    summary = {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "episodes": len(values),
               "policy": "mode" if mode else "sample", "updates": agent.updates, "folder": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _noop(environment) -> np.ndarray:
    space = environment.act_space["action"]
    return np.zeros(space.shape, space.dtype)


def _keep_frames(frames: dict, batch: dict, environment) -> None:
    images = [k for k, v in batch.items() if v.ndim == 4 and v.dtype == np.uint8]
    if images:
        frames["obs"].append(batch[images[0]][0])
    frame = environment.render() if hasattr(environment, "render") else None
    if frame is not None:
        frames["render"].append(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dreamer.evaluate",
        description="Play episodes with a run's latest checkpoint and write their scores into "
                    "<run dir>/eval/<time>/. Works on a run that is training: it takes no lock and "
                    "changes nothing of the run.")
    parser.add_argument("--run-dir", required=True, type=Path, help="the run directory")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play (default %(default)s)")
    parser.add_argument("--policy", choices=("sample", "mode"), default="sample",
                        help="sample actions as in training, or take the most likely one (default %(default)s)")
    parser.add_argument("--video", action="store_true", help="also write a video of each episode")
    parser.add_argument("--env", metavar="MODULE:FUNCTION",
                        help="environment factory, for runs whose config.json records none")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.exit(2, f"{parser.prog}: error: --episodes must be at least 1, got {args.episodes}\n")
    try:
        summary = evaluate(args.run_dir, args.episodes, args.policy == "mode", args.video, args.env)
    except EvaluateError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"{args.run_dir}: mean score {summary['mean']:.4g} ± {summary['std']:.3g} (std) over "
          f"{summary['episodes']} episodes, policy {summary['policy']}, checkpoint at {summary['updates']:,} updates; "
          f"scores in {summary['folder']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
