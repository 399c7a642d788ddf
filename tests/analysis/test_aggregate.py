import numpy as np
import pandas as pd
import pytest
from rliable import metrics

from analysis import aggregate

# (runs, tasks) = (2, 3). Task means 0.25, 2.0, 1.1; sorted values 0, .2, .5, 1, 2, 3.
S = np.array([[0.0, 1.0, 2.0],
              [0.5, 3.0, 0.2]])
HAND = {
    "mean": (0.25 + 2.0 + 1.1) / 3,
    "median": 1.1,
    "iqm": (0.2 + 0.5 + 1.0 + 2.0) / 4,  # 25% of 6 values cut at each end: one each
    "optimality_gap": 1 - (0 + 1 + 1 + 0.5 + 1 + 0.2) / 6,
}


def test_point_estimates_match_hand_computation():
    table = aggregate.interval_estimates({"m": S}, reps=50).set_index("metric")
    for metric, value in HAND.items():
        assert table.loc[metric, "value"] == pytest.approx(value)
    assert (table.lower <= table.value).all() and (table.value <= table.upper).all()


def test_one_run_per_task_gives_a_point_interval():
    # the stratified bootstrap resamples runs within each task: with one run nothing varies
    table = aggregate.interval_estimates({"m": S[:1]}, reps=50)
    np.testing.assert_allclose(table.lower, table.value)
    np.testing.assert_allclose(table.upper, table.value)


def test_interval_of_two_runs_spans_them():
    # resampling two runs (1, 3) of one task: the mean is 1 with p=1/4, 2 with p=1/2, 3 with
    # p=1/4, so its 2.5% and 97.5% percentiles are 1 and 3
    table = aggregate.interval_estimates({"m": np.array([[1.0], [3.0]])}, reps=400)
    row = table.set_index("metric").loc["mean"]
    assert (row.value, row.lower, row.upper) == (2.0, 1.0, 3.0)


def test_intervals_are_reproducible_and_leave_the_global_rng_alone():
    rng = np.random.RandomState(1)
    x = rng.rand(5, 4)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = aggregate.interval_estimates({"m": x}, reps=100)
    assert np.array_equal(np.random.get_state()[1], before)
    pd.testing.assert_frame_equal(first, aggregate.interval_estimates({"m": x}, reps=100))
    # another method in the same call does not change this one's intervals
    both = aggregate.interval_estimates({"other": rng.rand(3, 4), "m": x}, reps=100)
    pd.testing.assert_frame_equal(first, both[both.method == "m"].reset_index(drop=True))


def test_probability_of_improvement_by_hand_and_as_rliable():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0, 5.0], [0.0, 5.0]])
    # task 0: of the pairs (1,2) (1,0) (3,2) (3,0) three favour x → 0.75; task 1: all ties → 0.5
    assert aggregate.improvement(x, y) == pytest.approx(0.625)
    value, lower, upper = aggregate.probability_of_improvement(x, y, reps=200)
    assert value == pytest.approx(0.625) and 0.0 <= lower <= value <= upper <= 1.0
    rng = np.random.RandomState(0)
    a, b = rng.randint(0, 3, (4, 6)).astype(float), rng.randint(0, 3, (3, 6)).astype(float)
    assert aggregate.improvement(a, b) == pytest.approx(metrics.probability_of_improvement(a, b))


def test_performance_profile_by_hand():
    scores = np.array([[0.2, 0.8], [1.5, 0.5]])
    profiles = aggregate.performance_profiles({"m": scores}, np.array([0.0, 0.6, 2.0]), reps=50)
    profile, interval = profiles["m"]
    np.testing.assert_allclose(profile, [1.0, 0.5, 0.0])  # fraction of the 4 runs above tau
    assert interval.shape == (2, 3)


def test_iqm_curve_is_rliables_iqm_at_each_point():
    scores = np.random.RandomState(2).rand(3, 4, 5)
    iqm, interval = aggregate.iqm_curve(scores, reps=50)
    expected = [metrics.aggregate_iqm(scores[..., i]) for i in range(5)]
    np.testing.assert_allclose(iqm, expected)
    assert interval.shape == (2, 5) and (interval[0] <= iqm + 1e-12).all()


def runs(rows):
    return pd.DataFrame(rows, columns=["method", "task", "seed", "score"])


def test_balanced_keeps_the_lowest_seeds_equally_per_task():
    table = runs([("m", "a", 2, 0.2), ("m", "a", 0, 0.0), ("m", "a", 1, 0.1),
                  ("m", "b", 5, 1.5), ("m", "b", 3, 1.3), ("n", "a", 0, 9.0)])
    used = aggregate.balanced(table, ["a", "b"])
    assert sorted(zip(used.task, used.seed)) == [("a", 0), ("a", 1), ("b", 3), ("b", 5)]
    np.testing.assert_allclose(aggregate.score_matrix(used, "m", ["a", "b"]),
                               [[0.0, 1.3], [0.1, 1.5]])
    with pytest.raises(ValueError, match="same number"):
        aggregate.score_matrix(table, "m", ["a", "b"])


def test_curve_tensor_keeps_frames_every_run_reached():
    curves = pd.DataFrame({"method": "m", "task": ["a", "a", "a", "b", "b", "b"],
                           "seed": 0, "step": [1, 2, 3, 1, 2, 4], "score": [1, 2, 3, 4, 5, 6.0]})
    frames, tensor = aggregate.curve_tensor(curves, "m", ["a", "b"])
    assert frames.tolist() == [1, 2] and tensor.shape == (1, 2, 2)
    np.testing.assert_allclose(tensor[0], [[1, 2], [4, 5]])


def test_point_estimates_use_every_run_of_unequal_tasks():
    """Task a has 3 runs (mean 2), task b one (mean 10): the mean is the mean of the per-task means
    over all runs, 6, not 6.5 (b with a's lowest seed only, 3 and 10). IQM trims 25% of the
    four pooled scores (one each end): (2 + 3) / 2."""
    a, b = np.array([3.0, 1.0, 2.0]), np.array([10.0])
    points = aggregate.point_estimates([a, b])
    assert points["mean"] == pytest.approx(6.0)
    assert points["median"] == pytest.approx(6.0)
    assert points["iqm"] == pytest.approx(2.5)
    assert points["optimality_gap"] == pytest.approx(1 - (1.0 + 1.0) / 2)  # every score ≥ 1
    # With equal counts, every value is rliable's on the (runs, tasks) matrix.
    columns = [S[:, t] for t in range(S.shape[1])]
    for metric, value in aggregate.point_estimates(columns).items():
        assert value == pytest.approx(HAND[metric])
    table = aggregate.interval_estimates({"m": S}, reps=50, points={"m": aggregate.point_estimates([a, b])})
    assert table.set_index("metric").loc["mean", "value"] == pytest.approx(6.0)
