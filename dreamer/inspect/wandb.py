"""Weights & Biases, for those who use it (`run.wandb=true`, the `wandb` extra): every line of the
run's logs also goes to a W&B run in offline mode, which works on cluster nodes without internet;
`wandb sync <run dir>/wandb/offline-run-*` uploads it later.

The W&B run's id follows from the run directory, so every start of a run logs into the same W&B
run. W&B keeps the first value it was given for a step: after a resume it ignores the steps the
run redoes since its checkpoint (the JSONL logs and TensorBoard hold the redone values).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import wandb


class WandbMirror:
    def __init__(self, run_dir: Path, name: str, config: dict):
        run_dir = Path(run_dir).absolute()
        self.run = wandb.init(project="dreamer-bench", name=name, dir=str(run_dir), mode="offline",
                              id=hashlib.sha1(str(run_dir).encode()).hexdigest()[:16], resume="allow",
                              config=config, settings=wandb.Settings(console="off", quiet=True))

    def write(self, name: str, record: dict) -> None:
        prefix = "episode/" if name == "scores" else ""
        self.run.log({prefix + k: v for k, v in record.items() if k != "step"}, step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()
        wandb.teardown()  # the service process writes the offline file: wait until it has
