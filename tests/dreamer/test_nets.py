import math

import pytest
import torch

from dreamer.nets import BlockLinear, ConvDecoder, ConvEncoder, Linear, RMSNorm, UpsampleConv2d, init_


def test_block_linear_equals_a_block_diagonal_dense_layer():
    torch.manual_seed(0)
    layer = BlockLinear(12, 6, blocks=3)
    with torch.no_grad():
        layer.bias.normal_()
    dense = torch.block_diag(*layer.weight)  # (12, 6): block g maps inputs 4g..4g+3 to outputs 2g, 2g+1
    x = torch.randn(5, 12)
    blocks = x.reshape(5, 3, 4).transpose(0, 1)  # block-major (G, N, I)
    out = layer(blocks).transpose(0, 1).reshape(5, 6)
    assert torch.allclose(out, x @ dense + layer.bias, atol=1e-6)


def test_init_truncated_normal_has_fan_in_std_and_output_scales():
    torch.manual_seed(0)
    w = torch.empty(512, 256)
    init_(w, fan_in=256)
    assert abs(w.std().item() - 1 / math.sqrt(256)) < 0.02 / math.sqrt(256) * 10
    assert w.abs().max().item() <= 2 / math.sqrt(256) / 0.87962566103423978 + 1e-6
    assert torch.equal(Linear(8, 3, outscale=0.0).weight, torch.zeros(3, 8))
    assert torch.equal(Linear(8, 3).bias, torch.zeros(3))


def test_rmsnorm_by_hand():
    norm = RMSNorm(2, eps=0.0)
    x = torch.tensor([[3.0, 4.0]])
    expected = x / math.sqrt((9 + 16) / 2)
    assert torch.allclose(norm(x), expected)
    maps = RMSNorm(2, eps=0.0, channel_axis=1)(torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1))
    assert torch.allclose(maps.flatten(), expected.flatten())
    # with its activation: SiLU of the normalised values, 0.8485·σ(0.8485) and 1.1314·σ(1.1314)
    assert torch.allclose(RMSNorm(2, eps=0.0, act=True)(x), torch.tensor([[0.5942, 0.8554]]), atol=1e-4)


def test_cnn_shapes_and_decoder_range():
    enc = ConvEncoder(3, 64, depth=4, mults=(2, 3, 4, 4), kernel=5)
    img = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    assert enc(img).shape == (2, enc.out_dim) and enc.out_dim == 4 * 4 * 16
    dec = ConvDecoder(16, 8, units=6, blocks=8, channels=3, resolution=64, depth=4, mults=(2, 3, 4, 4), kernel=5)
    out = dec(torch.randn(2, 24))
    assert out.shape == (2, 64, 64, 3) and out.min() >= 0 and out.max() <= 1


def test_block_linear_init_uses_the_whole_input_width_as_fan_in():
    """A 512 → 1536 layer of 8 blocks: weight std 1/√512 (the reference's fan-in counts all 512
    inputs), not 1/√64 (one block's inputs), so each output's pre-activation has the variance of
    its 64 inputs' mean square times 64/512."""
    torch.manual_seed(0)
    layer = BlockLinear(512, 1536, blocks=8)
    assert abs(layer.weight.std().item() * math.sqrt(512) - 1.0) < 0.02
    x = torch.randn(8, 4096, 64)  # block-major unit-variance inputs
    assert abs(layer(x).std().item() - math.sqrt(64 / 512)) < 0.01


def test_decoder_grid_block_g_of_deter_fills_channel_group_g():
    """The deter path of the decoder's first grid is block-diagonal: changing deter block g moves
    only channels g·C/G..(g+1)·C/G, at every position; the stoch path adds to all channels."""
    torch.manual_seed(0)
    D, SK, G = 32, 8, 4
    dec = ConvDecoder(D, SK, units=6, blocks=G, channels=3, resolution=64, depth=4, mults=(2, 3, 4, 4), kernel=5)
    grids = []
    dec.space_norm.register_forward_hook(lambda module, args, out: grids.append(args[0]))
    feat = torch.randn(1, D + SK)
    moved = feat.clone()
    moved[0, 2 * D // G:3 * D // G] += 1.0  # deter block 2
    dec(feat), dec(moved)
    C = dec.depth
    changed = (grids[1] - grids[0]).abs().amax((0, 2, 3)) > 0  # (C,)
    assert changed.tolist() == [2 * C // G <= c < 3 * C // G for c in range(C)]
    assert ((grids[1] - grids[0])[0, 2 * C // G:3 * C // G].abs() > 0).all()  # at every position


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_upsample_conv_equals_nearest_upsampling_then_the_conv(kernel):
    torch.manual_seed(kernel)
    conv = UpsampleConv2d(6, 5, kernel)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(3, 6, 8, 8).to(memory_format=torch.channels_last).requires_grad_()
    ours = conv(x)
    theirs = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"),
                                        conv.weight, conv.bias, padding=kernel // 2)
    assert ours.shape == theirs.shape == (3, 5, 16, 16)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(ours)
    mine = torch.autograd.grad(ours, (x, conv.weight, conv.bias), grad)
    ref = torch.autograd.grad(theirs, (x, conv.weight, conv.bias), grad)
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
