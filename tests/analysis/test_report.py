"""`python -m analysis.report` end to end, checked against numbers computed here independently
(gzip + json + numpy on the published files, hand arithmetic on fabricated runs)."""
import contextlib
import gzip
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import report

pytest.importorskip("suites.atari100k")
from suites.registry import get_suite  # noqa: E402
from suites.status import run_state  # noqa: E402

FIGURES = ["aggregate_intervals", "performance_profile", "sample_efficiency", "learning_curves",
           "probability_of_improvement"]


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = report.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def published_report(tmp_path_factory, baselines):
    out = tmp_path_factory.mktemp("report")
    code, stdout, stderr = run(["atari100k", "--baselines", baselines, "--out", out, "--reps", 100,
                                "--results", tmp_path_factory.mktemp("no_runs")])
    assert code == 0, stderr
    return out, stdout


def test_published_aggregates_match_an_independent_computation(published_report, published_scores):
    out, stdout = published_report
    csv = out / "aggregate.csv"
    assert csv.read_text().splitlines()[0] == "method,metric,value,lower,upper"
    table = pd.read_csv(csv).set_index(["method", "metric"])
    for method in ("dreamerv3", "ppo_fixhp"):
        scores = published_scores(method)
        matrix = np.stack([scores[t] for t in sorted(scores)], axis=1)  # (5 seeds, 26 games)
        assert matrix.shape == (5, 26)
        task_means = matrix.mean(axis=0)
        flat = np.sort(matrix.ravel())
        expected = {"mean": task_means.mean(), "median": np.median(task_means),
                    "iqm": flat[32:130 - 32].mean(),  # 25% of 130 runs, rounded down, cut each end
                    "optimality_gap": 1 - np.minimum(matrix, 1).mean()}
        for metric, value in expected.items():
            row = table.loc[(method, metric)]
            assert row.value == pytest.approx(value, rel=1e-9)
            assert row.lower <= row.value <= row.upper
    # The published DreamerV3 data reproduce the paper's Atari100k figures (mean ≈ 1.25,
    # median ≈ 0.49) to within a point or so: the data give 1.245 and 0.480.
    assert table.loc[("dreamerv3", "mean")].value == pytest.approx(1.25, abs=0.01)
    assert table.loc[("dreamerv3", "median")].value == pytest.approx(0.49, abs=0.015)
    assert re.search(r"P\(dreamerv3 > ppo_fixhp\) = 0\.9\d\d \[0\.9\d\d, 0\.9\d\d\]", stdout)


def test_per_task_table_and_captions(published_report, published_scores, gamer):
    out, _ = published_report
    table = pd.read_csv(out / "per_task.csv").set_index("task")
    assert list(table.columns) == ["random", "human", "dreamerv3", "ppo_fixhp"]
    scores = published_scores("dreamerv3")
    for task in ("atari_pong", "atari_krull"):
        random, human = gamer[task]
        assert table.loc[task, ["random", "human"]].tolist() == [random, human]
        assert (table.loc[task, "dreamerv3"] - random) / (human - random) == pytest.approx(
            scores[task].mean())
    for name in ("per_task.md", "aggregate.md", "aggregate.tex", "probability_of_improvement.md"):
        text = (out / name).read_text()
        assert "[390,000, 400,000] frames" in text, name
        assert "5 seeds on each of 26 tasks" in text, name


def test_figures_are_written_as_png_and_pdf(published_report):
    out, _ = published_report
    for stem in FIGURES:
        png = (out / f"{stem}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, stem
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem


@pytest.fixture
def our_runs(tmp_path, make_run):
    """Two variants of ours on two games: full runs and runs shortened to 110K frames."""
    budget = get_suite("atari100k").budget
    full = {("atari_pong", 0): -10.0, ("atari_pong", 1): 5.0,
            ("atari_breakout", 0): 10.0, ("atari_breakout", 1): 40.0}
    for (task, seed), score in full.items():
        make_run(tmp_path / "runs", "atari100k", "dreamerv3", task, seed,
                 [(100_000, -99.0), (395_000, score), (420_000, 999.0)], budget)
    for task in ("atari_pong", "atari_breakout"):
        make_run(tmp_path / "runs", "atari100k", "dreamerv3-budget110000", task, 0,
                 [(50_000, 1.0), (99_000, 2.0)], 110_000, shortened=True)
    return tmp_path / "runs", full, budget


def test_mixed_budgets_are_refused_unless_pooled(tmp_path, baselines, our_runs, gamer,
                                                 published_scores):
    results, full, budget = our_runs
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["atari100k", "--methods", "dreamerv3", "dreamerv3-budget110000", "--baselines",
            baselines, "--results", results, "--out", out, "--reps", 100]

    code, _, stderr = run(argv)
    assert code == 2
    assert "our runs mix budgets" in stderr and "--pool-shortened" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    code, stdout, stderr = run(argv + ["--pool-shortened"])
    assert code == 0, stderr
    assert (out / "notes.txt").read_text() == "mine"
    # P(ours > published dreamerv3) over the two games both have, by hand
    normalised = {(task, seed): (v - gamer[task][0]) / (gamer[task][1] - gamer[task][0])
                  for (task, seed), v in full.items()}
    published = published_scores("dreamerv3")
    expected = np.mean([np.mean([(x > y) + 0.5 * (x == y)
                                 for x in (normalised[(t, 0)], normalised[(t, 1)])
                                 for y in published[t]])
                        for t in ("atari_breakout", "atari_pong")])
    match = re.search(r"P\(dreamerv3 \(ours\) > dreamerv3\) = ([\d.]+) \[([\d.]+), ([\d.]+)\] "
                      r"over 2 tasks", stdout)
    assert match, stdout
    value, lower, upper = map(float, match.groups())
    assert value == pytest.approx(expected, abs=5e-4) and lower <= value <= upper
    assert "P(dreamerv3-budget110000 (ours) > dreamerv3)" in stdout

    aggregate = pd.read_csv(out / "aggregate.csv")
    assert list(dict.fromkeys(aggregate.method)) == [
        "dreamerv3", "dreamerv3 (ours)", "dreamerv3-budget110000 (ours)"]
    lo, hi = 390_000 * 110_000 / budget, 400_000 * 110_000 / budget
    caption = (out / "aggregate.md").read_text()
    assert f"scored on episodes ending in [{lo:,.0f}, {hi:,.0f}]" in caption
    assert "dreamerv3 (ours): 2 seeds on each of 2 tasks" in caption
    assert "Our runs' settings — dreamerv3 (ours): size200m, action repeat 4, the suite's own settings;" in caption
    assert caption.startswith("atari100k, 2 tasks (of 26: those every method has): aggregate")
    per_task = pd.read_csv(out / "per_task.csv").set_index("task")
    assert per_task.loc["atari_pong", "dreamerv3 (ours)"] == pytest.approx(-2.5)
    assert per_task.loc["atari_pong", "dreamerv3-budget110000 (ours)"] == pytest.approx(2.0)


@pytest.mark.parametrize("argv, message", [
    (["atari100", "--baselines", "{b}"], "unknown suite 'atari100' (did you mean atari100k?)"),
    (["atari100k", "--baselines", "{b}", "--methods", "dreamer"],
     "unknown atari100k method 'dreamer' (did you mean dreamerv3?); valid: dreamerv3, ppo_fixhp"),
    (["atari100k", "--baselines", "{tmp}/none"], "python -m analysis.baselines download"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, baselines, tmp_path):
    argv = [a.format(b=baselines, tmp=tmp_path) for a in argv] + ["--results", tmp_path]
    code, _, stderr = run(argv + ["--out", tmp_path / "out"])
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_malformed_log_exits_1_naming_file_and_line(tmp_path, baselines, make_run):
    run_dir = make_run(tmp_path, "atari100k", "v", "atari_pong", 0, [(1, 1.0)], 440_000)
    path = run_dir / "scores.jsonl"
    path.write_text(path.read_text() + "oops\n")
    code, _, stderr = run(["atari100k", "--baselines", baselines, "--results", tmp_path,
                           "--out", tmp_path / "out"])
    assert code == 1 and f"{path}:2: malformed line 'oops'" in stderr


def test_minecraft_reports_the_fraction_of_runs_with_a_diamond(tmp_path, make_run):
    pytest.importorskip("suites.minecraft")
    published = tmp_path / "baselines"
    published.mkdir()
    with gzip.open(published / "minecraft_diamond-a.json.gz", "wt") as f:
        json.dump([
            {"task": "minecraft_diamond", "method": "a", "seed": 0,
             "xs": [50e6, 95e6], "ys": [5.0, 12.0]},      # diamond at 95M, window mean 12
            {"task": "minecraft_diamond", "method": "a", "seed": 1,
             "xs": [95e6, 101e6], "ys": [11.0, 12.0]}], f)  # 12 comes after the budget: no
    make_run(tmp_path / "runs", "minecraft", "b", "minecraft_diamond", 0,
             [(60e6, 11.5), (92e6, 3.0)], 100_000_000)      # diamond at 60M, window mean 3
    out = tmp_path / "out"
    code, stdout, stderr = run(["minecraft", "--baselines", published, "--results",
                                tmp_path / "runs", "--out", out, "--reps", 50])
    assert code == 0, stderr
    success = pd.read_csv(out / "success.csv")
    assert success.values.tolist() == [["a", 2, 1, 0.5, 11.5], ["b (ours)", 1, 1, 1.0, 3.0]]
    assert "returns at least 11.1" in (out / "success.md").read_text()
    assert "P(b (ours) > a) = 0.000" in stdout  # 3 is below both 12 and 11
    assert {p.name for p in out.glob("*.png")} == {
        "success_curves.png", "learning_curves.png", "probability_of_improvement.png"}


def test_point_estimates_use_every_seed_of_tasks_with_unequal_seeds(tmp_path, baselines, make_run, gamer):
    """Ours: pong with seeds 0, 1, 2 and breakout with seed 0 only. The aggregate mean is the mean of
    the per-task means over all seeds; the caption says the intervals use the balanced runs."""
    raw = {("atari_pong", 0): 1.0, ("atari_pong", 1): 5.0, ("atari_pong", 2): 12.0, ("atari_breakout", 0): 20.0}
    for (task, seed), score in raw.items():
        make_run(tmp_path / "runs", "atari100k", "v", task, seed, [(395_000, score)], 440_000)
    out = tmp_path / "out"
    code, _, stderr = run(["atari100k", "--methods", "v", "--baselines", baselines,
                           "--results", tmp_path / "runs", "--out", out, "--reps", 50])
    assert code == 0, stderr
    norm = {k: (v - gamer[k[0]][0]) / (gamer[k[0]][1] - gamer[k[0]][0]) for k, v in raw.items()}
    pong = np.mean([norm[("atari_pong", s)] for s in range(3)])
    table = pd.read_csv(out / "aggregate.csv").set_index("metric")
    assert table.loc["mean", "value"] == pytest.approx((pong + norm[("atari_breakout", 0)]) / 2)
    assert "Point estimates use every run" in (out / "aggregate.md").read_text()


def test_captions_list_each_methods_overrides_and_mixed_runs_are_named(tmp_path, make_run):
    from analysis import load
    from dreamer.config import to_dict
    from suites.registry import get_suite

    suite = get_suite("atari100k")

    def run(variant, seed, overrides=(), torch="2.13.0", commit="abc"):
        path = make_run(tmp_path, "atari100k", variant, "atari_pong", seed, [(1000, 1.0)], budget=440_000)
        record = json.loads((path / "config.json").read_text())
        record["config"] = to_dict(suite.run_config("atari_pong", seed, list(overrides)))
        record["versions"] = {"torch": torch, "ale-py": "0.12.1", "numpy": "2.0"}
        record["git_commit"] = commit
        (path / "config.json").write_text(json.dumps(record))

    run("dreamerv3", 0)
    run("dreamerv3", 1, torch="2.14.1")  # another torch: named
    run("small", 0, ["size=size1m", "run.train_ratio=64", "agent.compile=true"])  # compile is operational
    run("small", 1, ["size=size1m", "run.train_ratio=64"], commit="def")  # another commit: named
    runs = load.provenance(tmp_path, "atari100k")
    assert set(runs.overrides) == {"", "size=size1m, run.train_ratio=64.0"}
    with pytest.warns(UserWarning) as caught:
        text = report.settings_text(runs, ["dreamerv3", "dreamerv3 (ours)", "small (ours)"])
    assert text == ("dreamerv3 (ours): size200m, action repeat 4, the suite's own settings; "
                    "small (ours): size1m, action repeat 4, overrides size=size1m, run.train_ratio=64.0")
    assert sorted(str(w.message) for w in caught) == [
        "dreamerv3 (ours) mixes runs of different package versions: ale-py 0.12.1, torch 2.13.0 "
        "(atari_pong/seed0); ale-py 0.12.1, torch 2.14.1 (atari_pong/seed1)",
        "small (ours) mixes runs of different code commits: abc (atari_pong/seed0); def (atari_pong/seed1)"]


def test_a_learning_check_shows_every_run_over_our_frames_with_its_size(tmp_path, make_run, baselines):
    # Two shortened runs of ours to 100,000 frames beside the published DreamerV3 (size200m) runs,
    # and a third on its way: at 40,000 frames.
    results = tmp_path / "runs"
    for seed, scores in ((0, [10.0] * 30 + [600.0] * 20), (1, [20.0] * 50), (2, [700.0] * 20)):
        path = make_run(results, "atari100k", "cpu_atari-budget100000", "atari_road_runner", seed,
                        [(2000 * (i + 1), s) for i, s in enumerate(scores)], budget=100_000, shortened=True)
        record = json.loads((path / "config.json").read_text())
        record["config"]["size"] = "size1m"
        (path / "config.json").write_text(json.dumps(record))
    out = tmp_path / "out"
    # As users run it (the module is __main__ then, and its warnings must still show).
    proc = subprocess.run([sys.executable, "-m", "analysis.report", "atari100k", "--baselines", str(baselines),
                           "--results", str(results), "--out", str(out), "--methods", "dreamerv3",
                           "cpu_atari-budget100000", "--learned", "500", "--reps", "50"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr
    assert ("warning: unfinished runs, scored on their last episode so far: cpu_atari-budget100000 (ours) "
            "atari_road_runner seed 2 (40,000 of 100,000 frames)\n") in proc.stderr
    runs = pd.read_csv(out / "runs.csv")
    ours = runs[runs.method == "cpu_atari-budget100000 (ours)"].set_index("seed")
    assert list(ours["last20"]) == [600.0, 20.0, 700.0] and set(ours["size"]) == {"size1m"}
    # Its first full window of 20 episodes is at 40,000 frames, however high the first ones.
    assert ours.loc[2, "first_500"] == 40_000
    # In the Markdown table whole-number columns (frames, and these means) have no decimals, the
    # normalised scores keep theirs.
    row = next(line for line in (out / "runs.md").read_text().splitlines() if "|      2 |" in line)
    assert "|   40,000 |      700 |   0.088 |" in row, row
    random, human = 11.5, 7845.0  # Road Runner's reference scores
    assert ours.loc[0, "score"] == pytest.approx((600 - random) / (human - random))
    # 3 × 10 + 17 × 600 over 20 episodes = 511.5: the 17th high episode, at 47 × 2,000 frames.
    assert ours.loc[0, "first_500"] == 94_000 and np.isnan(ours.loc[1, "first_500"])
    # The published runs, over the same 100,000 frames: the mean of their last 20 episodes by then.
    with gzip.open(baselines / "atari100k-dreamerv3.json.gz") as f:
        published = [r for r in json.load(f) if r["task"] == "atari_road_runner"]
    theirs = runs[runs.method == "dreamerv3"].set_index("seed")
    for r in published:
        xs, ys = np.array(r["xs"]), np.array(r["ys"])
        assert theirs.loc[r["seed"], "last20"] == pytest.approx(ys[xs <= 100_000][-20:].mean())
    assert set(theirs["size"]) == {"size200m"}
    assert (out / "learning_curves_runs.png").stat().st_size > 10_000


def test_table_cells_round_tiny_negatives_to_an_unsigned_zero(tmp_path):
    from analysis import tables
    data = pd.DataFrame({"method": ["a", "b"], "score": [-0.0002, -0.0021]})
    tables.write(tmp_path / "t", data, "caption")
    cells = [line.split("|")[2].strip() for line in (tmp_path / "t.md").read_text().splitlines()[4:]]
    assert cells == ["0.000", "-0.002"]
    aggregate = pd.DataFrame({"method": ["a"], "metric": ["IQM"], "value": [-0.0004],
                              "lower": [-0.0123], "upper": [0.5]})
    assert tables.aggregate_display(aggregate).loc[0, "IQM"] == "0.000 [-0.012, 0.500]"


def test_shortened_caption_counts_runs_per_method_and_window():
    from analysis import tables
    runs = pd.DataFrame({"method": ["ours", "ours", "reference", "long"], "budget": [1e5] * 3 + [4e5],
                         "lo": [88_636.0] * 3 + [390_000.0], "hi": [90_909.0] * 3 + [400_000.0],
                         "shortened": [True, True, True, False]})
    assert tables.shortened_caption(runs) == (
        "Shortened runs (window scaled by budget / full budget) — ours: 2 runs with a budget of "
        "100,000 frames, scored on episodes ending in [88,636, 90,909]; reference: 1 run with a "
        "budget of 100,000 frames, scored on episodes ending in [88,636, 90,909].")
    assert tables.shortened_caption(runs[~runs.shortened]) == ""


REFERENCE_CONFIG = """\
agent:
  dyn:
    rssm: {blocks: 8, classes: 4, deter: 512, hidden: 64, stoch: 32}
  enc:
    simple: {depth: 4, kernel: 5, units: 64}
env:
  atari100k: {repeat: 4, size: [64, 64]}
run: {steps: 25000.0, train_ratio: 256.0}
seed: 3
task: atari100k_road_runner
"""


def test_the_reference_implementations_runs_are_a_method_of_their_own(tmp_path, make_run, baselines, capsys):
    # A logdir as the reference's dreamerv3/main.py writes it: config.yaml, episode scores in frames,
    # and its metrics, each group on lines of its own.
    logdir = tmp_path / "refrun"
    logdir.mkdir()
    (logdir / "config.yaml").write_text(REFERENCE_CONFIG)
    scores = [0.0] * 10 + [600.0] * 20
    (logdir / "scores.jsonl").write_text("".join(
        json.dumps({"step": 3000 * (i + 1), "episode/score": s}) + "\n" for i, s in enumerate(scores)))
    (logdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in [
        {"step": 78000, "train/opt/updates": 19000.5, "train/loss/image": 40.0},
        {"step": 80000, "fps/policy": 3.0},
        {"step": 82000, "train/opt/updates": 20000.5, "train/loss/image": 39.0}]))
    results = tmp_path / "runs"
    make_run(results, "atari100k", "cpu_atari-budget100000", "atari_road_runner", 0,
             [(5000 * (i + 1), 20.0) for i in range(20)], budget=100_000, shortened=True)
    out = tmp_path / "out"
    assert report.main(["atari100k", "--baselines", str(baselines), "--results", str(results), "--out", str(out),
                        "--methods", "cpu_atari-budget100000", "--reference", str(logdir),
                        "--learned", "500", "--reps", "20"]) == 0
    runs = pd.read_csv(out / "runs.csv")
    ref = runs[runs.method == "reference"].iloc[0]
    # size1m: the shape of its RSSM and encoder; 20 episodes of 600 last; a full window of 20 first
    # reaches 500 at the 27th episode (3 × 0 + 17 × 600 = 510 over 20), at 27 × 3,000 frames, and the
    # updates are those of the first metrics line at or past that frame.
    assert (ref["size"], ref["seed"], ref["last20"], ref["episodes"]) == ("size1m", 3, 600.0, 30)
    assert (ref["first_500"], ref["updates_500"]) == (81_000, 20000.5) and np.isnan(ref["seconds_500"])
    assert "reference" in (out / "per_task.md").read_text()
    # The report carries what it read of the logdir, and reads it again from there.
    copy = out / "reference" / "atari_road_runner" / "seed3"
    assert sorted(p.name for p in copy.iterdir()) == ["config.yaml", "metrics.jsonl", "scores.jsonl"]
    assert all(p.read_bytes() == (logdir / p.name).read_bytes() for p in copy.iterdir())
    again = tmp_path / "again"
    assert report.main(["atari100k", "--baselines", str(baselines), "--results", str(out / "runs"),
                        "--out", str(again), "--methods", "cpu_atari-budget100000", "--reference", str(copy),
                        "--learned", "500", "--reps", "20"]) == 0
    assert (again / "runs.csv").read_bytes() == (out / "runs.csv").read_bytes()
    # The same run twice would count its episodes twice: one line naming both, nothing replaced.
    listing = (out / ".report").read_text()
    capsys.readouterr()
    assert report.main(["atari100k", "--baselines", str(baselines), "--results", str(results), "--out", str(out),
                        "--reference", str(logdir), str(copy)]) == 1
    assert capsys.readouterr().err == (f"error: {logdir} and {copy}: two reference runs of "
                                       "atari_road_runner seed 3\n")
    assert (out / ".report").read_text() == listing
    # Not a reference logdir: one line naming it, nothing of the report replaced.
    capsys.readouterr()
    assert report.main(["atari100k", "--baselines", str(baselines), "--results", str(results), "--out", str(out),
                        "--reference", str(tmp_path / "runs")]) == 1
    assert capsys.readouterr().err == (f"error: {tmp_path / 'runs'}: no config.yaml; not a logdir of the "
                                       "reference's dreamerv3/main.py\n")
    assert (out / ".report").read_text() == listing


def test_a_learning_check_draws_the_training_signals_of_ours_and_the_references_runs(tmp_path, make_run, baselines):
    logdir = tmp_path / "refrun"
    logdir.mkdir()
    (logdir / "config.yaml").write_text(REFERENCE_CONFIG)
    (logdir / "scores.jsonl").write_text(json.dumps({"step": 3000, "episode/score": 0.0}) + "\n")
    # Its metric groups come on lines of their own; the train group carries the signals.
    (logdir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in [
        {"step": 4400, "train/opt/updates": 2.0, "train/ent/action": 2.89, "train/loss/image": 1900.0,
         "train/loss/dyn": 7.8, "train/loss/rew": 5.5, "train/adv_std": 0.12},
        {"step": 4500, "fps/policy": 3.0},
        {"step": 120_000, "train/opt/updates": 7000.0, "train/ent/action": 1.5, "train/loss/image": 10.0,
         "train/loss/dyn": 1.0, "train/loss/rew": 0.1, "train/adv_std": 0.3}]))
    results = tmp_path / "runs"
    run = make_run(results, "atari100k", "cpu_atari-budget100000", "atari_road_runner", 0,
                   [(5000, 20.0)], budget=100_000, shortened=True)
    # Ours: a line before the first update carries no losses; an older log may lack a signal.
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in [
        {"step": 1000, "time": 1.0, "updates": 0},
        {"step": 4252, "time": 9.0, "updates": 10, "actor/entropy": 2.8904, "loss/rec": 2120.0,
         "loss/dyn": 8.6, "loss/rew": 5.54},
        {"step": 8000, "time": 20.0, "updates": 250, "actor/entropy": 2.88, "loss/rec": 1600.0,
         "loss/dyn": 7.5, "loss/rew": 4.0, "adv/std": 0.01}]))
    out = tmp_path / "out"
    assert report.main(["atari100k", "--baselines", str(baselines), "--results", str(results), "--out", str(out),
                        "--methods", "cpu_atari-budget100000", "--reference", str(logdir),
                        "--learned", "500", "--reps", "20"]) == 0
    signals = pd.read_csv(out / "signals.csv")
    assert list(signals.columns) == ["method", "task", "seed", "signal", "step", "value"]
    ours = signals[signals.method == "cpu_atari-budget100000 (ours)"].set_index(["signal", "step"]).value
    assert ours.to_dict() == {
        ("policy entropy", 4252): 2.8904, ("policy entropy", 8000): 2.88,
        ("reconstruction loss", 4252): 2120.0, ("reconstruction loss", 8000): 1600.0,
        ("dynamics loss", 4252): 8.6, ("dynamics loss", 8000): 7.5,
        ("reward loss", 4252): 5.54, ("reward loss", 8000): 4.0, ("advantage std", 8000): 0.01}
    # The reference's, up to the frames our runs went (100,000): its line at 120,000 is left out.
    theirs = signals[signals.method == "reference"]
    assert set(theirs.seed) == {3} and set(theirs.step) == {4400}
    assert theirs.set_index("signal").value.to_dict() == {
        "policy entropy": 2.89, "reconstruction loss": 1900.0, "dynamics loss": 7.8, "reward loss": 5.5,
        "advantage std": 0.12}
    assert (out / "training_signals.png").stat().st_size > 10_000


def test_the_report_carries_the_logs_of_our_runs_and_is_made_again_from_them(tmp_path, make_run, baselines):
    results = tmp_path / "runs"
    reported = []
    for seed in (0, 1):
        made = make_run(results, "atari100k", "cpu_atari-budget100000", "atari_road_runner", seed,
                        [(5000 * (i + 1), 10.0 * seed + i) for i in range(20)], budget=100_000, shortened=True)
        (made / "metrics.jsonl").write_text("".join(json.dumps({"step": step, "time": step / 100, "updates": step / 10})
                                                    + "\n" for step in (50_000, 100_000)))
        (made / "DONE").write_text(json.dumps({"step": 100_000, "episodes": 20}) + "\n")
        (made / "checkpoint").mkdir()
        (made / "checkpoint" / "replay.npz").write_bytes(b"\0" * 1000)
        reported.append(made)
    other = make_run(results, "atari100k", "unselected", "atari_road_runner", 0, [(5000, 1.0)], budget=100_000)
    argv = ["atari100k", "--baselines", baselines, "--methods", "dreamerv3", "cpu_atari-budget100000",
            "--learned", "15", "--reps", "20"]
    out = tmp_path / "out"
    assert run(argv + ["--results", results, "--out", out])[0] == 0

    copies = out / "runs"
    expected = {made / name for made in reported for name in ("config.json", "scores.jsonl", "metrics.jsonl", "DONE")}
    assert {p for p in copies.rglob("*") if p.is_file()} == {copies / p.relative_to(results) for p in expected}
    for path in expected:
        assert (copies / path.relative_to(results)).read_bytes() == path.read_bytes()
    assert not (copies / other.relative_to(results)).exists()
    # Copied back, a finished run is done for the launcher: a later launch does not run it again.
    assert all(run_state(copies / made.relative_to(results), None, None) == "done" for made in reported)

    again = tmp_path / "again"
    assert run(argv + ["--results", copies, "--out", again])[0] == 0
    assert (again / "runs.csv").read_bytes() == (out / "runs.csv").read_bytes()
    # Made again over itself, the report replaces its copies with the new ones.
    (copies / "stale.txt").write_text("left by hand")
    assert run(argv + ["--results", results, "--out", out])[0] == 0
    assert not (copies / "stale.txt").exists()
    assert all((copies / p.relative_to(results)).read_bytes() == p.read_bytes() for p in expected)
