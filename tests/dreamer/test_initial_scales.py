"""The image path starts where the reference's starts: the scale of every stage of a freshly built
size1m Atari agent, over initialisation seeds, against the reference implementation's.

The batch (fixtures/road_runner_batch.npz) is 16 windows of 65 steps of real Road Runner frames
from our atari100k adapter, played at random (seed 0), with an episode start at step 1 of every
window so the carried latent plays no part. The reference's figures below are the mean and
standard deviation over its initialisation seeds 0–19 of the same statistics on the same batch,
computed with the official JAX implementation (danijar/dreamerv3 at e3f0224; configs `atari100k
size1m`, float32 on the CPU), its own sampling, and read from its loss function's outputs: the
image loss, the KL terms, the encoder's tokens, the decoder's output through the inverse sigmoid,
the posterior and prior logits and deter. tests/fidelity/README.md says how to compute them again.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamer.agent import Agent
from dreamer.config import make_config
from dreamer.env import Space, signal_spaces

BATCH = Path(__file__).parent / "fixtures" / "road_runner_batch.npz"
SEEDS = range(5)

# statistic: (mean, std) over the reference's seeds 0–19.
REFERENCE_SEEDS = 20
REFERENCE = {
    "loss/image": (2018.77, 134),
    "loss/con": (0.691747, 0.163),
    "loss/dyn": (7.585, 1.35),
    "tokens.mean": (0.449657, 0.0715),
    "tokens.std": (0.620635, 0.0431),
    "dec_pre.mean": (-0.0163603, 0.127),
    "dec_pre.std": (0.539754, 0.0778),
    "post_logit.mean": (0.0128694, 0.067),
    "post_logit.std": (0.594185, 0.0609),
    "prior_logit.mean": (-0.000894196, 0.0391),
    "prior_logit.std": (0.587396, 0.0624),
    "deter.mean": (0.000160291, 0.00345),
    "deter.std": (0.0733502, 0.0026),
}
# Zero-initialised heads predict exactly 0 (reward) and the same values (replay value) in both.
EXACT = {"loss/rew": 5.54126, "loss/repval": 11.0275}


def initial_statistics(seed: int, batch: dict) -> dict[str, float]:
    torch.manual_seed(seed)
    config = make_config(["size=size1m", "agent.precision=float32"])
    spaces = {"image": Space((64, 64, 3), "uint8", low=0, high=255), **signal_spaces()}
    agent = Agent(config.agent, spaces, {"action": Space((), "int32", discrete=18)})
    m, seen, posts = agent.model, {}, []
    hooks = [m["enc"].register_forward_hook(lambda mod, i, out: seen.setdefault("tokens", out)),
             m["dec"].cnn.net.register_forward_hook(lambda mod, i, out: seen.setdefault("dec_pre", out)),
             m["rssm"].post_net.register_forward_hook(lambda mod, i, out: posts.append(out)),
             # the world model's prior reads (B, T, D); imagination's reads (N, D)
             m["rssm"].prior_net.register_forward_hook(
                 lambda mod, i, out: seen.setdefault("prior_logit", out) if i[0].dim() == 3 else None)]
    carry = {"deter": np.zeros((16, 512), np.float32), "stoch": np.zeros((16, 32), np.int64)}
    with torch.no_grad():
        losses, _, latents = agent.loss(agent._tensors(batch), agent._tensors(carry))
    for hook in hooks:
        hook.remove()
    seen.update(post_logit=torch.stack(posts, 1), deter=latents["deter"])
    scales = config.agent.loss
    out = {f"loss/{'image' if k == 'rec' else k}": float(v) / getattr(scales, k) for k, v in losses.items()}
    for name, value in seen.items():
        out[f"{name}.mean"], out[f"{name}.std"] = float(value.double().mean()), float(value.double().std())
    return out


@pytest.fixture(scope="module")
def ours() -> dict[str, list[float]]:
    with np.load(BATCH) as f:
        batch = {k: f[k] for k in f.files}
    runs = [initial_statistics(seed, batch) for seed in SEEDS]
    return {k: [r[k] for r in runs] for k in runs[0]}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_stage_starts_at_the_references_scale(ours, name):
    ref_mean, ref_std = REFERENCE[name]
    values = ours[name]
    # Their means agree within 3 standard errors of the difference (20 seeds there, 5 here).
    se = math.sqrt(ref_std**2 / REFERENCE_SEEDS + statistics.stdev(values) ** 2 / len(values))
    assert abs(statistics.fmean(values) - ref_mean) <= 3 * se, (name, statistics.fmean(values), ref_mean, se)


def test_zero_initialised_heads_give_the_references_losses_exactly(ours):
    for name, value in EXACT.items():
        assert ours[name] == pytest.approx([value] * len(SEEDS), rel=1e-5), name
