import copy

import numpy as np
import pytest
import torch

from dreamer.config import OptimConfig
from dreamer.optim import LaProp


def reference_step(p, g, nu, mom, t, cfg):
    """Float64 LaProp + AGC written out from SPEC §1."""
    pnorm = max(cfg.pmin, np.linalg.norm(p))
    g = g / max(1.0, np.linalg.norm(g) / (cfg.agc * pnorm))
    nu = cfg.beta2 * nu + (1 - cfg.beta2) * g**2
    u = g / np.sqrt(nu / (1 - cfg.beta2**t) + cfg.eps)
    mom = cfg.beta1 * mom + (1 - cfg.beta1) * u
    lr = cfg.lr * min(1.0, t / cfg.warmup)
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
    for t in range(1, 4):
        grads = [rng.normal(size=p0.shape) * gscale, rng.normal(size=4) * gscale]
        for param, g in zip(params, grads):
            param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ref = [reference_step(p, g, nu, m, t, cfg) for (p, nu, m), g in zip(ref, grads)]
        for param, (p, _, _) in zip(params, ref):
            np.testing.assert_allclose(param.detach().numpy(), p, rtol=1e-6, atol=1e-12)


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
