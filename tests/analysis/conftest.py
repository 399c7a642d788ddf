"""Shared test inputs: the published files (the `baselines` fixture of tests/conftest.py) read
independently of analysis/, and run directories written in the exact format of dreamer/README.md, "Run directory and log schema" (config.json + scores.jsonl)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

@pytest.fixture(scope="session")
def gamer(baselines) -> dict:
    """task -> [random, human] straight from the published baselines.yaml."""
    return yaml.safe_load((baselines / "baselines.yaml").read_text())["atari57_gamer"]


@pytest.fixture(scope="session")
def published_scores(baselines, gamer):
    """Independent of analysis/: (method, task) -> (seeds,) human-normalised Atari100k scores by
    the scoring rule of suites/README.md, read with gzip + json + numpy only."""
    def compute(method: str) -> dict[str, np.ndarray]:
        with gzip.open(baselines / f"atari100k-{method}.json.gz", "rt") as f:
            runs = json.load(f)
        scores = {}
        for run in sorted(runs, key=lambda r: r["seed"]):
            xs = np.array(run["xs"], float)
            ys = np.array([np.nan if y is None else y for y in run["ys"]], float)
            ok = ~np.isnan(ys)
            inside = ok & (xs >= 390_000) & (xs <= 400_000)
            raw = ys[inside].mean() if inside.any() else ys[ok & (xs <= 400_000)][-1]
            lo, hi = gamer[run["task"]]
            scores.setdefault(run["task"], []).append((raw - lo) / (hi - lo))
        return {task: np.array(v) for task, v in scores.items()}
    return compute


@pytest.fixture
def make_run():
    """Write one run directory of ours: make_run(results, suite, variant, task, seed,
    episodes=[(step, score), ...], budget=..., shortened=...)."""
    def write(results: Path, suite: str, variant: str, task: str, seed: int, episodes,
              budget: int, shortened: bool = False) -> Path:
        run = Path(results) / suite / variant / task.replace("/", "-") / f"seed{seed}"  # as suites.base.run_dir
        run.mkdir(parents=True)
        config = {"suite": suite, "task": task, "seed": seed, "variant": variant,
                  "protocol": {}, "shortened": shortened,
                  "config": {"size": "size200m",
                             "run": {"budget": budget, "seed": seed, "action_repeat": 4}}}
        (run / "config.json").write_text(json.dumps(config))
        (run / "scores.jsonl").write_text("".join(
            json.dumps({"step": step, "score": score, "length": 1000}) + "\n"
            for step, score in episodes))
        return run
    return write
