"""Stage by stage at initialisation: our draws against the reference's draws put into our agent
(transplant.py: the same function), every draw with the same sampling noise, so that the draws
are all that differs. Per seed and stage (each conv of the encoder and decoder, the decoder's two
grid paths, the posterior logits, deter, the decoder's pre-sigmoid output, the image loss), the
std on the fixture batch; then per stage the mean ± std over seeds of each side, and the ratio of
the spreads. Also the spread of the per-channel sums of the last conv's weights, which set the
offset each output channel starts with (independent draws: 1.0).

Reads OUT/ref_params_seed<N>.npz for each seed (ref_export.py --seed N); writes
OUT/init_stages.json. Run from the repository root with our venv:
    python tests/fidelity/init_stages.py [--seeds 0 1 ... 19] [--out DIR]
"""
import json

import numpy as np
import torch

import common
import ours_lib as L
from transplant import transplant

NOISE_SEED = 777  # the sampling noise every draw sees


def stages(agent, batch):
    """stage -> std of its output on the batch, with the image loss and the last conv's channel sums."""
    m, seen = agent.model, {}

    def keep(name):
        return lambda mod, inp, out: seen.setdefault(name, []).append(out.detach().double().flatten())

    hooks = [conv.register_forward_hook(keep(f'enc.conv{i}'))
             for i, conv in enumerate(c for c in m['enc'].cnn.net if isinstance(c, torch.nn.Conv2d))]
    dec = m['dec'].cnn
    hooks += [dec.space_deter.register_forward_hook(keep('dec.grid_deter')),
              dec.space_stoch.register_forward_hook(keep('dec.grid_stoch')),
              m['rssm'].post_net.register_forward_hook(keep('post_logit'))]
    hooks += [conv.register_forward_hook(keep(f'dec.conv{i}'))
              for i, conv in enumerate(c for c in dec.net if isinstance(c, torch.nn.Conv2d))]
    torch.manual_seed(NOISE_SEED)
    loss, found, _ = L.Taps(agent).run(agent, batch)
    for hook in hooks:
        hook.remove()
    out = {name: float(torch.cat(values).std()) for name, values in seen.items()}
    out.update({'deter': float(np.std(found['deter'])), 'image loss': loss['image']})
    last = dec.net[-1].weight.detach().double()  # (C, I, k, k)
    return out, last.sum((1, 2, 3)).tolist()


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--seeds', type=int, nargs='+', default=list(range(20)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    batch = common.load_batch()
    result = {'ours': {}, 'reference': {}}
    sums = {'ours': [], 'reference': []}
    for seed in args.seeds:
        draws = {'ours': L.make_agent(seed), 'reference': L.make_agent(seed)}
        transplant(draws['reference'], dict(np.load(args.out / f'ref_params_seed{seed}.npz')))
        for side, agent in draws.items():
            result[side][seed], channel_sums = stages(agent, batch)
            sums[side] += channel_sums
        print(seed, flush=True)
    (args.out / 'init_stages.json').write_text(json.dumps({**result, 'last_conv_channel_sums': sums}, indent=1))
    n = len(args.seeds)
    print(f'| stage | reference (n={n}) | ours (n={n}) | spread ratio, ours / reference |\n|---|---|---|---|')
    for stage in result['ours'][args.seeds[0]]:
        r, o = (np.array([v[stage] for v in result[side].values()]) for side in ('reference', 'ours'))
        print(f'| {stage} | {r.mean():.4g} ± {r.std(ddof=1):.3g} | {o.mean():.4g} ± {o.std(ddof=1):.3g} '
              f'| {o.std(ddof=1) / r.std(ddof=1):.2f} |')
    print(f'last conv, std of its per-channel weight sums: reference {np.std(sums["reference"]):.3f}, '
          f'ours {np.std(sums["ours"]):.3f} (independent draws: 1.0)')


if __name__ == '__main__':
    main()
