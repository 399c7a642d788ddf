"""Our side of the lockstep run: the reference's seed-0 initial parameters transplanted
(transplant.py), argmax sampling, and the fixture batch at every update; each update is one
agent.train(batch, zero carry): loss, backward, LaProp step, slow critic EMA.

Reads OUT/ref_params_seed0.npz (ref_export.py). Writes OUT/lockstep_<variant>/: ours_losses.csv,
ours_extra.csv and float32 arrays (updates x parameters) in the reference's layout and tensor
order, to set beside ref_lockstep.py's: ours_grads.npy (raw gradients of update u), ours_params.npy
(parameters before update u), ours_nu.npy and ours_mu.npy (LaProp state after update u),
ours_slow.npy (slow critic after update u). Run from the repository root with our venv:
    python tests/fidelity/ours_lockstep.py [--variant asis|exact] [--updates 300] [--out DIR]

The 'exact' variant flushes denormal results to zero, as XLA:CPU does (jit(x*x)(1e-20) == 0 there):
with LaProp's eps of 1e-20, a gradient element below ~1e-19 gets nu = 0 in the reference and a step
of g/1e-20, which torch reproduces only with the same flush.
"""
import csv
import time

import numpy as np
import torch

import common
import ours_lib as L
import transplant as TP


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--variant', choices=['asis', 'exact'], default='asis')
    parser.add_argument('--updates', type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = common.out_dir(args.out) / f'lockstep_{args.variant}'
    out.mkdir(exist_ok=True)
    params = np.load(args.out / 'ref_params_seed0.npz')
    # the reference side's order (ref_lockstep.py writes it to keys.json)
    keys = sorted(k for k in params.files if not k.startswith(('opt/', 'retnorm/', 'slowval')))
    slowkeys = sorted(k for k in params.files if k.startswith('slowval/'))
    agent = L.make_agent(0)
    mapping = TP.transplant(agent, params)
    L.patch_deterministic()
    if args.variant == 'exact':
        assert torch.set_flush_denormal(True), 'this CPU cannot flush denormals'
    ours = TP.our_tensors(agent)

    # LaProp clips p.grad in place: keep a copy of the raw gradients from just before its step.
    raw = {}
    opt_step = agent.opt.step

    def step(*a, **kw):
        raw.update({p: p.grad.detach().clone() for p in agent.model.parameters()})
        return opt_step(*a, **kw)

    agent.opt.step = step

    size = lambda ks: sum(params[k].size for k in ks)
    arrays = {name: np.lib.format.open_memmap(out / f'ours_{name}.npy', 'w+', np.float32, (args.updates, n))
              for name, n in [('grads', size(keys)), ('params', size(keys)), ('nu', size(keys)),
                              ('mu', size(keys)), ('slow', size(slowkeys))]}

    def flat(get, ks):
        return np.concatenate([TP.to_ref(get(ours[mapping[k][0]]).detach().float().numpy(), mapping[k][1]).ravel()
                               for k in ks])

    batch = common.load_batch()
    scales = L.config().agent.loss
    with open(out / 'ours_losses.csv', 'w', newline='') as fl, open(out / 'ours_extra.csv', 'w', newline='') as fe:
        losses_csv, extra_csv = csv.writer(fl), csv.writer(fe)
        losses_csv.writerow(['impl', 'update', *common.TERMS])
        extra_csv.writerow(['update', 'retnorm_lo', 'retnorm_hi', 'opt_step', 'ret_scale', 'adv_std', 'ret_mean',
                            'value_mean', 'imag_reward', 'entropy'])
        t0 = time.time()
        for u in range(args.updates):
            arrays['params'][u] = flat(lambda p: p, keys)
            _, metrics = agent.train(batch, L.zero_carry(16))
            arrays['grads'][u] = flat(lambda p: raw[p], keys)
            arrays['nu'][u] = flat(lambda p: agent.opt.state[p]['nu'], keys)
            arrays['mu'][u] = flat(lambda p: agent.opt.state[p]['mom'], keys)
            arrays['slow'][u] = flat(lambda p: p, slowkeys)
            losses = {ref: metrics[f'loss/{k}'] / getattr(scales, k) for ref, k in zip(common.TERMS, L.OUR_TERMS)}
            losses_csv.writerow(['ours', u, *[repr(losses[k]) for k in common.TERMS]])
            opt_step_count = agent.opt.state[next(agent.model.parameters())]['step']
            extra_csv.writerow([u, float(agent.retnorm.lo), float(agent.retnorm.hi), opt_step_count,
                                *[metrics[k] for k in ('ret/scale', 'adv/std', 'ret/mean', 'value/mean',
                                                       'imag/reward', 'actor/entropy')]])
            common.update_done(u, args.updates, t0, losses, fl, fe)
    for a in arrays.values():
        a.flush()


if __name__ == '__main__':
    main()
