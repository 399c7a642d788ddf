import copy

import numpy as np
import pytest
import torch

from dreamer.config import OptimConfig
from dreamer.optim import LaProp


def reference_step(p, g, nu, mom, t, cfg):
    """Float64 LaProp + AGC written out as the reference computes it: ε after the square root,
    warm-up evaluated at the count before the update."""
    pnorm = max(cfg.pmin, np.linalg.norm(p))
    g = g / max(1.0, np.linalg.norm(g) / (cfg.agc * pnorm))
    nu = cfg.beta2 * nu + (1 - cfg.beta2) * g**2
    u = g / (np.sqrt(nu / (1 - cfg.beta2**t)) + cfg.eps)
    mom = cfg.beta1 * mom + (1 - cfg.beta1) * u
    lr = cfg.lr * min(1.0, (t - 1) / cfg.warmup)
    return p - lr * mom / (1 - cfg.beta1**t), nu, mom


@pytest.mark.parametrize("gscale", [1e-3, 1e3])  # unclipped and AGC-clipped gradients
def test_laprop_agc_matches_float64_reference(gscale):
    cfg = OptimConfig(lr=1e-2, warmup=4)
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 5))
    small = np.full(4, 1e-5)  # below pmin: the clip uses max(1e-3, ‖p‖)
    params = [torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64)),
              torch.nn.Parameter(torch.tensor(small, dtype=torch.float64))]
    opt = LaProp(params, cfg)
    ref = [(p0.copy(), np.zeros_like(p0), np.zeros_like(p0)), (small.copy(), np.zeros(4), np.zeros(4))]
    for t in range(1, 6):
        grads = [rng.normal(size=p0.shape) * gscale, rng.normal(size=4) * gscale]
        for param, g in zip(params, grads):
            param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ref = [reference_step(p, g, nu, m, t, cfg) for (p, nu, m), g in zip(ref, grads)]
        for param, (p, _, _) in zip(params, ref):
            np.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-6, atol=1e-9)  # fp32 state


def test_laprop_state_round_trip():
    cfg = OptimConfig()
    w = torch.nn.Parameter(torch.ones(3))
    opt = LaProp([w], cfg)
    w.grad = torch.ones(3)
    opt.step()
    state = copy.deepcopy(opt.state_dict())  # as a checkpoint round trip would
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = LaProp([w2], cfg)
    opt2.load_state_dict(state)
    for o, p in ((opt, w), (opt2, w2)):
        p.grad = torch.full((3,), 0.5)
        o.step()
    assert torch.equal(w, w2)


def test_five_steps_by_hand_first_update_zero_and_tiny_gradients_take_full_steps():
    """A constant gradient makes every normalised update exactly 1 (ν̂ = g², m̂ = 1), so each
    step moves a parameter by the learning rate alone: lr·min(1, (t − 1)/warmup) with lr 0.1 and
    warm-up 2 gives 0, 0.05, 0.1, 0.1, 0.1. The second parameter's gradient is 1e-11: with ε inside
    the square root (√(1e-22 + 1e-20)) its steps would shrink to a tenth; outside they do not."""
    cfg = OptimConfig(lr=0.1, warmup=2)
    a = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([1e-5], dtype=torch.float64))
    opt = LaProp([a, b], cfg)
    got_a, got_b = [], []
    for _ in range(5):
        a.grad = torch.tensor([0.1], dtype=torch.float64)
        b.grad = torch.tensor([1e-11], dtype=torch.float64)
        opt.step()
        got_a.append(a.item())
        got_b.append(b.item())
    np.testing.assert_allclose(got_a, [1.0, 0.95, 0.85, 0.75, 0.65], rtol=1e-6)  # fp32 state
    np.testing.assert_allclose(np.array(got_b) - 1e-5, [0.0, -0.05, -0.15, -0.25, -0.35], atol=1e-7)
