"""The recurrent state-space model with a block GRU (dreamer/README.md, "World model"): observe scans over T, imagine
over H. The state is (h, z): deter h (…, D) and one-hot stoch z (…, S, K)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dreamer.config import RSSMConfig
from dreamer.distributions import straight_through_sample, unimix_probs
from dreamer.nets import BlockLinear, Dense, Linear, RMSNorm


class RSSM(nn.Module):
    def __init__(self, cfg: RSSMConfig, embed_dim: int, act_dim: int):
        super().__init__()
        D, H, S, K, G = cfg.deter, cfg.hidden, cfg.stoch, cfg.classes, cfg.blocks
        self.cfg = cfg
        self.deter_in, self.stoch_in, self.act_in = Dense(D, H), Dense(S * K, H), Dense(act_dim, H)
        self.gru_hidden = BlockLinear(D + G * 3 * H, D, G)
        self.gru_norm = RMSNorm(D)
        self.gru_gates = BlockLinear(D, 3 * D, G)
        self.prior_net = nn.Sequential(Dense(D, H), Dense(H, H), Linear(H, S * K))
        self.post_net = nn.Sequential(Dense(D + embed_dim, H), Linear(H, S * K))

    @property
    def feat_dim(self) -> int:
        return self.cfg.deter + self.cfg.stoch * self.cfg.classes

    def initial(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        return (torch.zeros(n, cfg.deter, device=device),
                torch.zeros(n, cfg.stoch, cfg.classes, device=device))

    def core(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(N, D), (N, S, K), (N, A) → next deter (N, D)."""
        G, n = self.cfg.blocks, h.shape[0]
        action = action / action.abs().clamp(min=1.0).detach()
        x = torch.cat([self.deter_in(h), self.stoch_in(z.flatten(1)), self.act_in(action)], -1)
        # Block-major (G, N, ·) from here: each block sees its own slice of h plus the whole
        # shared input, and both block-diagonal layers are single batched matmuls.
        hb = h.reshape(n, G, -1).transpose(0, 1)
        x = torch.cat([hb.to(x.dtype), x.expand(G, n, x.shape[-1])], -1)
        x = torch.nn.functional.silu(self.gru_norm.blockwise(self.gru_hidden(x)))
        reset, cand, update = self.gru_gates(x).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        out = update * cand + (1.0 - update) * hb
        return out.transpose(0, 1).reshape(n, -1).to(h.dtype)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., S·K) logits → (..., S, K) unimix probabilities."""
        logits = logits.reshape(*logits.shape[:-1], self.cfg.stoch, self.cfg.classes)
        return unimix_probs(logits, self.cfg.unimix)

    def prior(self, h: torch.Tensor) -> torch.Tensor:
        """(..., D) → prior probs (..., S, K)."""
        return self.probs(self.prior_net(h))

    def noise(self, *lead: int, device=None) -> torch.Tensor:
        """Uniforms (*lead, S, 1) for sampling the latents, drawn up front for a whole scan."""
        return torch.rand(*lead, self.cfg.stoch, 1, device=device)

    def obs_step(self, h, z, action, embed, is_first, u):
        """One posterior step from the carried state; the carry and previous action are zeroed
        where `is_first` (N,); u (N, S, 1) samples the latent. Returns h' (N, D), z' (N, S, K)
        sample, post probs (N, S, K)."""
        keep = (~is_first).to(h.dtype)[:, None]
        h, action = h * keep, action * keep
        z = z * keep[..., None]
        h = self.core(h, z, action)
        post = self.probs(self.post_net(torch.cat([h, embed.to(h.dtype)], -1)))
        return h, straight_through_sample(post, u).to(h.dtype), post

    def img_step(self, h, z, action, u):
        """One prior step: h' (N, D) and a latent z' (N, S, K) sampled with u (N, S, 1)."""
        h = self.core(h, z, action)
        return h, straight_through_sample(self.prior(h), u).to(h.dtype)

    def observe(self, h, z, prev_action, embed, is_first):
        """Scan over T from the carry (h (B, D), z (B, S, K)).

        prev_action (B, T, A) is the action that led into each step, embed (B, T, E),
        is_first (B, T). Returns hs (B, T, D), zs (B, T, S, K), post probs (B, T, S, K).
        """
        hs, zs, posts = [], [], []
        noise = self.noise(embed.shape[1], embed.shape[0], device=embed.device)
        for t in range(embed.shape[1]):
            h, z, post = self.obs_step(h, z, prev_action[:, t], embed[:, t], is_first[:, t], noise[t])
            hs.append(h)
            zs.append(z)
            posts.append(post)
        return torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(posts, 1)

    def imagine(self, h, z, policy: Callable[[torch.Tensor], torch.Tensor], horizon: int,
                dtype: torch.dtype = torch.float32):
        """Roll the prior forward from gradient-stopped starts h (N, D), z (N, S, K) with actions
        from `policy(feat) -> action (N, A)`. The dynamics run without gradients; `policy` is
        called outside `no_grad`, so it may keep a graph for the actor's own parameters.
        Returns feats (N, H+1, F) in `dtype` and actions (N, H+1, A): action t is taken at state
        t; the last is sampled but never executed. Under bf16 autocast, feats made bf16 here are
        what every head's first matmul would cast them to, once instead of once per head."""
        h, z = h.detach(), z.detach()
        noise = self.noise(horizon, h.shape[0], device=h.device)
        feats, actions = [], []
        for t in range(horizon + 1):
            feat = torch.cat([h, z.flatten(1)], -1).to(dtype)
            action = policy(feat).detach()
            feats.append(feat)
            actions.append(action)
            if t < horizon:
                with torch.no_grad():
                    h, z = self.img_step(h, z, action, noise[t])
        return torch.stack(feats, 1), torch.stack(actions, 1)
