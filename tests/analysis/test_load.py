import gzip
import json

import pytest

from analysis import load


def write_gz(path, payload):
    with gzip.open(path, "wt") as f:
        json.dump(payload, f)
    return path


def test_published_file_becomes_long_rows_without_null_returns(tmp_path):
    path = write_gz(tmp_path / "atari100k-m.json.gz", [
        {"task": "atari_pong", "method": "m", "seed": 0, "xs": [10, 20, 30],
         "ys": [1.0, None, 3.0]},
        {"task": "atari_pong", "method": "m", "seed": 1, "xs": [15], "ys": [-2]}])
    frame = load.read_published(path, "atari100k")
    assert list(frame.columns) == load.COLUMNS
    assert frame[["seed", "step", "score"]].values.tolist() == [[0, 10, 1.0], [0, 30, 3.0],
                                                                 [1, 15, -2.0]]
    assert set(frame.suite) == {"atari100k"} and not frame.shortened.any()


def test_published_methods_and_load_on_the_development_copy(baselines):
    assert load.published_methods(baselines, "atari100k") == ["dreamerv3", "ppo_fixhp"]
    frame = load.load_published(baselines, "minecraft", "minecraft_diamond", ["r2d2"])
    assert set(frame.method) == {"r2d2"} and frame.seed.nunique() == 15
    assert set(frame.suite) == {"minecraft"}


@pytest.mark.parametrize("payload, message", [
    (b"not gzip", "not a gzip'd JSON file"),
    ({"task": "x"}, "expected a JSON list of runs"),
    ([{"task": "x", "seed": 0, "xs": [], "ys": []}], "run 0 lacks one of the keys"),
    ([{"task": "x", "method": "m", "seed": 0, "xs": [1, 2], "ys": [1]}], "run 0 has 2 xs but 1 ys"),
])
def test_malformed_published_file_is_named(tmp_path, payload, message):
    path = tmp_path / "s-m.json.gz"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        write_gz(path, payload)
    with pytest.raises(load.LoadError, match=message) as error:
        load.read_published(path, "s")
    assert str(path) in str(error.value)


def test_our_runs_are_labelled_apart_from_published_ones(tmp_path, make_run):
    make_run(tmp_path, "atari100k", "dreamerv3", "atari_pong", 0, [(1000, -21.0), (2000, -19.5)],
             budget=440_000)
    make_run(tmp_path, "atari100k", "dreamerv3-budget1000", "atari_pong", 3, [(900, -20.0)],
             budget=1000, shortened=True)
    frame = load.load_runs(tmp_path, "atari100k")
    assert list(frame.columns) == load.COLUMNS
    assert frame[["method", "seed", "step", "score", "shortened", "budget"]].values.tolist() == [
        ["dreamerv3 (ours)", 0, 1000, -21.0, False, 440_000],
        ["dreamerv3 (ours)", 0, 2000, -19.5, False, 440_000],
        ["dreamerv3-budget1000 (ours)", 3, 900, -20.0, True, 1000]]
    assert load.our_variants(tmp_path, "atari100k") == ["dreamerv3", "dreamerv3-budget1000"]
    assert set(load.load_runs(tmp_path, "atari100k", ["dreamerv3"]).method) == {"dreamerv3 (ours)"}


def test_malformed_score_line_names_file_and_line(tmp_path, make_run):
    run = make_run(tmp_path, "atari100k", "v", "atari_pong", 0, [(1, 1.0), (2, 2.0)], 440_000)
    with open(run / "scores.jsonl", "a") as f:
        f.write('{"step": 3, "score": "high"}\n')
    with pytest.raises(load.LoadError, match=r"scores.jsonl:3: malformed line") as error:
        load.load_runs(tmp_path, "atari100k")
    assert str(run / "scores.jsonl") in str(error.value)
    (run / "scores.jsonl").write_text('{"step": 1, "score": 1.0}\n{"step": 2, "sco')
    with pytest.raises(load.LoadError, match=r"scores.jsonl:2: malformed line"):
        load.load_runs(tmp_path, "atari100k")


def test_config_without_budget_is_named(tmp_path, make_run):
    run = make_run(tmp_path, "atari100k", "v", "atari_pong", 0, [(1, 1.0)], 440_000)
    config = json.loads((run / "config.json").read_text())
    del config["config"]["run"]["budget"], config["shortened"]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(load.LoadError, match="config.json: missing shortened"):
        load.load_runs(tmp_path, "atari100k")


def test_run_without_finished_episode_is_left_out_with_a_warning(tmp_path, make_run):
    make_run(tmp_path, "atari100k", "v", "atari_pong", 0, [], 440_000)
    with pytest.warns(UserWarning, match="no finished episode yet"):
        assert load.load_runs(tmp_path, "atari100k").empty


def test_a_run_without_a_recorded_suite_or_variant_is_named(tmp_path, make_run):
    run = make_run(tmp_path, "atari100k", "v", "atari_pong", 0, [(1, 1.0)], 440_000)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "suite": None, "variant": None}))
    with pytest.raises(load.LoadError, match="config.json: no suite, variant recorded"):
        load.load_runs(tmp_path, "atari100k")


def test_a_bsuite_log_restarted_by_an_older_version_is_left_out_with_a_warning(tmp_path, make_run):
    pytest.importorskip("bsuite")
    run = make_run(tmp_path, "bsuite", "v", "catch/0", 0, [], budget=0)
    (run / "bsuite").mkdir()
    for name in ("bsuite_id_-_catch-0.csv", "bsuite_id_-_catch-0.csv.1"):  # newest, and the one before
        (run / "bsuite" / name).write_text("steps,episode,total_return,episode_len,episode_return,total_regret\n")
    with pytest.warns(UserWarning, match="left out of bsuite's scores: .* cannot be put in order"):
        with pytest.raises(load.LoadError, match="no bsuite CSV logs"):  # it was the only run
            load.load_bsuite(tmp_path)
