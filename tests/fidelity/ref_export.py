"""The reference's initial state for one seed, to be transplanted into our agent, and what it
computes from it on the fixture batch with argmax sampling, to check the transplant against.

Writes OUT/ref_params_seed<N>.npz (the whole params dict under the reference's keys, optimizer
state and return normaliser included) and OUT/ref_det_seed<N>.npz (loss terms, per-step losses,
intermediates and metrics, each under 'asis/' and 'exact/': the reference as it is, and with the
two-hot mean summed exactly; see ref_lib.patch_exact_twohot). Run with the reference's venv:
    $REFVENV/bin/python tests/fidelity/ref_export.py [--seed 0] [--out DIR]
"""
import jax
import numpy as np

import common


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    import ref_lib as R

    out = common.out_dir(args.out)
    agent = R.make_agent(args.seed)
    np.savez(out / f'ref_params_seed{args.seed}.npz', **{k: np.asarray(v) for k, v in agent.params.items()})
    R.patch_deterministic()
    data = R.ref_data(common.load_batch())
    found = {}
    for variant in ('asis', 'exact'):
        if variant == 'exact':
            R.patch_exact_twohot()
        _, res = jax.device_get(R.loss_fn(agent)(dict(agent.params), R.seed_array(args.seed), data))
        mets = res.pop('mets')
        found.update({f'{variant}/{k}': np.asarray(v) for k, v in res.items()})
        found.update({f'{variant}/mets/{k}': np.asarray(v) for k, v in mets.items()})
        print(variant, {k: float(v) for k, v in res.items() if k.startswith('loss/')}, flush=True)
    np.savez(out / f'ref_det_seed{args.seed}.npz', **found)


if __name__ == '__main__':
    main()
