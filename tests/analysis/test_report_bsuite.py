"""bsuite reports go through bsuite's own analysis of its CSV logs."""
import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from analysis import report
from dreamer.rundir import RunDir

pytest.importorskip("suites.bsuite")
bsuite = pytest.importorskip("bsuite")
from bsuite.experiments.bandit import analysis as bandit_analysis  # noqa: E402
from bsuite.experiments.catch import analysis as catch_analysis  # noqa: E402
from bsuite.logging import csv_logging  # noqa: E402

EPISODES = {"catch/0": 30, "bandit/0": 40}


def log_random_agent(folder, bsuite_id, seed):
    """Real bsuite CSV logs: a uniformly random agent through bsuite's csv_logging wrapper."""
    env = csv_logging.wrap_environment(bsuite.load_from_id(bsuite_id), bsuite_id, str(folder))
    rng = np.random.RandomState(seed)
    for _ in range(EPISODES[bsuite_id]):
        step = env.reset()
        while not step.last():
            step = env.step(rng.randint(env.action_spec().num_values))


def test_bsuite_scores_come_from_bsuites_analysis(tmp_path, make_run):
    for bsuite_id in EPISODES:
        for seed in (0, 1):
            run = make_run(tmp_path / "runs", "bsuite", "small", bsuite_id.replace("/", "-"), seed,
                           [], budget=0)
            log_random_agent(run / "bsuite", bsuite_id, seed)
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        code = report.main(["bsuite", "--results", str(tmp_path / "runs"), "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "bsuite_scores.csv").set_index("bsuite_env")
    assert sorted(table.index) == ["bandit", "catch"]
    assert set(table.method) == {"small (ours)"} and (table.seeds == 2).all()
    assert not table.finished.any()  # 30 and 40 episodes of 10,000
    # bsuite's per-experiment score on each seed's raw CSV, averaged over the two seeds
    for env, analysis in (("catch", catch_analysis), ("bandit", bandit_analysis)):
        scores = [analysis.score(pd.read_csv(
            tmp_path / "runs" / "bsuite" / "small" / f"{env}-0" / f"seed{seed}" / "bsuite" /
            f"bsuite_id_-_{env}-0.csv")) for seed in (0, 1)]
        assert table.loc[env, "score"] == pytest.approx(np.mean(scores))
    for name in ("bsuite_bar.png", "bsuite_bar.pdf", "bsuite_radar.png", "bsuite_radar.pdf"):
        assert (out / name).stat().st_size > 5_000, name
    assert "bsuite's own analysis" in (out / "bsuite_scores.md").read_text()


def test_bsuite_report_has_our_runs_scores_and_learning_curves(tmp_path, make_run):
    # 150 episodes of 10 frames: the first 50 lose, the last 100 alternate +1, +1, −1, ...
    scores = [-1.0] * 50 + [1.0 if i % 3 else -1.0 for i in range(100)]
    run = make_run(tmp_path / "runs", "bsuite", "small", "catch/0", 0,
                   [(10 * (i + 1), s) for i, s in enumerate(scores)], budget=1500)
    log_random_agent(run / "bsuite", "catch/0", 0)
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert report.main(["bsuite", "--results", str(tmp_path / "runs"), "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert runs.episodes.tolist() == [150] and runs.frames.tolist() == [1500]
    assert runs.last100.tolist() == pytest.approx([(66 - 34) / 100])
    assert (out / "learning_curves.png").stat().st_size > 5_000


def test_learned_level_gives_each_runs_first_frame_reaching_it(tmp_path, make_run):
    """Seed 0: 50 losses, then 100 catches, an episode every 10 frames: the mean of the last 100
    episodes at episode k ≥ 100 is (2k − 200) / 100, first ≥ 0.5 at k = 125 (frame 1,250).
    Seed 1 never wins, so it never reaches the level."""
    for seed, scores in ((0, [-1.0] * 50 + [1.0] * 100), (1, [-1.0] * 150)):
        run = make_run(tmp_path / "runs", "bsuite", "small", "catch/0", seed,
                       [(10 * (i + 1), s) for i, s in enumerate(scores)], budget=1500)
        log_random_agent(run / "bsuite", "catch/0", seed)
        # Training progress logged at frames 1000, 1300 and 1500.
        RunDir(run).logs["metrics"].write_text("".join(
            json.dumps({"step": step, "updates": step // 10, "time": step / 100}) + "\n"
            for step in (1000, 1300, 1500)))
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert report.main(["bsuite", "--results", str(tmp_path / "runs"), "--out", str(out),
                            "--learned", "0.5"]) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("seed")
    assert runs.loc[0, "first_0.5"] == 1250 and np.isnan(runs.loc[1, "first_0.5"])
    # By frame 1250 the run had logged its progress first at frame 1300.
    assert (runs.loc[0, "updates_0.5"], runs.loc[0, "seconds_0.5"]) == (130, 13.0)
    assert np.isnan(runs.loc[1, "updates_0.5"])
    assert "first frame at which the mean of 100 episodes reached 0.5" in (out / "runs.md").read_text()
    assert (out / "learning_curves.png").stat().st_size > 5_000


def test_a_report_that_fails_while_rendering_leaves_no_folder_it_created(tmp_path, make_run, capsys):
    make_run(tmp_path / "runs", "bsuite", "small", "catch-0", 0, [], budget=0)  # no episode logged yet
    out = tmp_path / "reports" / "bsuite"
    assert report.main(["bsuite", "--results", str(tmp_path / "runs"), "--out", str(out)]) == 1
    assert "no bsuite CSV logs" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_an_unknown_bsuite_method_is_named_with_the_valid_ones(tmp_path, make_run, capsys):
    run = make_run(tmp_path / "runs", "bsuite", "small", "catch-0", 0, [], budget=0)
    log_random_agent(run / "bsuite", "catch/0", 0)
    for methods, message in ((["nope"], "error: unknown bsuite method 'nope'; valid: small\n"),
                             (["small", "smal"], "error: unknown bsuite method 'smal' (did you mean small?); valid: small\n")):
        assert report.main(["bsuite", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
                            "--methods", *methods]) == 2
        assert capsys.readouterr().err == message
    assert not (tmp_path / "out").exists()
