"""Our agent as the ours_*.py scripts and transplant.py use it: size1m, float32, on the CPU, built
after torch.manual_seed(seed) as the training loop builds it, with Road Runner's spaces."""
import torch

from dreamer.agent import Agent
from dreamer.config import make_config
from dreamer.env import Space, signal_spaces

import common

OBS_SPACE = {'image': Space((64, 64, 3), 'uint8', low=0, high=255), **signal_spaces()}
ACT_SPACE = {'action': Space((), 'int32', discrete=18)}
# Our loss terms in the order of common.TERMS; 'rec' is the reference's 'image'.
OUR_TERMS = ['rec', 'rew', 'con', 'dyn', 'rep', 'policy', 'value', 'repval']


def config():
    return make_config(['size=size1m', 'agent.precision=float32'])


def make_agent(seed):
    torch.manual_seed(seed)
    return Agent(config().agent, OBS_SPACE, ACT_SPACE, 'cpu')


def zero_carry(batch_size):
    return {'deter': torch.zeros(batch_size, 512), 'stoch': torch.zeros(batch_size, 32, dtype=torch.int64)}


def unscaled(losses):
    """Agent.loss returns each term times its scale; the reference's figures are unscaled."""
    scales = config().agent.loss
    return {ref: float(losses[k]) / getattr(scales, k) for ref, k in zip(common.TERMS, OUR_TERMS)}


def patch_deterministic():
    """Every categorical sample (latents and policy) becomes the argmax, ties to the first index as
    jnp.argmax. Policy.sample and straight_through_sample look sample_index up in the module."""
    import dreamer.distributions as D
    D.sample_index = lambda probs, u=None: probs.argmax(-1)


class Taps:
    """Records, during one Agent.loss, the encoder output, the decoder's output before the sigmoid,
    the posterior logits (one call per observed step) and the world model's prior logits (the prior
    net sees (B, T, D) there; imagination calls it on (N, D))."""

    def __init__(self, agent):
        m = agent.model
        self.values = {'post_logit': []}
        self.handles = [
            m['enc'].register_forward_hook(self._keep('tokens')),
            m['dec'].cnn.net.register_forward_hook(self._keep('dec_pre')),
            m['rssm'].post_net.register_forward_hook(lambda mod, i, o: self.values['post_logit'].append(o.detach())),
            m['rssm'].prior_net.register_forward_hook(self._prior),
        ]

    def _keep(self, key):
        def hook(mod, inp, out):
            self.values[key] = out.detach()
        return hook

    def _prior(self, mod, inp, out):
        if inp[0].dim() == 3:
            self.values['prior_logit'] = out.detach()

    def run(self, agent, batch):
        """Agent.loss on the batch without gradients: (unscaled losses, intermediates, metrics)."""
        with torch.no_grad():
            losses, metrics, latents = agent.loss(agent._tensors(batch), zero_carry(batch['is_first'].shape[0]))
        for h in self.handles:
            h.remove()
        found = dict(self.values, post_logit=torch.stack(self.values['post_logit'], 1), deter=latents['deter'])
        return unscaled(losses), {k: v.double().numpy() for k, v in found.items()}, metrics
