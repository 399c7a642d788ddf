"""What a person looks at during and after a run (dreamer/README.md, "Looking inside a run"): the
world model's open-loop predictions, recorded training episodes, TensorBoard's mirror of the logs
(dreamer/inspect/tensorboard.py) and evaluations of a checkpoint (dreamer/evaluate.py).

`Inspector` is the training loop's one hook for the first two. It reads what it needs through
`Agent.report`, `Replay.peek` and the environments' optional `render()`, and changes nothing that
training computes: reports draw their batch with a generator of their own and leave the agent's
random streams as they were, so a run with reports and videos trains exactly as one without.
"""
from __future__ import annotations

import time

import numpy as np

from dreamer.config import RunConfig
from dreamer.inspect import openloop
from dreamer.inspect.video import png_bytes, write_mp4
from dreamer.rundir import REPORT, VIDEOS, Logs, RunDir

REPORT_SEQUENCES = 6  # replayed sequences per report, as the reference shows


def openloop_errors(key: str, truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The imagined steps' mean squared error (B, T', ...) as `report/openloop/<key>`: per pixel
    value on 0..1 for images; per entry for vectors, and over the entries whose truth is non-zero
    (`/nonzero`: on sparse boards such as catch's, the objects the model must foresee)."""
    scale = 255.0 if truth.dtype == np.uint8 else 1.0
    err = np.square(pred.astype(np.float32) / scale - truth.astype(np.float32) / scale)
    out = {f"report/openloop/{key}": float(err.mean())}
    if truth.dtype != np.uint8 and (truth != 0).any():
        out[f"report/openloop/{key}/nonzero"] = float(err[truth != 0].mean())
    return out


class Inspector:
    def __init__(self, run_dir: RunDir, run: RunConfig, logs: Logs, episodes: int = 0):
        self.dir, self.run, self.logs = run_dir, run, logs
        self.episodes = episodes  # episodes environment 0 has begun: which ones are recorded
        self.last_report: float | None = None
        self.recording: dict[str, list] | None = None

    # ---- open-loop reports ---------------------------------------------------------------------

    def report_due(self, now: float) -> bool:
        return bool(self.run.report_every) and (self.last_report is None
                                                or now - self.last_report >= self.run.report_every)

    def report(self, agent, replay, step: int) -> dict[str, float]:
        """Write the open-loop views of REPORT_SEQUENCES replayed sequences of run.report_length
        steps, the first half observed, the rest imagined; returns the report's metrics
        (`report/...`, for the next log line). Nothing when replay holds no such sequence yet."""
        length = min(self.run.report_length, replay.length - 1)  # no longer than a training sequence
        if not replay.windows():
            return {}
        start = time.monotonic()
        data, carry, _ = replay.peek(REPORT_SEQUENCES, length + 1, np.random.default_rng(step))
        carry["stoch"] = carry["stoch"].astype(np.int64)
        metrics, views = agent.report(data, carry, context=length // 2)
        folder = self.dir.path / REPORT
        vectors, scores = {}, {}
        for key, (truth, pred) in views.items():
            scores.update(openloop_errors(key, truth[:, length // 2:], pred[:, length // 2:]))
            if truth.ndim == 5:
                write_mp4(folder / f"{key}_step{step:09d}.mp4", openloop.video(truth, pred, length // 2), fps=8)
                image = openloop.strip(truth, pred, length // 2)
                (folder / f"{key}_step{step:09d}.png").write_bytes(png := png_bytes(image))
                self.logs.image(f"openloop/{key}", png, *image.shape[:2], step)
            else:
                vectors[key] = (truth, pred)
        if vectors:
            truth, pred = (np.concatenate([v[i] for v in vectors.values()], -1) for i in (0, 1))
            openloop.vector_figure(truth, pred, length // 2, folder / f"vectors_step{step:09d}.png",
                                   f"open loop at frame {step:,}: {', '.join(vectors)}")
        self.last_report = time.monotonic()
        return {**{f"report/{k}": v for k, v in metrics.items() if k.startswith(("loss/", "rec/", "kl/"))},
                **scores, "report/seconds": self.last_report - start}

    # ---- episode videos ------------------------------------------------------------------------

    def observe(self, obs: dict[str, np.ndarray], render, step: int) -> None:
        """After each environment step: record environment 0's episode when it is one of every
        run.video_every, from its first image observation and, where the environment can
        render, its full-resolution frames (`render()`: an array, or None)."""
        every = self.run.video_every
        if not every:
            return
        if obs["is_first"][0]:
            self.episodes += 1
            self.recording = {"obs": [], "render": []} if (self.episodes - 1) % every == 0 else None
        if self.recording is None:
            return
        images = [k for k, v in obs.items() if v.ndim == 4 and v.dtype == np.uint8]
        if images:
            self.recording["obs"].append(obs[images[0]][0])
        frame = render()
        if frame is not None:
            self.recording["render"].append(frame)
        if obs["is_last"][0]:
            name = f"episode{self.episodes:05d}_step{step:09d}"
            for kind, frames in self.recording.items():
                if frames:
                    write_mp4(self.dir.path / VIDEOS / f"{name}_{kind}.mp4", np.stack(frames),
                              fps=30 if kind == "render" else 15)
            self.recording = None
