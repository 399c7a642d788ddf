"""Our initial statistics on the fixture batch, the same as ref_init_stats.py computes for the
reference: per initialisation seed, the unscaled loss terms and the mean and std of the encoder
tokens, the decoder's pre-sigmoid output, the posterior and prior logits and deter. Sampling is
our own (torch's generator, seeded before the build).

Writes OUT/ours_init_stats.json. Run from the repository root with our venv:
    python tests/fidelity/ours_init_stats.py [--seeds 0 1 ... 19] [--out DIR]
"""
import json
import time

import torch

import common
import ours_lib as L


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--seeds', type=int, nargs='+', default=list(range(20)))
    args = parser.parse_args()
    out = common.out_dir(args.out)
    torch.set_num_threads(1)  # the figures must not depend on the machine's core count
    batch = common.load_batch()
    result = {'impl': 'ours', 'seeds': {}}
    for seed in args.seeds:
        t0 = time.time()
        agent = L.make_agent(seed)
        loss, found, _ = L.Taps(agent).run(agent, batch)
        rec = {'loss': loss, **{k: common.stats(found[k]) for k in common.STATS}}
        result['seeds'][str(seed)] = rec
        print(seed, f'{time.time() - t0:.0f}s', json.dumps(loss), flush=True)
    (out / 'ours_init_stats.json').write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
