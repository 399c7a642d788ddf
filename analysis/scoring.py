"""One number per run by the suite's scoring rule (suites/README.md, "Scoring rules"), and its normalisation.

The same rule scores published runs and ours. A shortened run of ours (config "shortened": true)
is scored in the rule's window scaled by its budget / the suite's full budget, e.g. a 100K-frame
Atari run out of 400K is scored on episodes ending in [97.5K, 100K].
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from analysis.reference import ATARI, SOURCE
from suites.base import ScoringRule

RUN = ["suite", "method", "task", "seed"]


def window_score(steps, scores, window) -> float:
    """Mean return of the episodes ending in `window` = [lo, hi] frames (both ends included).

    steps, scores: (episodes,) end frame and return of each episode, in any order. When no
    episode ends in the window, the return of the last episode ending before `hi` (the mean of
    those ending at that same frame); NaN when no episode ended by `hi`.
    """
    steps, scores = np.asarray(steps, float), np.asarray(scores, float)
    lo, hi = window
    inside = (steps >= lo) & (steps <= hi)
    if inside.any():
        return float(scores[inside].mean())
    before = steps <= hi
    if not before.any():
        return float("nan")
    last = steps[before].max()
    return float(scores[before & (steps == last)].mean())


def curve(steps, scores, points, width: float) -> np.ndarray:
    """(points,) window scores at each of `points` frames, each over the `width` frames before it.

    steps, scores: (episodes,) as in `window_score`; points: (points,) frames.
    """
    return np.array([window_score(steps, scores, (p - width, p)) for p in points])


def normalise(raw, tasks, rule: ScoringRule) -> np.ndarray:
    """(runs,) normalised scores of (runs,) raw scores on (runs,) tasks, by `rule.normalise`:
    "human" (x − random) / (human − random), "scale" x / rule.scale, "none" x."""
    raw = np.asarray(raw, float)
    if rule.normalise == "human":
        unknown = sorted(set(tasks) - ATARI.keys())
        if unknown:
            raise ValueError(f"no random/human reference scores for {', '.join(unknown)}; "
                             f"known: {', '.join(ATARI)}")
        random, human = np.array([ATARI[t] for t in tasks], float).reshape(-1, 2).T
        return (raw - random) / (human - random)
    if rule.normalise == "scale":
        return raw / rule.scale
    if rule.normalise == "none":
        return raw
    raise ValueError(f"normalisation {rule.normalise!r} has no per-run score here; valid: human, "
                     "scale, none (bsuite is scored by bsuite's own analysis)")


def window(rule: ScoringRule, budget: float, full_budget: float, shortened: bool):
    """The rule's [lo, hi] for a run: as is, or scaled by budget / full_budget when shortened."""
    lo, hi = rule.window
    factor = budget / full_budget if shortened else 1.0
    return lo * factor, hi * factor


def run_scores(episodes: pd.DataFrame, rule: ScoringRule, full_budget: float) -> pd.DataFrame:
    """One row per run: `suite, method, task, seed, shortened, budget, lo, hi, raw, score`
    (+ `first_success`, the frame of the first return ≥ rule.success up to hi, when the rule has
    a success threshold).

    episodes: the long DataFrame of analysis.load. Runs without an episode before their window's
    end are left out with a warning.
    """
    rows = []
    for key, run in episodes.groupby(RUN, sort=True):
        shortened, budget = bool(run.shortened.iloc[0]), float(run.budget.iloc[0])
        lo, hi = window(rule, budget, full_budget, shortened)
        raw = window_score(run.step, run.score, (lo, hi))
        if np.isnan(raw):
            warnings.warn(f"{' '.join(map(str, key))}: no episode ended by frame {hi:,.0f}; "
                          "run left out", stacklevel=2)
            continue
        row = dict(zip(RUN, key), shortened=shortened, budget=budget, lo=lo, hi=hi, raw=raw)
        if rule.success is not None:
            hits = run.step[(run.score >= rule.success) & (run.step <= hi)]
            row["first_success"] = hits.min() if len(hits) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["score"] = normalise(table.raw, table.task, rule)
    return table


def run_curves(episodes: pd.DataFrame, rule: ScoringRule, full_budget: float,
               points: int = 40) -> pd.DataFrame:
    """Learning curves: one row per run and frame, `method, task, seed, step, raw, score`.

    Each run is sampled at `points` evenly spaced frames up to its window's end; each value is the
    rule's window score over the window's width of frames before that point.
    """
    rows = []
    for (suite, method, task, seed), run in episodes.groupby(RUN, sort=True):
        lo, hi = window(rule, float(run.budget.iloc[0]), full_budget, bool(run.shortened.iloc[0]))
        steps = hi * np.arange(1, points + 1) / points
        values = curve(run.step, run.score, steps, hi - lo)
        rows.append(pd.DataFrame({"method": method, "task": task, "seed": seed,
                                  "step": steps, "raw": values}))
    table = pd.concat(rows, ignore_index=True).dropna(subset=["raw"])
    table["score"] = normalise(table.raw, table.task, rule)
    return table


BSUITE_LAST = 100  # episodes in a bsuite run's running score
LAST_EPISODES = 20  # episodes in the running score of the other suites' learning checks


def last_episodes(episodes: pd.DataFrame, n: int) -> pd.DataFrame:
    """One row per run: `method, task, seed, episodes, frames, last{n}` = mean return of its last
    `n` episodes. episodes: rows `method, task, seed, step, score`."""
    ordered = episodes.sort_values("step", kind="stable")
    return (ordered.groupby(["method", "task", "seed"], sort=True)
            .agg(episodes=("score", "size"), frames=("step", "max"),
                 **{f"last{n}": ("score", lambda s: s.tail(n).mean())})
            .reset_index())


def running_mean(episodes: pd.DataFrame, n: int) -> pd.DataFrame:
    """Learning curves `method, task, seed, step, raw, episodes`: at each episode's end frame, the
    mean return `raw` of the last `n` episodes up to it, over `episodes` of them (fewer than n at
    the start)."""
    ordered = episodes.sort_values("step", kind="stable")
    runs = ordered.groupby(["method", "task", "seed"])["score"]
    raw = runs.transform(lambda s: s.rolling(n, min_periods=1).mean())
    count = (runs.cumcount() + 1).clip(upper=n)
    return ordered.assign(raw=raw, episodes=count)[["method", "task", "seed", "step", "raw", "episodes"]]


def first_reaching(curves: pd.DataFrame, level: float, n: int) -> pd.Series:
    """Per run (index `method, task, seed`), the first frame at which its running mean of `n`
    episodes (rows of `running_mean`) reaches `level` over a full window of n episodes (a lucky
    first episode is not a learned level); NaN for a run that never does."""
    ordered = curves.sort_values("step", kind="stable")
    full = ordered[ordered.episodes >= n]
    reached = full[full.raw >= level].groupby(["method", "task", "seed"]).step.first()
    runs = ordered.groupby(["method", "task", "seed"]).size().index
    return reached.reindex(runs).rename("first_reaching")


def progress_at(progress: pd.DataFrame, frames: pd.Series) -> pd.DataFrame:
    """Updates and training seconds of each run when it had stepped `frames` (index `method, task,
    seed`): those of its first progress row (`method, task, seed, step, updates, time`) at or past
    that frame, so as late as one log interval; NaN where the run has no such row."""
    rows = []
    for (method, task, seed), frame in frames.dropna().items():
        mine = progress[(progress.method == method) & (progress.task == task) & (progress.seed == seed)
                        & (progress.step >= frame)].sort_values("step")
        if len(mine):
            rows.append({"method": method, "task": task, "seed": seed,
                         "updates": mine.updates.iloc[0], "time": mine.time.iloc[0]})
    return pd.DataFrame(rows, columns=["method", "task", "seed", "updates", "time"])


def describe(rule: ScoringRule) -> str:
    """The rule in one sentence, for table captions and figure notes."""
    lo, hi = rule.window
    text = (f"Scoring rule: per run, the mean return of training episodes "
            f"ending in [{lo:,.0f}, {hi:,.0f}] frames (when none ends there, the last episode "
            f"before {hi:,.0f})")
    if rule.normalise == "human":
        text += f", human-normalised (x − random) / (human − random) with {SOURCE}"
    elif rule.normalise == "scale":
        text += f", divided by {rule.scale:g}"
    if rule.success is not None:
        text += (f"; a run succeeds when any episode up to {hi:,.0f} frames returns at least "
                 f"{rule.success:g}")
    return text + "."


@contextmanager
def _series_append():
    # bsuite 0.3.6 scores deep_sea with Series.append, which pandas 2 removed; it is supplied
    # (as the concat it was) only while bsuite's analysis runs.
    if hasattr(pd.Series, "append"):
        yield
        return
    pd.Series.append = lambda self, other: pd.concat([self, other])
    try:
        yield
    finally:
        del pd.Series.append


def bsuite_scores(logs: pd.DataFrame) -> pd.DataFrame:
    """bsuite's own score per experiment and method (mean over seeds): `method, bsuite_env, score,
    type, tags, finished, seeds`.

    logs: bsuite CSV logs as from analysis.load.load_bsuite (one row per logged episode).
    """
    from bsuite.experiments import summary_analysis  # bsuite is only needed for this suite

    with _series_append():
        per_seed = summary_analysis.bsuite_score(logs, ["method", "run_seed"])
    return (per_seed.groupby(["method", "bsuite_env", "type", "tags"], as_index=False)
            .agg(score=("score", "mean"), finished=("finished", "all"),
                 seeds=("run_seed", "nunique")))
