import torch
import torch.nn.functional as F

from dreamer.config import make_config
from dreamer.rssm import RSSM


def plain_core(rssm, h, z, action):
    """The GRU core as dreamer/README.md ("World model", RSSM step) writes it, with dense block-diagonal weight matrices: the
    reference for the block-major batched-matmul implementation."""
    G, D = rssm.cfg.blocks, rssm.cfg.deter
    action = action / action.abs().clamp(min=1.0)
    x = torch.cat([rssm.deter_in(h), rssm.stoch_in(z.flatten(1)), rssm.act_in(action)], -1)
    inp = torch.cat([torch.cat([h[:, g * D // G:(g + 1) * D // G], x], -1) for g in range(G)], -1)
    y = inp @ torch.block_diag(*rssm.gru_hidden.weight) + rssm.gru_hidden.bias
    y = F.silu(y * torch.rsqrt(y.square().mean(-1, keepdim=True) + rssm.gru_norm.eps) * rssm.gru_norm.scale)
    gates = (y @ torch.block_diag(*rssm.gru_gates.weight) + rssm.gru_gates.bias).reshape(-1, G, 3, D // G)
    reset, cand, update = (gates[:, :, i].flatten(1) for i in range(3))
    reset = torch.sigmoid(reset)
    cand = torch.tanh(reset * cand)
    update = torch.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * h


def test_block_major_core_equals_the_plain_block_diagonal_gru():
    torch.manual_seed(0)
    cfg = make_config(["size=size1m"]).agent.rssm
    rssm = RSSM(cfg, embed_dim=10, act_dim=3)
    with torch.no_grad():  # non-trivial norm scales and biases, so their layouts are checked too
        for p in [rssm.gru_norm.scale, rssm.gru_hidden.bias, rssm.gru_gates.bias]:
            p.normal_()
    h = torch.randn(6, cfg.deter)
    z = F.one_hot(torch.randint(0, cfg.classes, (6, cfg.stoch)), cfg.classes).float()
    action = torch.randn(6, 3) * 2
    assert torch.allclose(rssm.core(h, z, action), plain_core(rssm, h, z, action), atol=1e-5)


def test_gru_gate_preactivations_at_init_have_the_reference_scale():
    """The gates layer sees D inputs per row, D/G per block; with fan-in D its pre-activations
    have std rms(x)·√(1/G) — 2.83× narrower at G = 8 than a per-block fan-in gives."""
    torch.manual_seed(0)
    cfg = make_config(["size=size1m"]).agent.rssm
    rssm = RSSM(cfg, embed_dim=10, act_dim=3)
    n = 2048
    h = torch.randn(n, cfg.deter)
    z = F.one_hot(torch.randint(0, cfg.classes, (n, cfg.stoch)), cfg.classes).float()
    x = torch.cat([rssm.deter_in(h), rssm.stoch_in(z.flatten(1)), rssm.act_in(torch.randn(n, 3))], -1)
    hb = h.reshape(n, cfg.blocks, -1).transpose(0, 1)
    hidden = F.silu(rssm.gru_norm.blockwise(rssm.gru_hidden(torch.cat([hb, x.expand(cfg.blocks, n, -1)], -1))))
    gates = rssm.gru_gates(hidden)
    ratio = gates.std().item() / hidden.square().mean().sqrt().item()
    assert abs(ratio * cfg.blocks**0.5 - 1.0) < 0.05
