"""The reference's side of the lockstep run: its seed-0 initial state (the one ref_export.py wrote
and transplant.py puts into our agent), argmax sampling, and the fixture batch at every update.
One update is what Agent.train does: replay context, loss, the optimizer (AGC, RMS scaling,
momentum, learning-rate warm-up), then the slow critic's EMA. The optax update is wrapped only to
also hand back the raw gradients it receives.

Writes OUT/lockstep_<variant>/: ref_losses.csv (unscaled terms, float64 means of the per-step
losses), ref_extra.csv (return normaliser, optimizer counters, norms), keys.json (the order of the
tensors in the flat arrays) and float32 arrays (updates x parameters): ref_grads.npy (raw gradients
of update u), ref_params.npy (parameters before update u), ref_nu.npy and ref_mu.npy (optimizer
state after update u), ref_slow.npy (slow critic after update u). 300 updates need ~4 GB here.
Run with the reference's venv:
    $REFVENV/bin/python tests/fidelity/ref_lockstep.py [--variant asis|exact] [--updates 300] [--out DIR]
"""
import csv
import json
import time

import jax
import numpy as np

import common


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--variant', choices=['asis', 'exact'], default='asis')
    parser.add_argument('--updates', type=int, default=300)
    args = parser.parse_args()
    import ninjax as nj
    import optax
    import ref_lib as R

    out = common.out_dir(args.out) / f'lockstep_{args.variant}'
    out.mkdir(exist_ok=True)
    agent = R.make_agent(0)
    init = np.load(args.out / 'ref_params_seed0.npz')
    for k, v in agent.params.items():  # our side starts from that file: it must be this very state
        assert np.array_equal(np.asarray(v), init[k]), f'{k} differs from ref_params_seed0.npz'
    R.patch_deterministic()
    if args.variant == 'exact':
        R.patch_exact_twohot()
    model = agent.model

    seen = {}
    opt = model.opt.opt

    def update(grads, state, params=None):
        seen['grads'] = grads
        return opt.update(grads, state, params)

    model.opt.opt = optax.GradientTransformation(opt.init, update)

    def step(data):
        carry = model.init_train(data['is_first'].shape[0])
        carry, obs, prevact, _ = model._apply_replay_context(carry, data)
        metrics, (_, _, outs, mets) = model.opt(model.loss, carry, obs, prevact, training=True, has_aux=True)
        model.slowval.update()
        return {'metrics': metrics, 'mets': mets, 'steploss': outs['losses'], 'grads': seen['grads']}

    pure = nj.pure(step)
    train = jax.jit(lambda state, seed, data: pure(state, data, seed=seed))

    state = dict(agent.params)
    keys = sorted(k for k in state if not k.startswith(('opt/', 'retnorm/', 'slowval')))
    slowkeys = sorted(k for k in state if k.startswith('slowval/'))
    shapes = {k: list(state[k].shape) for k in keys + slowkeys}
    (out / 'keys.json').write_text(json.dumps({'keys': keys, 'slowkeys': slowkeys, 'shapes': shapes}))
    size = lambda ks: sum(int(np.prod(shapes[k])) for k in ks)
    arrays = {name: np.lib.format.open_memmap(out / f'ref_{name}.npy', 'w+', np.float32, (args.updates, n))
              for name, n in [('grads', size(keys)), ('params', size(keys)), ('nu', size(keys)),
                              ('mu', size(keys)), ('slow', size(slowkeys))]}
    flat = lambda d, ks: np.concatenate([np.asarray(d[k], np.float32).ravel() for k in ks])

    data = R.ref_data(common.load_batch())
    seed = R.seed_array(0)
    with open(out / 'ref_losses.csv', 'w', newline='') as fl, open(out / 'ref_extra.csv', 'w', newline='') as fe:
        losses_csv, extra_csv = csv.writer(fl), csv.writer(fe)
        losses_csv.writerow(['impl', 'update', *common.TERMS])
        extra_csv.writerow(['update', 'logged_image', 'retnorm_lo', 'retnorm_hi', 'opt_count', 'rms_step',
                            'mom_step', 'slowval_count', 'grad_norm', 'update_rms', 'adv', 'ret', 'val', 'ent'])
        t0 = time.time()
        for u in range(args.updates):
            arrays['params'][u] = flat(jax.device_get(state), keys)
            state, res = train(state, seed, data)
            res, st = jax.device_get((res, state))
            arrays['grads'][u] = flat(res['grads'], keys)
            # optax chain state: 1 is the RMS scaling, 2 the momentum; [1] their per-tensor arrays
            arrays['nu'][u] = flat({k: st['opt/state/1/1/' + k] for k in keys}, keys)
            arrays['mu'][u] = flat({k: st['opt/state/2/1/' + k] for k in keys}, keys)
            arrays['slow'][u] = flat(st, slowkeys)
            losses = {k: float(np.asarray(res['steploss'][k], np.float64).mean()) for k in common.TERMS}
            losses_csv.writerow(['reference', u, *[repr(losses[k]) for k in common.TERMS]])
            m, mets = res['metrics'], res['mets']
            extra_csv.writerow([
                u, float(mets['loss/image']), float(st['retnorm/lo/value']), float(st['retnorm/hi/value']),
                int(st['opt/state/3/count']), int(st['opt/state/1/0']), int(st['opt/state/2/0']),
                int(st['slowval_count/value']), float(m['opt/grad_norm']), float(m['opt/update_rms']),
                float(mets['adv']), float(mets['ret']), float(mets['val']), float(mets['ent/action'])])
            common.update_done(u, args.updates, t0, losses, fl, fe)
    for a in arrays.values():
        a.flush()


if __name__ == '__main__':
    main()
