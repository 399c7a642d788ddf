"""Tables as CSV (full precision, for machines) and Markdown / LaTeX (rounded, with a caption that
says which rule and which runs produced them), plus the table contents and caption text.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        # pdflatex has no glyphs for these without extra packages
        "−": "-", "–": "--", "—": "---", "≥": r"$\geq$", "×": r"$\times$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


def _fixed(value: float, digits: int) -> str:
    # + 0.0 turns the -0.0 that rounding leaves of a tiny negative into 0.0 ("-0.000" reads as a sign)
    return f"{round(float(value), digits) + 0.0:,.{digits}f}"


def _cell(value, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return "—" if math.isnan(value) else _fixed(value, digits)
    return str(value)


def _column(column: pd.Series, digits: int) -> pd.Series:
    """Cells rounded to `digits` decimals; a column of whole numbers (frames, counts; NaN aside)
    without decimals."""
    values = [v for v in column if isinstance(v, (float, np.floating)) and not math.isnan(v)]
    whole = bool(values) and all(float(v).is_integer() for v in values)
    return column.map(lambda v: _cell(v, 0 if whole else digits))


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def write(stem: Path, data: pd.DataFrame, caption: str, digits: int = 3,
          display: pd.DataFrame | None = None) -> list[Path]:
    """Write `data` to stem.csv, and `display` (default: `data`) with numbers rounded to `digits`
    decimals (whole-number columns without) and `caption` above it to stem.md and stem.tex.
    Returns the three paths."""
    display = (data if display is None else display).apply(lambda column: _column(column, digits))
    csv, md, tex = (stem.with_suffix(s) for s in (".csv", ".md", ".tex"))
    data.to_csv(csv, index=False)
    align = ["left"] + ["right"] * (display.shape[1] - 1)
    markdown = display.to_markdown(index=False, colalign=align, disable_numparse=True)
    md.write_text(f"{caption}\n\n{markdown}\n")
    latex = (display.rename(columns=_tex).apply(lambda column: column.map(_tex))
             .to_latex(index=False, escape=False))
    tex.write_text(f"\\begin{{table}}\n\\caption{{{_tex(caption)}}}\n\\label{{tab:{stem.name}}}\n"
                   f"{latex}\\end{{table}}\n")
    return [csv, md, tex]


def per_task(run_scores: pd.DataFrame, methods, reference: dict | None = None) -> pd.DataFrame:
    """Tasks × methods: mean raw score over each method's runs (NaN where it has none), with
    `random` and `human` columns first when `reference` (task -> (random, human)) is given.

    run_scores: one row per run with `task, method, raw`.
    """
    means = run_scores.pivot_table(index="task", columns="method", values="raw", aggfunc="mean")
    table = means.reindex(columns=list(methods))
    if reference is not None:
        table.insert(0, "random", [reference[t][0] for t in table.index])
        table.insert(1, "human", [reference[t][1] for t in table.index])
    table.columns.name = None
    return table.reset_index()


def aggregate_display(aggregate: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Methods × metrics with cells "value [lower, upper]" from rows `method, metric, value,
    lower, upper`."""
    cells = aggregate.assign(cell=[
        f"{_fixed(v, digits)} [{_fixed(lo, digits)}, {_fixed(hi, digits)}]"
        for v, lo, hi in zip(aggregate.value, aggregate.lower, aggregate.upper)])
    table = cells.pivot(index="method", columns="metric", values="cell")
    table = table.reindex(index=list(dict.fromkeys(aggregate.method)),
                          columns=list(dict.fromkeys(aggregate.metric)))
    table.columns.name = None
    return table.reset_index()


def runs_caption(run_scores: pd.DataFrame, methods) -> str:
    """Which runs a table used: per method, seeds per task (naming tasks that have fewer).

    run_scores: one row per run with `method, task, seed`.
    """
    parts = []
    for method in methods:
        counts = run_scores[run_scores.method == method].groupby("task").seed.nunique()
        if counts.empty:
            continue
        most = counts.max()
        tasks = count(len(counts), "task")
        text = f"{method}: {count(most, 'seed')} on each of {tasks}"
        if counts.min() < most:
            fewer = counts[counts < most]
            text = (f"{method}: {counts.min()}–{most} seeds per task on {tasks} "
                    f"({', '.join(f'{t} {n}' for t, n in fewer.items())}; others {most})")
        parts.append(text)
    return "Runs — " + "; ".join(parts) + "."


def shortened_caption(run_scores: pd.DataFrame) -> str:
    """A note on shortened runs of ours and the scaled windows that scored them ('' if none)."""
    short = run_scores[run_scores.shortened]
    if short.empty:
        return ""
    windows = short.groupby(["method", "budget", "lo", "hi"]).size().reset_index(name="runs")
    parts = [f"{r.method}: {count(r.runs, 'run')} with a budget of {r.budget:,.0f} frames, scored on "
             f"episodes ending in [{r.lo:,.0f}, {r.hi:,.0f}]" for r in windows.itertuples()]
    return ("Shortened runs (window scaled by budget / full budget) — " + "; ".join(parts) + ".")
