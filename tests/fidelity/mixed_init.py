"""An initial state mixed from two draws, for playback.py --init: one side's draw with some tensors
taken from the other's. Which tensors of a draw set how fast it learns is then a matter of
swapping them and playing both back on the same stream.

Writes a file in the layout of ref_params_seed<N>.npz (the reference's keys and layouts,
transplant.py's mapping): `--base ours` is our draw for `--seed` with `--keys` from the reference's
file, `--base reference` the reference's with `--keys` from our draw. Optimizer state and return
normaliser come from the reference's file (both sides start them alike). Run from the repository
root with our venv:
    python tests/fidelity/mixed_init.py --reference OUT/ref_params_seed0.npz --seed 0 \\
        --base ours --keys dec/imgout/kernel --to OUT/mixed.npz
"""
import argparse
import pathlib

import numpy as np

import ours_lib as L
from transplant import build_mapping, our_tensors, to_ref


def our_draw(seed: int, like: dict) -> dict:
    """Our seed's initial parameters under the reference's keys and layouts; the rest of `like`."""
    tensors = {k: v.detach().numpy() for k, v in our_tensors(L.make_agent(seed)).items()}
    return {**like, **{key: to_ref(tensors[name], how).astype(np.float32)
                       for key, (name, how) in build_mapping().items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', type=pathlib.Path, required=True, help='ref_params_seed<N>.npz')
    p.add_argument('--seed', type=int, required=True, help='our seed, whose draw is the other side')
    p.add_argument('--base', choices=['ours', 'reference'], required=True, help='the draw the rest comes from')
    p.add_argument('--keys', nargs='*', default=[], help='reference keys taken from the other draw (none: '
                   'the base draw as it is, the control of a swap)')
    p.add_argument('--to', type=pathlib.Path, required=True, help='the file to write')
    args = p.parse_args()
    unknown = sorted(set(args.keys) - set(build_mapping()))
    if unknown:
        p.error(f'not parameter keys of the reference: {", ".join(unknown)}')
    reference = dict(np.load(args.reference))
    ours = our_draw(args.seed, reference)
    base, other = (ours, reference) if args.base == 'ours' else (reference, ours)
    np.savez(args.to, **{**base, **{k: other[k] for k in args.keys}})


if __name__ == '__main__':
    main()
