"""What a benchmark suite is: tasks, budget, per-suite config, environment protocol, scoring rule,
resources. Suite modules import their environment library lazily, inside `make_env`, so that
planning, analysis and `--dry-run` work without it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dreamer.config import Config, check, check_image, get, make_config
from dreamer.env import Env


class SuiteError(ValueError):
    """Bad suite, task or protocol input; the message names the valid choices."""


def unknown(kind: str, name: str, valid) -> SuiteError:
    """One line naming `name` as an unknown `kind` and listing the valid choices (closest first)."""
    valid = list(valid)
    near = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return SuiteError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class ScoringRule:
    """How one run becomes one number (suites/README.md, "Scoring rules"), applied alike to published runs and ours.

    `window` is [lo, hi] in frames: the score is the mean return of training episodes ending in it;
    when none ends there, the last episode ending before `hi`.
    `normalise`: "human" (x − random) / (human − random); "scale" x / scale; "none"; "bsuite"
    (bsuite's own analysis). `success` marks a return that counts as solving the task (Minecraft:
    a diamond), reported as a fraction of runs.
    """

    description: str
    window: tuple[int, int]
    normalise: str = "none"
    scale: float = 1.0
    success: float | None = None


@dataclass(frozen=True)
class Resources:
    """Per-run resources requested from a scheduler."""

    gpus: int = 1
    cpus: int = 4
    mem_gb: int = 32
    hours: float = 24.0


@dataclass(frozen=True)
class Suite:
    """A benchmark: its tasks and how each run of it is configured, run and scored.

    `published` is the prefix of the published score files (`{published}-{method}.json.gz`) and of
    task names in them is the same as ours. `config` are dotted overrides of the fixed config
    (suites/README.md, "Settings per suite": train ratio, size, envs, action repeat). `protocol` are the environment knobs,
    recorded in each run's directory; `make_env(task, index, seed, protocol)` builds one env.
    """

    name: str
    tasks: tuple[str, ...]
    budget: int
    config: tuple[str, ...]
    protocol: dict
    scoring: ScoringRule
    resources: Resources
    make_env: Callable[..., Env]
    published: str = ""
    task_budgets: dict = field(default_factory=dict)  # task -> (frames, episodes) where it differs
    fixed: dict = field(default_factory=dict)  # dotted key -> the value every run of the suite needs

    def check_task(self, task: str) -> str:
        if task not in self.tasks:
            raise unknown(f"{self.name} task", task, self.tasks)
        return task

    def check_protocol(self, protocol: dict) -> dict:
        """The suite's protocol updated by `protocol`; unknown knobs fail naming the valid ones."""
        for key in protocol:
            if key not in self.protocol:
                raise unknown(f"{self.name} protocol knob", key, self.protocol)
        return {**self.protocol, **protocol}

    def check_settings(self, config: Config, protocol: dict) -> None:
        """What one run's settings must mean, checked before anything is submitted: the config's
        own checks, the images the protocol's `size` (height, width) gives the encoder, and the
        settings the suite fixes."""
        check(config)
        if "size" in protocol:
            check_image(tuple(protocol["size"]), config)
        for key, value in self.fixed.items():
            if get(config, key) != value:
                raise SuiteError(f"{self.name} runs need {key}={value}, got {get(config, key)}")

    def task_budget(self, task: str) -> tuple[int, int]:
        """(frames, episodes) a full run of `task` takes; 0 means no limit of that kind."""
        return self.task_budgets.get(task, (self.budget, 0))

    def run_config(self, task: str, seed: int, overrides=(), budget: int | None = None) -> Config:
        """The resolved config of one run: fixed config ← suite settings ← variant/user overrides."""
        frames, episodes = self.task_budget(self.check_task(task))
        config = make_config([*self.config, *overrides])
        config.run.seed = seed
        config.run.budget = frames if budget is None else budget
        config.run.budget_episodes = episodes if budget is None else 0
        return config


def check_no_repeat(suite: str, repeat: int) -> None:
    """Suites whose environments step one frame per agent step accept only run.action_repeat=1."""
    if repeat != 1:
        raise SuiteError(f"{suite} environments step one frame per agent step: run.action_repeat must be 1, "
                         f"got {repeat}")


def run_dir(results: Path | str, suite: str, variant: str, task: str, seed: int) -> Path:
    """The run directory results/{suite}/{variant}/{task}/seed{N} (dreamer/README.md); '/' in task ids becomes '-'."""
    return Path(results) / suite / variant / task.replace("/", "-") / f"seed{seed}"
