"""World model + actor + critic + slow critic + return normaliser; one train step and the policy
(dreamer/README.md). Observation and action spaces come in as `dreamer.env.Space` descriptions."""
from __future__ import annotations

import contextlib
import copy
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dreamer.config import PRECISIONS, AgentConfig, HeadConfig, RSSMConfig
from dreamer.distributions import (Policy, bernoulli_loss, categorical_kl, kl_losses, symexp, symlog, twohot_bins,
                                   twohot_mean, twohot_nll)
from dreamer.env import Space, agent_keys
from dreamer.nets import MLP, ConvDecoder, ConvEncoder, Linear, RMSNorm
from dreamer.optim import LaProp
from dreamer.rssm import RSSM


class Head(nn.Module):
    """MLP on the feature → one output layer (zero-initialised when outscale is 0)."""

    def __init__(self, inp: int, out: int, layers: int, units: int, outscale: float):
        super().__init__()
        self.mlp = MLP(inp, layers, units)
        self.out = Linear(self.mlp.out_dim, out, outscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(x))


def _vector_dim(space: Space) -> int:
    return space.discrete if space.discrete else int(np.prod(space.shape, dtype=int))


def _vectors(obs: dict, keys: list[str], spaces: dict[str, Space]) -> torch.Tensor:
    """(N, ...) per key → (N, Σ dims): discrete keys one-hot, the rest flattened floats."""
    parts = []
    for k in keys:
        x = obs[k]
        if spaces[k].discrete:
            parts.append(F.one_hot(x.long(), spaces[k].discrete).float().flatten(1))
        else:
            parts.append(x.float().flatten(1))
    return torch.cat(parts, -1)


class Encoder(nn.Module):
    """Observations (N, ...) per key → embedding (N, E): CNN on the images stacked along
    channels, symlog + MLP on the concatenated vectors."""

    def __init__(self, cfg, spaces: dict[str, Space]):
        super().__init__()
        self.spaces = spaces
        self.image_keys = [k for k in spaces if spaces[k].is_image]
        self.vector_keys = [k for k in spaces if not spaces[k].is_image]
        self.out_dim = 0
        if self.image_keys:
            res = spaces[self.image_keys[0]].shape[0]
            channels = sum(spaces[k].shape[-1] for k in self.image_keys)
            self.cnn = ConvEncoder(channels, res, cfg.depth, cfg.mults, cfg.kernel)
            self.out_dim += self.cnn.out_dim
        if self.vector_keys:
            self.mlp = MLP(sum(_vector_dim(spaces[k]) for k in self.vector_keys), cfg.layers, cfg.units)
            self.out_dim += self.mlp.out_dim

    def forward(self, obs: dict) -> torch.Tensor:
        parts = []
        if self.image_keys:
            parts.append(self.cnn(torch.cat([obs[k] for k in self.image_keys], -1)))
        if self.vector_keys:
            parts.append(self.mlp(symlog(_vectors(obs, self.vector_keys, self.spaces))))
        return torch.cat(parts, -1)


class Masked(NamedTuple):
    """A metric averaged over the entries of `values` where `mask` holds, and not logged when it
    holds nowhere. Reduced in `Agent.train`, so that `Agent.loss` has no branch on data and runs on
    the meta device too (the launcher counts an update's FLOPs there)."""

    values: torch.Tensor
    mask: torch.Tensor

    def mean(self) -> torch.Tensor | None:
        return self.values[self.mask].mean() if self.mask.any() else None


class Decoder(nn.Module):
    """Feature (N, F) → per-step reconstruction loss (N,): squared error summed over H·W·C for
    images (targets x/255, sigmoid outputs) and over dims for vectors (targets symlog(x))."""

    def __init__(self, cfg, rssm: RSSMConfig, spaces: dict[str, Space]):
        super().__init__()
        feat = rssm.deter + rssm.stoch * rssm.classes
        self.spaces = spaces
        self.image_keys = [k for k in spaces if spaces[k].is_image]
        self.vector_keys = [k for k in spaces if not spaces[k].is_image]
        if self.image_keys:
            res = spaces[self.image_keys[0]].shape[0]
            channels = sum(spaces[k].shape[-1] for k in self.image_keys)
            self.cnn = ConvDecoder(rssm.deter, rssm.stoch * rssm.classes, cfg.units, rssm.blocks, channels, res,
                                   cfg.depth, cfg.mults, cfg.kernel)
        if self.vector_keys:
            dims = sum(_vector_dim(spaces[k]) for k in self.vector_keys)
            self.mlp = Head(feat, dims, cfg.layers, cfg.units, 1.0)

    def forward(self, feat: torch.Tensor, obs: dict) -> tuple[torch.Tensor, dict[str, Masked]]:
        """Returns the loss (N,) and, for vector observations, the squared errors of the entries
        whose target is non-zero and of those that are zero, to be averaged apart: on sparse
        observations (catch's board) the zero entries dominate the loss, and an object the world
        model has not yet learned shows up only in the non-zero error."""
        loss, stats = torch.zeros(feat.shape[0], device=feat.device), {}
        if self.image_keys:
            target = torch.cat([obs[k] for k in self.image_keys], -1).float() / 255.0
            loss = loss + (self.cnn(feat) - target).square().sum((1, 2, 3))
        if self.vector_keys:
            target = symlog(_vectors(obs, self.vector_keys, self.spaces))
            err = (self.mlp(feat).float() - target).square()
            loss = loss + err.sum(-1)
            nonzero = target != 0
            stats = {"rec/nonzero": Masked(err.detach(), nonzero), "rec/zero": Masked(err.detach(), ~nonzero)}
        return loss, stats

    def predict(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature (N, F) → the prediction of each observation key, in its own units: images (N, H,
        W, C) uint8, vectors (N, dims) float32 (discrete keys as their one-hot encoding)."""
        out = {}
        if self.image_keys:
            image = (self.cnn(feat).float() * 255).round().clamp(0, 255).to(torch.uint8)
            out.update(zip(self.image_keys, image.split([self.spaces[k].shape[-1] for k in self.image_keys], -1)))
        if self.vector_keys:
            vector = symexp(self.mlp(feat).float())
            out.update(zip(self.vector_keys, vector.split([_vector_dim(self.spaces[k]) for k in self.vector_keys], -1)))
        return out

    def truth(self, obs: dict) -> dict[str, torch.Tensor]:
        """Observations (N, ...) per key in the form `predict` gives them."""
        return {**{k: obs[k] for k in self.image_keys},
                **{k: _vectors(obs, [k], self.spaces) for k in self.vector_keys}}


def lambda_return(reward, cont, boot, lam, last=None):
    """λ-returns (dreamer/README.md, "Imagination and returns"). reward, cont, boot, last: (N, L+1) → (N, L).

    R_L = boot_L;  R_t = r_{t+1} + c_{t+1}·((1 − λ_{t+1})·boot_{t+1} + λ_{t+1}·R_{t+1})
    with λ_t = λ·(1 − last_t): an episode cut by a time limit bootstraps there.
    """
    lam = torch.full_like(cont, lam) if last is None else lam * (1.0 - last.float())
    rets = [boot[:, -1]]
    for t in reversed(range(reward.shape[1] - 1)):
        nxt = t + 1
        rets.append(reward[:, nxt] + cont[:, nxt] * ((1 - lam[:, nxt]) * boot[:, nxt] + lam[:, nxt] * rets[-1]))
    return torch.stack(rets[::-1][:-1], 1)


class ReturnNorm(nn.Module):
    """S = max(limit, P_hi − P_lo) with EMAs (starting at 0) of the batch percentiles."""

    def __init__(self, decay: float, perclo: float, perchi: float, limit: float):
        super().__init__()
        self.decay, self.limit = decay, limit
        self.register_buffer("q", torch.tensor([perclo / 100, perchi / 100]))
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))

    @torch.no_grad()
    def update(self, ret: torch.Tensor, update: bool = True) -> torch.Tensor:
        """The scale after moving the EMAs towards `ret`'s percentiles (only with `update`)."""
        if update:
            lo, hi = torch.quantile(ret.detach().float().flatten(), self.q)
            self.lo.lerp_(lo, 1 - self.decay)
            self.hi.lerp_(hi, 1 - self.decay)
        return (self.hi - self.lo).clamp(min=self.limit)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`agent.precision` → float32 or bfloat16. auto is bf16 autocast where matmuls have bf16
    units: measured on an AVX512-BF16 CPU, bf16 updates were 1.3–1.6× faster than fp32 at size1m
    and size12m; without such units bf16 is emulated and slower. fp16 is never used on a CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if has_bf16_matmul(torch.device(device)) else "float32"
    return precision


def has_bf16_matmul(device: torch.device) -> bool:
    """Whether bf16 matrix work is fast here: CUDA, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _floats(losses: dict, metrics: dict) -> dict[str, float]:
    """An update's scaled losses (as `loss/<name>`) and metrics as floats; `Masked` metrics averaged
    over their mask, and left out where it holds nowhere."""
    metrics = {**{f"loss/{k}": v for k, v in losses.items()}, **metrics}
    metrics = {k: v.mean() if isinstance(v, Masked) else v for k, v in metrics.items()}
    return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in metrics.items() if v is not None}


class Agent:
    """DreamerV3. `policy` acts on batched observations; `train` does one update on a replayed
    batch (B, T+1, ...) whose step 0 is the context step."""

    def __init__(self, cfg: AgentConfig, obs_space: dict[str, Space], act_space: dict[str, Space],
                 device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.obs_space = {k: obs_space[k] for k in agent_keys(obs_space)}
        space = act_space["action"]
        self.discrete = space.discrete > 0
        self.act_dim = space.discrete if self.discrete else int(np.prod(space.shape))
        self.gamma = 1.0 - 1.0 / cfg.discount_horizon
        self.bins = twohot_bins(cfg.critic.bins, self.device)
        self.reward_bins = twohot_bins(cfg.reward.bins, self.device)

        enc = Encoder(cfg.enc, self.obs_space)
        rssm = RSSM(cfg.rssm, enc.out_dim, self.act_dim)
        feat = rssm.feat_dim

        def head(c: HeadConfig, out: int) -> Head:
            return Head(feat, out, c.layers, c.units, c.outscale)

        a, c = cfg.actor, cfg.critic
        self.model = nn.ModuleDict(dict(
            enc=enc, rssm=rssm, dec=Decoder(cfg.dec, cfg.rssm, self.obs_space),
            reward=head(cfg.reward, cfg.reward.bins), cont=head(cfg.cont, 1),
            actor=Head(feat, self.act_dim * (1 if self.discrete else 2), a.layers, a.units, a.outscale),
            critic=Head(feat, c.bins, c.layers, c.units, c.outscale),
        )).to(self.device)
        self.slow_critic = copy.deepcopy(self.model["critic"]).requires_grad_(False)
        if cfg.compile:
            # The scans call these T = 64 and H = 15 times per update: compiled, each step's
            # elementwise work is fused; their sampling noise comes in as an input, so compiled
            # and eager steps draw the same samples.
            rssm.obs_step = torch.compile(rssm.obs_step, dynamic=False)
            rssm.img_step = torch.compile(rssm.img_step, dynamic=False)
            # Everywhere else, each norm with its SiLU becomes one fused kernel instead of about
            # eight passes over its input forward and more backward (dreamer/README.md,
            # "Benchmark"). All norms share one forward, compiled once per width, rank, batch and
            # dtype: about 30 graphs for training, acting and reports, beyond dynamo's default
            # limit of 8 per function, past which it would silently run the rest eagerly.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            for module in [*self.model.modules(), *self.slow_critic.modules()]:
                if isinstance(module, RMSNorm):
                    module.compile(dynamic=False)
        r = cfg.retnorm
        self.retnorm = ReturnNorm(r.decay, r.perclo, r.perchi, r.limit).to(self.device)
        self.opt = LaProp(self.model.parameters(), cfg.opt)
        self.updates = 0
        self.bf16 = resolve_precision(cfg.precision, self.device) == "bfloat16"

    # ---- helpers -----------------------------------------------------------------------------

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _matmul_dtype(self) -> torch.dtype:
        """The dtype matmuls take their inputs in here: autocast's, when it is on."""
        kind = self.device.type
        if not self.bf16 or not torch.is_autocast_enabled(kind):
            return torch.float32
        return torch.get_autocast_dtype(kind)

    def _tensors(self, data: dict) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v).to(self.device)
                for k, v in data.items()}

    def _action_vector(self, action: torch.Tensor) -> torch.Tensor:
        """Stored actions (indices or vectors) → the RSSM's action input (..., A)."""
        if self.discrete:
            return F.one_hot(action.long(), self.act_dim).float()
        return action.float()

    def _dist(self, out: torch.Tensor) -> Policy:
        a = self.cfg.actor
        return Policy(out, self.discrete, a.minstd, a.maxstd)

    def _critic_loss(self, logits: torch.Tensor, ret: torch.Tensor, slow: torch.Tensor) -> torch.Tensor:
        """(..., bins) logits → (...) two-hot cross-entropy towards the return plus slow_reg × that
        towards the slow critic's mean, sharing one log-softmax."""
        logp = torch.log_softmax(logits.float(), -1)
        return twohot_nll(logp, ret, self.bins) + self.cfg.critic.slow_reg * twohot_nll(logp, slow, self.bins)

    def _onehot_stoch(self, stoch: torch.Tensor) -> torch.Tensor:
        return F.one_hot(stoch.long(), self.cfg.rssm.classes).float()

    # ---- acting ------------------------------------------------------------------------------

    @torch.no_grad()
    def policy(self, obs: dict, state: dict | None = None, mode: bool = False):
        """obs: arrays (N, ...) per key → ({'action': (N,) int32 | (N, A) float32}, state); with
        `mode`, the policy's most likely action instead of a sample (evaluation only).

        state = {'deter': (N, D), 'stoch': (N, S) class indices, 'action': (N, A)}: its latent is
        the posterior of this step, which replay stores with the observation."""
        obs = self._tensors({k: obs[k] for k in [*self.obs_space, "is_first"]})
        n = obs["is_first"].shape[0]
        rssm = self.model["rssm"]
        if state is None:
            h, z = rssm.initial(n, self.device)
            prev = torch.zeros(n, self.act_dim, device=self.device)
        else:
            h, z, prev = state["deter"], self._onehot_stoch(state["stoch"]), state["action"]
        with self._autocast():
            embed = self.model["enc"](obs)
            h, z, _ = rssm.obs_step(h, z, prev, embed, obs["is_first"].bool(), rssm.noise(n, device=self.device))
            dist = self._dist(self.model["actor"](torch.cat([h, z.flatten(1)], -1)))
        sample = dist.mode() if mode else dist.sample()
        action = self._action_vector(sample)
        state = {"deter": h.float(), "stoch": z.argmax(-1), "action": action}
        out = sample.int() if self.discrete else sample.float()
        return {"action": out.cpu().numpy()}, state

    # ---- learning ----------------------------------------------------------------------------

    def train(self, batch: dict, carry: dict):
        """One update. batch (B, T+1, ...); carry {'deter': (B, D), 'stoch': (B, S)} of step 0.

        Returns the posterior latents of steps 1..T ({'deter': (B, T, D), 'stoch': (B, T, S)}) for
        replay to store, and a dict of float metrics."""
        data = self._tensors(batch)
        carry = self._tensors(carry)
        self.model.train()
        with self._autocast():
            losses, metrics, latents = self.loss(data, carry)
        total = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        with torch.no_grad():
            rate = self.cfg.critic.slow_rate
            for slow, fast in zip(self.slow_critic.parameters(), self.model["critic"].parameters()):
                slow.lerp_(fast, rate)
        self.updates += 1
        return latents, _floats(losses, metrics)

    def loss(self, data: dict[str, torch.Tensor], carry: dict[str, torch.Tensor], training: bool = True):
        """Scaled losses (each a scalar), metrics (scalars, or `Masked` values that `train` averages),
        and the posterior latents of steps 1..T. Without `training` (a report) it leaves the return
        normaliser as it is."""
        cfg, m = self.cfg, self.model
        scales = cfg.loss
        B, T = data["is_first"].shape[0], data["is_first"].shape[1] - 1
        obs = {k: data[k][:, 1:].flatten(0, 1) for k in self.obs_space}
        act = self._action_vector(data["action"])
        reward = data["reward"][:, 1:].float()
        term = data["is_terminal"][:, 1:].float()
        last = data["is_last"][:, 1:].float()

        # World model (dreamer/README.md, "World model"), averaged over B·T.
        embed = m["enc"](obs).reshape(B, T, -1)
        h0, z0 = carry["deter"].float(), self._onehot_stoch(carry["stoch"])
        hs, zs, post = m["rssm"].observe(h0, z0, act[:, :-1], embed, data["is_first"][:, 1:].bool())
        prior = m["rssm"].prior(hs)
        feat = torch.cat([hs, zs.flatten(2)], -1)
        dyn, rep = kl_losses(post, prior, cfg.rssm.free_nats)
        first = data["is_first"][:, 1:].bool()
        flat = feat.flatten(0, 1)
        rec, rec_stats = m["dec"](flat, obs)
        rec = rec.reshape(B, T)
        rew = twohot_nll(torch.log_softmax(m["reward"](feat).float(), -1), reward, self.reward_bins)
        con = bernoulli_loss(m["cont"](feat)[..., 0], (1.0 - term) * self.gamma)

        # Imagination from every replayed posterior state, starts gradient-stopped. The actor's
        # outputs along the way keep their graph, so the actor loss needs no second forward.
        outs = []

        def act_fn(f):
            outs.append(m["actor"](f))
            return self._action_vector(self._dist(outs[-1]).sample())

        ifeat, iact = m["rssm"].imagine(hs.flatten(0, 1), zs.flatten(0, 1), act_fn, cfg.horizon,
                                        self._matmul_dtype())
        vlogits = m["critic"](ifeat)
        with torch.no_grad():
            irew = twohot_mean(m["reward"](ifeat), self.reward_bins)
            icon = torch.sigmoid(m["cont"](ifeat)[..., 0].float())  # already includes γ
            ival = twohot_mean(vlogits.detach(), self.bins)
            islow = twohot_mean(self.slow_critic(ifeat)[:, :-1], self.bins)  # the whole ifeat: a slice would be copied
            ret = lambda_return(irew, icon, ival, cfg.lam)  # (N, H)
            weight = torch.cumprod(icon, 1)[:, :-1]
            scale = self.retnorm.update(ret, update=training)
            adv = (ret - ival[:, :-1]) / scale
        dist = self._dist(torch.stack(outs[:-1], 1))
        taken = iact[:, :-1].argmax(-1) if self.discrete else iact[:, :-1]
        ent = dist.entropy()
        actor = -weight * (dist.log_prob(taken) * adv + cfg.actor.entropy * ent)
        vlogits = vlogits[:, :-1]
        value = weight * self._critic_loss(vlogits, ret, islow)

        # Replay value: λ-returns on the real sequence, bootstrapped with the imagination return
        # of the trajectory that started at each step; its gradient reaches the world model.
        boot = ret[:, 0].reshape(B, T)
        with torch.no_grad():
            rslow = twohot_mean(self.slow_critic(feat), self.bins)
            rret = lambda_return(reward, (1.0 - term) * self.gamma, boot, cfg.lam, last)
        rlogits = m["critic"](feat)[:, :-1]
        repval = (1.0 - last[:, :-1]) * self._critic_loss(rlogits, rret, rslow[:, :-1])

        losses = {
            "rec": scales.rec * rec.mean(), "rew": scales.rew * rew.mean(),
            "con": scales.con * con.mean(), "dyn": scales.dyn * dyn.mean(),
            "rep": scales.rep * rep.mean(), "policy": scales.policy * actor.mean(),
            "value": scales.value * value.mean(), "repval": scales.repval * repval.mean(),
        }
        metrics = {
            "actor/entropy": ent.mean().detach(), "ret/scale": scale, "ret/mean": ret.mean(),
            "adv/std": adv.std(), "imag/reward": irew.mean(), "imag/cont": icon.mean(),
            "value/mean": ival.mean(), **rec_stats,
        }
        # On first steps the prior knows nothing of the observation: a KL under the free nats
        # there means the posterior does not encode what is new in the first frame.
        metrics["kl/first"] = Masked(categorical_kl(post.detach().float(), prior.detach().float()), first)
        latents = {"deter": hs.detach().float(), "stoch": zs.detach().argmax(-1)}
        return losses, metrics, latents

    # ---- looking inside -------------------------------------------------------------------------

    @torch.no_grad()
    def report(self, batch: dict, carry: dict, context: int) -> tuple[dict[str, float], dict]:
        """What the world model sees, on a replayed batch (B, L+1, ...) whose step 0 is the context
        step, changing nothing (no update; the return normaliser and the random streams are left as
        they were): the losses and metrics of the batch as `train` reports them, and open-loop
        predictions: the posterior observes steps 1..context, then the prior imagines the rest
        under the recorded actions. Returns (metrics, {key: (truth, prediction)}) with numpy
        arrays (B, L, ...) in each key's units (`Decoder.predict`)."""
        data, carry = self._tensors(batch), self._tensors(carry)
        m, rssm = self.model, self.model["rssm"]
        was_training = m.training
        m.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._autocast():
            losses, metrics, _ = self.loss(data, carry, training=False)
            B, L = data["is_first"].shape[0], data["is_first"].shape[1] - 1
            obs = {k: data[k][:, 1:] for k in self.obs_space}
            act = self._action_vector(data["action"])
            seen = {k: v[:, :context].flatten(0, 1) for k, v in obs.items()}
            embed = m["enc"](seen).reshape(B, context, -1)
            hs, zs, _ = rssm.observe(carry["deter"].float(), self._onehot_stoch(carry["stoch"]), act[:, :context],
                                     embed, data["is_first"][:, 1:context + 1].bool())
            h, z, dreamed = hs[:, -1], zs[:, -1], []
            noise = rssm.noise(L - context, B, device=self.device)
            for t in range(context, L):  # act[:, t] led into step t + 1
                h, z = rssm.img_step(h, z, act[:, t], noise[t - context])
                dreamed.append(torch.cat([h, z.flatten(1)], -1))
            feat = torch.cat([torch.cat([hs, zs.flatten(2)], -1), torch.stack(dreamed, 1).to(hs.dtype)], 1)
            pred = m["dec"].predict(feat.flatten(0, 1))
            truth = m["dec"].truth({k: v.flatten(0, 1) for k, v in obs.items()})
        m.train(was_training)
        views = {k: tuple(x.reshape(B, L, *x.shape[1:]).cpu().numpy() for x in (truth[k], pred[k])) for k in pred}
        return _floats(losses, metrics), views

    # ---- checkpoint --------------------------------------------------------------------------

    def save(self) -> dict:
        return {"model": self.model.state_dict(), "slow_critic": self.slow_critic.state_dict(),
                "retnorm": self.retnorm.state_dict(), "opt": self.opt.state_dict(),
                "updates": self.updates}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.slow_critic.load_state_dict(state["slow_critic"])
        self.retnorm.load_state_dict(state["retnorm"])
        self.opt.load_state_dict(state["opt"])
        self.updates = state["updates"]
