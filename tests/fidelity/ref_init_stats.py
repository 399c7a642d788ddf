"""The reference's initial statistics on the fixture batch, for each initialisation seed: its
unscaled loss terms and the mean and std of the encoder tokens, the decoder's pre-sigmoid output,
the posterior and prior logits and deter. Sampling is the reference's own, seeded by the seed.

Writes OUT/ref_init_stats.json. Run with the reference's venv and DREAMERV3_REF set:
    $REFVENV/bin/python tests/fidelity/ref_init_stats.py [--seeds 0 1 ... 19] [--out DIR]
"""
import json
import time

import jax

import common


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--seeds', type=int, nargs='+', default=list(range(20)))
    args = parser.parse_args()
    import ref_lib as R  # after parsing, so that --help needs no DREAMERV3_REF

    out = common.out_dir(args.out)
    batch = common.load_batch()
    result = {'impl': 'reference', 'seeds': {}}
    for seed in args.seeds:
        t0 = time.time()
        agent = R.make_agent(seed)
        _, res = R.loss_fn(agent)(dict(agent.params), R.seed_array(seed), R.ref_data(batch))
        res = jax.device_get(res)
        rec = {'loss': {k: float(res[f'loss/{k}']) for k in common.TERMS}}
        rec.update({k: common.stats(res[k]) for k in common.STATS})
        result['seeds'][str(seed)] = rec
        print(seed, f'{time.time() - t0:.0f}s', json.dumps(rec['loss']), flush=True)
    (out / 'ref_init_stats.json').write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
