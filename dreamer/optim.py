"""The single optimizer (dreamer/README.md): adaptive gradient clipping per tensor, then RMS normalisation
(β2, bias-corrected, ε added after the square root), then momentum on the normalised update (β1,
bias-corrected) — LaProp's order, not Adam's — with a linear learning-rate warm-up and no weight
decay. As in the reference, the warm-up is evaluated at the count *before* the update: the first
update has learning rate 0 and the full rate is reached at update warmup + 1."""
from __future__ import annotations

import torch

from dreamer.config import OptimConfig


class LaProp(torch.optim.Optimizer):
    def __init__(self, params, cfg: OptimConfig):
        defaults = dict(lr=cfg.lr, agc=cfg.agc, pmin=cfg.pmin, beta1=cfg.beta1, beta2=cfg.beta2,
                        eps=cfg.eps, warmup=cfg.warmup)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["nu"] = torch.zeros_like(p, dtype=torch.float32)
                    state["mom"] = torch.zeros_like(p, dtype=torch.float32)
            step = self.state[params[0]]["step"] + 1
            b1, b2 = group["beta1"], group["beta2"]
            grads = [p.grad.float() for p in params]
            # u ← u / max(1, ‖u‖ / (agc · max(pmin, ‖p‖))) per tensor.
            gnorm = torch._foreach_norm(grads)
            pnorm = torch._foreach_norm([p.detach().float() for p in params])
            limit = torch._foreach_mul(torch._foreach_maximum(pnorm, group["pmin"]), group["agc"])
            factor = torch._foreach_div(limit, torch._foreach_maximum(gnorm, 1e-30))
            torch._foreach_clamp_max_(factor, 1.0)
            torch._foreach_mul_(grads, factor)
            nus = [self.state[p]["nu"] for p in params]
            moms = [self.state[p]["mom"] for p in params]
            torch._foreach_lerp_(nus, torch._foreach_mul(grads, grads), 1.0 - b2)
            denom = torch._foreach_sqrt(torch._foreach_div(nus, 1.0 - b2**step))
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_lerp_(moms, torch._foreach_div(grads, denom), 1.0 - b1)
            lr = group["lr"] * min(1.0, (step - 1) / group["warmup"]) if group["warmup"] else group["lr"]
            torch._foreach_add_(params, torch._foreach_mul(moms, -lr / (1.0 - b1**step)))
            for p in params:
                self.state[p]["step"] = step
