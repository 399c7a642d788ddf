import dataclasses
import math

import numpy as np
import pytest
import torch

from dreamer import distributions as D
from dreamer.agent import Head
from dreamer.config import make_config


def test_symlog_symexp_inverse_over_wide_range():
    x = torch.cat([-torch.logspace(-8, 8, 2001, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                   torch.logspace(-8, 8, 2001, dtype=torch.float64)])
    back = D.symexp(D.symlog(x))
    assert torch.allclose(back, x, rtol=1e-6, atol=0)
    assert D.symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)
    assert D.symlog(torch.tensor(-(math.e - 1))).item() == pytest.approx(-1.0)


def test_bins_symmetric_with_zero_at_centre():
    bins = D.twohot_bins(255)
    assert bins.shape == (255,)
    assert bins[127].item() == 0.0
    assert torch.equal(bins, -bins.flip(0))
    assert bins[-1].item() == pytest.approx(math.exp(20) - 1, rel=1e-6)


def dense_twohot(x, bins):
    """The plain two-hot target (..., n), by comparisons against every bin: the reference the
    two-gather form is checked against."""
    n = bins.shape[0]
    below = ((bins <= x[..., None]).sum(-1) - 1).clamp(0, n - 1)
    above = (n - (bins > x[..., None]).sum(-1)).clamp(0, n - 1)
    equal = below == above
    to_below = torch.where(equal, 1.0, (bins[below] - x).abs())
    to_above = torch.where(equal, 1.0, (bins[above] - x).abs())
    total = to_below + to_above
    return (torch.nn.functional.one_hot(below, n) * (to_above / total)[..., None]
            + torch.nn.functional.one_hot(above, n) * (to_below / total)[..., None])


def test_twohot_round_trip_and_weights():
    bins = D.twohot_bins(255)
    x = torch.cat([-torch.logspace(-3, 6, 500), torch.zeros(1), torch.logspace(-3, 6, 500)])
    enc = dense_twohot(x, bins)
    assert torch.allclose(enc.sum(-1), torch.ones_like(x))
    assert ((enc > 0).sum(-1) <= 2).all()
    dec = (enc.double() * bins.double()).sum(-1).float()
    assert torch.allclose(dec, x, rtol=1e-5, atol=1e-7)
    # Hand case: halfway between two bins puts 0.5 on each.
    mid = (bins[130] + bins[131]) / 2
    w = dense_twohot(mid[None], bins)[0]
    assert w[130].item() == pytest.approx(0.5) and w[131].item() == pytest.approx(0.5)
    index, weight = D.twohot_neighbours(mid[None], bins)
    assert index[0].tolist() == [130, 131] and weight[0].tolist() == pytest.approx([0.5, 0.5])


def test_twohot_nll_equals_dense_cross_entropy():
    # Values on bins, between bins, beyond both ends and at zero, in a (B, T)-shaped batch.
    torch.manual_seed(0)
    bins = D.twohot_bins(255)
    x = torch.cat([torch.randn(40) * 10.0 ** torch.randint(-3, 7, (40,)), bins[[0, 5, 127, 200, 254]],
                   torch.tensor([0.0, -1e10, 1e10, 3.0e8])]).reshape(7, 7)
    logp = torch.log_softmax(torch.randn(7, 7, 255), -1)
    plain = -(dense_twohot(x, bins) * logp).sum(-1)
    assert torch.allclose(D.twohot_nll(logp, x, bins), plain, rtol=1e-6, atol=1e-6)


def test_twohot_mean_of_logits_recovers_encoded_value():
    bins = D.twohot_bins(255)
    x = torch.tensor([-1234.5, -1.0, 0.3, 17.0, 9.9e5])
    logits = torch.log(dense_twohot(x, bins).clamp(min=1e-30))
    assert torch.allclose(D.twohot_mean(logits, bins), x, rtol=1e-5)


def test_twohot_mean_equals_plain_expectation():
    torch.manual_seed(0)
    bins = D.twohot_bins(255)
    logits = torch.randn(6, 10, 255) * 3
    plain = (torch.softmax(logits.double(), -1) * bins.double()).sum(-1)
    assert torch.allclose(D.twohot_mean(logits, bins).double(), plain, rtol=1e-5, atol=1e-5)


def test_zero_initialised_head_predicts_exactly_zero():
    bins = D.twohot_bins(255)
    head = Head(16, 255, 1, 8, outscale=0.0)
    logits = head(torch.randn(5, 16))
    assert torch.equal(logits, torch.zeros_like(logits))
    assert torch.equal(D.twohot_mean(logits, bins), torch.zeros(5))


def test_unimix_probabilities_by_hand():
    logits = torch.tensor([0.0, math.log(3.0)])
    probs = D.unimix_probs(logits, 0.01)
    assert probs.tolist() == pytest.approx([0.99 * 0.25 + 0.005, 0.99 * 0.75 + 0.005])
    probs = D.unimix_probs(torch.tensor([-1e9, 0.0, -1e9, -1e9]), 0.01)
    assert probs.min().item() == pytest.approx(0.0025)


def test_straight_through_gradient_equals_gradient_of_probs():
    torch.manual_seed(0)
    logits = torch.randn(3, 32, 4, requires_grad=True)
    weights = torch.randn(3, 32, 4)
    probs = D.unimix_probs(logits, 0.01)
    sample = D.straight_through_sample(probs)
    assert torch.allclose(sample.detach().sum(-1), torch.ones(3, 32))
    assert torch.equal(sample.detach().round(), sample.detach().round().clamp(0, 1))
    assert torch.equal(sample.detach().round().sum(-1), torch.ones(3, 32))
    (g_sample,) = torch.autograd.grad((sample * weights).sum(), logits)
    (g_probs,) = torch.autograd.grad((D.unimix_probs(logits, 0.01) * weights).sum(), logits)
    assert torch.allclose(g_sample, g_probs)


def test_kl_free_nats_apply_to_the_sum_over_variables():
    # Each of the 32 variables contributes KL 0.05 nats: the sum 1.6 is above the free 1.0, so
    # the loss is 1.6. Clipping per variable would give 32 · max(1, 0.05) = 32.
    p = torch.tensor([0.5, 0.5]).repeat(32, 1)
    # Choose q so that KL(p‖q) = 0.05 per variable: KL = −0.5·log(4·q·(1−q)).
    a = (1 + math.sqrt(1 - math.exp(-0.1))) / 2
    q = torch.tensor([a, 1 - a]).repeat(32, 1)
    assert D.categorical_kl(p, q).item() == pytest.approx(1.6, rel=1e-5)
    dyn, rep = D.kl_losses(p, q, free=1.0)
    assert dyn.item() == pytest.approx(1.6, rel=1e-5) and rep.item() == pytest.approx(1.6, rel=1e-5)
    # Below the free nats the loss is the constant 1.0 and its gradient vanishes.
    q_small = torch.tensor([0.55, 0.45]).repeat(32, 1).requires_grad_(True)
    dyn, _ = D.kl_losses(p, q_small, free=1.0)
    assert dyn.item() == 1.0
    (g,) = torch.autograd.grad(dyn, q_small)
    assert torch.equal(g, torch.zeros_like(g))


def test_dyn_and_rep_route_gradients_to_prior_and_posterior():
    post_logits = torch.randn(32, 4, requires_grad=True)
    prior_logits = torch.randn(32, 4, requires_grad=True)
    post, prior = torch.softmax(post_logits, -1), torch.softmax(prior_logits, -1)
    dyn, rep = D.kl_losses(post, prior, free=0.0)
    g_post, g_prior = torch.autograd.grad(dyn, [post_logits, prior_logits], allow_unused=True)
    assert g_post is None and g_prior.abs().sum() > 0
    g_post, g_prior = torch.autograd.grad(rep, [post_logits, prior_logits], allow_unused=True)
    assert g_prior is None and g_post.abs().sum() > 0


def test_policy_distributions():
    torch.manual_seed(0)
    pol = D.Policy(torch.zeros(1000, 2), discrete=False, minstd=0.1, maxstd=1.0)
    std = 0.9 * (1 / (1 + math.exp(-2))) + 0.1
    assert pol.std[0, 0].item() == pytest.approx(std)
    assert pol.mean.abs().max().item() == 0.0
    x = pol.sample()
    assert x.std().item() == pytest.approx(std, rel=0.1)
    lp = pol.log_prob(torch.zeros(1, 2))[0].item()
    assert lp == pytest.approx(2 * (-math.log(std) - 0.5 * math.log(2 * math.pi)), rel=1e-5)
    cat = D.Policy(torch.tensor([[0.0, math.log(3.0)]]), discrete=True, minstd=0.1, maxstd=1.0)
    assert cat.log_prob(torch.tensor([1])).item() == pytest.approx(math.log(0.75))
    assert cat.entropy().item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_discrete_policy_is_a_plain_categorical_that_stays_finite_when_sure():
    """The reference's categorical policy head mixes in no uniform share (only its latents do): a
    policy putting everything on one of 3 actions gives the others probability 0, and its entropy
    and log-probabilities stay finite (log-softmax, not the log of a softmax that underflows)."""
    sure = D.Policy(torch.tensor([[0.0, 0.0, 200.0]]), discrete=True, minstd=0.1, maxstd=1.0)
    assert sure.logits.exp()[0].tolist() == [0.0, 0.0, 1.0]
    assert sure.entropy().item() == 0.0 and sure.log_prob(torch.tensor([2])).item() == 0.0
    assert torch.isfinite(sure.log_prob(torch.tensor([0]))) and sure.mode().item() == 2
    assert "unimix" not in {f.name for f in dataclasses.fields(make_config().agent.actor)}


def test_bernoulli_soft_target_loss():
    target = torch.tensor([0.997])
    loss = D.bernoulli_loss(torch.tensor([0.0]), target)
    assert loss.item() == pytest.approx(math.log(2.0))
    # Minimised where the probability equals the soft target: the head learns γ·continue.
    logits = torch.linspace(-10, 10, 20001)
    best = logits[D.bernoulli_loss(logits, target.expand_as(logits)).argmin()]
    assert torch.sigmoid(best).item() == pytest.approx(0.997, abs=1e-3)
    assert np.isfinite(loss.item())


def test_written_out_softmax_equals_torch_softmax_with_gradients():
    x = (torch.randn(64, 32, 4) * 5).requires_grad_(True)
    w = torch.randn(64, 32, 4)
    ours = D.softmax(x)
    ref = torch.softmax(x, -1)
    assert torch.allclose(ours, ref, atol=1e-6)
    (g1,) = torch.autograd.grad((ours * w).sum(), x)
    (g2,) = torch.autograd.grad((torch.softmax(x, -1) * w).sum(), x)
    assert torch.allclose(g1, g2, atol=1e-6)


def test_inverse_cdf_samples_follow_the_probabilities():
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3]).expand(200_000, 4)
    idx = D.sample_index(probs)
    freq = torch.bincount(idx, minlength=4).float() / len(idx)
    assert torch.allclose(freq, probs[0], atol=0.005)
    assert freq[1].item() == 0.0
    # A row whose CDF rounds below 1 never indexes past the last class.
    assert D.sample_index(torch.full((1000, 3), 0.3333333)).max().item() <= 2
