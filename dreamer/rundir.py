"""The run directory (dreamer/README.md): the one module that knows its layout and writes it.

    config.json    the run's identity, resolved config, package versions, git commit
    metrics.jsonl  one line per log interval             appended; cut back to the checkpoint on resume
    scores.jsonl   one line per finished episode         appended; cut back to the checkpoint on resume
    checkpoint/    what a resume needs                   written beside it, then swapped in whole
    DONE           the summary, once the budget is reached
    lock           held (flock) by the one process that trains the run, released by the OS when it dies
    job.json       the launcher's record of the job it submitted for the run
    logs/          one output log per job
    tensorboard/   TensorBoard's event file mirroring both logs   appended; cut back to the checkpoint on resume
    report/        open-loop predictions (videos, images, figures) named by frame
    videos/        recorded training episodes
    eval/          evaluations of the checkpoint (dreamer.evaluate)

Environments may write their own logs beside these (bsuite's CSV log, suites/bsuite.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

CONFIG = "config.json"
LOGS = ("metrics", "scores")  # the JSONL logs, each `{name}.jsonl`
CHECKPOINT = "checkpoint"
DONE = "DONE"
LOCK = "lock"
JOB = "job.json"
JOB_LOGS = "logs"
EVENTS = Path("tensorboard") / "events.out.tfevents.run"  # one file: TensorBoard reads every *tfevents* file
REPORT, VIDEOS, EVAL = "report", "videos", "eval"
# A status probe holds the lock (shared) for microseconds; a starting run waits this long for it.
LOCK_PATIENCE = 0.2


class RunDirError(RuntimeError):
    """The run directory is inconsistent or taken; the message says what was found and what to do."""


class RunDirBusy(RunDirError):
    """Another process holds the run's lock."""


@dataclass(frozen=True)
class RunIdentity:
    """Which run a directory holds, as recorded in its config.json. None is unknown: a run started
    by hand knows only its task and seed."""

    suite: str | None = None
    task: str | None = None
    variant: str | None = None
    seed: int = 0
    protocol: dict | None = None
    shortened: bool | None = None

    def completed_by(self, stored: RunIdentity, where: Path) -> RunIdentity:
        """This identity with its unknown (None) fields taken from `stored`, the identity the run
        directory `where` already records; a field known to both must agree."""
        # Compared as JSON holds them: a protocol's tuples come back as lists.
        mine, theirs = (json.loads(json.dumps(dataclasses.asdict(i))) for i in (self, stored))
        clash = [f"{k}: {theirs[k]!r} there, {mine[k]!r} here" for k in mine
                 if mine[k] is not None and theirs[k] is not None and mine[k] != theirs[k]]
        if clash:
            raise RunDirError(f"{where} holds another run ({'; '.join(clash)}); use another run directory")
        return RunIdentity(**{k: theirs[k] if mine[k] is None else getattr(self, k) for k in mine})


class Logs:
    """The run's JSONL logs, open for appending one JSON object per line, and the TensorBoard event
    file that mirrors them: every numeric value of a line is a scalar at the line's `step`
    (frames), episode lines' under `episode/`."""

    def __init__(self, paths: dict[str, Path], events: Path, mirrors: list = ()):
        from dreamer.inspect.tensorboard import EventFile  # tensorboard loads only where a run trains

        self.files = {name: open(path, "ab") for name, path in paths.items()}
        self.events = EventFile(events)
        self.mirrors = list(mirrors)  # more places each line goes to: write(name, record), close()

    def write(self, name: str, record: dict) -> None:
        self.files[name].write((json.dumps(record) + "\n").encode())
        self.files[name].flush()
        for mirror in self.mirrors:
            mirror.write(name, record)
        prefix = "episode/" if name == "scores" else ""
        self.events.scalars(record["step"], {prefix + k: v for k, v in record.items()
                                             if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)})

    def image(self, tag: str, png: bytes, height: int, width: int, step: int) -> None:
        """An image (PNG) at `step` in the event file."""
        self.events.image(tag, png, height, width, step)

    def offsets(self) -> dict[str, int]:
        """Bytes written to each log and to the event file so far (what a checkpoint covers)."""
        return {**{name: f.tell() for name, f in self.files.items()}, "tensorboard": self.events.tell()}

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.events.close()
        for mirror in self.mirrors:
            mirror.close()


class RunDir:
    """One run directory `path` (need not exist yet)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.config = self.path / CONFIG
        self.checkpoint = self.path / CHECKPOINT
        self.done = self.path / DONE
        self.lock_file = self.path / LOCK
        self.job = self.path / JOB
        self.logs = {name: self.path / f"{name}.jsonl" for name in LOGS}
        self.events = self.path / EVENTS

    def job_log(self, job_id: str) -> Path:
        """The output of job `job_id` (stdout and stderr of the training)."""
        return self.path / JOB_LOGS / f"{job_id}.log"

    def has_progress(self) -> bool:
        """Whether a start has left anything to resume or inspect."""
        return any(p.exists() for p in (self.config, self.checkpoint, self.logs["metrics"]))

    # ---- config.json -------------------------------------------------------------------------

    def write_config(self, identity: RunIdentity, config: dict, env: str | None = None) -> None:
        """config.json: the identity, the resolved config, the environment factory ('module:function',
        called as `dreamer.train` calls it), package versions and git commit."""
        record = {**dataclasses.asdict(identity), "config": config, "env": env, "versions": _versions(),
                  "git_commit": _git_commit()}
        self.config.write_text(json.dumps(record, indent=2))

    def continue_into(self, dest: Path | str, identity: RunIdentity, config: dict) -> None:
        """Copy this finished run into `dest` (which must not exist), to be resumed there to a
        larger budget: everything but DONE, the lock, the job record and the job logs. Its
        config.json records `identity` and `config` (the new budget) with the versions and commit
        the run was started with, and the run it continues. The copy appears whole or not at all."""
        dest = Path(dest)
        if dest.exists():
            raise RunDirError(f"{dest} exists already; a run is continued only into a new directory")
        record, done = self.read_config(), self.read_done()
        if record is None or done is None:
            raise RunDirError(f"{self.path} is not a finished run")
        tmp = dest.with_name(f".{dest.name}.continuing")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.path, tmp, ignore=lambda folder, names: [
            n for n in names if Path(folder) == self.path and n in (DONE, LOCK, JOB, JOB_LOGS)])
        record = {**record, **dataclasses.asdict(identity), "config": config,
                  "continues": {"run": str(self.path), "step": done.get("step")}}
        (tmp / CONFIG).write_text(json.dumps(record, indent=2))
        tmp.rename(dest)

    def read_config(self) -> dict | None:
        """config.json as written (None when there is none)."""
        if not self.config.exists():
            return None
        try:
            record = json.loads(self.config.read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.config} is unreadable ({exc})") from exc
        if not isinstance(record, dict):
            raise RunDirError(f"{self.config} is not a JSON object")
        return record

    def identity(self) -> RunIdentity | None:
        """The identity config.json records (None when there is no config.json)."""
        record = self.read_config()
        if record is None:
            return None
        fields = [f.name for f in dataclasses.fields(RunIdentity)]
        missing = [k for k in fields if k not in record]
        if missing:
            raise RunDirError(f"{self.config}: missing {', '.join(missing)}")
        return RunIdentity(**{k: record[k] for k in fields})

    # ---- DONE --------------------------------------------------------------------------------

    def read_done(self) -> dict | None:
        """The summary of a finished run, None while it is not finished."""
        if not self.done.exists():
            return None
        try:
            return json.loads(self.done.read_text())
        except ValueError as exc:
            raise RunDirError(f"{self.done} is not the JSON summary a finished run writes ({exc}); restore it, "
                              "or delete it to let the run finish again from its checkpoint") from exc

    def write_done(self, summary: dict) -> None:
        self.done.write_text(json.dumps(summary) + "\n")

    # ---- JSONL logs --------------------------------------------------------------------------

    def open_logs(self, mirrors: list = ()) -> Logs:
        return Logs(self.logs, self.events, mirrors)

    def last_line(self, name: str, chunk: int = 65536) -> dict | None:
        """The last complete JSON line of log `name` (a crash can leave a torn final line)."""
        try:
            with open(self.logs[name], "rb") as f:
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

    def cut_logs(self, offsets: dict[str, int], say: Callable[[str], None]) -> None:
        """Cut each log back to the bytes a checkpoint covers (`offsets`)."""
        for name, path in self.logs.items():
            offset = offsets[name]
            size = path.stat().st_size if path.exists() else 0
            if size < offset:
                raise RunDirError(f"{path} holds {size} bytes but the checkpoint covers {offset}: logged lines were "
                                  "lost. Restore the file, or move the checkpoint away to restart this run from zero")
            with open(path, "r+b") as f:
                if offset:
                    f.seek(offset - 1)
                    if f.read(1) != b"\n":
                        raise RunDirError(f"{path}: byte {offset} (where the checkpoint's lines end) is not a line "
                                          "end; the file was changed since. Restore it or move the checkpoint away")
                dropped = f.read()
                if dropped:
                    f.truncate(offset)
                    lines = dropped.count(b"\n") + (not dropped.endswith(b"\n"))
                    say(f"{path}: dropped {lines} line(s) written after the checkpoint")
        # Checkpoints of versions before the event file cover none of it.
        offset = offsets.get("tensorboard", 0)
        size = self.events.stat().st_size if self.events.exists() else 0
        if size > offset:
            with open(self.events, "r+b") as f:
                f.truncate(offset)
            say(f"{self.events}: dropped {size - offset} bytes of events written after the checkpoint")

    def set_aside_logs(self, say: Callable[[str], None]) -> None:
        """Logs without a checkpoint cover nothing to resume from; keep them beside a fresh start
        (the event file under a name TensorBoard does not read)."""
        for path in (*self.logs.values(), self.events):
            if path.exists() and path.stat().st_size:
                n = 1
                stem = path.name if path != self.events else "events"
                while path.with_name(f"{stem}.orphaned-{n}").exists():
                    n += 1
                aside = path.with_name(f"{stem}.orphaned-{n}")
                os.replace(path, aside)
                say(f"{path}: no checkpoint to resume from; kept the old log as {aside.name} and started from zero")

    # ---- checkpoint --------------------------------------------------------------------------

    def write_checkpoint(self, fill: Callable[[Path], None]) -> None:
        """Have `fill` write a complete checkpoint into an empty folder beside checkpoint/, then
        swap it in, so a crash at any moment leaves one complete checkpoint."""
        tmp, old = self._swap_dirs()
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        fill(tmp)
        for path in tmp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if self.checkpoint.exists():
            os.replace(self.checkpoint, old)
        os.replace(tmp, self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)

    def recover_checkpoint(self, say: Callable[[str], None]) -> None:
        """Finish or undo a checkpoint swap that a crash interrupted."""
        tmp, old = self._swap_dirs()
        if not self.checkpoint.exists() and old.exists():
            os.replace(old, self.checkpoint)
            say(f"{self.checkpoint}: restored the previous checkpoint (the run died while replacing it)")
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
                say(f"{leftover}: removed an incomplete checkpoint")

    def read_checkpoint(self, name: str, load: Callable[[Path], object]):
        """`load(path)` of the checkpoint's file `name`; any failure is a RunDirError naming it."""
        path = self.checkpoint / name
        try:
            return load(path)
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run over many lines
            raise RunDirError(
                f"{path} is unreadable ({type(exc).__name__}: {reason}); the run directory was left as is. "
                f"Restore the checkpoint, or move {self.checkpoint} away to restart this run from zero") from exc

    def open_checkpoint_file(self, name: str):
        """Checkpoint file `name`, open for reading by a process that does not train the run (no
        lock taken, nothing changed): the current checkpoint's, or during a swap the previous
        one's. An open file stays readable when a later swap replaces its folder. FileNotFoundError
        when there is no complete checkpoint."""
        _, old = self._swap_dirs()
        for folder in (self.checkpoint, old, self.checkpoint):  # the swap may complete in between
            try:
                return open(folder / name, "rb")
            except FileNotFoundError:
                continue
        raise FileNotFoundError(f"{self.checkpoint / name}: no complete checkpoint yet")

    def _swap_dirs(self) -> tuple[Path, Path]:
        return self.path / f"{CHECKPOINT}.tmp", self.path / f"{CHECKPOINT}.old"

    # ---- lock --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the run's lock for the `with` block, or raise RunDirBusy naming its holder and
        change nothing. The directory must exist."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_PATIENCE
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise self._busy(_holder_text(_signature(fd))) from None
                    time.sleep(0.01)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
            yield
        finally:
            os.close(fd)  # releases the lock

    def check_free(self) -> None:
        """RunDirBusy if a process holds the run's lock now."""
        holder = self.holder()
        if holder is not None:
            raise self._busy(holder)

    def _busy(self, holder: str) -> RunDirBusy:
        return RunDirBusy(f"{self.path} is being trained by {holder}; a run has one writer: wait for it to end, "
                          "or stop it, then start again")

    def holder(self) -> str | None:
        """'pid N on HOST since …' while a process holds the run's lock, else None."""
        signature = self._held()
        return None if signature is None else _holder_text(signature)

    def holder_process(self) -> tuple[int, str] | None:
        """(pid, host) of the process that holds the run's lock; None while the lock is free or
        its holder has not signed it yet."""
        signature = self._held()
        try:
            return int(signature["pid"]), str(signature["host"])
        except (TypeError, KeyError, ValueError):
            return None

    def _held(self) -> dict | None:
        """What the holder of the run's lock signed ({} if nothing yet); None while it is free."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return _signature(fd)
        finally:
            os.close(fd)  # also releases the probe's shared lock


def _signature(fd: int) -> dict:
    try:
        signature = json.loads(os.pread(fd, 4096, 0))
    except ValueError:  # taken a moment ago, not yet signed
        return {}
    return signature if isinstance(signature, dict) else {}


def _holder_text(signature: dict) -> str:
    try:
        return f"pid {signature['pid']} on {signature['host']} since {signature['since']}"
    except KeyError:
        return "another process"


def _versions() -> dict[str, str]:
    """Python and every installed dependency of this project, with versions."""
    versions = {"python": platform.python_version()}
    for dist in ("dreamer-bench", *_requirements()):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _requirements() -> list[str]:
    try:
        reqs = importlib.metadata.requires("dreamer-bench") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for req in reqs:
        if "extra ==" not in req:
            names.append(req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip())
    return names


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
