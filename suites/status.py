"""`python -m suites.status SUITE`: where each run of a suite stands, from its run directory and
the scheduler (suites/jobs.py).

A run's state is one of:
  done     it has finished;
  running  a process holds the run's lock: it is training the run, whether a job or a start by hand;
  queued   its recorded job is in the scheduler but trains nothing yet (local: waits for a slot);
  stopped  `suites.stop` stopped its recorded job; the next launch resumes it;
  interrupted  its recorded job was ended from outside without an error (killed, cancelled, timed
           out, preempted, its node failed); the next launch resumes it;
  failed   its recorded job ended with an error, or returned without finishing the run;
  partial  progress on disk but no job recorded (started outside the launcher);
  new      nothing there yet ("missing" in the status table).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from tabulate import tabulate

from dreamer.rundir import RunDir
from suites import progress
from suites.base import SuiteError, unknown
from suites.jobs import INTERRUPTIONS, JobRecord, SchedulerError, job_states, read_record

DEFAULT_RESULTS = Path("results/runs")


def run_state(run_dir: Path, record: JobRecord | None, job: tuple[str, str] | None) -> str:
    """State of one run from its directory, its submission record and that job's scheduler state."""
    rd = RunDir(run_dir)
    if rd.done.exists():
        return "done"
    if rd.holder() is not None:
        return "running"
    if record is not None and job is not None and job[0] != "unknown":
        if job[0] in ("waiting", "running"):
            return "queued"
        if record.stopped:
            return "stopped"
        return "interrupted" if job[1] in INTERRUPTIONS else "failed"
    return "partial" if rd.has_progress() else "new"


def states(run_dirs: list[Path]) -> list[tuple[str, JobRecord | None, tuple[str, str] | None]]:
    """(state, record, scheduler state) of each run dir, asking the scheduler once."""
    records = [read_record(d) for d in run_dirs]
    jobs = job_states([r for r in records if r is not None])
    return [(run_state(d, r, jobs.get(r)), r, jobs.get(r)) for d, r in zip(run_dirs, records)]


def tail(path: Path, lines: int = 10) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def failure_tail(run_dir: Path, record: JobRecord, lines: int = 10) -> list[str]:
    """Last lines of the job's log; submitit's own stderr when the job died before opening it."""
    return tail(RunDir(run_dir).job_log(record.job_id), lines) or tail(Path(record.stderr), lines)


def error_line(run_dir: Path, record: JobRecord) -> str:
    """The one line that says why a job ended: the exception of the last traceback in its log, or
    in submitit's stderr (a job interrupted outside the training, or one that died before opening
    its log); else the log's last line."""
    for path in (RunDir(run_dir).job_log(record.job_id), Path(record.stderr)):
        lines = tail(path, 200)
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
        # The exception line is the first after the traceback that is not indented (frames and
        # their source lines are).
        ends = [line for line in lines[starts[-1] + 1:] if line.strip() and not line[0].isspace()] if starts else []
        if ends:
            return ends[0]
    last = failure_tail(run_dir, record, 1)
    return last[0] if last else "(no log)"


def check_results(results: Path, exist: bool = True) -> None:
    """`--results` names a folder of runs (one that exists, with `exist`); SuiteError naming it otherwise."""
    if results.exists() and not results.is_dir():
        raise SuiteError(f"--results {results} is a file, not a folder of runs")
    if exist and not results.exists():
        raise SuiteError(f"--results {results}: no such folder")


def variant_dirs(suite, results: Path, variant: str | None) -> list[str]:
    """The variant directories of `suite` under `results` (a folder that exists): `variant`, or
    every one present."""
    check_results(results)
    base = results / suite.name
    present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if variant is not None and variant not in present:
        raise unknown(f"variant directory under {base}", variant, present)
    return [variant] if variant is not None else present


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suites.status",
        description="Table of the runs of a suite: done / running / queued / stopped / interrupted / failed / partial / "
                    "missing, frames reached, last score, and the last log lines of failed jobs.")
    parser.add_argument("suite", help="suite name, e.g. atari100k")
    parser.add_argument("--variant", help="variant directory, e.g. dreamerv3 or dreamerv3-budget2000 "
                                          "(default: every variant present)")
    parser.add_argument("--seeds", type=int, help="expected seeds 0..N-1 per task, to list missing "
                                                   "runs (default: the seeds present)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="runs folder (default %(default)s)")
    parser.add_argument("--lines", type=int, default=10, help="log lines shown per failed run")
    args = parser.parse_args(argv)
    from suites.registry import get_suite

    try:
        suite = get_suite(args.suite)
        variants = variant_dirs(suite, args.results, args.variant)
    except SuiteError as e:
        print(f"suites.status: error: {e}", file=sys.stderr)
        return 2
    if not variants:
        print(f"no runs of {suite.name} under {args.results}")
        return 0
    rows, failures = [], []
    try:
        for variant in variants:
            runs = expected_runs(suite, args.results / suite.name / variant, args.seeds)
            for (task, seed, run_dir), (state, record, job) in zip(runs, states([r[2] for r in runs])):
                p = progress.read(run_dir)
                rows.append([variant, task, seed, "missing" if state == "new" else state, p.frames, p.score,
                             _job_text(run_dir, state, record, job)])
                if state == "failed":
                    failures.append((f"{variant} {task} seed{seed} ({job[1]})",
                                     failure_tail(run_dir, record, args.lines)))
    except (SchedulerError, SuiteError) as e:
        print(f"suites.status: error: {e}", file=sys.stderr)
        return 1
    print(tabulate(rows, headers=["variant", "task", "seed", "state", "frames", "last score", "job"]))
    counts = {}
    for row in rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    print(f"\n{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for title, lines in failures:
        print(f"\n{title}, last log lines:")
        print("\n".join(f"  {line}" for line in lines) or "  (no log)")
    return 0


def _job_text(run_dir: Path, state: str, record: JobRecord | None, job: tuple[str, str] | None) -> str:
    """The job column: the recorded job and the scheduler's word for it; for a run trained
    outside the launcher, the process that holds its lock."""
    if record is not None:
        return f"{record.executor} {record.job_id} {job[1] if job else ''}"
    return (RunDir(run_dir).holder() or "") if state == "running" else ""


def expected_runs(suite, variant_dir: Path, seeds: int | None) -> list[tuple[str, int, Path]]:
    """(task, seed, run dir) for every task of the suite × seeds 0..N-1 (N: `seeds`, else one
    more than the largest seed present), plus any other run dir present."""
    present = {(d.parent.name, int(d.name[4:])): d for d in variant_dir.glob("*/seed*")
               if d.is_dir() and d.name[4:].isdigit()}
    n = seeds if seeds is not None else max((s for _, s in present), default=-1) + 1
    dirname = {t.replace("/", "-"): t for t in suite.tasks}
    tasks_present = {t for t, _ in present}
    # With no --seeds, only tasks of which some run exists count as expected for a large
    # suite such as bsuite (468 ids) launched on a subset.
    expected = suite.tasks if seeds is not None else [t for t in suite.tasks if t.replace("/", "-") in tasks_present]
    order = {name: i for i, name in enumerate(dirname)}
    keys = sorted({(t.replace("/", "-"), s) for t in expected for s in range(n)} | set(present),
                  key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    return [(dirname.get(t, t), s, present.get((t, s), variant_dir / t / f"seed{s}")) for t, s in keys]


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… | head` ends the table quietly, as it does other tools
    sys.exit(main())
