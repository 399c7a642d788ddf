"""One training run, started by a suite's job or by hand: checks the settings, takes the run's
lock and runs (or continues) the training loop (dreamer/loop.py) in its run directory
(dreamer/rundir.py; dreamer/README.md, "Run directory and log schema", "Resume").

Starting a run again continues it from its checkpoint; a finished run does nothing. A run has one
writer: a start while another process trains the run is refused with the holder's pid and host,
and changes nothing.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import sys
from pathlib import Path
from typing import Callable

from dreamer.config import Config, ConfigError, check, make_config
from dreamer.env import Env
from dreamer.envpool import EnvError
from dreamer.rundir import RunDir, RunDirBusy, RunDirError, RunIdentity


def train(config: Config, make_env: Callable[[int], Env], run_dir: Path,
          identity: RunIdentity | None = None) -> dict:
    """Run (or continue) the run in `run_dir` until its budget; returns the summary a finished run
    records. `identity` defaults to a run known by its seed alone."""
    # Not imported at the top: both load torch, and the command line refuses a busy run before that.
    from dreamer.device import resolve_device
    from dreamer.loop import Loop

    check(config)
    device = resolve_device(config.run.device)
    identity = identity or RunIdentity(seed=config.run.seed)
    if identity.seed != config.run.seed:
        raise ConfigError(f"the run is seed {identity.seed} but run.seed is {config.run.seed}")
    rd = RunDir(run_dir)
    summary = rd.read_done()
    if summary is None:
        rd.path.mkdir(parents=True, exist_ok=True)
        with rd.hold():
            summary = rd.read_done()  # it may have finished since
            if summary is None:
                return Loop(config, make_env, rd, identity, device).run()
    print(f"{run_dir}: already done at step {summary['step']}; nothing to do", flush=True)
    return summary


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
        RunDir(args.run_dir).check_free()  # before anything slow: a second writer hears at once
    except RunDirBusy as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    try:
        factory = _load_factory(args.env)
        config = make_config([*args.set, f"run.seed={args.seed}"])
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        train(config, functools.partial(factory, args.task, seed=args.seed, repeat=config.run.action_repeat),
              args.run_dir, RunIdentity(task=args.task, seed=args.seed))
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except EnvError as exc:
        # A ValueError from the factory is a bad name (task, protocol): a usage error.
        parser.exit(2 if isinstance(exc.__cause__, ValueError) else 1, f"{parser.prog}: error: {exc}\n")
    except RunDirError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
