"""Aggregate statistics over tasks with rliable: mean, median, IQM and optimality gap with
stratified-bootstrap 95% intervals, performance profiles, probability of improvement, and IQM
over training (sample-efficiency curves).

Point estimates come from every run of every task, as the paper's tables do, even where tasks
have different numbers of runs. Intervals, profiles and the probability of improvement resample
(runs, tasks) matrices of normalised per-run scores, one column per task in the same task order
for every method, so they use a balanced selection of runs (`balanced`). Every interval uses a
fixed bootstrap seed, so a report is reproducible and adding a method does not change another
method's intervals.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import scipy.stats
from rliable import library as rly
from rliable import metrics
from tqdm import tqdm

METRICS = {
    "mean": metrics.aggregate_mean,
    "median": metrics.aggregate_median,
    "iqm": metrics.aggregate_iqm,
    "optimality_gap": metrics.aggregate_optimality_gap,
}


@contextmanager
def _seeded(seed: int):
    # rliable 1.2 draws its bootstrap indices from numpy's global RNG and ignores its own
    # `random_state` argument, so the global RNG is fixed here and restored afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def balanced(run_scores: pd.DataFrame, tasks) -> pd.DataFrame:
    """The runs an aggregate uses: for each method, its runs of `tasks`, and as many runs per
    task as the task with the fewest has (the lowest seed ids), because rliable needs a
    (runs, tasks) matrix.

    run_scores: one row per run with `method, task, seed`. Methods lacking a task are dropped.
    """
    keep = []
    for _, rows in run_scores[run_scores.task.isin(list(tasks))].groupby("method", sort=False):
        counts = rows.groupby("task").seed.nunique()
        if len(counts) < len(tasks):
            continue
        keep.append(rows.sort_values("seed").groupby("task").head(counts.min()))
    return pd.concat(keep) if keep else run_scores.iloc[:0]


def task_scores(run_scores: pd.DataFrame, method: str, tasks) -> list[np.ndarray]:
    """`method`'s `score`s per task of `tasks`, in seed order: a list of (runs_t,) arrays."""
    rows = run_scores[run_scores.method == method].sort_values("seed")
    return [rows.score[rows.task == t].to_numpy() for t in tasks]


def point_estimates(columns: list[np.ndarray]) -> dict[str, float]:
    """Every metric of METRICS from all runs: columns[t] (runs_t,) holds task t's run scores, and
    the run counts may differ between tasks.

    mean, median and optimality gap are taken over per-task means (each task weighs the same, as
    in the paper's tables); IQM is the 25% trimmed mean of all runs of all tasks. With equal run
    counts every value equals rliable's on the (runs, tasks) matrix."""
    means = np.array([c.mean() for c in columns])
    return {"mean": float(means.mean()), "median": float(np.median(means)),
            "iqm": float(scipy.stats.trim_mean(np.concatenate(columns), 0.25)),
            "optimality_gap": float(1.0 - np.mean([np.minimum(c, 1.0).mean() for c in columns]))}


def score_matrix(run_scores: pd.DataFrame, method: str, tasks) -> np.ndarray:
    """(runs, tasks) matrix of `method`'s `score`s on `tasks` from balanced run scores."""
    columns = task_scores(run_scores, method, tasks)
    if len({len(c) for c in columns}) != 1 or not len(columns[0]):
        raise ValueError(f"{method} needs the same number (> 0) of runs on every task; "
                         "select them with `balanced`")
    return np.stack(columns, axis=1)


def curve_tensor(curves: pd.DataFrame, method: str, tasks) -> tuple[np.ndarray, np.ndarray]:
    """(frames (points,), scores (runs, tasks, points)) of `method` from balanced learning curves
    (rows `method, task, seed, step, score`), at the frames where every run has a score."""
    rows = curves[curves.method == method]
    table = rows.pivot_table(index=["task", "seed"], columns="step", values="score").dropna(axis=1)
    return table.columns.to_numpy(float), np.stack([table.loc[t].to_numpy() for t in tasks], axis=1)


def interval_estimates(matrices: dict[str, np.ndarray], reps: int = 2000, seed: int = 0,
                       points: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Point estimates and 95% stratified-bootstrap intervals of every metric in METRICS.

    matrices: method -> (runs, tasks). points: method -> `point_estimates` from all runs, which
    replace the matrices' own point estimates where given. Returns rows
    `method, metric, value, lower, upper`.
    """
    func = lambda scores: np.array([f(scores) for f in METRICS.values()])  # noqa: E731
    rows = []
    for method, scores in tqdm(matrices.items(), desc="aggregate intervals", unit="method"):
        with _seeded(seed):
            estimates, intervals = rly.get_interval_estimates({method: scores}, func, reps=reps)
        for i, metric in enumerate(METRICS):
            value = estimates[method][i] if points is None else points[method][metric]
            rows.append({"method": method, "metric": metric, "value": value,
                         "lower": intervals[method][0, i], "upper": intervals[method][1, i]})
    return pd.DataFrame(rows)


def performance_profiles(matrices: dict[str, np.ndarray], taus, reps: int = 2000,
                         seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Score distributions: the fraction of runs with a score above each of `taus`.

    matrices: method -> (runs, tasks); taus: (taus,). Returns method -> (profile (taus,),
    95% interval (2, taus)).
    """
    result = {}
    for method, scores in tqdm(matrices.items(), desc="performance profiles", unit="method"):
        with _seeded(seed):
            profile, interval = rly.create_performance_profile({method: scores}, taus, reps=reps)
        result[method] = (profile[method], interval[method])
    return result


def improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) as rliable's `metrics.probability_of_improvement` (Mann-Whitney U per task, ties
    counting half, averaged over tasks), vectorised: rliable's version calls scipy once per task,
    which made a 2000-replicate bootstrap over 26 tasks take half a minute.

    x: (runs_x, tasks), y: (runs_y, tasks).
    """
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int = 2000,
                               seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y): per task, the probability that a run of X scores above a run of Y (ties count
    half), averaged over tasks; with its 95% interval from bootstrapping each method's runs
    independently within tasks.

    x: (runs_x, tasks), y: (runs_y, tasks), the same tasks in the same order.
    Returns (value, lower, upper).
    """
    func = lambda a, b: np.array([improvement(a, b)])  # noqa: E731
    with _seeded(seed):
        point, interval = rly.get_interval_estimates({"pair": [x, y]}, func, reps=reps)
    return float(point["pair"][0]), float(interval["pair"][0, 0]), float(interval["pair"][1, 0])


def iqm_curve(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """IQM over runs and tasks at each point of training, with 95% intervals.

    scores: (runs, tasks, points). Returns (iqm (points,), interval (2, points)).
    """
    # rliable's aggregate_iqm (a 25% trimmed mean of all runs and tasks) for all points at once.
    func = lambda s: scipy.stats.trim_mean(s.reshape(-1, s.shape[-1]), 0.25, axis=0)  # noqa: E731
    with _seeded(seed):
        points, intervals = rly.get_interval_estimates({"curve": scores}, func, reps=reps)
    return points["curve"], intervals["curve"]
