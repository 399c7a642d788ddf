import math

import numpy as np
import pandas as pd
import pytest

from analysis import scoring
from suites.base import ScoringRule

ATARI = ScoringRule("atari", (390, 400), "human")
STEPS = [100, 200, 300, 400]
SCORES = [1.0, 2.0, 3.0, 4.0]


def test_window_mean_includes_both_ends():
    assert scoring.window_score(STEPS, SCORES, (150, 300)) == 2.5
    assert scoring.window_score(STEPS, SCORES, (200, 300)) == 2.5
    assert scoring.window_score(STEPS[::-1], SCORES[::-1], (300, 400)) == 3.5


def test_window_falls_back_to_last_episode_before_its_end():
    assert scoring.window_score(STEPS, SCORES, (310, 390)) == 3.0
    # episodes ending at the same frame (parallel envs) count together
    assert scoring.window_score([100, 300, 300], [1.0, 2.0, 4.0], (310, 400)) == 3.0
    assert math.isnan(scoring.window_score(STEPS, SCORES, (10, 50)))


def test_curve_scores_each_point_over_the_preceding_width():
    values = scoring.curve(STEPS, SCORES, [200, 400, 450], width=100)
    np.testing.assert_allclose(values, [1.5, 3.5, 4.0])  # 450: window (350, 450] → episode 400


def test_normalise_by_rule():
    human = scoring.normalise([14.6, -20.7, 16.1], ["atari_pong", "atari_pong", "atari_breakout"],
                              ATARI)
    np.testing.assert_allclose(human, [1.0, 0.0, (16.1 - 1.7) / (30.5 - 1.7)])
    scale = ScoringRule("dmc", (0, 1), "scale", scale=1000.0)
    np.testing.assert_allclose(scoring.normalise([500.0, 1000.0], ["a", "b"], scale), [0.5, 1.0])
    none = ScoringRule("mc", (0, 1), "none")
    np.testing.assert_allclose(scoring.normalise([11.5], ["a"], none), [11.5])


def test_normalise_rejects_what_it_cannot_score():
    with pytest.raises(ValueError, match="no random/human reference scores for atari_zork"):
        scoring.normalise([1.0], ["atari_zork"], ATARI)
    with pytest.raises(ValueError, match="valid: human, scale, none"):
        scoring.normalise([1.0], ["catch/0"], ScoringRule("b", (0, 0), "bsuite"))


def episodes(rows):
    return pd.DataFrame(rows, columns=["suite", "task", "method", "seed", "step", "score",
                                       "shortened", "budget"])


def test_run_scores_scale_the_window_of_shortened_runs():
    table = episodes([
        # full run: window (390, 400) → episodes at 395 and 400
        ("s", "atari_pong", "m", 0, 100, -21.0, False, 400),
        ("s", "atari_pong", "m", 0, 395, -1.0, False, 400),
        ("s", "atari_pong", "m", 0, 400, 3.0, False, 400),
        # shortened to 100 of 400: window (97.5, 100) → the episode at 98 only
        ("s", "atari_pong", "m", 1, 50, -5.0, True, 100),
        ("s", "atari_pong", "m", 1, 98, 7.0, True, 100),
        ("s", "atari_pong", "m", 1, 395, 100.0, True, 100),
    ])
    runs = scoring.run_scores(table, ATARI, full_budget=400).set_index("seed")
    assert runs.loc[0, ["lo", "hi", "raw"]].tolist() == [390, 400, 1.0]
    assert runs.loc[1, ["lo", "hi", "raw"]].tolist() == [97.5, 100, 7.0]
    np.testing.assert_allclose(runs.score, [(1.0 + 20.7) / 35.3, (7.0 + 20.7) / 35.3])


def test_run_scores_record_first_success_and_leave_out_runs_without_episodes():
    rule = ScoringRule("mc", (90, 100), "none", success=11.1)
    table = episodes([
        ("mc", "minecraft_diamond", "m", 0, 40, 11.0, False, 100),
        ("mc", "minecraft_diamond", "m", 0, 60, 11.9, False, 100),
        ("mc", "minecraft_diamond", "m", 0, 95, 12.0, False, 100),
        ("mc", "minecraft_diamond", "m", 1, 95, 8.0, False, 100),
        ("mc", "minecraft_diamond", "m", 2, 120, 12.0, False, 100),  # after the budget
    ])
    with pytest.warns(UserWarning, match="m minecraft_diamond 2: no episode ended by frame 100"):
        runs = scoring.run_scores(table, rule, full_budget=100).set_index("seed")
    assert list(runs.index) == [0, 1]
    assert runs.loc[0, "first_success"] == 60 and math.isnan(runs.loc[1, "first_success"])
    assert runs.raw.tolist() == [12.0, 8.0]


def test_describe_names_window_fallback_and_normalisation():
    text = scoring.describe(ScoringRule("atari", (390_000, 400_000), "human"))
    assert "[390,000, 400,000] frames" in text and "last episode before 400,000" in text
    assert "(x − random) / (human − random)" in text and "atari57_gamer" in text


def test_bsuite_last_episodes_and_running_mean_by_hand():
    import pandas as pd

    from analysis.scoring import first_reaching, last_episodes, running_mean
    # Written out of order on purpose: both functions order by frame.
    episodes = pd.DataFrame({"method": "m", "task": "catch/0", "seed": 0,
                             "step": [30, 10, 20, 40], "score": [1.0, -1.0, -1.0, 1.0]})
    runs = last_episodes(episodes, 2)
    assert runs.to_dict("records") == [{"method": "m", "task": "catch/0", "seed": 0, "episodes": 4,
                                        "frames": 40, "last2": 1.0}]
    curve = running_mean(episodes, 2)
    assert curve.step.tolist() == [10, 20, 30, 40]
    assert curve.raw.tolist() == [-1.0, -1.0, 0.0, 1.0]
    assert curve.episodes.tolist() == [1, 2, 2, 2]
    # A level is reached over a full window: a lucky first episode does not count.
    lucky = pd.DataFrame({"method": "m", "task": "catch/0", "seed": 0,
                          "step": [10, 20, 30, 40], "score": [1.0, -1.0, 1.0, 1.0]})
    assert first_reaching(running_mean(lucky, 2), 1.0, 2).tolist() == [40]
    assert first_reaching(running_mean(lucky, 2), 2.0, 2).isna().all()
