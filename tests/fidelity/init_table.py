"""Sets the two sides' initial statistics beside each other, and recomputes from the reference's
the figures tests/dreamer/test_initial_scales.py pins, to check them.

Reads OUT/ref_init_stats.json and OUT/ours_init_stats.json; writes OUT/init_table.md. Per
statistic: mean ± std (ddof 1) over the seeds on each side, the Welch t of the difference, and
whether the seeds' ranges overlap. Run from the repository root with our venv:
    python tests/fidelity/init_table.py [--out DIR]
"""
import importlib.util
import json
import math
import pathlib

import numpy as np

import common

TEST = pathlib.Path(__file__).resolve().parents[1] / 'dreamer' / 'test_initial_scales.py'


def rows(seeds):
    """statistic name as the test names it -> values over the seeds."""
    out = {f'loss/{k}': [s['loss'][k] for s in seeds.values()] for k in common.TERMS}
    out.update({f'{k}.{m}': [s[k][m] for s in seeds.values()] for k in common.STATS for m in ('mean', 'std')})
    return out


def sd(x):
    return f'{x.std(ddof=1):.3g}' if len(x) > 1 else '-'


def table(ref, ours):
    lines = [f'| statistic | reference (n={len(ref["loss/image"])}) | ours (n={len(ours["loss/image"])}) '
             '| Welch t | ranges overlap |', '|---|---|---|---|---|']
    for name in ref:
        r, o = np.array(ref[name]), np.array(ours[name])
        diff = o.mean() - r.mean()
        overlap = 'yes' if o.min() <= r.max() and r.min() <= o.max() else 'no'
        spread = math.sqrt(r.var(ddof=1) / len(r) + o.var(ddof=1) / len(o)) if min(len(r), len(o)) > 1 else None
        if spread is None:
            t = '-'
        elif spread > 0:
            t = f'{diff / spread:.2f}'
        else:  # zero-initialised heads give every seed the same loss: float noise is all there may be
            rel = abs(diff) / abs(r.mean())
            t, overlap = f'(no spread; rel diff {rel:.1e})', 'yes' if rel <= 1e-5 else 'no'
        lines.append(f'| {name} | {r.mean():.5g} ± {sd(r)} | {o.mean():.5g} ± {sd(o)} | {t} | {overlap} |')
    return lines


def check_pinned(ref):
    """The test pins means to 6 and stds to 3 significant digits, over seeds 0 to REFERENCE_SEEDS - 1."""
    spec = importlib.util.spec_from_file_location('test_initial_scales', TEST)
    test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test)
    if len(ref['loss/image']) != test.REFERENCE_SEEDS:
        return [f'  (needs the reference\'s seeds 0-{test.REFERENCE_SEEDS - 1})'], None
    lines, same = [], True
    for name, (mean, std) in test.REFERENCE.items():
        got = (f'{np.mean(ref[name]):.6g}', f'{np.std(ref[name], ddof=1):.3g}')
        same &= got == (f'{mean:.6g}', f'{std:.3g}')
        lines.append(f'  {name:18s} pinned ({mean:.6g}, {std:.3g})  recomputed ({got[0]}, {got[1]})')
    for name, value in test.EXACT.items():
        got = f'{np.mean(ref[name]):.6g}'
        same &= got == f'{value:.6g}'
        lines.append(f'  {name:18s} pinned {value:.6g}  recomputed {got}')
    return lines, same


def main():
    args = common.parser(__doc__).parse_args()
    ref = rows(json.loads((args.out / 'ref_init_stats.json').read_text())['seeds'])
    ours = rows(json.loads((args.out / 'ours_init_stats.json').read_text())['seeds'])
    lines = table(ref, ours)
    (args.out / 'init_table.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    pinned, same = check_pinned(ref)
    print(f'\n{TEST.name}: reference figures as pinned and as recomputed from ref_init_stats.json')
    print('\n'.join(pinned))
    if same is not None:
        print('all as pinned' if same else 'NOT all as pinned')


if __name__ == '__main__':
    main()
