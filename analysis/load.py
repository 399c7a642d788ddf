"""Published score files and our run directories → one long DataFrame, so both go through the
same scoring code.

Columns (one row per finished training episode): `suite, task, method, seed, step, score,
shortened, budget` — `step` in environment frames when the episode ended, `score` its return,
`shortened` whether the run was cut short of the suite's budget, `budget` its frame budget
(NaN for published runs, which all ran the full budget).

Method names: published runs keep the file's `method` (dreamerv3, ppo_fixhp, d4pg, ...). Our runs
are labelled `"<variant> (ours)"` for every variant, so our `dreamerv3` variant never merges with
the published `dreamerv3` in a table, plot or statistic.
"""
from __future__ import annotations

import gzip
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dreamer.rundir import CONFIG, RunDir, RunDirError

COLUMNS = ["suite", "task", "method", "seed", "step", "score", "shortened", "budget"]
OURS = " (ours)"


class LoadError(ValueError):
    """Missing or malformed input; the message names the file (and line) and what was expected."""


def ours(variant: str) -> str:
    """The method label of our runs of `variant`."""
    return variant + OURS


def _frame(suite, task, method, seed, steps, scores, shortened=False, budget=math.nan):
    steps, scores = np.asarray(steps, float), np.asarray(scores, float)
    keep = ~np.isnan(scores)  # a null return marks a log bin without a finished episode
    n = int(keep.sum())
    return pd.DataFrame({
        "suite": [suite] * n, "task": [task] * n, "method": [method] * n,
        "seed": np.full(n, int(seed)), "step": steps[keep], "score": scores[keep],
        "shortened": np.full(n, bool(shortened)), "budget": np.full(n, float(budget))})


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            COLUMNS, [object, object, object, int, float, float, bool, float])})
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- published files


def published_methods(baselines: Path | str, published: str) -> list[str]:
    """Methods with a `{published}-{method}.json.gz` file in `baselines`, sorted."""
    suffix = ".json.gz"
    return sorted(p.name[len(published) + 1:-len(suffix)]
                  for p in Path(baselines).glob(f"{published}-*{suffix}"))


def read_published(path: Path | str, suite: str) -> pd.DataFrame:
    """One published file: a gzip'd JSON list of `{task, method, seed, xs, ys}` runs."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as f:
            records = json.load(f)
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LoadError(f"{path}: not a gzip'd JSON file ({error})") from None
    if not isinstance(records, list):
        raise LoadError(f"{path}: expected a JSON list of runs, got {type(records).__name__}")
    frames = []
    for i, run in enumerate(records):
        keys = {"task", "method", "seed", "xs", "ys"}
        if not isinstance(run, dict) or not keys <= run.keys():
            raise LoadError(f"{path}: run {i} lacks one of the keys {sorted(keys)}")
        if len(run["xs"]) != len(run["ys"]):
            raise LoadError(f"{path}: run {i} has {len(run['xs'])} xs but {len(run['ys'])} ys")
        ys = [math.nan if y is None else y for y in run["ys"]]
        frames.append(_frame(suite, run["task"], run["method"], run["seed"], run["xs"], ys))
    return _concat(frames)


def load_published(baselines: Path | str, suite: str, published: str, methods=None) -> pd.DataFrame:
    """All published runs of `published` (file prefix) in `baselines`, labelled as `suite`."""
    methods = published_methods(baselines, published) if methods is None else methods
    return _concat([read_published(Path(baselines) / f"{published}-{m}.json.gz", suite)
                    for m in methods])


# ---------------------------------------------------------------- our run directories


def run_dirs(results: Path | str, suite: str, variants=None) -> list[Path]:
    """Run directories `{results}/{suite}/{variant}/{task}/seed{N}` that a run has started in."""
    root = Path(results) / suite
    dirs = sorted(p.parent for p in root.glob(f"*/*/seed*/{CONFIG}"))
    if variants is not None:
        dirs = [d for d in dirs if d.parent.parent.name in variants]
    return dirs


def read_config(run: Path) -> dict:
    """A run's recorded identity and config, checked for what the analysis reads."""
    rd = RunDir(run)
    try:
        config = rd.read_config()
    except RunDirError as error:
        raise LoadError(str(error)) from None
    missing = [k for k in ("suite", "task", "seed", "variant", "shortened", "config") if k not in config]
    if not missing:
        try:
            config["budget"] = int(config["config"]["run"]["budget"])
        except (KeyError, TypeError, ValueError):
            missing = ["config.run.budget"]
    if missing:
        raise LoadError(f"{rd.config}: missing {', '.join(missing)}")
    unknown = [k for k in ("suite", "task", "variant") if not isinstance(config[k], str)]
    if unknown:
        raise LoadError(f"{rd.config}: no {', '.join(unknown)} recorded (a run started by hand outside a "
                        "suite's directory); move it out of the results folder or record them")
    return config


def read_numbers(path: Path, keys: tuple[str, ...], present: str | None = None) -> list[tuple[float, ...]]:
    """The numeric `keys` of each line of a run's JSONL log, as tuples; with `present`, of the lines
    that carry that key only (the reference writes each metric group on lines of its own). A
    malformed line fails naming the file and line."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if present is not None and present not in entry:
                    continue
                row = tuple(entry[k] for k in keys)
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError):
                names = [repr(k) for k in keys]
                raise LoadError(f"{path}:{number}: malformed line {line.strip()[:80]!r}; expected a JSON "
                                f"object with numeric {', '.join(names[:-1])} and {names[-1]}") from None
            rows.append(row)
    return rows


def read_scores(path: Path) -> tuple[list[float], list[float]]:
    """Steps and returns from a run's scores log."""
    rows = read_numbers(path, ("step", "score"))
    return [r[0] for r in rows], [r[1] for r in rows]


def read_run(run: Path) -> pd.DataFrame:
    """One run directory's finished episodes (empty, with a warning, when none has finished)."""
    config = read_config(run)
    scores = RunDir(run).logs["scores"]
    steps, returns = read_scores(scores) if scores.exists() else ([], [])
    if not steps:
        warnings.warn(f"{run}: no finished episode yet; run left out", stacklevel=2)
    return _frame(config["suite"], config["task"], ours(config["variant"]), config["seed"],
                  steps, returns, config["shortened"], config["budget"])


def read_progress(run: Path) -> pd.DataFrame:
    """One run directory's training progress from its metrics log: rows `method, task, seed, step,
    updates, time` (frames, updates made, training seconds at each log line)."""
    config = read_config(run)
    path, keys = RunDir(run).logs["metrics"], ("step", "updates", "time")
    frame = pd.DataFrame(read_numbers(path, keys) if path.exists() else [], columns=list(keys), dtype=float)
    return frame.assign(method=ours(config["variant"]), task=config["task"], seed=config["seed"])


def load_progress(results: Path | str, suite: str, variants=None) -> pd.DataFrame:
    """The progress (`read_progress`) of all our runs of `suite` under `results`."""
    frames = [read_progress(d) for d in run_dirs(results, suite, variants)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["step", "updates", "time", "method", "task", "seed"])


def load_runs(results: Path | str, suite: str, variants=None) -> pd.DataFrame:
    """All our runs of `suite` under `results` (optionally only `variants`)."""
    return _concat([read_run(d) for d in run_dirs(results, suite, variants)])


# The packages whose versions change what a run computes or sees.
PACKAGES = ("torch", "ale-py", "dm-control", "mujoco", "bsuite")
# Settings that differ between runs of one method by design.
_PER_RUN = ("run.seed", "run.budget", "run.budget_episodes")


def provenance(results: Path | str, suite: str, variants=None) -> pd.DataFrame:
    """What each run of ours ran with, from its config.json: one row per run with `method`, `run`
    (task/seedN), `size`, `action_repeat`, `overrides` (the settings in which its config differs
    from the suite's own for its task, as `key=value` text: `size=…` first, then what differs
    from that preset; seeds, budgets and operational settings left out), `versions` (of PACKAGES,
    as text) and `commit`. Only settings the config records are compared."""
    rows = []
    for run in run_dirs(results, suite, variants):
        record = read_config(run)
        config = record["config"]
        rows.append({"method": ours(record["variant"]), "run": f"{record['task']}/seed{record['seed']}",
                     "size": config.get("size"), "action_repeat": config.get("run", {}).get("action_repeat"),
                     "overrides": ", ".join(_overrides(suite, record)),
                     "versions": ", ".join(f"{k} {v}" for k, v in sorted((record.get("versions") or {}).items())
                                           if k in PACKAGES),
                     "commit": record.get("git_commit") or ""})
    return pd.DataFrame(rows, columns=["method", "run", "size", "action_repeat", "overrides", "versions", "commit"])


def _overrides(suite: str, record: dict) -> list[str]:
    """`key=value` for each setting of the recorded config that differs from the suite's own."""
    from dreamer.config import OPERATIONAL_KEYS, ConfigError, to_dict, upgrade
    from suites.base import SuiteError
    from suites.registry import get_suite

    stored = _flat(upgrade(record["config"]))
    try:
        own = get_suite(suite).run_config(record["task"], record["seed"])
        size = [f"size={stored['size']}"] if stored.get("size", own.size) != own.size else []
        # Widths are compared with the recorded size's preset: `size=…` says the rest.
        base = _flat(to_dict(get_suite(suite).run_config(record["task"], record["seed"], size)))
    except (SuiteError, ConfigError):  # a task or size this version does not know
        return [f"size={stored['size']}"] if "size" in stored else []
    return size + [f"{k}={v}" for k, v in stored.items()
                   if k != "size" and k not in _PER_RUN and k not in OPERATIONAL_KEYS and base.get(k, v) != v]


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: tuple(v) if isinstance(v, list) else v})
    return out


def our_variants(results: Path | str, suite: str) -> list[str]:
    """Variants with at least one run directory of `suite` under `results`."""
    return sorted({d.parent.parent.name for d in run_dirs(results, suite)})


# ---------------------------------------------------------------- the reference implementation's runs

REFERENCE = "reference"  # method label of runs of danijar/dreamerv3's own code (its `dreamerv3/main.py`)
REFERENCE_LOGS = ("config.yaml", "metrics.jsonl", "scores.jsonl")  # what is read of its logdirs
# Its task names are "<suite>_<game>"; ours are "<prefix>_<game>" with the same game names.
_REFERENCE_PREFIX = {"atari100k": "atari"}


def read_reference_config(logdir: Path) -> dict:
    """suite, task (our name), seed, budget (frames) and size (our preset of the same shape, or
    "") of a reference logdir, from the config.yaml its main.py writes."""
    import yaml  # only reference logdirs are YAML

    path = Path(logdir) / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text())
        suite, game = config["task"].split("_", 1)
        seed, steps = int(config["seed"]), float(config["run"]["steps"])
        repeat = int(config["env"][suite]["repeat"])
        rssm, enc = config["agent"]["dyn"]["rssm"], config["agent"]["enc"]["simple"]
        shape = (rssm["deter"], rssm["hidden"], rssm["classes"], enc["depth"], enc["units"])
    except FileNotFoundError:
        raise LoadError(f"{logdir}: no config.yaml; not a logdir of the reference's dreamerv3/main.py") from None
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise LoadError(f"{path}: malformed reference config ({type(error).__name__}: {error})") from None
    if suite not in _REFERENCE_PREFIX:
        raise LoadError(f"{path}: task {config['task']!r}; reference runs are read for "
                        f"{', '.join(_REFERENCE_PREFIX)}")
    from dreamer.config import SIZES

    size = next((name for name, dims in SIZES.items() if tuple(dims) == shape), "")
    return {"suite": suite, "task": f"{_REFERENCE_PREFIX[suite]}_{game}", "seed": seed,
            "budget": steps * repeat, "size": size}


def load_reference(logdirs, suite: str, full_budget: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs of the reference implementation, as method `REFERENCE`: (episodes in COLUMNS, progress
    rows `method, task, seed, step, updates, time` with time unknown (NaN), {REFERENCE: size}).
    `full_budget`: the suite's frame budget, against which a run counts as shortened."""
    episodes, progress, sizes, seen = [], [], set(), {}
    for logdir in map(Path, logdirs):
        config = read_reference_config(logdir)
        if config["suite"] != suite:
            raise LoadError(f"{logdir}: a reference run of {config['suite']}, not of {suite}")
        run = (config["task"], config["seed"])
        if run in seen:
            raise LoadError(f"{seen[run]} and {logdir}: two reference runs of {run[0]} seed {run[1]}")
        seen[run] = logdir
        path = logdir / "scores.jsonl"
        scores = read_numbers(path, ("step", "episode/score")) if path.exists() else []
        if not scores:
            warnings.warn(f"{logdir}: no finished episode yet; run left out", stacklevel=2)
        episodes.append(_frame(suite, config["task"], REFERENCE, config["seed"], [r[0] for r in scores],
                               [r[1] for r in scores], config["budget"] < full_budget, config["budget"]))
        path = logdir / "metrics.jsonl"
        rows = read_numbers(path, ("step", "train/opt/updates"), "train/opt/updates") if path.exists() else []
        progress.append(pd.DataFrame(rows, columns=["step", "updates"], dtype=float).assign(
            time=np.nan, method=REFERENCE, task=config["task"], seed=config["seed"]))
        sizes.add(config["size"])
    if len(sizes) > 1:
        raise LoadError(f"reference runs of different sizes ({', '.join(sorted(sizes))}); report one size at a time")
    progress = pd.concat(progress, ignore_index=True) if progress else pd.DataFrame(
        columns=["step", "updates", "time", "method", "task", "seed"])
    return _concat(episodes), progress, {REFERENCE: sizes.pop()} if sizes else {}


# ---------------------------------------------------------------- training signals

# What a learning check shows beside the returns: signal -> (our metric, the reference's metric).
# Both sides define them alike: the policy's entropy averaged over imagined states, the
# unscaled loss terms (their scales are 1 in both configs), and the standard deviation of the
# advantages divided by the return scale. The reference's reconstruction loss is its image
# key's, the only observation of the one suite whose reference runs are read.
SIGNALS = {"policy entropy": ("actor/entropy", "train/ent/action"),
           "reconstruction loss": ("loss/rec", "train/loss/image"),
           "dynamics loss": ("loss/dyn", "train/loss/dyn"),
           "reward loss": ("loss/rew", "train/loss/rew"),
           "advantage std": ("adv/std", "train/adv_std")}


def _signals(path: Path, side: int, **labels) -> pd.DataFrame:
    """The SIGNALS of one metrics log (`side`: 0 ours, 1 the reference's) as rows `signal, step,
    value` plus `labels` as columns; a signal the log never carries is left out."""
    frames = []
    for name, keys in SIGNALS.items():
        rows = read_numbers(path, ("step", keys[side]), keys[side]) if path.exists() else []
        frames.append(pd.DataFrame(rows, columns=["step", "value"], dtype=float).assign(signal=name))
    return pd.concat(frames, ignore_index=True).assign(**labels)


def load_signals(results: Path | str, suite: str, variants=None, reference=()) -> pd.DataFrame:
    """The training signals (SIGNALS) of our runs of `suite` and of the reference's logdirs: rows
    `method, task, seed, signal, step, value`, `step` in frames, one per logged point."""
    frames = []
    for run in run_dirs(results, suite, variants):
        config = read_config(run)
        frames.append(_signals(RunDir(run).logs["metrics"], 0, method=ours(config["variant"]),
                               task=config["task"], seed=config["seed"]))
    for logdir in map(Path, reference):
        config = read_reference_config(logdir)
        frames.append(_signals(logdir / "metrics.jsonl", 1, method=REFERENCE, task=config["task"],
                               seed=config["seed"]))
    columns = ["method", "task", "seed", "signal", "step", "value"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


# ---------------------------------------------------------------- bsuite CSV logs


def load_bsuite(results: Path | str, variants=None) -> pd.DataFrame:
    """bsuite's own CSV logs of our bsuite runs, read by bsuite's `csv_load`.

    Each run directory holds the one log bsuite's logging wrapper wrote (suites/bsuite.py). Adds
    `method` (our label) and `run_seed` from the run's identity (bsuite's own `seed` column is the
    bsuite_id's environment seed); returns one row per logged episode with bsuite's columns
    (`bsuite_id`, `bsuite_env`, `episode`, ...). Runs without a logged episode yet are left out,
    and so, with a warning, are runs whose log an older version restarted at each resume: their
    episodes cannot be put in order, though their own episode logs still can.
    """
    from bsuite.logging import csv_load  # bsuite is only needed for this suite

    from suites.bsuite import csv_path, log_segments

    frames = []
    for run in run_dirs(results, "bsuite", variants):
        config = read_config(run)
        path = csv_path(run, config["task"])
        if log_segments(run, config["task"]):
            warnings.warn(f"{run}: left out of bsuite's scores: its bsuite log was restarted at each restart "
                          f"of the run (older versions kept the previous one as {path.name}.N), so its "
                          "episodes cannot be put in order", stacklevel=2)
            continue
        if not path.exists():
            continue
        try:
            frame = csv_load.load_one_result_set(str(path.parent))
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise LoadError(f"{path}: malformed bsuite CSV log ({error})") from None
        frames.append(frame.assign(method=ours(config["variant"]), run_seed=int(config["seed"])))
    if not frames:
        raise LoadError(f"no bsuite CSV logs in the run directories under {Path(results) / 'bsuite'}")
    return pd.concat(frames, ignore_index=True)
