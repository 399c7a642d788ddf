"""The reference agent (danijar/dreamerv3 at e3f0224, found through DREAMERV3_REF) as the ref_*.py
scripts use it. Import it only under the reference's venv.

The agent is built by the reference's own `main.make_agent` for `--configs atari100k size1m
--jax.platform cpu --jax.compute_dtype float32`; only the environment it asks for its spaces is
replaced by the spaces the atari100k Road Runner env reports, so that no ALE is needed.
"""
import os
import pathlib
import subprocess
import sys

COMMIT = 'e3f0224'


def _reference_root():
    path = os.environ.get('DREAMERV3_REF')
    if not path:
        sys.exit(f'DREAMERV3_REF is not set: point it at a clone of danijar/dreamerv3 checked out at {COMMIT}')
    root = pathlib.Path(path).expanduser().resolve()
    if not (root / 'dreamerv3' / 'agent.py').is_file() or not (root / 'embodied' / 'jax').is_dir():
        sys.exit(f'DREAMERV3_REF={path} is not a danijar/dreamerv3 checkout (no dreamerv3/agent.py, embodied/jax)')
    # A tree without git (an archive of the commit) cannot be checked; a clone can.
    try:
        head = subprocess.run(['git', '-C', str(root), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    except FileNotFoundError:
        return root
    if head.returncode == 0 and not head.stdout.startswith(COMMIT):
        sys.exit(f'DREAMERV3_REF={path} is at {head.stdout[:7]}, not {COMMIT}: git -C {path} checkout {COMMIT}')
    return root


REF = _reference_root()
sys.path[:0] = [str(REF), str(REF / 'dreamerv3')]

import elements  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ninjax as nj  # noqa: E402
import numpy as np  # noqa: E402
import ruamel.yaml as yaml  # noqa: E402


def make_config(seed):
    configs = yaml.YAML(typ='safe').load((REF / 'dreamerv3' / 'configs.yaml').read_text())
    config = elements.Config(configs['defaults'])
    for name in ('atari100k', 'size1m'):
        config = config.update(configs[name])
    config = elements.Flags(config).parse([
        '--jax.platform', 'cpu', '--jax.compute_dtype', 'float32', '--jax.prealloc', 'False',
        '--seed', str(seed), '--task', 'atari100k_road_runner'])
    # Precompiling train and report at construction only costs time: the scripts jit their own
    # functions. No agent.train is called, so the profiler would never start; off for clarity.
    return elements.Config(config, jax={**config.jax, 'precompile': False, 'profiler': False})


class RoadRunnerSpaces:
    obs_space = {
        'image': elements.Space(np.uint8, (64, 64, 3)),
        'reward': elements.Space(np.float32),
        'is_first': elements.Space(bool),
        'is_last': elements.Space(bool),
        'is_terminal': elements.Space(bool),
    }
    act_space = {'action': elements.Space(np.int32, (), 0, 18), 'reset': elements.Space(bool)}

    def close(self):
        pass


def make_agent(seed):
    """The embodied.jax.Agent wrapper: .model is the dreamerv3 Agent, .params its whole state."""
    from dreamerv3 import main
    main.make_env = lambda config, index: RoadRunnerSpaces()
    return main.make_agent(make_config(seed))


def ref_data(batch):
    """The fixture batch as the reference's train input, put on the device explicitly because the
    reference's transfer guard refuses implicit copies (call it after make_agent, which selects the
    platform). consec 0 makes step 0 the replay-context step; the stored context latents are zeros,
    which is_first at step 1 masks anyway."""
    B, T1 = batch['is_first'].shape
    data = {k: batch[k] for k in ('image', 'reward', 'is_first', 'is_last', 'is_terminal', 'action')}
    data['consec'] = np.zeros((B, T1), np.int32)
    data['stepid'] = np.zeros((B, T1, 20), np.uint8)
    data['dyn/deter'] = np.zeros((B, T1, 512), np.float32)
    data['dyn/stoch'] = np.zeros((B, T1, 32, 4), np.float32)
    return jax.device_put(data)


def seed_array(seed):
    return jax.device_put(np.array([seed, 0], np.uint32))


def patch_deterministic():
    """Every categorical sample (latents and policy) becomes the argmax of its logits, so both
    implementations follow the same trajectories without sharing a random number generator."""
    import embodied.jax.outs as outs

    def sample(self, seed, shape=()):
        idx = jnp.argmax(self.logits, -1)
        return jnp.broadcast_to(idx, shape + idx.shape)

    outs.Categorical.sample = sample


def patch_exact_twohot():
    """The 'exact' variant. XLA:CPU contracts the two-hot mean (p1*b1)[::-1] + p3*b3 into FMAs, so a
    zero-initialised (uniform) reward or value head predicts about -0.16 instead of 0; summing the
    mirrored halves before the multiply gives exactly 0, as in exact arithmetic."""
    import embodied.jax.outs as outs

    def pred(self):
        m = (self.logits.shape[-1] - 1) // 2
        p = self.probs
        return ((p[..., m + 1:] - p[..., :m][..., ::-1]) * self.bins[m + 1:]).sum(-1) + p[..., m] * self.bins[m]

    outs.TwoHot.pred = pred


class CaptureDecoderLogits:
    """Records the decoder's image output before its sigmoid while a function is traced. The decoder
    calls jax.nn.sigmoid from dreamerv3/rssm.py; the GRU's sigmoids there have other shapes."""

    def __init__(self):
        self.values = {}

    def __enter__(self):
        import dreamerv3.rssm as rssm
        orig, values = jax.nn.sigmoid, self.values

        def sigmoid(x):
            if x.ndim == 4 and tuple(x.shape[-3:]) == (64, 64, 3):
                values['dec_pre'] = x
            return orig(x)

        class NN:
            def __getattr__(self, name):
                return sigmoid if name == 'sigmoid' else getattr(jax.nn, name)

        class Jax:
            def __getattr__(self, name):
                return NN() if name == 'nn' else getattr(jax, name)

        self._module, self._jax = rssm, rssm.jax
        rssm.jax = Jax()
        return self

    def __exit__(self, *exc):
        self._module.jax = self._jax


def loss_fn(agent):
    """jit((params, seed, data) → (state, outputs)): what Agent.train computes before the optimizer.
    Outputs: loss/<term> (the means the reference logs), steploss/<term> (the per-step arrays),
    tokens, post_logit, prior_logit (raw), deter, dec_pre and the loss function's metrics."""
    model = agent.model

    def inner(data):
        carry = model.init_train(data['is_first'].shape[0])
        carry, obs, prevact, _ = model._apply_replay_context(carry, data)
        with CaptureDecoderLogits() as cap:
            _, (_, _, outs, mets) = model.loss(carry, obs, prevact, training=True)
        feat = outs['repfeat']
        res = {f'loss/{k}': v.mean() for k, v in outs['losses'].items()}
        # The float32 mean XLA:CPU fuses into the graph is ~1e-3 off on loss/image; the per-step
        # arrays let the comparison take a float64 mean instead.
        res.update({f'steploss/{k}': v for k, v in outs['losses'].items()})
        res.update(tokens=outs['tokens'], post_logit=feat['logit'], prior_logit=model.dyn._prior(feat['deter']),
                   deter=feat['deter'], dec_pre=cap.values['dec_pre'], mets=mets)
        return res

    pure = nj.pure(inner)
    return jax.jit(lambda params, seed, data: pure(params, data, seed=seed))
