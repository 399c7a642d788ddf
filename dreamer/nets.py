"""Layers with the reference initialisation (dreamer/README.md, "Initialisation").

Layer order everywhere: Linear (or conv then max-pool) → RMSNorm → SiLU, the last two as one
module (`RMSNorm(act=True)`), so that compiling it (`agent.compile`) fuses their elementwise chain.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# A normal truncated at ±2σ has std 0.8796σ; dividing by it keeps the effective std at
# 1/sqrt(fan_in), as the reference's truncated-normal fan-in initialiser does.
_TRUNC_STD = 0.87962566103423978


def init_(weight: torch.Tensor, fan_in: int, scale: float = 1.0) -> None:
    """Truncated normal (±2σ) with std scale/sqrt(fan_in); scale 0 gives zeros."""
    with torch.no_grad():
        if scale == 0.0:
            weight.zero_()
            return
        std = scale / math.sqrt(fan_in) / _TRUNC_STD
        nn.init.trunc_normal_(weight, 0.0, 1.0, -2.0, 2.0).mul_(std)


class Linear(nn.Linear):
    def __init__(self, inp: int, out: int, outscale: float = 1.0):
        super().__init__(inp, out)
        init_(self.weight, inp, outscale)
        nn.init.zeros_(self.bias)


class BlockLinear(nn.Module):
    """Block-diagonal linear on block-major inputs: (G, N, I) → (G, N, O), block g mapping its
    input slice with weight[g] (I, O) and adding bias[g·O:(g+1)·O]. Keeping the blocks leading
    makes the whole layer one batched matmul with no transposes around it. The init's fan-in is the
    whole input width I, not one block's I/G, as the reference's initialiser counts it."""

    def __init__(self, inp: int, out: int, blocks: int):
        super().__init__()
        assert inp % blocks == 0 and out % blocks == 0, (inp, out, blocks)
        self.blocks = blocks
        self.weight = nn.Parameter(torch.empty(blocks, inp // blocks, out // blocks))
        self.bias = nn.Parameter(torch.zeros(out))
        init_(self.weight, inp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype).reshape(self.blocks, 1, -1)
        return torch.baddbmm(bias, x, self.weight.to(x.dtype))


class RMSNorm(nn.Module):
    """RMS normalisation over the last axis (or the channel axis of NCHW maps), computed in fp32,
    then cast back to the input's dtype; with `act`, SiLU after it."""

    def __init__(self, dim: int, eps: float = 1e-4, channel_axis: int = -1, act: bool = False):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.axis = channel_axis
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale if self.axis == -1 else self.scale[:, None, None]
        x = self._norm(x, self.axis, scale)
        return F.silu(x) if self.act else x

    def blockwise(self, x: torch.Tensor) -> torch.Tensor:
        """Block-major (G, N, dim/G) → the same layout, each row normalised over all its dim values."""
        return self._norm(x, (0, 2), self.scale.reshape(x.shape[0], 1, -1))

    def _norm(self, x: torch.Tensor, axis, scale: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.square().mean(axis, keepdim=True) + self.eps)
        return (x * scale).to(dtype)


class Dense(nn.Sequential):
    """Linear → RMSNorm → SiLU."""

    def __init__(self, inp: int, out: int):
        super().__init__(Linear(inp, out), RMSNorm(out, act=True))


class MLP(nn.Sequential):
    """`layers` Dense layers of `units` (the hidden part of every head)."""

    def __init__(self, inp: int, layers: int, units: int):
        super().__init__(*[Dense(inp if i == 0 else units, units) for i in range(layers)])
        self.out_dim = units if layers else inp


class ConvEncoder(nn.Module):
    """Images (N, H, W, C) uint8 → (N, E) with E = (H/2^L)·(W/2^L)·depth·mults[-1].

    Each stage: 5×5 conv stride 1 → 2×2 max-pool → RMSNorm → SiLU.
    """

    def __init__(self, channels: int, resolution: int, depth: int, mults, kernel: int):
        super().__init__()
        # Stage i's layers sit at positions 4i.. as when SiLU was a module of its own after each
        # norm, so that checkpoints and tests/fidelity's mapping keep their keys.
        layers, inp = OrderedDict(), channels
        for i, mult in enumerate(mults):
            conv = nn.Conv2d(inp, depth * mult, kernel, padding=kernel // 2)
            init_(conv.weight, kernel * kernel * inp)
            nn.init.zeros_(conv.bias)
            stage = [conv, nn.MaxPool2d(2), RMSNorm(depth * mult, channel_axis=1, act=True)]
            layers.update((str(4 * i + j), layer) for j, layer in enumerate(stage))
            inp = depth * mult
        self.net = nn.Sequential(layers)
        self.out_dim = (resolution // 2 ** len(mults)) ** 2 * inp

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.net(x.to(memory_format=torch.channels_last)).flatten(1)


class UpsampleConv2d(nn.Conv2d):
    """Nearest ×2 upsampling followed by this k×k conv (stride 1, padding k//2), computed as one
    conv at the input's resolution: output pixel (2i+a, 2j+b) sees only input pixels i+o, j+p for
    a few offsets, so each of the four phases (a, b) is a small conv whose taps are sums of the
    k×k taps, and a pixel shuffle interleaves the phases. Same parameters and result as the two
    steps; here, on a CPU, the decoder's convs ran 2–3.7× faster (dreamer/README.md, "Benchmark")."""

    def __init__(self, inp: int, out: int, kernel: int):
        super().__init__(inp, out, kernel, padding=kernel // 2)
        r = kernel // 2
        self.low_pad = (r + 1) // 2
        # taps[a, o, t] = 1 where tap t of the k×k kernel lands on low-res offset o - low_pad in phase a
        taps = torch.zeros(2, 2 * self.low_pad + 1, kernel)
        for a in (0, 1):
            for t in range(kernel):
                taps[a, (a + t - r) // 2 + self.low_pad, t] = 1.0
        self.register_buffer("taps", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, i, k = self.weight.shape[:3]
        n = self.taps.shape[1]
        # (O, I, k, k) → (O·4, I, k', k'), output channel o·4 + 2a + b as pixel_shuffle reads it.
        # Summed elementwise, not by einsum: a matmul here would be counted as a per-update cost
        # that does not grow with the batch, which the bench's FLOP count cannot extrapolate.
        rows = (self.taps.view(2, 1, 1, n, k, 1) * self.weight.view(1, o, i, 1, k, k)).sum(4)  # (2, O, I, k', k)
        weight = (rows.view(2, 1, o, i, n, 1, k) * self.taps.view(1, 2, 1, 1, 1, n, k)).sum(6)  # (2, 2, O, I, k', k')
        weight = weight.permute(2, 0, 1, 3, 4, 5).reshape(o * 4, i, n, n)
        y = F.conv2d(x, weight, self.bias.repeat_interleave(4), padding=self.low_pad)
        return F.pixel_shuffle(y, 2)


class ConvDecoder(nn.Module):
    """Features (N, F) with F = D + S·K → images (N, H, W, C) in [0, 1].

    The first (C', m, m) grid (m = H/2^L) is the sum of two paths, as in the reference: deter
    (N, D) through a block-diagonal linear whose block g fills channels g·C'/G..(g+1)·C'/G at
    every position, and the flattened stoch (N, S·K) through Linear(2·units) → RMSNorm → SiLU →
    Linear(m·m·C'); then RMSNorm → SiLU and the encoder mirrored (nearest ×2 upsampling + 5×5
    conv, computed as one `UpsampleConv2d`), sigmoid output. Deter reaches the image only through
    its blocks, which keeps this layer at D·m²·C'/G weights instead of F·m²·C'."""

    def __init__(self, deter: int, stoch: int, units: int, blocks: int, channels: int, resolution: int,
                 depth: int, mults, kernel: int):
        super().__init__()
        depths = [depth * m for m in mults]
        self.deter, self.blocks, self.depth = deter, blocks, depths[-1]
        self.minres = resolution // 2 ** len(mults)
        grid = self.minres**2 * depths[-1]
        self.space_deter = BlockLinear(deter, grid, blocks)
        self.space_stoch = nn.Sequential(Dense(stoch, 2 * units), Linear(2 * units, grid))
        self.space_norm = RMSNorm(depths[-1], channel_axis=1, act=True)
        # Each layer is named by its position as when an upsampling module stood before each conv
        # and SiLU after each norm (convs at 1, 5, 9, 13, norms at 2, 6, 10), so that checkpoints
        # and tests/fidelity's mapping keep their keys.
        layers, inp = OrderedDict(), depths[-1]
        for i, out in enumerate([*reversed(depths[:-1]), channels]):
            conv = UpsampleConv2d(inp, out, kernel)
            init_(conv.weight, kernel * kernel * inp)
            nn.init.zeros_(conv.bias)
            layers[str(4 * i + 1)] = conv
            if out != channels:
                layers[str(4 * i + 2)] = RMSNorm(out, channel_axis=1, act=True)
            inp = out
        self.net = nn.Sequential(layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        n, G, m = feat.shape[0], self.blocks, self.minres
        deter, stoch = feat[:, :self.deter], feat[:, self.deter:]
        # (G, N, m·m·C'/G), each block's outputs ordered (row, column, channel) → (N, C', m, m)
        # with block g's channels at g·C'/G.. .
        x0 = self.space_deter(deter.reshape(n, G, -1).transpose(0, 1))
        x0 = x0.reshape(G, n, m, m, -1).permute(1, 0, 4, 2, 3).reshape(n, self.depth, m, m)
        x1 = self.space_stoch(stoch).reshape(n, m, m, self.depth).permute(0, 3, 1, 2)
        x = self.space_norm(x0 + x1).contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.net(x).float()).permute(0, 2, 3, 1)
