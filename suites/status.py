"""Where each run stands, from its run directory and the scheduler; and `python -m suites.status`.

A run's state is one of:
  done     DONE exists;
  queued   its recorded job waits in the scheduler (local: waits for a free slot);
  running  its recorded job runs;
  failed   its recorded job ended without DONE (error, cancelled, killed, timed out);
  partial  progress on disk but no job recorded (started outside the launcher);
  new      nothing there yet ("missing" in the status table).
The record of a submission is `run_dir/job.json` (executor, job id, submitit's log files); it is
checked against the scheduler: squeue, then sacct, for slurm; for local jobs, whether the job's
controller process (pid and start time) is still alive.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import pickle
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tabulate import tabulate

from suites.base import SuiteError, unknown

RECORD = "job.json"
LOGS = "logs"
DEFAULT_RESULTS = Path("results/runs")
# Slurm job states of a job that has not started (again) yet, and of one still running; any
# other state (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...) has ended.
_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD"}
_RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


class SchedulerError(RuntimeError):
    """The scheduler could not be asked about recorded jobs."""


@dataclass(frozen=True)
class JobRecord:
    """One submission of a run. `stdout`/`stderr`/`result` are submitit's files for the job;
    `started` is the local controller's start time in clock ticks since boot (guards against a
    reused pid), 0 for slurm."""

    executor: str
    job_id: str
    submitted: float
    stdout: str
    stderr: str
    result: str
    started: int = 0


def write_record(run_dir: Path, record: JobRecord) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(run_dir / RECORD)


def read_record(run_dir: Path) -> JobRecord | None:
    path = run_dir / RECORD
    if not path.exists():
        return None
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise SuiteError(f"malformed submission record {path}: {e}") from e


def process_start(pid: int) -> int:
    """Start time of process `pid` (clock ticks since boot), 0 if it does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()  # the command name in (…) may contain spaces
    return 0 if fields[0] == "Z" else int(fields[19])


def job_states(records: list[JobRecord]) -> dict[JobRecord, tuple[str, str]]:
    """record → (state, scheduler's word): state is 'waiting', 'running', 'ended' or 'unknown'
    (slurm no longer knows the job); the word is e.g. PENDING, FAILED, 'killed'."""
    out = {r: _local_state(r) for r in records if r.executor == "local"}
    slurm = [r for r in records if r.executor == "slurm"]
    if slurm:
        by_id = _slurm_states([r.job_id for r in slurm])
        out.update({r: by_id[r.job_id] for r in slurm})
    return out


def _local_state(record: JobRecord) -> tuple[str, str]:
    if process_start(int(record.job_id)) == record.started:
        return "running", "RUNNING"
    return "ended", _result_word(Path(record.result))


def _result_word(result: Path) -> str:
    """submitit's outcome of an ended job from its result pickle: COMPLETED, FAILED or 'killed'."""
    if not result.exists():
        return "killed"
    with open(result, "rb") as f:
        outcome = pickle.load(f)[0]
    return "COMPLETED" if outcome == "success" else "FAILED"


def _slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    # squeue knows queued jobs sacct may not list yet; -r lists pending array tasks one per line
    # (otherwise they are folded into 12_[3-5]).
    for line in _query(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"]):
        job, state = line.split("|")
        if job in job_ids:
            out[job] = _slurm_state(state)
    rest = [j for j in job_ids if j not in out]
    if rest:
        for line in _query(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(rest)]):
            job, state = line.split("|")
            if job in rest:
                out[job] = _slurm_state(state.split()[0])  # "CANCELLED by 0" → CANCELLED
    return {j: out.get(j, ("unknown", "unknown to slurm")) for j in job_ids}


def _slurm_state(state: str) -> tuple[str, str]:
    return ("waiting" if state in _WAITING else "running" if state in _RUNNING else "ended"), state


def _query(command: list[str]) -> list[str]:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SchedulerError(f"cannot ask slurm about recorded jobs ({command[0]}: {e})") from e
    if proc.returncode != 0:
        raise SchedulerError(f"cannot ask slurm about recorded jobs: {command[0]}: {proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def has_progress(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in ("config.json", "checkpoint", "metrics.jsonl"))


def run_state(run_dir: Path, record: JobRecord | None, job: tuple[str, str] | None) -> str:
    """State of one run from its directory, its submission record and that job's scheduler state."""
    if (run_dir / "DONE").exists():
        return "done"
    if record is not None and job is not None and job[0] != "unknown":
        if job[0] == "waiting":
            return "queued"
        if job[0] == "running":
            # A local job runs once it holds a slot; it opens its log then (suites/job.py).
            started = record.executor == "slurm" or job_log(run_dir, record).exists()
            return "running" if started else "queued"
        return "failed"
    return "partial" if has_progress(run_dir) else "new"


def job_log(run_dir: Path, record: JobRecord) -> Path:
    """The run's own log of that job (stdout and stderr of the training)."""
    return run_dir / LOGS / f"{record.job_id}.log"


def states(run_dirs: list[Path]) -> list[tuple[str, JobRecord | None, tuple[str, str] | None]]:
    """(state, record, scheduler state) of each run dir, asking the scheduler once."""
    records = [read_record(d) for d in run_dirs]
    jobs = job_states([r for r in records if r is not None])
    return [(run_state(d, r, jobs.get(r)), r, jobs.get(r)) for d, r in zip(run_dirs, records)]


def read_last(path: Path, chunk: int = 65536) -> dict | None:
    """The last complete JSON line of a JSONL file (a crash can leave a torn final line)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chunk))
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


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
    return tail(job_log(run_dir, record), lines) or tail(Path(record.stderr), lines)


def progress(run_dir: Path) -> tuple[int | None, float | None]:
    """(frames reached, last training episode score) from DONE, metrics.jsonl and scores.jsonl."""
    try:
        done = json.loads((run_dir / "DONE").read_text())
    except (OSError, ValueError):
        done = None
    metrics, scores = read_last(run_dir / "metrics.jsonl"), read_last(run_dir / "scores.jsonl")
    steps = [d["step"] for d in (done, metrics, scores) if d and "step" in d]
    return (max(steps) if steps else None), (scores.get("score") if scores else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suites.status",
        description="Table of the runs of a suite: done / running / queued / failed / partial / "
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
        base = args.results / suite.name
        present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        if args.variant is not None and args.variant not in present:
            raise unknown(f"variant directory under {base}", args.variant, present)
    except SuiteError as e:
        print(f"suites.status: error: {e}", file=sys.stderr)
        return 2
    if not present:
        print(f"no runs of {suite.name} under {args.results}")
        return 0
    rows, failures = [], []
    try:
        for variant in [args.variant] if args.variant else present:
            runs = _expected(suite, base / variant, args.seeds)
            for (task, seed, run_dir), (state, record, job) in zip(runs, states([r[2] for r in runs])):
                frames, score = progress(run_dir)
                word = job[1] if job else ""
                rows.append([variant, task, seed, "missing" if state == "new" else state, frames,
                             score, f"{record.executor} {record.job_id} {word}" if record else ""])
                if state == "failed":
                    failures.append((f"{variant} {task} seed{seed} ({word})",
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


def _expected(suite, variant_dir: Path, seeds: int | None) -> list[tuple[str, int, Path]]:
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
    sys.exit(main())
