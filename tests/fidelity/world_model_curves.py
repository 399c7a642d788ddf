"""The world model's training curves, ours against the reference's, matched by update count.

Reads reference logdirs (`metrics.jsonl` and `config.yaml`, as its `dreamerv3/main.py` writes them)
and our run directories (`metrics.jsonl` and `config.json`), and writes to `--out`:
- `curves.csv`: one row per logged point, columns impl (ours or reference), seed, updates, image,
  dyn, con. All three are the unscaled loss terms: their scales are 1 on both sides, and our
  `loss/rec` is the reference's `train/loss/image`. `updates` is what each side logs: ours the
  update count at the log line, the reference's `train/opt/updates` averaged over its log window.
- `curves.png`: each term by update, every seed as a thin line and each implementation's mean over
  seeds (on a common grid of updates, where every seed of it has reached) as a thick one, shaded
  between its lowest and highest seed.

`--transplanted` takes runs of ours that started from the reference's initial parameters
(playback.py --init); they are the impl `ours from reference init`, their seed the reference's.

Runs with our venv: python tests/fidelity/world_model_curves.py --reference DIR... --ours DIR...
"""
import argparse
import json
import pathlib
import re

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

TERMS = ['image', 'dyn', 'con']
KEYS = {'reference': {'updates': 'train/opt/updates', 'image': 'train/loss/image',
                      'dyn': 'train/loss/dyn', 'con': 'train/loss/con'},
        'ours': {'updates': 'updates', 'image': 'loss/rec', 'dyn': 'loss/dyn', 'con': 'loss/con'}}
TRANSPLANTED = 'ours from reference init'
KEYS[TRANSPLANTED] = KEYS['ours']
COLORS = {'reference': 'tab:gray', 'ours': 'tab:blue', TRANSPLANTED: 'tab:orange'}


def seed_of(impl, run):
    if impl != 'reference':
        return json.loads((run / 'config.json').read_text())['seed']
    match = re.search(r'^seed: (\d+)$', (run / 'config.yaml').read_text(), re.M)
    return int(match.group(1))


def points(impl, run):
    """The logged points of one run that carry every term: rows (updates, image, dyn, con)."""
    keys = KEYS[impl]
    rows = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines() if line]
    rows = [{name: row[key] for name, key in keys.items()} for row in rows
            if all(key in row for key in keys.values())]
    return pd.DataFrame(rows, columns=list(keys)).assign(impl=impl, seed=seed_of(impl, run))


def seed_band(runs, term, grid):
    """The mean over seeds of `term` interpolated at `grid` updates (each seed's own points), and
    the lowest and highest seed there: (mean, low, high)."""
    curves = np.array([np.interp(grid, r.updates, r[term]) for _, r in runs.groupby('seed')])
    return curves.mean(0), curves.min(0), curves.max(0)


def plot(table, path, title):
    fig, axes = plt.subplots(1, len(TERMS), figsize=(5 * len(TERMS), 3.8))
    for ax, term in zip(axes, TERMS):
        for impl, runs in table.groupby('impl'):
            for _, run in runs.groupby('seed'):
                ax.plot(run.updates, run[term], color=COLORS[impl], lw=0.7, alpha=0.45)
            reach = runs.groupby('seed').updates.max().min()
            grid = np.linspace(runs.updates.min(), reach, 100)
            seeds = runs.seed.nunique()
            mean, low, high = seed_band(runs, term, grid)
            ax.fill_between(grid, low, high, color=COLORS[impl], alpha=0.15, lw=0)
            ax.plot(grid, mean, color=COLORS[impl], lw=2.2,
                    label=f'{impl}: mean of {seeds} seed{"s" if seeds > 1 else ""}, band: lowest to highest')
        ax.set(title=term, xlabel='updates', yscale='log' if term == 'image' else 'linear')
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f'World-model losses by update: {title}')
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', type=pathlib.Path, nargs='*', default=[], help='reference logdirs')
    p.add_argument('--ours', type=pathlib.Path, nargs='*', default=[], help='our run directories')
    p.add_argument('--transplanted', type=pathlib.Path, nargs='*', default=[],
                   help='our run directories that started from the reference\'s parameters')
    p.add_argument('--title', default='Road Runner, size1m, train ratio 256, float32', help='the figure\'s setting')
    p.add_argument('--max-updates', type=float, default=800, help='points beyond this are left out')
    p.add_argument('--at', type=int, nargs='+', default=[300, 600], help='updates at which to print the image loss')
    p.add_argument('--out', type=pathlib.Path, default=pathlib.Path('fidelity-out'))
    args = p.parse_args()
    runs = ([points('reference', r) for r in args.reference] + [points('ours', r) for r in args.ours]
            + [points(TRANSPLANTED, r) for r in args.transplanted])
    if not runs:
        p.error('give at least one run with --reference, --ours or --transplanted')
    table = pd.concat(runs)[['impl', 'seed', 'updates'] + TERMS]
    table = table[table.updates <= args.max_updates].sort_values(['impl', 'seed', 'updates'])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / 'curves.csv', index=False)
    plot(table, args.out / 'curves.png', args.title)
    at = {}  # (impl, updates) -> the image loss of each seed that reached it
    for (impl, seed), run in table.groupby(['impl', 'seed']):
        for u in args.at:
            if run.updates.max() >= u:
                at.setdefault((impl, u), []).append(float(np.interp(u, run.updates, run.image)))
        print(f'{impl} seed {seed}: {len(run)} points to update {run.updates.max():.0f}; image at '
              + (', '.join(f'{u}: {at[impl, u][-1]:,.0f}' for u in args.at if run.updates.max() >= u) or '—'))
    for u in args.at:
        ref = at.get(('reference', u), [])
        for impl in sorted({i for i, v in at if v == u}):
            seeds = at[impl, u]
            line = f'image at {u}, {impl}: {np.mean(seeds):,.0f} ± {np.std(seeds, ddof=1) if len(seeds) > 1 else 0:,.0f} ({len(seeds)} seeds)'
            if impl != 'reference' and len(ref) > 1:
                # issue 25's bound: inside the reference's mean + max(std, 10% of the mean)
                bound = np.mean(ref) + max(np.std(ref, ddof=1), 0.1 * np.mean(ref))
                line += f'; the reference\'s bound {bound:,.0f}: {"inside" if np.mean(seeds) <= bound else "outside"}'
            print(line)


if __name__ == '__main__':
    main()
