"""What both sides share: the batch, the names of what is compared, the output folder.

Standard library and numpy only, because it is imported under the reference's venv as well as ours.
"""
import argparse
import pathlib
import time

import numpy as np

BATCH = pathlib.Path(__file__).resolve().parents[1] / 'dreamer' / 'fixtures' / 'road_runner_batch.npz'
# Unscaled loss terms, named as the reference logs them (ours calls the image term 'rec').
TERMS = ['image', 'rew', 'con', 'dyn', 'rep', 'policy', 'value', 'repval']
# Intermediates whose mean and std are compared at initialisation.
STATS = ['tokens', 'dec_pre', 'post_logit', 'prior_logit', 'deter']


def parser(doc):
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', type=pathlib.Path, default=pathlib.Path('fidelity-out'),
                   help='folder for everything written and read (default: fidelity-out under the cwd)')
    return p


def out_dir(path):
    path.mkdir(parents=True, exist_ok=True)
    # The lockstep files run to gigabytes: a folder made inside a clone must never be committed.
    ignore = path / '.gitignore'
    if not ignore.exists():
        ignore.write_text('*\n')
    return path


def load_batch():
    """16 windows of 65 Road Runner steps (step 0 is the replay-context step), as numpy arrays."""
    with np.load(BATCH) as f:
        return {k: f[k] for k in f.files}


def stats(x):
    x = np.asarray(x, np.float64)
    return {'mean': float(x.mean()), 'std': float(x.std()), 'shape': list(x.shape)}


def update_done(u, updates, t0, losses, *files):
    """After lockstep update `u` of `updates`: the CSV files flushed (a killed run keeps its rows)
    and, every 10th update and the last, its losses on the terminal."""
    for f in files:
        f.flush()
    if u % 10 == 0 or u == updates - 1:
        print(u, f'{time.time() - t0:.0f}s', {k: round(v, 5) for k, v in losses.items()}, flush=True)
