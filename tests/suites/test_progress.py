"""What `suites.run --wait` shows, from hand-made run directories."""
import io
import json
import re

from dreamer.config import make_config
from suites import progress


def write_run(path, metrics=None, scores=(), done=None):
    path.mkdir(parents=True)
    if metrics:
        (path / "metrics.jsonl").write_text(json.dumps(metrics) + "\n")
    (path / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
    if done:
        (path / "DONE").write_text(json.dumps(done))
    return path


def test_block_shows_frames_of_budget_eta_and_score_per_run_and_overall(tmp_path):
    frames = make_config(["run.budget=4000"]).run
    episodes = make_config(["run.budget_episodes=1000"]).run
    running = write_run(tmp_path / "a", {"step": 1000, "episodes": 100, "fps/env": 5.0},
                        [{"step": 990, "score": 1.0}, {"step": 1010, "score": 0.75}])
    done = write_run(tmp_path / "b", {"step": 3990, "episodes": 399, "fps/env": 5.0}, [],
                     {"step": 4000, "episodes": 400})
    queued, starting = tmp_path / "c", write_run(tmp_path / "d")
    lines = progress.block("bsuite v", [("catch/0 seed 0", "running", frames, running),
                                        ("catch/0 seed 1", "done", frames, done),
                                        ("catch/0 seed 2", "queued", frames, queued),
                                        ("catch/1 seed 0", "running", episodes, running),
                                        ("catch/1 seed 1", "running", frames, starting)])
    assert re.fullmatch(r"bsuite v: 1 done, 1 queued, 3 running  \[\d\d:\d\d:\d\d\]", lines[0])
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:-1]]
    # 2,990 frames left at 5 frames/s; 900 episodes of 10.1 frames (the mean so far) at 5 frames/s
    assert rows == [["catch/0 seed 0", "running", "1,010/4,000 frames", "25%", "ETA 9m58s", "score 0.75"],
                    ["catch/1 seed 0", "running", "100/1,000 episodes", "10%", "ETA 30m18s", "score 0.75"],
                    ["catch/1 seed 1", "running", "0/4,000 frames", "0%"],
                    ["catch/0 seed 2", "queued", "0/4,000 frames", "0%"]]
    # A running run without a rate yet leaves the launch's ETA unknown.
    assert lines[-1] == "all: 27% done"
    lines = progress.block("bsuite v", [("catch/0 seed 0", "running", frames, running),
                                        ("catch/0 seed 1", "done", frames, done),
                                        ("catch/0 seed 2", "queued", frames, queued)], rows=1)
    # 598 s left and a whole run of 800 s for the queued one, one run at a time
    assert lines[1:] == ["  catch/0 seed 0  running  1,010/4,000 frames  25%  ETA 9m58s  score 0.75",
                         "  … and 1 more not done", "all: 42% done, ETA 23m18s"]


def test_a_resumed_run_says_it_redoes_frames_instead_of_counting_back_and_has_an_eta(tmp_path):
    frames = make_config(["run.budget=4000"]).run
    d = write_run(tmp_path / "a", {"step": 1920, "time": 96.0, "fps/env": 20.0})
    reached = {}
    progress.block("t", [("catch/0 seed 0", "running", frames, d)], reached=reached)
    # Resumed from a checkpoint at 1,840 frames: its logs were cut back there; the first line
    # after the resume has no interval rate yet, the run's mean rate (1,840 / 92 s) gives the ETA.
    (d / "metrics.jsonl").write_text(json.dumps({"step": 1840, "time": 92.0}) + "\n")
    lines = progress.block("t", [("catch/0 seed 0", "running", frames, d)], reached=reached)
    assert re.split(r"\s{2,}", lines[1].strip()) == [
        "catch/0 seed 0", "running", "1,840/4,000 frames (resumed at its checkpoint: redoing 80 frames)", "46%",
        "ETA 1m48s"]
    (d / "metrics.jsonl").write_text(json.dumps({"step": 2000, "time": 100.0, "fps/env": 20.0}) + "\n")
    lines = progress.block("t", [("catch/0 seed 0", "running", frames, d)], reached=reached)
    assert re.split(r"\s{2,}", lines[1].strip()) == ["catch/0 seed 0", "running", "2,000/4,000 frames", "50%", "ETA 1m40s"]


def test_durations_read_at_a_glance():
    assert [progress.duration(s) for s in (0, 59.4, 61, 3599, 3600 * 5 + 7 * 60, 86400 * 2 + 3600 * 4)] == \
        ["0s", "59s", "1m01s", "59m59s", "5h07m", "2d04h"]


def test_without_a_terminal_the_block_is_printed_when_states_change_or_at_the_end(monkeypatch):
    stream = io.StringIO()
    display = progress.Display(stream)
    display.show(["a"], ["running"])
    display.show(["b"], ["running"])  # no change and not yet PRINT_SECONDS later
    display.show(["c"], ["done"])
    display.show(["d"], ["done"], final=True)
    assert stream.getvalue() == "a\nc\nd\n"
    monkeypatch.setattr(progress, "PRINT_SECONDS", 0.0)
    display.show(["e"], ["done"])
    assert stream.getvalue().endswith("d\ne\n")


def test_on_a_terminal_the_block_is_redrawn_in_place(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda: __import__("os").terminal_size((12, 30)))
    stream = Terminal()
    display = progress.Display(stream)
    display.show(["first line", "a line longer than the terminal"], ["running"])
    display.show(["second"], ["running"])
    # up two lines, clear to the end of the screen; lines cut to the width, less one column
    assert stream.getvalue() == "first line\na line long\n\x1b[2F\x1b[Jsecond\n"
    assert display.rows() == progress.ROWS
