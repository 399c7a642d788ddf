import shutil
from pathlib import Path

import pytest

from analysis import baselines as download
from analysis.reference import ATARI, MANIFEST, url


def test_fetch_accepts_the_right_hash_and_rejects_a_wrong_one(tmp_path, baselines):
    name = "dmc_proprio-dreamerv3.json.gz"
    source = (baselines / name).as_uri()
    dest = tmp_path / name
    with pytest.raises(download.DownloadError, match="expected 0000"):
        download.fetch(source, dest, "0000")
    assert not dest.exists() and not list(tmp_path.iterdir())  # nothing half-written is kept
    download.fetch(source, dest, MANIFEST[name])
    assert dest.read_bytes() == (baselines / name).read_bytes()


def test_fetch_names_an_unreachable_source(tmp_path):
    with pytest.raises(download.DownloadError, match="cannot fetch file://"):
        download.fetch((tmp_path / "missing.json.gz").as_uri(), tmp_path / "x", MANIFEST[
            "atari100k-dreamerv3.json.gz"])


def test_cli_downloads_all_manifest_files_from_a_mirror(tmp_path, baselines, capsys):
    assert download.main(["download", "--to", str(tmp_path / "b"), "--source", str(baselines)]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(MANIFEST)
    assert "18 published score files verified" in capsys.readouterr().out


def test_cli_refuses_a_corrupt_mirror_and_keeps_good_files(tmp_path, baselines, capsys):
    mirror, to = tmp_path / "mirror", tmp_path / "to"
    shutil.copytree(baselines, mirror)
    first = sorted(MANIFEST)[0]
    assert download.main(["download", "--to", str(to), "--source", str(mirror)]) == 0
    broken = sorted(MANIFEST)[-1]
    (mirror / broken).write_bytes(b"tampered")
    (to / broken).unlink()
    assert download.main(["download", "--to", str(to), "--source", str(mirror)]) == 1
    assert f"{broken} has sha256" in capsys.readouterr().err
    assert not (to / broken).exists() and (to / first).exists()


def test_default_source_is_the_pinned_commit():
    assert url("atari100k-dreamerv3.json.gz") == (
        "https://raw.githubusercontent.com/danijar/dreamerv3/"
        "e3f02248693a79dc8b0ebd62c93683888ddaccfe/scores/atari100k-dreamerv3.json.gz")


def test_reference_table_matches_the_published_yaml(gamer):
    assert len(ATARI) == 26
    for task, (random, human) in ATARI.items():
        assert [random, human] == gamer[task]


def test_tests_find_a_download_where_the_environment_variable_points(tmp_path, baselines):
    """A user's clone has no development copy: after `download` into a folder named by
    DREAMER_BASELINES (here from a local mirror, offline), the published-data tests read it."""
    to = tmp_path / "published"
    assert download.main(["download", "--to", str(to), "--source", str(baselines)]) == 0
    assert download.locate(tmp_path, [baselines], {download.ENV_VAR: str(to)}) == to
    assert download.locate(tmp_path, [baselines], {download.ENV_VAR: str(tmp_path / "empty")}) is None
    # Without the variable: results/baselines under the clone first, then the fallbacks.
    assert download.locate(tmp_path, [baselines], {}) == baselines
    (tmp_path / "results").mkdir()
    to.rename(tmp_path / "results" / "baselines")
    assert download.locate(tmp_path, [baselines], {}) == tmp_path / "results" / "baselines"


def test_the_default_folder_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(download.ENV_VAR, raising=False)
    assert download.default_dir() == Path("results/baselines")
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path))
    assert download.default_dir() == tmp_path
