"""Parameter counts per module against the reference implementation's, on the meta device.

Hand counts, with D deter, Hd hidden, SK = 32·classes, d CNN depth, U units, G = 8 blocks,
F = D + SK, A action outputs; a Linear has in·out + out parameters, an RMSNorm one scale per
channel, a Dense is Linear + RMSNorm:
- encoder (64×64×3 image): 5×5 convs 3→2d→3d→4d→4d with biases and norms = 850d² + 176d
- RSSM: Dense(D→Hd) + Dense(SK→Hd) + Dense(A→Hd) + GRU block layer (D + 3G·Hd)·D/G + D, its norm
  D, gates D·3D/G + 3D, prior Dense(D→Hd) Dense(Hd→Hd) Linear(Hd→SK), posterior
  Dense(D + 64d→Hd) Linear(Hd→SK)
- image decoder: deter BlockLinear D·64d/G + 64d, stoch Dense(SK→2U) + Linear(2U→64d), grid norm
  4d, then 5×5 convs 4d→4d→3d→2d→3 = 850d² + 168d + 3
- reward: Dense(F→U) + Linear(U→255); continue: Dense(F→U) + Linear(U→1);
  actor: 3 Dense + Linear(U→A or 2A); critic: 3 Dense + Linear(U→255)
"""
import pytest

from dreamer.bench import build_agent
from dreamer.config import make_config
from dreamer.env import Space, signal_spaces


def module_counts(agent) -> dict[str, int]:
    return {name: sum(p.numel() for p in module.parameters()) for name, module in agent.model.items()}


def test_size12m_dmc_pixels_equals_the_reference_module_by_module():
    """DMC cartpole from pixels (64×64×3, 1-dim action) at size12m: the official implementation's
    own counts, 10,490,308 in all. d = 16: encoder 850·256 + 176·16 = 220,416; decoder
    (2048·1024/8 + 1024) + (512·512 + 512 + 512 + 512·1024 + 1024) + 64 + 220,291 = 1,272,003."""
    import torch

    from dreamer.agent import Agent

    cfg = make_config(["size=size12m"])
    obs = {**signal_spaces(), "image": Space((64, 64, 3), "uint8")}
    with torch.device("meta"):
        agent = Agent(cfg.agent, obs, {"action": Space((1,), "float32", 0, -1.0, 1.0)}, device="meta")
    assert module_counts(agent) == {"enc": 220_416, "rssm": 5_978_368, "dec": 1_272_003, "reward": 721_407,
                                    "cont": 656_129, "actor": 788_482, "critic": 853_503}


@pytest.mark.parametrize("size, expected", [
    # D 512, Hd 64, SK 128, d 4, U 64, A 18, F 640. RSSM: 32,896 + 8,320 + 1,280 + 131,584 + 512
    # + 99,840 + prior 45,440 + posterior 57,600. Decoder: 16,640 + 16,512 + 128 + 33,024 + 16 + 14,275.
    ("size1m", {"enc": 14_304, "rssm": 377_472, "dec": 80_595, "reward": 57_663, "cont": 41_153,
                "actor": 50_706, "critic": 66_111}),
    # D 8192, Hd 1024, SK 2048, d 64, U 1024, A 18, F 10,240. Decoder: 8192·4096/8 + 4096 = 4,198,400;
    # 2048·2048 + 2048 + 2048 = 4,198,400; 2048·4096 + 4096 = 8,392,704; 256; 850·4096 + 168·64 + 3 =
    # 3,492,355.
    ("size200m", {"enc": 3_492_864, "rssm": 95_496_192, "dec": 20_282_115, "reward": 10_749_183,
                  "cont": 10_488_833, "actor": 12_607_506, "critic": 12_850_431}),
])
def test_atari_shapes_by_hand(size, expected):
    assert module_counts(build_agent(size, "image", "meta")) == expected
