"""symlog/symexp, two-hot regression, unimix categoricals with straight-through samples, the
bounded-std normal policy, and the Bernoulli continue head (dreamer/README.md)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


def twohot_bins(n: int = 255, device=None) -> torch.Tensor:
    """(n,) bins at symexp(linspace(−20, 20, n)): symmetric, with 0 at the centre for odd n."""
    x = torch.linspace(-20.0, 20.0, n, dtype=torch.float64)
    x = (x - x.flip(0)) / 2  # exactly antisymmetric, so the centre bin is exactly 0
    return symexp(x).to(device=device, dtype=torch.float32)


def twohot_neighbours(x: torch.Tensor, bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(...) values → the two-hot target as its two neighbouring bins: indices (..., 2) int64 and
    weights (..., 2), interpolated in raw space; beyond the ends all weight is on the end bin.
    (Indices instead of a dense (..., n) target: the loss is then two gathers per value.)"""
    x = x.float().contiguous()
    n = bins.shape[0]
    count = torch.searchsorted(bins, x, right=True)  # bins ≤ x
    below, above = (count - 1).clamp(0, n - 1), count.clamp(max=n - 1)
    equal = below == above
    to_below = torch.where(equal, 1.0, (bins[below] - x).abs())
    to_above = torch.where(equal, 1.0, (bins[above] - x).abs())
    total = to_below + to_above
    return torch.stack([below, above], -1), torch.stack([to_above / total, to_below / total], -1)


def twohot_mean(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(..., n) logits → (...) expected value Σ p·bins, n odd.

    Each positive bin's probability meets its negative twin's before the product (the bins are
    exactly antisymmetric), so uniform probabilities (a zero-initialised head) give exactly 0.
    """
    probs = torch.softmax(logits.float(), -1)
    m = (bins.shape[0] - 1) // 2
    return (probs[..., m + 1:] - probs[..., :m].flip(-1)) @ bins[m + 1:] + probs[..., m] * bins[m]


def twohot_nll(logp: torch.Tensor, target: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(..., n) log-probabilities, (...) raw targets → (...) cross-entropy to the two-hot target."""
    index, weight = twohot_neighbours(target, bins)
    return -(weight * logp.gather(-1, index)).sum(-1)


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, written out: for the latents' few classes (K = 4…96) this is
    several times faster on CPU than torch.softmax, whose kernel vectorises along that axis."""
    e = (logits - logits.detach().amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def sample_index(probs: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """(..., K) probs → (...) int64 samples by inverting the CDF at one uniform per row, u
    (..., 1) (drawn here when None): much cheaper than torch.multinomial for many small
    categoricals, and the noise can be drawn outside a compiled region."""
    if u is None:
        u = torch.rand(*probs.shape[:-1], 1, device=probs.device, dtype=probs.dtype)
    return (probs.cumsum(-1) < u).sum(-1).clamp(max=probs.shape[-1] - 1)


def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """(..., K) → (..., K): (1 − unimix)·softmax + unimix/K."""
    probs = softmax(logits.float())
    return (1.0 - unimix) * probs + unimix / logits.shape[-1]


def straight_through_sample(probs: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """(..., K) probs → one-hot sample whose gradient is the gradient of the probs; u as in
    `sample_index`."""
    onehot = F.one_hot(sample_index(probs.detach(), u), probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(..., S, K) probs → (...) KL(p ‖ q) summed over the S variables."""
    return (p * (torch.log(p) - torch.log(q))).sum((-2, -1))


def kl_losses(post: torch.Tensor, prior: torch.Tensor, free: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., S, K) probs → (dyn, rep) losses (...) with free nats on the per-step sum:
    dyn = max(free, KL(sg(post) ‖ prior)), rep = max(free, KL(post ‖ sg(prior)))."""
    dyn = categorical_kl(post.detach(), prior)
    rep = categorical_kl(post, prior.detach())
    return dyn.clamp(min=free), rep.clamp(min=free)


def bernoulli_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Log-loss of a Bernoulli with soft target in [0, 1] (continue head target (1 − term)·γ)."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")


class Policy:
    """The actor's distribution: categorical over logits (discrete; unlike the latents, no uniform
    share mixed in, as the reference's categorical policy head) or a normal with mean tanh(x) and
    std (maxstd − minstd)·σ(x + 2) + minstd (continuous)."""

    def __init__(self, out: torch.Tensor, discrete: bool, minstd: float, maxstd: float):
        out = out.float()
        self.discrete = discrete
        if discrete:
            self.logits = torch.log_softmax(out, -1)  # finite where a probability underflows to 0
        else:
            mean, std = out.chunk(2, -1)
            self.mean = torch.tanh(mean)
            self.std = (maxstd - minstd) * torch.sigmoid(std + 2.0) + minstd

    def sample(self) -> torch.Tensor:
        """Discrete: (...) int64 indices; continuous: (..., A) unbounded normal samples."""
        if self.discrete:
            return sample_index(self.logits.exp())
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        """The most likely action: discrete (...) int64 indices, continuous (..., A) the mean."""
        return self.logits.argmax(-1) if self.discrete else self.mean

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return self.logits.gather(-1, action.long()[..., None])[..., 0]
        z = (action - self.mean) / self.std
        return (-0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        if self.discrete:
            return -(self.logits.exp() * self.logits).sum(-1)
        return (torch.log(self.std) + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)
