"""`python -m analysis.report SUITE` — tables and figures: our runs beside the published ones.

Writes into --out (default results/reports/SUITE/), replacing a previous report only once the
new one is complete (`.report` there lists its files, so the next report can drop stale ones):

- per_task.{csv,md,tex}: tasks × methods, mean raw score over runs (+ random and human for Atari)
- aggregate.{csv,md,tex}: `method,metric,value,lower,upper` for mean, median, IQM and optimality
  gap of normalised scores (suites whose rule normalises)
- success.{csv,md,tex}: runs that reached the rule's success return (Minecraft: a diamond)
- probability_of_improvement.{csv,md,tex}: `x,y,value,lower,upper`, when two or more methods
- figures (.png and .pdf): aggregate_intervals, performance_profile, sample_efficiency,
  learning_curves, probability_of_improvement, success_curves
- bsuite: bsuite_scores.{csv,md,tex}, bsuite_bar and bsuite_radar (bsuite's own analysis), and
  for our runs runs.{csv,md,tex} (mean of the last 100 episodes) and learning_curves
- runs/: a byte copy of the logs (config.json, metrics.jsonl, scores.jsonl; DONE when finished) of
  each of our runs it reports, laid out as under --results, so `--results OUT/runs` makes the
  report again (not for bsuite, whose report reads bsuite's own CSV logs)
- reference/TASK/seedN/: the same for each --reference logdir (config.yaml, metrics.jsonl,
  scores.jsonl), so `--reference OUT/reference/*/*` reads them again

Our runs are labelled "<variant> (ours)" (analysis.load); `--methods NAME` selects the published
method and our variant of that name alike. Runs of the reference implementation's own code
(`--reference LOGDIR...`, its logdirs) are the method "reference".
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import aggregate, load, plots, scoring, tables
from analysis.baselines import ENV_VAR as BASELINES_VAR
from analysis.baselines import default_dir as default_baselines
from analysis.reference import ATARI
from dreamer.rundir import RunDir
from suites.base import ScoringRule, Suite, SuiteError, unknown
from suites.registry import SUITE_NAMES, get_suite

DEFAULT_RESULTS = Path("results/runs")
DEFAULT_REPORTS = Path("results/reports")
CURVE_POINTS = 40


class UsageError(ValueError):
    """The command line asks for something the data cannot give; exit code 2."""


# ---------------------------------------------------------------- inputs


def select(suite: Suite, baselines: Path, results: Path, methods) -> tuple[list[str], list[str]]:
    """(published methods, our variants) named by `methods` (all when None)."""
    if not baselines.is_dir():
        raise UsageError(f"baselines directory {baselines} not found; fetch the published scores "
                         f"with `python -m analysis.baselines download --to {baselines}`")
    published = load.published_methods(baselines, suite.published)
    if not published:
        raise UsageError(f"no {suite.published}-*.json.gz in {baselines}; fetch them with "
                         f"`python -m analysis.baselines download --to {baselines}`")
    ours = load.our_variants(results, suite.name)
    if methods is None:
        # the paper's method first, so that it heads tables and is the reference of comparisons
        return sorted(published, key=lambda m: (m != "dreamerv3", m)), ours
    for name in methods:
        if name not in published and name not in ours:
            raise unknown(f"{suite.name} method", name, [*published, *ours])
    return ([m for m in methods if m in published], [m for m in methods if m in ours])


def check_pooling(runs: pd.DataFrame, pool: bool) -> None:
    """Refuse our runs of different budgets (full and shortened, or shortened to different
    budgets) in one report unless `pool`: their scores come from different windows.

    runs: one row per run of ours with `method, shortened, budget`.
    """
    kinds = runs.groupby(["shortened", "budget"]).method.agg(lambda m: sorted(set(m)))
    if pool or len(kinds) < 2 or not runs.shortened.any():
        return
    found = "; ".join(f"{'shortened' if short else 'full'} {budget:,.0f}-frame runs of "
                      f"{', '.join(methods)}" for (short, budget), methods in kinds.items())
    raise UsageError(f"our runs mix budgets ({found}); scores from different budgets are not "
                     "comparable, so they are not pooled unless you pass --pool-shortened (each "
                     "run is then scored in its window scaled to its budget) or pick runs with "
                     "--methods")


def method_order(published: list[str], variants: list[str]) -> list[str]:
    return [*published, *map(load.ours, variants)]


def pairs(methods: list[str]) -> list[tuple[str, str]]:
    """Comparisons for probability of improvement: each of our methods against every other
    method; without ours, the first method against the others."""
    focus = [m for m in methods if m.endswith(load.OURS)] or methods[:1]
    found = []
    for x in focus:
        for y in methods:
            if y != x and (y, x) not in found:
                found.append((x, y))
    return found


# ---------------------------------------------------------------- report


def build(suite: Suite, out: Path, baselines: Path, results: Path, methods=None, reps: int = 2000,
          pool_shortened: bool = False, learned: float | None = None, reference=()) -> list[Path]:
    """Write the report of `suite` into `out`; returns the written paths. `learned`: the score
    that counts as learned, drawn on the learning curves, and the learning check's view of every
    run (`runs.csv`, one curve per run; `_learning`, or for bsuite `_bsuite_runs`). `reference`:
    logdirs of the reference implementation's own runs, reported as the method `reference`."""
    rule = suite.scoring
    if rule.normalise == "bsuite":
        if reference:
            raise UsageError("--reference runs are read for atari100k, not for bsuite")
        return _write(out, lambda tmp: _bsuite(results, tmp, methods, learned))
    published, variants = select(suite, baselines, results, methods)
    ours = load.load_runs(results, suite.name, variants)
    check_pooling(ours.groupby(scoring.RUN, as_index=False)[["shortened", "budget"]].first(),
                  pool_shortened)
    theirs, their_progress, their_size = load.load_reference(reference, suite.name, suite.budget)
    warn_unfinished(pd.concat([ours, theirs], ignore_index=True))
    episodes = pd.concat([load.load_published(baselines, suite.name, suite.published, published),
                          ours, theirs], ignore_index=True)
    order = [m for m in [*method_order(published, variants), load.REFERENCE] if m in set(episodes.method)]
    if not order:
        raise UsageError(f"no finished episodes of {', '.join(method_order(published, variants))}")
    runs = scoring.run_scores(episodes, rule, suite.budget)
    curves = scoring.run_curves(episodes, rule, suite.budget, CURVE_POINTS)
    provenance = load.provenance(results, suite.name, variants)
    setup = settings_text(provenance, order)

    def render(tmp: Path) -> list[Path]:
        written = _tables_and_figures(suite, runs, curves, order, reps, tmp, setup, learned)
        if learned is not None:
            progress = pd.concat([load.load_progress(results, suite.name, variants), their_progress],
                                 ignore_index=True)
            written += _learning(suite, episodes, pd.concat([ours, theirs], ignore_index=True), provenance,
                                 progress, order, learned, tmp, their_size,
                                 load.load_signals(results, suite.name, variants, reference))
        return written + _copy_logs(results, tmp, suite.name, variants) + _copy_reference_logs(reference, tmp)

    return _write(out, render)


def warn_unfinished(ours: pd.DataFrame) -> None:
    """A warning naming our runs whose episodes end short of their budget: until they reach their
    scoring window, their scores are those of their last episode so far. ours: rows of
    `load.load_runs`."""
    last = ours.groupby(["method", "task", "seed"]).agg(step=("step", "max"), budget=("budget", "first"))
    # An episode rarely ends on the budget's frame: short by less than an episode is finished.
    short = last[last.step < 0.9 * last.budget]
    if len(short):
        names = ", ".join(f"{m} {t} seed {s} ({r.step:,.0f} of {r.budget:,.0f} frames)"
                          for (m, t, s), r in short.iterrows())
        warnings.warn(f"unfinished runs, scored on their last episode so far: {names}")


def _learning(suite: Suite, episodes, ours, provenance, progress, order, learned: float, tmp: Path,
              sizes: dict, signals: pd.DataFrame) -> list[Path]:
    """A learning check's view (`--learned`): every run of the tasks ours ran, ours and the
    published ones, over the frames our runs went (their largest budget), in `runs.csv` and one
    curve per run, each method labelled with its model size (published DreamerV3: the suite's;
    `sizes`: those of methods without a provenance, the reference's runs); and the training
    signals of ours and the reference's runs (`signals`: rows of `load.load_signals`), which the
    published runs lack, in `signals.csv` and `training_signals.png`."""
    frames = float(ours.budget.max()) if len(ours) else float(suite.budget)
    if len(ours):
        episodes = episodes[episodes.task.isin(set(ours.task))]
    n = scoring.LAST_EPISODES
    sizes = {"dreamerv3": suite.run_config(suite.tasks[0], 0).size, **sizes,
             **dict(zip(provenance.method, provenance["size"]))}
    title = f"{suite.name}: every run over the first {frames:,.0f} frames"
    palette = plots.palette(order)
    written = _run_table(episodes[episodes.step <= frames], n, progress, palette,
                         tmp / "learning_curves_runs", learned, title, suite.scoring, sizes)
    signals = signals[signals.method.isin(order) & (signals.step <= frames)]
    if not len(signals):
        return written
    labels, colors = _sized(palette, sizes)
    signals.to_csv(tmp / "signals.csv", index=False)  # thousands of rows: no Markdown or LaTeX twin
    return [*written, tmp / "signals.csv",
            *plots.training_signals(signals.assign(method=signals.method.map(labels)), colors,
                                    tmp / "training_signals", f"{suite.name}: training signals of each run")]


def _sized(colors: dict, sizes: dict) -> tuple[dict, dict]:
    """Method labels with their model size where known ("method, size1m"), and `colors` keyed by
    those labels."""
    labels = {m: f"{m}, {sizes[m]}" if sizes.get(m) else m for m in colors}
    return labels, {labels[m]: c for m, c in colors.items()}


def settings_text(runs: pd.DataFrame, order: list[str]) -> str:
    """What each of our methods in `order` ran with (`runs`: analysis.load.provenance), for the
    captions; a warning naming the runs for each method that mixes configs, package versions or
    code commits."""
    parts = []
    for method in [m for m in order if m in set(runs.method)]:
        group = runs[runs.method == method]
        for column, what in (("overrides", "configs"), ("versions", "package versions"), ("commit", "code commits")):
            if group[column].nunique() > 1:
                kinds = "; ".join(f"{value or 'none'} ({', '.join(g.run)})" for value, g in group.groupby(column))
                warnings.warn(f"{method} mixes runs of different {what}: {kinds}")
        first = group.iloc[0]
        overrides = " | ".join(dict.fromkeys(group.overrides))
        parts.append(f"{method}: {first['size']}, action repeat {first['action_repeat']}, "
                     + (f"overrides {overrides}" if overrides else "the suite's own settings"))
    return "; ".join(parts)


def _copy_logs(results: Path, tmp: Path, suite: str, variants) -> list[Path]:
    """Byte copies of the logs the report reads from each of our runs of `variants`, and of a
    finished run's DONE summary, in `tmp/runs` with their layout under `results`: run directories
    hold checkpoints and replay, are not committed and go with the machine, so the report folder
    carries what it was made from; with DONE, the launcher skips a finished run copied back."""
    copies = tmp / "runs"
    for run in load.run_dirs(results, suite, variants):
        rd = RunDir(run)
        _copy_present((rd.config, *rd.logs.values(), rd.done), copies / run.relative_to(results))
    return [copies] if copies.exists() else []


def _copy_reference_logs(logdirs, tmp: Path) -> list[Path]:
    """Byte copies of what the report reads of each reference logdir (load.REFERENCE_LOGS), in
    `tmp/reference/TASK/seedN`: its logdir holds its checkpoints and replay and is not committed."""
    copies = tmp / "reference"
    for logdir in map(Path, logdirs):
        config = load.read_reference_config(logdir)
        _copy_present([logdir / name for name in load.REFERENCE_LOGS],
                      copies / config["task"] / f"seed{config['seed']}")
    return [copies] if copies.exists() else []


def _copy_present(paths, dest: Path) -> None:
    """Byte copies of those of `paths` that exist, by name, into the folder `dest`."""
    for path in paths:
        if path.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / path.name)


def _remove(path: Path) -> None:
    """Delete a previous report's file or folder (runs/), if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _write(out: Path, render) -> list[Path]:
    """Render into a fresh sibling folder, then move the files into `out`, so a failure leaves
    the previous report as it was, and no folder it had to create. Files of the previous report
    (listed in `out/.report`) that this one does not write are removed, so no stale figure
    outlives its report; other files in `out` are left alone."""
    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        names = [p.name for p in render(tmp)]
        listing = out / ".report"
        for name in listing.read_text().split() if listing.exists() else []:
            _remove(out / name)
        for name in names:
            os.replace(tmp / name, out / name)
        listing.write_text("\n".join(names) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            with contextlib.suppress(OSError):  # not empty: something was written after all
                folder.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]


def _tables_and_figures(suite: Suite, runs, curves, order, reps, tmp: Path,
                        setup: str, learned: float | None) -> list[Path]:
    """Everything but bsuite. runs: one row per run (analysis.scoring.run_scores); curves: their
    learning curves (run_curves); order: the methods, as they should appear; setup: what our
    methods ran with."""
    rule, colors = suite.scoring, plots.palette(order)
    rule_text, short_text = scoring.describe(rule), tables.shortened_caption(runs)
    setup_text = f"Our runs' settings — {setup}." if setup else ""

    def notes(runs_text: str) -> str:
        """What every caption says: the rule, which runs, what ours ran with, how shortened runs
        were scored."""
        return " ".join(t for t in (rule_text, runs_text, setup_text, short_text) if t)

    written = _per_task(suite.name, rule, runs, order, notes, tmp)

    tasks = sorted(set.intersection(*(set(runs.task[runs.method == m]) for m in order)))
    if not tasks:
        raise UsageError(f"no task has runs of every method ({', '.join(order)}); select methods "
                         "with --methods")
    used = aggregate.balanced(runs, tasks)
    matrices = {m: aggregate.score_matrix(used, m, tasks) for m in order}
    points = {m: aggregate.point_estimates(aggregate.task_scores(runs, m, tasks)) for m in order}
    scope = tables.count(len(tasks), "task")
    if len(tasks) < runs.task.nunique():
        scope += f" (of {runs.task.nunique()}: those every method has)"
    runs_text = tables.runs_caption(used, order)
    available = runs[runs.task.isin(tasks)].groupby("method").size()
    cut = [m for m in order if (used.method == m).sum() < available[m]]
    if cut:
        runs_text += (" Point estimates use every run; the intervals, performance profiles and "
                      "probabilities of improvement resample equal runs per task, so there each task "
                      f"contributes only its runs of the lowest seed ids for {', '.join(cut)}.")
    header = (suite.name, scope, f"95% stratified-bootstrap intervals ({reps} replicates, "
              "rliable)", notes(runs_text))

    if rule.normalise in ("human", "scale"):
        used_curves = curves.merge(used[["method", "task", "seed"]])
        written += _aggregates(header, rule, matrices, points, used_curves, tasks, colors, reps, tmp)
    if rule.success is not None:
        written += _success(suite.name, rule, runs, order, notes, colors, tmp)
    written += plots.learning_curves(curves, colors, tmp / "learning_curves", "Episode return",
                                     f"{suite.name} — mean over runs ± standard error", learned)
    if len(order) > 1:
        written += _improvement(header, matrices, order, colors, reps, tmp)
    return written


def _per_task(name, rule, runs, order, notes, tmp) -> list[Path]:
    reference = {t: ATARI[t] for t in runs.task.unique()} if rule.normalise == "human" else None
    caption = (f"{name}: mean raw score per task over each method's runs"
               + ("; random and human: the reference scores of the rule" if reference else "")
               + ". " + notes(tables.runs_caption(runs, order)))
    return tables.write(tmp / "per_task", tables.per_task(runs, order, reference), caption, 1)


def _aggregates(header, rule, matrices, points, curves, tasks, colors, reps, tmp) -> list[Path]:
    """Aggregate table, interval plot, performance profile and sample-efficiency curve.
    points: all-run point estimates per method; curves: the learning curves of the runs in
    `matrices`."""
    name, scope, stat, notes = header
    label = "Human-normalised score" if rule.normalise == "human" else f"Score / {rule.scale:g}"
    result = aggregate.interval_estimates(matrices, reps, points=points)
    display = tables.aggregate_display(result)
    caption = f"{name}, {scope}: aggregate {label.lower()}, point estimate [{stat}]. {notes}"
    print(f"\n{caption}\n\n{display.to_markdown(index=False)}")
    written = tables.write(tmp / "aggregate", result, caption, 3, display)
    title = f"{name}, {scope} — 95% stratified-bootstrap intervals"
    written += plots.intervals(result, colors, tmp / "aggregate_intervals", label, title)

    pooled = np.concatenate([m.ravel() for m in matrices.values()])
    taus = np.linspace(min(0.0, pooled.min()), max(1.0, np.quantile(pooled, 0.95)), 101)
    written += plots.profiles(taus, aggregate.performance_profiles(matrices, taus, reps), colors,
                              tmp / "performance_profile", rf"{label} ($\tau$)",
                              f"{name}, {scope} — score distributions")
    efficiency = {}
    for method in matrices:
        frames, tensor = aggregate.curve_tensor(curves, method, tasks)
        if len(frames):
            efficiency[method] = (frames, *aggregate.iqm_curve(tensor, reps))
    if efficiency:
        written += plots.sample_efficiency(efficiency, colors, tmp / "sample_efficiency",
                                           f"IQM {label.lower()}", f"{name}, {scope}")
    return written


def _success(name, rule, runs, order, notes, colors, tmp) -> list[Path]:
    """Runs that reached the rule's success return, as a table and over training."""
    success = (runs.groupby("method", sort=False)
               .agg(runs=("seed", "size"), successes=("first_success", "count"),
                    mean_return=("raw", "mean")).reindex(order).reset_index())
    success.insert(3, "fraction", success.successes / success.runs)
    caption = (f"{name}: fraction of runs that succeeded, and the mean over runs of the window "
               "score. " + notes(tables.runs_caption(runs, order)))
    print(f"\n{caption}\n\n{success.to_markdown(index=False)}")
    return (tables.write(tmp / "success", success, caption, 3)
            + plots.success_curves(runs, colors, tmp / "success_curves",
                                   f"returned ≥ {rule.success:g}", f"{name} — success"))


def _improvement(header, matrices, order, colors, reps, tmp) -> list[Path]:
    name, scope, stat, notes = header
    rows = []
    for x, y in pairs(order):
        value, lower, upper = aggregate.probability_of_improvement(matrices[x], matrices[y], reps)
        rows.append({"x": x, "y": y, "value": value, "lower": lower, "upper": upper})
    table = pd.DataFrame(rows)
    print()
    for r in table.itertuples():
        print(f"P({r.x} > {r.y}) = {r.value:.3f} [{r.lower:.3f}, {r.upper:.3f}] over {scope}")
    caption = f"{name}, {scope}: probability of improvement P(X > Y) [{stat}]. {notes}"
    return (tables.write(tmp / "probability_of_improvement", table, caption, 3)
            + plots.improvement(table, colors, tmp / "probability_of_improvement",
                                f"{name}, {scope}"))


def _bsuite(results: Path, tmp: Path, methods, learned: float | None) -> list[Path]:
    ours = load.our_variants(results, "bsuite")
    if not ours:
        raise UsageError(f"no bsuite runs under {results}")
    for name in methods or []:
        if name not in ours:
            raise unknown("bsuite method", name, ours)
    logs = load.load_bsuite(results, methods)
    scores = scoring.bsuite_scores(logs)
    setup = settings_text(load.provenance(results, "bsuite", methods), [load.ours(m) for m in methods or ours])
    caption = ("bsuite: score per experiment from bsuite's own analysis "
               "(bsuite.experiments.summary_analysis.bsuite_score), mean over seeds; the CSV "
               "also has the seed count and `finished`, whether every bsuite_id of the "
               f"experiment ran its full number of episodes. Our runs' settings — {setup}.")
    table = scores[["method", "bsuite_env", "type", "score", "seeds", "finished"]]
    display = (table.pivot(index=["bsuite_env", "type"], columns="method", values="score")
               .reindex(columns=list(dict.fromkeys(table.method))).reset_index())
    display.columns.name = None
    print(f"\n{caption}\n\n{display.to_markdown(index=False)}")
    colors = plots.palette(scores.method.unique())
    return (tables.write(tmp / "bsuite_scores", table, caption, 3, display)
            + plots.bsuite_figures(scores, colors, tmp / "bsuite")
            + _bsuite_runs(results, methods, colors, tmp, learned))


def _bsuite_runs(results: Path, methods, colors: dict, tmp: Path, learned: float | None) -> list[Path]:
    """Per-run scores and learning curves of our bsuite runs (`_run_table`), from their episode
    logs (none when no run has finished an episode)."""
    episodes = load.load_runs(results, "bsuite", methods)
    if episodes.empty:
        return []
    # Runs left out of bsuite's score table (an older version's restarted log) still have curves.
    colors = plots.palette(dict.fromkeys([*colors, *episodes.method.unique()]))
    return _run_table(episodes, scoring.BSUITE_LAST, load.load_progress(results, "bsuite", methods),
                      colors, tmp / "learning_curves", learned, "bsuite: our runs")


def _run_table(episodes: pd.DataFrame, n: int, progress: pd.DataFrame, colors: dict, curves_stem: Path,
               learned: float | None, title: str, rule: ScoringRule | None = None,
               sizes: dict | None = None) -> list[Path]:
    """`runs.csv`: one row per run (`method, task, seed, episodes, frames, last{n}`: the mean
    return of its last n episodes; with a human-normalising `rule`, that mean normalised as
    `score`; with `learned`, the first frame its running last-n mean reached it and, for our runs,
    the updates and training seconds by then), and one learning curve per run: that running mean
    over frames. `sizes`: method → model size, in the table and the curves' legend."""
    runs = scoring.last_episodes(episodes, n)
    if rule is not None and rule.normalise == "human":
        runs["score"] = scoring.normalise(runs[f"last{n}"], runs.task, rule)
    curves = scoring.running_mean(episodes, n)
    caption = (f"{title}: mean return of each run's last {n} training episodes (`last{n}`), its episodes and "
               "frames" + ("; `score`: that mean human-normalised" if "score" in runs else ""))
    if learned is not None:
        first = scoring.first_reaching(curves, learned, n)
        at = scoring.progress_at(progress, first)
        at = at.rename(columns={"updates": f"updates_{learned:g}", "time": f"seconds_{learned:g}"})
        runs = (runs.merge(first.rename(f"first_{learned:g}").reset_index(), on=["method", "task", "seed"])
                .merge(at, on=["method", "task", "seed"], how="left"))
        caption += (f"; `first_{learned:g}`: the first frame at which the mean of {n} episodes reached {learned:g}, with "
                    "the updates made and training seconds by then (our runs: from the first metrics line "
                    "at or past that frame)")
        if load.REFERENCE in set(runs.method):
            caption += ("; the reference's runs: their updates from the first metrics line at or past it "
                        "(their logs hold no training seconds)")
    if sizes:
        runs.insert(1, "size", runs.method.map(sizes).fillna(""))
        labels, colors = _sized(colors, sizes)
        curves = curves.assign(method=curves.method.map(labels))
    caption += "; from the runs' episode logs."
    print(f"\n{caption}\n\n{runs.to_markdown(index=False)}")
    return (tables.write(curves_stem.parent / "runs", runs, caption, 3)
            + plots.learning_curves(curves, colors, curves_stem,
                                    f"return (mean of last {n} episodes)", title, learned, per_seed=True))


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Tables and figures of a suite: per-task scores, rliable aggregates with "
        "stratified-bootstrap intervals, performance profiles, sample-efficiency and learning "
        "curves, probability of improvement; our runs beside the published ones.",
        epilog="Our runs appear as '<variant> (ours)'; shortened runs (suites.run --budget N) as "
        "'<variant>-budget<N> (ours)', scored in the rule's window scaled to their budget. A "
        "report whose runs of ours mix budgets is refused unless --pool-shortened.")
    p.add_argument("suite", help=", ".join(SUITE_NAMES))
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="published methods and our variants to compare, in this order (default: "
                   "all found); a name selects both the published method and our variant of it")
    p.add_argument("--baselines", type=Path, default=default_baselines(),
                   help=f"folder of published *.json.gz files (default: ${BASELINES_VAR} if set, else "
                   "results/baselines, where `python -m analysis.baselines download` puts them)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help=f"root of our run directories (default: {DEFAULT_RESULTS}); a report's "
                   "own runs/ folder, its copy of the logs it read, makes that report again")
    p.add_argument("--out", type=Path, help=f"output folder (default: {DEFAULT_REPORTS}/SUITE)")
    p.add_argument("--reps", type=int, default=2000,
                   help="bootstrap replicates per interval (default: 2000; rliable's paper "
                   "used 50000)")
    p.add_argument("--learned", type=float, metavar="SCORE",
                   help="the score that counts as learned: drawn on the learning curves; for "
                   "bsuite, each of our runs' first frame reaching it is tabled")
    p.add_argument("--reference", nargs="+", type=Path, default=[], metavar="LOGDIR",
                   help="logdirs of runs of the reference implementation (danijar/dreamerv3's "
                   "dreamerv3/main.py), reported as the method 'reference' (atari100k)")
    p.add_argument("--pool-shortened", action="store_true",
                   help="report our runs of different budgets together, each scored in its "
                   "window scaled to its budget")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.reps < 1:
            raise UsageError(f"--reps must be at least 1, got {args.reps}")
        suite = get_suite(args.suite)
        out = args.out or DEFAULT_REPORTS / suite.name
        with warnings.catch_warnings():
            # our notes (a run left out, ...) as one line each; libraries' deprecation noise not
            warnings.simplefilter("ignore")
            warnings.filterwarnings("always", module=r"analysis\.|__main__")  # this module run with -m is __main__
            warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
            written = build(suite, out, args.baselines, args.results, args.methods, args.reps,
                            args.pool_shortened, args.learned, args.reference)
    except (UsageError, SuiteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except load.LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"\nreport: {len(written)} files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
