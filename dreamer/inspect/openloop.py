"""Open-loop predictions drawn for people (dreamer/README.md, "Looking inside a run"): what the world
model predicts on replayed sequences, where the posterior observes the first steps and the prior
imagines the rest under the recorded actions (`Agent.report`).

Images become a video and a PNG strip of truth / prediction / error panels, each bordered green
while the model observes and red once it imagines (the reference's colours); the error panel is
mid-grey (127) where prediction and truth agree, lighter where the prediction is brighter.
Vectors become a figure of truth, prediction and error heatmaps over the steps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

OBSERVED, IMAGINED = (0, 255, 0), (255, 0, 0)
BORDER = 2


def error_panel(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(..., C) uint8 pairs → (pred − truth + 255) / 2 as uint8: 127 where they agree."""
    return ((pred.astype(np.int16) - truth.astype(np.int16) + 255) // 2).astype(np.uint8)


def panels(truth: np.ndarray, pred: np.ndarray, context: int) -> np.ndarray:
    """truth, pred (B, T, H, W, C) uint8 → (B, T, 3·(H+2b), W+2b, 3): per sequence and step the
    truth, prediction and error stacked, each bordered by b pixels, green for the first `context`
    steps and red after. Grey images (C = 1) are shown in RGB."""
    truth, pred = (np.repeat(x, 3, -1) if x.shape[-1] == 1 else x for x in (truth, pred))
    b = BORDER
    colour = np.array([OBSERVED if t < context else IMAGINED for t in range(truth.shape[1])], np.uint8)
    framed = []
    for image in (truth, pred, error_panel(truth, pred)):
        x = np.pad(image, ((0, 0), (0, 0), (b, b), (b, b), (0, 0)))
        inside = np.zeros(x.shape[2:4], bool)
        inside[b:-b, b:-b] = True
        framed.append(np.where(inside[None, None, :, :, None], x, colour[None, :, None, None, :]))
    return np.concatenate(framed, 2)


def video(truth: np.ndarray, pred: np.ndarray, context: int) -> np.ndarray:
    """The open-loop video (T, 3·(H+2b), B·(W+2b), 3): sequences side by side."""
    p = panels(truth, pred, context)
    return np.concatenate(list(p), 2)


def strip(truth: np.ndarray, pred: np.ndarray, context: int, sequence: int = 0) -> np.ndarray:
    """One sequence's steps side by side (3·(H+2b), T·(W+2b), 3): an image of the whole rollout."""
    p = panels(truth[sequence:sequence + 1], pred[sequence:sequence + 1], context)[0]
    return np.concatenate(list(p), 1)


def vector_figure(truth: np.ndarray, pred: np.ndarray, context: int, path: Path | str, title: str,
                  sequences: int = 3) -> Path:
    """truth, pred (B, T, D) float → a PNG with, per sequence (at most `sequences`), heatmaps of
    the true and predicted entries and of their difference over the T steps, a line where the
    prior starts to imagine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(sequences, truth.shape[0])
    lim = float(max(np.abs(truth[:n]).max(), np.abs(pred[:n]).max(), 1e-6))
    fig, axes = plt.subplots(n, 3, figsize=(11, 1.2 + 0.6 * n * max(2, min(truth.shape[2], 40)) / 4),
                             squeeze=False, sharex=True)
    for i in range(n):
        for ax, data, name in zip(axes[i], (truth[i], pred[i], pred[i] - truth[i]), ("truth", "prediction", "error")):
            image = ax.imshow(data.T, aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.axvline(context - 0.5, color="black", lw=1)
            ax.set_title(f"sequence {i}: {name}", fontsize=9)
            ax.set_ylabel("entry")
    for ax in axes[-1]:
        ax.set_xlabel(f"step (observed < {context} ≤ imagined)")
    fig.colorbar(image, ax=axes, shrink=0.6)
    fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
