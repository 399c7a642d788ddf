"""What `suites.run --wait` shows while it waits: per run, frames (or episodes) done of its budget,
an ETA and its latest score; for the whole launch, the share done and an ETA. Progress is read from
each run's logs (dreamer/rundir.py), so it is the same whoever trains the run and wherever.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tabulate import tabulate

from dreamer.config import RunConfig
from dreamer.rundir import RunDir, RunDirError

# Runs listed one per line at most; the others are counted in the heading.
ROWS = 20
# Without a terminal (a log file, a pipe), the block is printed again when a run changes state,
# else at most this often.
PRINT_SECONDS = 60.0
ORDER = ("running", "failed", "interrupted", "stopped", "queued", "partial", "new")  # which runs get a line first


@dataclass(frozen=True)
class Progress:
    """Where one run stands: frames reached, episodes finished, the return of the latest episode,
    and its frames per second: over its last log interval, else over its whole training time
    (None: not known yet)."""

    frames: int | None = None
    episodes: int | None = None
    score: float | None = None
    fps: float | None = None


def read(run_dir: Path) -> Progress:
    """A run's progress from its summary (once finished) and the last lines of its two logs."""
    rd = RunDir(run_dir)
    try:
        done = rd.read_done()
    except RunDirError:
        done = None
    metrics, scores = rd.last_line("metrics"), rd.last_line("scores")
    steps = [d["step"] for d in (done, metrics, scores) if d and "step" in d]
    fps = None
    if metrics:
        fps = metrics.get("fps/env") or (metrics["step"] / metrics["time"] if metrics.get("time") else None)
    return Progress(max(steps) if steps else None, (done or metrics or {}).get("episodes"),
                    scores.get("score") if scores else None, fps)


def fraction(run: RunConfig, p: Progress) -> float:
    """Share of the budget done; a run with both budgets ends at whichever it reaches first."""
    parts = [(p.frames or 0) / run.budget if run.budget else 0.0,
             (p.episodes or 0) / run.budget_episodes if run.budget_episodes else 0.0]
    return min(1.0, max(parts))


def seconds_left(run: RunConfig, p: Progress) -> float | None:
    """Time to the budget at the recent frame rate; an episode budget is turned into frames at the
    run's mean episode length so far. None while a rate or length is unknown."""
    frames = []
    if run.budget:
        frames.append(max(0, run.budget - (p.frames or 0)))
    if run.budget_episodes and p.episodes and p.frames:
        frames.append(max(0, run.budget_episodes - p.episodes) * p.frames / p.episodes)
    if not frames or not p.fps:
        return None
    return min(frames) / p.fps


def block(title: str, runs: list[tuple[str, str, RunConfig, Path]], rows: int = ROWS,
          reached: dict | None = None) -> list[str]:
    """The lines shown for runs given as (label, state, run config, run dir): a heading with the
    count per state, one line per run that is not done (running ones first; at most `rows`), and
    the launch's share done with an ETA. `reached` (label → frames), kept by the caller across
    blocks, remembers the most frames each run has shown: a run resumed from its checkpoint redoes
    the frames after it, and its line says so instead of silently counting back."""
    counts = {}
    for _, state, _, _ in runs:
        counts[state] = counts.get(state, 0) + 1
    heading = f"{title}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    progress = [(label, state, run, read(run_dir)) for label, state, run, run_dir in runs]
    shown = sorted((r for r in progress if r[1] in ORDER), key=lambda r: ORDER.index(r[1]))
    reached = {} if reached is None else reached
    for label, _, _, p in progress:
        reached[label] = max(reached.get(label, 0), p.frames or 0)
    table = [_row(*r, reached[r[0]]) for r in shown[:rows]]
    lines = [f"{heading}  [{time.strftime('%H:%M:%S')}]"]
    if table:
        lines += ["  " + line.rstrip() for line in tabulate(table, tablefmt="plain", disable_numparse=True).splitlines()]
    if len(shown) > rows:
        lines.append(f"  … and {len(shown) - rows} more not done")
    share = sum(1.0 if state == "done" else fraction(run, p) for _, state, run, p in progress) / max(1, len(runs))
    eta = _launch_eta(progress)
    lines.append(f"all: {share:.0%} done" + (f", ETA {duration(eta)}" if eta is not None else ""))
    return lines


def _row(label: str, state: str, run: RunConfig, p: Progress, reached: int) -> list[str]:
    if run.budget:
        done = f"{p.frames or 0:,}/{run.budget:,} frames"
    else:
        done = f"{p.episodes or 0:,}/{run.budget_episodes:,} episodes"
    if (p.frames or 0) < reached:
        done += f" (resumed at its checkpoint: redoing {reached - (p.frames or 0):,} frames)"
    left = seconds_left(run, p) if state == "running" else None
    return [label, state, done, f"{fraction(run, p):.0%}", f"ETA {duration(left)}" if left is not None else "",
            f"score {p.score:.4g}" if p.score is not None else ""]


def _launch_eta(progress: list[tuple[str, str, RunConfig, Progress]]) -> float | None:
    """Seconds until every run that may still train ends: what the running runs have left plus a
    whole run (at the running runs' mean length) for each waiting one, shared among as many runs
    at once as are running now. None when nothing trains or a running run has no rate yet."""
    running = [(run, p) for _, state, run, p in progress if state == "running"]
    waiting = sum(state in ("queued", "new", "partial") for _, state, _, _ in progress)
    left = [seconds_left(run, p) for run, p in running]
    if not running or None in left:
        return None
    # A whole run at each running run's rate: its time left over the share it has left.
    whole = [t / max(1e-9, 1 - fraction(run, p)) for t, (run, p) in zip(left, running)]
    return (sum(left) + waiting * sum(whole) / len(whole)) / len(running)


def duration(seconds: float) -> str:
    """45s, 12m05s, 3h07m, 2d04h."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class Display:
    """Shows successive blocks on `stream`: redrawn in place on a terminal (cut to its size, so
    the redraw covers exactly what was drawn); elsewhere printed whole when `key` (the runs'
    states) changes, every PRINT_SECONDS, and at the end."""

    def __init__(self, stream: TextIO):
        self.stream, self.tty = stream, stream.isatty()
        self.drawn, self.key, self.printed = 0, None, 0.0

    def rows(self) -> int:
        """Runs that fit one per line: on a terminal, its height less the heading and total."""
        return min(ROWS, shutil.get_terminal_size().lines - 4) if self.tty else ROWS

    def show(self, lines: list[str], key, final: bool = False) -> None:
        if self.tty:
            width = shutil.get_terminal_size().columns
            erase = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""  # up to the block's start, clear below
            self.stream.write(erase + "".join(line[:width - 1] + "\n" for line in lines))
            self.drawn = len(lines)
        elif final or key != self.key or time.monotonic() - self.printed >= PRINT_SECONDS:
            self.stream.write("".join(line + "\n" for line in lines))
            self.key, self.printed = key, time.monotonic()
        self.stream.flush()
