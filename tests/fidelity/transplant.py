"""Puts the reference's initial parameters into our agent, then checks that both compute the same
on the fixture batch with argmax sampling: every unscaled loss term and intermediate.

Reads OUT/ref_params_seed<N>.npz and OUT/ref_det_seed<N>.npz (ref_export.py); writes
OUT/transplant_seed<N>.json. Run from the repository root with our venv:
    python tests/fidelity/transplant.py [--seed 0] [--out DIR]

Every reference tensor maps to exactly one of ours, whole. Layouts: conv kernels HWIO -> OIHW,
linear kernels (in, out) -> (out, in); block-diagonal GRU kernels, biases and norm scales are laid
out alike. The posterior's input rows after deter read the image embedding, which the reference
flattens (h, w, c) and we flatten (c, h, w).
"""
import json

import numpy as np
import torch

import common
import ours_lib as L

ENC = {0: 0, 1: 4, 2: 8, 3: 12}  # reference enc/cnn<i> -> our enc.cnn.net.<j> (its norm at j + 2)
DEC = {'conv2': 1, 'conv1': 5, 'conv0': 9, 'imgout': 13}  # dec/<name> -> dec.cnn.net.<j> (norm at j + 1)
HEADS = {'rew': ('model.reward', 1, 'logits'), 'con': ('model.cont', 1, 'logit'),
         'pol': ('model.actor', 3, 'action/logits'), 'val': ('model.critic', 3, 'logits'),
         'slowval': ('slow', 3, 'logits')}


def build_mapping():
    """reference key -> (our parameter name, layout change); 'slow.' names are the slow critic."""
    m = {}

    def dense(ref, ours, kernel='T'):
        m[f'{ref}/kernel'] = (f'{ours}.weight', kernel)
        m[f'{ref}/bias'] = (f'{ours}.bias', None)

    def norm(ref, ours):
        m[f'{ref}/scale'] = (f'{ours}.scale', None)

    for i, j in ENC.items():
        dense(f'enc/cnn{i}', f'model.enc.cnn.net.{j}', 'HWIO')
        norm(f'enc/cnn{i}norm', f'model.enc.cnn.net.{j + 2}')
    for i, name in enumerate(['deter_in', 'stoch_in', 'act_in']):
        dense(f'dyn/dynin{i}', f'model.rssm.{name}.0')
        norm(f'dyn/dynin{i}norm', f'model.rssm.{name}.1')
    dense('dyn/dynhid0', 'model.rssm.gru_hidden', None)
    norm('dyn/dynhid0norm', 'model.rssm.gru_norm')
    dense('dyn/dyngru', 'model.rssm.gru_gates', None)
    for i in range(2):
        dense(f'dyn/prior{i}', f'model.rssm.prior_net.{i}.0')
        norm(f'dyn/prior{i}norm', f'model.rssm.prior_net.{i}.1')
    dense('dyn/priorlogit', 'model.rssm.prior_net.2')
    dense('dyn/obs0', 'model.rssm.post_net.0.0', 'OBS0')
    norm('dyn/obs0norm', 'model.rssm.post_net.0.1')
    dense('dyn/obslogit', 'model.rssm.post_net.1')
    dense('dec/sp0', 'model.dec.cnn.space_deter', None)
    dense('dec/sp1', 'model.dec.cnn.space_stoch.0.0')
    norm('dec/sp1norm', 'model.dec.cnn.space_stoch.0.1')
    dense('dec/sp2', 'model.dec.cnn.space_stoch.1')
    norm('dec/spnorm', 'model.dec.cnn.space_norm')
    for name, j in DEC.items():
        dense(f'dec/{name}', f'model.dec.cnn.net.{j}', 'HWIO')
        if name != 'imgout':
            norm(f'dec/{name}norm', f'model.dec.cnn.net.{j + 1}')
    for ref, (ours, layers, out) in HEADS.items():
        for i in range(layers):
            dense(f'{ref}/mlp/linear{i}', f'{ours}.mlp.{i}.0')
            norm(f'{ref}/mlp/norm{i}', f'{ours}.mlp.{i}.1')
        dense(f'{ref}/head/{out}', f'{ours}.out')
    return m


def obs0_rows(deter=512, res=4, chans=16):
    """For each of our posterior input rows, the reference row it reads: deter + c·res² + h·res + w
    here is deter + (h·res + w)·chans + c there."""
    c, h, w = np.meshgrid(np.arange(chans), np.arange(res), np.arange(res), indexing='ij')
    return np.concatenate([np.arange(deter), deter + ((h * res + w) * chans + c).ravel()])


def to_ours(value, how):
    if how == 'T':
        return value.T
    if how == 'HWIO':
        return value.transpose(3, 2, 0, 1)
    if how == 'OBS0':
        return value[obs0_rows()].T
    return value


def to_ref(value, how):
    """Inverse of to_ours: one of our arrays in the reference's layout."""
    if how == 'T':
        return value.T
    if how == 'HWIO':
        return value.transpose(2, 3, 1, 0)
    if how == 'OBS0':
        out = np.empty_like(value.T)
        out[obs0_rows()] = value.T
        return out
    return value


def our_tensors(agent):
    return {**{f'model.{k}': v for k, v in agent.model.named_parameters()},
            **{f'slow.{k}': v for k, v in agent.slow_critic.named_parameters()}}


def transplant(agent, params):
    """Copies the reference's parameters (key -> array) into the agent and returns the mapping.
    Fails when a tensor on either side is left over or shapes disagree."""
    mapping = build_mapping()
    ours = our_tensors(agent)
    model_keys = {k for k in params if not k.startswith(('opt/', 'retnorm/', 'slowval_count/'))}
    assert model_keys == set(mapping), (sorted(model_keys - set(mapping)), sorted(set(mapping) - model_keys))
    targets = [name for name, _ in mapping.values()]
    assert sorted(targets) == sorted(ours), (sorted(set(ours) - set(targets)), sorted(set(targets) - set(ours)))
    with torch.no_grad():
        for ref, (name, how) in mapping.items():
            value = np.ascontiguousarray(to_ours(np.asarray(params[ref], np.float32), how))
            assert value.shape == tuple(ours[name].shape), (ref, value.shape, name, tuple(ours[name].shape))
            ours[name].copy_(torch.from_numpy(value))
        agent.retnorm.lo.fill_(float(params['retnorm/lo/value']))
        agent.retnorm.hi.fill_(float(params['retnorm/hi/value']))
    return mapping


def compare(ref, variant, loss, found, B=16, T=64):
    rows = {}
    for k in common.TERMS:
        logged = float(ref[f'{variant}/loss/{k}'])
        # XLA:CPU's fused float32 mean is ~1e-3 off on loss/image; the float64 mean is the fair one.
        mean64 = float(np.asarray(ref[f'{variant}/steploss/{k}'], np.float64).mean())
        rows[k] = {'ours': loss[k], 'ref_logged': logged, 'ref_mean64': mean64,
                   'rel_logged': abs(loss[k] - logged) / abs(logged), 'rel_mean64': abs(loss[k] - mean64) / abs(mean64)}
    r = {k: np.asarray(ref[f'{variant}/{k}'], np.float64) for k in common.STATS}
    pairs = {  # both in our layouts
        'tokens': (found['tokens'], r['tokens'].reshape(B * T, 4, 4, 16).transpose(0, 3, 1, 2).reshape(B * T, -1)),
        'dec_pre': (found['dec_pre'].transpose(0, 2, 3, 1), r['dec_pre'].reshape(B * T, 64, 64, 3)),
        'post_logit': (found['post_logit'].reshape(B, T, -1), r['post_logit'].reshape(B, T, -1)),
        'prior_logit': (found['prior_logit'].reshape(B, T, -1), r['prior_logit'].reshape(B, T, -1)),
        'deter': (found['deter'], r['deter']),
    }
    inter = {k: {'max_abs_diff': float(np.abs(a - b).max()), 'ref_max_abs': float(np.abs(b).max()),
                 'rel': float(np.abs(a - b).max() / np.abs(b).max())} for k, (a, b) in pairs.items()}
    return rows, inter


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = np.load(args.out / f'ref_params_seed{args.seed}.npz')
    ref = np.load(args.out / f'ref_det_seed{args.seed}.npz')
    batch = common.load_batch()
    L.patch_deterministic()
    report = {}
    for variant in ('asis', 'exact'):  # ours is the same in both; only the reference's two-hot mean differs
        agent = L.make_agent(args.seed)
        transplant(agent, params)
        loss, found, metrics = L.Taps(agent).run(agent, batch)
        rows, inter = compare(ref, variant, loss, found)
        report[variant] = {
            'loss': rows, 'intermediates': inter,
            'ours_metrics': {k: float(v) for k, v in metrics.items() if torch.is_tensor(v) and v.dim() == 0},
            'ref_metrics': {k.split('/mets/')[1]: float(ref[k]) for k in ref.files
                            if k.startswith(f'{variant}/mets/') and ref[k].ndim == 0}}
        print(f'== {variant}: unscaled loss terms (ours, reference float64 mean, relative difference)')
        for k, r in rows.items():
            print(f'  {k:7s} {r["ours"]:+.8e} {r["ref_mean64"]:+.8e} {r["rel_mean64"]:.1e}')
        for k, r in inter.items():
            print(f'  {k:12s} max |diff| {r["max_abs_diff"]:.1e} of max |x| {r["ref_max_abs"]:.1e} (rel {r["rel"]:.1e})')
    (args.out / f'transplant_seed{args.seed}.json').write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
