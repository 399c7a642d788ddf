"""Figures of a report, each saved as PNG (to look at) and PDF (for papers).

Every function takes the data it draws and a path stem, and returns the written paths. Methods
keep one colour across all figures of a report (`palette`).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from rliable import plot_utils

METRIC_NAMES = {"mean": "Mean", "median": "Median", "iqm": "IQM",
                "optimality_gap": "Optimality gap"}


# seaborn's colour-blind palette, its vermillion moved back: next to its orange, two methods drawn
# in them were hard to tell apart (the published PPO and the reference in the Atari report).
PALETTE_ORDER = (0, 1, 2, 4, 7, 5, 9, 3, 8, 6)


def palette(methods) -> dict:
    """method -> colour; more than ten methods cycle through the colours again."""
    colours = sns.color_palette("colorblind")
    return {m: colours[PALETTE_ORDER[i % len(PALETTE_ORDER)]] for i, m in enumerate(methods)}


def save(fig, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def frames_unit(max_step: float) -> tuple[float, str]:
    """(divisor, axis label) so that frame counts read as thousands or millions."""
    return (1e6, "Frames (millions)") if max_step >= 1e7 else (1e3, "Frames (thousands)")


def intervals(aggregate: pd.DataFrame, colors: dict, stem: Path, xlabel: str,
              title: str) -> list[Path]:
    """Point estimates and 95% intervals per metric; rows `method, metric, value, lower, upper`."""
    methods = list(dict.fromkeys(aggregate.method))
    metrics = list(dict.fromkeys(aggregate.metric))
    rows = {m: aggregate[aggregate.method == m].set_index("metric").loc[metrics] for m in methods}
    fig, _ = plot_utils.plot_interval_estimates(
        {m: r.value.to_numpy() for m, r in rows.items()},
        {m: np.stack([r.lower.to_numpy(), r.upper.to_numpy()]) for m, r in rows.items()},
        metric_names=[METRIC_NAMES[m] for m in metrics], algorithms=methods, colors=colors,
        xlabel=xlabel, row_height=max(0.45, 1.6 / len(methods)),
        xlabel_y_coordinate=-0.3 if len(methods) < 4 else -0.1)
    # rliable puts the metric names just above the axes; keep the title clear of them
    fig.suptitle(title, y=1 + 0.55 / fig.get_size_inches()[1], fontsize="x-large")
    return save(fig, stem)


def profiles(taus, profiles: dict, colors: dict, stem: Path, xlabel: str, title: str) -> list[Path]:
    """Performance profiles; profiles: method -> (profile (taus,), interval (2, taus))."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        {m: p for m, (p, _) in profiles.items()}, taus,
        performance_profile_cis={m: ci for m, (_, ci) in profiles.items()}, colors=colors, ax=ax,
        xlabel=xlabel, ylabel=r"Fraction of runs with score $> \tau$", labelsize="large",
        ticklabelsize="large", legend=True, legendsize="large")
    ax.set_title(title)
    return save(fig, stem)


def sample_efficiency(curves: dict, colors: dict, stem: Path, ylabel: str,
                      title: str) -> list[Path]:
    """IQM over training; curves: method -> (frames (points,), iqm (points,), interval (2, points)).
    """
    scale, xlabel = frames_unit(max(f.max() for f, _, _ in curves.values()))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, (frames, iqm, interval) in curves.items():
        plot_utils.plot_sample_efficiency_curve(
            frames / scale, {method: iqm}, {method: interval}, algorithms=[method],
            colors=colors, ax=ax, xlabel=xlabel, ylabel=ylabel, labelsize="large",
            ticklabelsize="large", marker=".")
    ax.legend(fontsize="large")
    ax.set_title(title)
    return save(fig, stem)


def learning_curves(curves: pd.DataFrame, colors: dict, stem: Path, ylabel: str,
                    title: str, level: float | None = None, per_seed: bool = False) -> list[Path]:
    """Per-task curves: mean over seeds with a ± standard-error band, or with `per_seed` one line
    per seed; rows `method, task, seed, step, raw`. `level`: a dashed horizontal line, named on the
    plot (the score that counts as learned)."""
    scale, xlabel = frames_unit(curves.step.max())
    data = curves.assign(frames=curves.step / scale,
                         game=curves.task.str.replace(r"^(atari|dmc)_", "", regex=True))
    tasks = data.game.nunique()
    grid = sns.relplot(data=data, x="frames", y="raw", hue="method", col="game",
                       col_wrap=min(tasks, 6), kind="line", palette=colors,
                       hue_order=list(colors),
                       **({"units": "seed", "estimator": None, "style": "seed"} if per_seed
                          else {"errorbar": "se"}),
                       height=2.1 if tasks > 1 else 4, aspect=1.25,
                       facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    grid.set_axis_labels(xlabel, ylabel)
    if level is not None:
        grid.refline(y=level, color="grey", linestyle="--")
        for ax in grid.axes.flat:  # named on the line: per-seed curves are dashed too
            ax.annotate(f"learned ({level:g})", xy=(0, level), xycoords=("axes fraction", "data"),
                        xytext=(3, 2), textcoords="offset points", color="grey", fontsize="small")
    sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0.0),
                    ncol=min(len(colors), 4), title=None, frameon=False)
    grid.figure.suptitle(title, y=1.02)
    return save(grid.figure, stem)


def improvement(pairs: pd.DataFrame, colors: dict, stem: Path, title: str) -> list[Path]:
    """Probability of improvement; rows `x, y, value, lower, upper` (P(x > y))."""
    keys = [f"{x}|{y}" for x, y in zip(pairs.x, pairs.y)]
    fig, ax = plt.subplots(figsize=(5, 0.9 + 0.55 * len(pairs)))
    plot_utils.plot_probability_of_improvement(
        dict(zip(keys, pairs.value)),
        dict(zip(keys, np.stack([pairs.lower, pairs.upper], axis=1))),
        pair_separator="|", ax=ax, colors=[colors[x] for x in pairs.x],
        xlabel="P(X > Y)", left_ylabel="Method X", right_ylabel="Method Y")
    ax.axvline(0.5, color="k", linestyle="--", alpha=0.4)  # no improvement either way
    ax.set_xlim(0, 1)
    ax.set_title(title)
    return save(fig, stem)


def training_signals(signals: pd.DataFrame, colors: dict, stem: Path, title: str,
                     log_scale=("reconstruction loss",)) -> list[Path]:
    """One panel per signal (and a row per task when several), one line per run over frames;
    rows `method, task, seed, signal, step, value`. `log_scale`: signals drawn on a log axis (a
    reconstruction loss falls by orders of magnitude)."""
    scale, xlabel = frames_unit(signals.step.max())
    data = signals.assign(frames=signals.step / scale,
                          game=signals.task.str.replace(r"^(atari|dmc)_", "", regex=True))
    many = data.game.nunique() > 1
    grid = sns.relplot(data=data, x="frames", y="value", hue="method", style="seed", units="seed",
                       estimator=None, col="signal", row="game" if many else None, kind="line",
                       palette=colors, hue_order=[m for m in colors if m in set(data.method)],
                       col_order=list(dict.fromkeys(signals.signal)), height=2.6, aspect=1.2,
                       facet_kws={"sharey": False})
    grid.set_titles("{row_name}: {col_name}" if many else "{col_name}")
    grid.set_axis_labels(xlabel, "")
    for key, ax in grid.axes_dict.items():  # keyed (game, signal) with rows, else signal
        if (key[1] if many else key) in log_scale:
            ax.set_yscale("log")
    sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, title=None, frameon=False)
    grid.figure.suptitle(title, y=1.03)
    return save(grid.figure, stem)


def success_curves(run_scores: pd.DataFrame, colors: dict, stem: Path, what: str,
                   title: str) -> list[Path]:
    """Fraction of runs that succeeded by each frame; rows `method, hi, first_success` per run."""
    end = run_scores.hi.max()
    scale, xlabel = frames_unit(end)
    frames = np.linspace(0, end, 400)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, runs in run_scores.groupby("method", sort=False):
        first = runs.first_success.to_numpy()
        fraction = (first[None, :] <= frames[:, None]).mean(axis=1)
        ax.step(frames / scale, fraction, where="post", color=colors[method], linewidth=2,
                label=f"{method} ({np.isfinite(first).sum()}/{len(first)} runs)")
    ax.set(xlabel=xlabel, ylabel=f"Fraction of runs that {what}", ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.25)
    ax.legend()
    return save(fig, stem)


def bsuite_figures(scores: pd.DataFrame, colors: dict, stem: Path) -> list[Path]:
    """bsuite's standard bar plot of the score per experiment, and a radar of the mean score per
    tag (bsuite's own radar averages with a pandas call that pandas 2 rejects, so it is drawn
    here from bsuite's tag averages); rows of analysis.scoring.bsuite_scores."""
    import plotnine as gg
    from bsuite.experiments import summary_analysis

    # bsuite's theme asks for a serif font most machines lack; keep its look in the default one
    bar = (summary_analysis.bsuite_bar_plot(scores, ["method"])
           + gg.theme(text=gg.element_text(family=matplotlib.rcParams["font.family"][0])))
    paths = []
    for suffix in (".png", ".pdf"):
        path = stem.with_name(stem.name + "_bar").with_suffix(suffix)
        bar.save(path, verbose=False, dpi=150)
        paths.append(path)
    by_tag = summary_analysis.ave_score_by_tag(scores, ["method"]).dropna(subset=["score"])
    tags = sorted(by_tag.tag.unique())  # tags of the experiments that were run
    angles = np.linspace(0, 2 * np.pi, len(tags), endpoint=False)
    with plt.style.context("default"):  # bsuite's import leaves a grey plot style behind
        fig, ax = plt.subplots(figsize=(7, 7), subplot_kw={"polar": True})
        for method, rows in by_tag.groupby("method", sort=False):
            values = rows.set_index("tag").score.reindex(tags).fillna(0).to_numpy()
            loop = np.append(angles, angles[0]), np.append(values, values[0])
            ax.plot(*loop, color=colors[method], linewidth=2.5, label=method)
            ax.fill(*loop, color=colors[method], alpha=0.2)
        ax.set_xticks(angles, [t.replace("_", " ").title() for t in tags])
        ax.set_ylim(0, 1)
        ax.set_yticks([0.25, 0.5, 0.75, 1.0])
        ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0))
        ax.set_title("bsuite score by tag (mean over experiments)", pad=24)
    return paths + save(fig, stem.with_name(stem.name + "_radar"))
