"""Our training loop fed a reference run's recorded stream, from our initial parameters or from the
reference's: separates what the data and the initial draw do from what the agent and loop do.

The environment plays back the reference logdir's replay chunks in the order they were written
(frames, rewards, episode flags), and the action our replay stores with each step is the one the
reference recorded there, not our policy's. So two runs of this script see the same frames in the
same order and differ only in the parameters they start from (and in which windows replay draws).
With `--init OUT/ref_params_seed<N>.npz` (ref_export.py) our agent starts from the reference's
seed-N parameters (transplant.py's mapping); without it, from our own draw for `--seed`.

    python tests/fidelity/playback.py --reference DIR --run-dir DIR [--init NPZ] [--seed N] [--budget FRAMES]

Same settings as the training curves of README.md (size1m, train ratio 256, float32, one thread
is enough); `--budget` counts frames as `run.budget` does (8,100 frames: 250 updates). The run
directory is an ordinary one, which world_model_curves.py reads with `--ours`. It cannot be resumed
(the stream would start again from its first step): a run stopped early is refused; remove it.
"""
import argparse
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

import dreamer.agent as agent_module
from dreamer.config import make_config
from dreamer.train import train
from ours_lib import ACT_SPACE, OBS_SPACE
from transplant import transplant

KEYS = ('image', 'reward', 'is_first', 'is_last', 'is_terminal', 'action')


def recorded(logdir: pathlib.Path) -> dict[str, np.ndarray]:
    """The reference run's steps in the order written: each checkpoint saves the chunk in flight
    under a name starting with its time stamp, and the next chunk continues from there."""
    files = sorted((logdir / 'replay').glob('*.npz'))
    if not files:
        sys.exit(f'{logdir}: no replay chunks (replay/*.npz); not a logdir of the reference\'s main.py')
    parts = [np.load(f) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in KEYS}


class Playback:
    """The recorded steps as an environment: step i of the stream at the i-th call."""

    obs_space, act_space = OBS_SPACE, ACT_SPACE

    def __init__(self, steps: dict[str, np.ndarray]):
        self.steps, self.index = steps, -1

    def step(self, action):
        self.index += 1
        if self.index >= len(self.steps['image']):
            raise RuntimeError(f'the recorded stream ends after {self.index} steps; lower --budget')
        return {k: self.steps[k][self.index] for k in self.obs_space}

    def close(self):
        pass


def store_recorded_actions(env: Playback) -> None:
    """Our policy still runs (its latents go into replay, as in any run), but the action it hands
    the loop, and feeds itself at the next step, is the one the reference took at this step."""
    policy = agent_module.Agent.policy

    def replaced(self, obs, state=None, mode=False):
        out, state = policy(self, obs, state, mode)
        taken = int(env.steps['action'][env.index])
        out['action'][:] = taken
        state['action'] = F.one_hot(torch.full((len(out['action']),), taken), self.act_dim).float()
        return out, state

    agent_module.Agent.policy = replaced


def start_from(params_path: pathlib.Path) -> None:
    """Every agent built from here on starts from the reference's parameters in `params_path`."""
    params = dict(np.load(params_path))
    build = agent_module.Agent.__init__

    def built(self, *args, **kwargs):
        build(self, *args, **kwargs)
        transplant(self, params)

    agent_module.Agent.__init__ = built


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', type=pathlib.Path, required=True, help='the reference run\'s logdir')
    p.add_argument('--run-dir', type=pathlib.Path, required=True, help='our run directory')
    p.add_argument('--init', type=pathlib.Path, help='ref_params_seed<N>.npz: start from the reference\'s parameters')
    p.add_argument('--seed', type=int, default=0, help='our seed (initial draw, replay sampling, latent noise)')
    p.add_argument('--budget', type=int, default=8100, help='frames (default: %(default)s, 250 updates)')
    args = p.parse_args()
    if (args.run_dir / 'config.json').exists() and not (args.run_dir / 'DONE').exists():
        sys.exit(f'{args.run_dir} exists and did not finish; a playback cannot be resumed: remove it')
    env = Playback(recorded(args.reference))
    store_recorded_actions(env)
    if args.init:
        start_from(args.init)
    config = make_config(['size=size1m', 'run.train_ratio=256', 'run.action_repeat=4', 'run.envs=1',
                          f'run.budget={args.budget}', 'agent.precision=float32', 'run.log_every=30',
                          f'run.seed={args.seed}'])
    train(config, lambda index: env, args.run_dir)


if __name__ == '__main__':
    main()
