"""Sets the two sides of a lockstep run beside each other (ref_lockstep.py, ours_lockstep.py).

Prints and writes to OUT/lockstep_<variant>_report.json:
1. per loss term, the relative difference |ours - ref| / |ref| at chosen updates, the largest, and
   the first update from which it stays above 1e-3 for 6 updates ('parts at');
2. per module, the first update where a tensor's gradient or parameters differ by more than 1e-3;
3. the relative difference of all gradients, parameters, optimizer state and slow critic together;
4. optionally (--detail U ...) the tensors that differ most at those updates;
5. each side's optimizer against the rule written out, on its own gradients, in float64:
   AGC g' = g / max(1, |g| / (0.3 max(1e-3, |p|))) per tensor, nu = 0.999 nu + 0.001 g'^2,
   m = 0.9 m + 0.1 g' / (sqrt(nu / (1 - 0.999^t)) + 1e-20), p -= lr_t m / (1 - 0.9^t) with
   lr_t = 4e-5 min(1, (t - 1) / 1000), slow = 0.98 slow + 0.02 p;
6. the return normaliser's range on each side.
Also writes OUT/lockstep_<variant>.csv with both sides' loss terms. Run with our venv:
    python tests/fidelity/lockstep_compare.py [--variant asis|exact] [--detail U ...] [--out DIR]
"""
import csv
import json

import numpy as np

import common

ARRAYS = ('grads', 'params', 'nu', 'mu', 'slow')


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a - b))


def segments(keys, shapes):
    out, off = {}, 0
    for k in keys:
        n = int(np.prod(shapes[k]))
        out[k], off = slice(off, off + n), off + n
    return out


def read_losses(path):
    with open(path) as f:
        return np.array([[float(r[k]) for k in common.TERMS] for r in csv.DictReader(f)])


def opt_check(d, seg, n, lr=4e-5, warmup=1000, b1=0.9, b2=0.999, eps=1e-20, agc=0.3, pmin=1e-3):
    """Per update, the largest relative error over tensors of nu, mu and the parameter step against
    the rule, each step recomputed from the side's own stored state so that errors do not add up."""
    res = []
    for u in range(n):
        t = u + 1
        lr_t = lr * min(1.0, (t - 1) / warmup)
        e = {'nu': 0.0, 'mu': 0.0, 'step': 0.0, 'clipped': 0, 'flushed': 0}
        num = den = 0.0
        for s in seg.values():
            g, p = d['grads'][u][s].astype(np.float64), d['params'][u][s].astype(np.float64)
            nu0 = d['nu'][u - 1][s].astype(np.float64) if u else 0.0
            mu0 = d['mu'][u - 1][s].astype(np.float64) if u else 0.0
            f = 1.0 / max(1.0, np.linalg.norm(g) / (agc * max(pmin, np.linalg.norm(p))))
            e['clipped'] += f < 1.0
            g = g * f
            nu = b2 * nu0 + (1 - b2) * g * g
            mu = b1 * mu0 + (1 - b1) * g / (np.sqrt(nu / (1 - b2 ** t)) + eps)
            stored_nu, stored_mu = d['nu'][u][s], d['mu'][u][s].astype(np.float64)
            # g'^2 that underflowed to 0 in float32 (or was flushed) leaves nu = 0 and a step of
            # g'/1e-20: counted, and left out of the mu check.
            flushed = (stored_nu == 0) & (g != 0)
            e['flushed'] += int(flushed.sum())
            e['nu'] = max(e['nu'], rel(stored_nu, nu))
            e['mu'] = max(e['mu'], rel(stored_mu[~flushed], mu[~flushed]))
            if u + 1 < n:
                want = -lr_t * stored_mu / (1 - b1 ** t)
                got = d['params'][u + 1][s].astype(np.float64) - p
                # Only steps well above the float32 spacing of the new values say anything.
                ulp = np.spacing(np.abs(d['params'][u + 1][s])).astype(np.float64)
                if np.linalg.norm(want) > 100 * np.linalg.norm(ulp):
                    e['step'] = max(e['step'], rel(got, want))
                    mhat = stored_mu / (1 - b1 ** t)
                    num, den = num - float((got * mhat).sum()), den + float((mhat * mhat).sum())
        e.update(update=u, lr_rule=lr_t, lr_implied=num / den if den > 0 else None)
        res.append(e)
    return res


def slow_check(d, seg, sseg, n, rate=0.02):
    """Slow critic after update u against 0.98 of its previous value + 0.02 of the critic after
    update u (= before update u + 1)."""
    out = []
    for u in range(1, n - 1):
        out.append(max(rel(d['slow'][u][sseg[sk]], (1 - rate) * d['slow'][u - 1][sseg[sk]].astype(np.float64)
                           + rate * d['params'][u + 1][seg['val/' + sk[len('slowval/'):]]]) for sk in sseg))
    return out


def main():
    parser = common.parser(__doc__)
    parser.add_argument('--variant', choices=['asis', 'exact'], default='asis')
    parser.add_argument('--detail', type=int, nargs='*', default=[])
    args = parser.parse_args()
    base = args.out / f'lockstep_{args.variant}'
    meta = json.loads((base / 'keys.json').read_text())
    seg, sseg = segments(meta['keys'], meta['shapes']), segments(meta['slowkeys'], meta['shapes'])
    R, O = read_losses(base / 'ref_losses.csv'), read_losses(base / 'ours_losses.csv')
    n = min(len(R), len(O))
    marks = sorted({u for u in (0, 1, 2, 5, 10, 20, 50, 100, 150, 200, 250, n - 1) if u < n})
    with open(args.out / f'lockstep_{args.variant}.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['impl', 'update', *common.TERMS])
        for u in range(n):
            w.writerow(['reference', u, *map(repr, R[u])])
            w.writerow(['ours', u, *map(repr, O[u])])

    report = {'variant': args.variant, 'updates': n, 'terms': {}}
    diff = np.abs(O[:n] - R[:n]) / np.maximum(np.abs(R[:n]), 1e-30)
    print(f'{args.variant}: {n} updates on both sides. Loss terms, relative difference ours vs reference:')
    for j, k in enumerate(common.TERMS):
        r = diff[:, j]
        parts = next((u for u in range(n) if (r[u:u + 6] > 1e-3).all()), None)
        report['terms'][k] = {'parts_at': parts, 'max_rel': float(r.max()), 'argmax': int(r.argmax()),
                              'rel_at': {str(u): float(r[u]) for u in marks}}
        print(f'  {k:7s} parts at {parts}  max {r.max():.2e} @ {int(r.argmax())}  '
              + ' '.join(f'{u}:{r[u]:.1e}' for u in marks))

    D = {side: {a: np.load(base / f'{side}_{a}.npy', mmap_mode='r') for a in ARRAYS} for side in ('ref', 'ours')}
    groups = {}
    for k in meta['keys']:
        groups.setdefault(k.split('/')[0], []).append(k)
    report['modules'] = {}
    print('per module: first update where a tensor differs by > 1e-3 in gradient, in parameters; at the last update')
    for name, ks in groups.items():
        worst = {a: [max(rel(D['ours'][a][u][seg[k]], D['ref'][a][u][seg[k]]) for k in ks) for u in range(n)]
                 for a in ('grads', 'params')}
        first = {a: next((u for u in range(n) if worst[a][u] > 1e-3), None) for a in worst}
        report['modules'][name] = {'first_over_1e-3': first, 'max_rel_per_update': worst}
        print(f'  {name:4s} grads {first["grads"]}  params {first["params"]}  | '
              f'grad {worst["grads"][-1]:.2e} param {worst["params"][-1]:.2e}')

    report['all_tensors'] = [{a: rel(D['ours'][a][u], D['ref'][a][u]) for a in ARRAYS} for u in range(n)]
    print('all tensors together: update: ' + ' '.join(ARRAYS))
    for u in sorted(set(marks + args.detail)):
        if u < n:
            print(f'  {u:4d}: ' + ' '.join(f'{report["all_tensors"][u][a]:.2e}' for a in ARRAYS))

    report['tensors'] = {}
    for u in (u for u in args.detail if u < n):
        rows = {k: {a: rel(D['ours'][a][u][s], D['ref'][a][u][s]) for a in ('grads', 'params', 'nu', 'mu')}
                for k, s in seg.items()}
        report['tensors'][str(u)] = rows
        print(f'update {u}: the 15 tensors whose gradients differ most (grads params nu mu)')
        for k, r in sorted(rows.items(), key=lambda kv: -kv[1]['grads'])[:15]:
            print(f'  {k:36s} ' + ' '.join(f'{r[a]:.2e}' for a in ('grads', 'params', 'nu', 'mu')))

    report['optimizer'] = {}
    for side in ('ref', 'ours'):
        chk, slow = opt_check(D[side], seg, n), slow_check(D[side], seg, sseg, n)
        c = {'max_nu': max(e['nu'] for e in chk), 'max_mu': max(e['mu'] for e in chk),
             'max_step': max((e['step'] for e in chk[:-1]), default=0.0), 'max_slow': max(slow, default=0.0),
             'clipped_tensors': [int(e['clipped']) for e in chk], 'flushed': [e['flushed'] for e in chk],
             'lr': {e['update']: [e['lr_implied'], e['lr_rule']] for e in chk if e['update'] in marks}}
        report['optimizer'][side] = c
        print(f'{side} optimizer against the rule: max rel error nu {c["max_nu"]:.1e} mu {c["max_mu"]:.1e} '
              f'step {c["max_step"]:.1e} slow {c["max_slow"]:.1e}; AGC-clipped tensors per update '
              f'{min(c["clipped_tensors"])}-{max(c["clipped_tensors"])}; g\'^2 underflowed to nu = 0: '
              f'{sum(c["flushed"])} elements')
        print('   implied lr vs schedule: ' + ', '.join(f'{u}: {a:.4g}/{b:.4g}' for u, (a, b) in c['lr'].items()
                                                        if a is not None))

    extra = {}
    for side in ('ref', 'ours'):
        with open(base / f'{side}_extra.csv') as f:
            extra[side] = list(csv.DictReader(f))
    report['retnorm'] = [{f'{side}_{b}': float(extra[side][u][f'retnorm_{b}']) for side in extra for b in ('lo', 'hi')}
                         for u in range(n)]
    print('return normaliser lo, hi: reference | ours')
    for u in marks:
        r = report['retnorm'][u]
        print(f'  {u:4d}: {r["ref_lo"]:+.3e} {r["ref_hi"]:+.3e} | {r["ours_lo"]:+.3e} {r["ours_hi"]:+.3e}')
    (args.out / f'lockstep_{args.variant}_report.json').write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
