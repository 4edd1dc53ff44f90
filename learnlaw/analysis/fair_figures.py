"""Figures of the fair comparison: the paired held-out ratios as a forest plot.

A *forest plot* shows, for every case (a panel) and method (a row), the geometric mean of the
per-seed ratios method ÷ tuned baseline and its 95% Student-t interval over seeds
(:func:`learnlaw.compare.paired_ratio`), on a log axis with the tie, 1, marked. Each method has
one mark per tuned baseline: the uniform learner at its validation-tuned constant step and the one
at its tuned classic schedule. A filled mark is a method that *beats* that baseline by the book's
rule (interval above 1 and a lower final held-out loss in every seed); an open one does not.

This module only reads the committed summaries (:func:`learnlaw.analysis.fair_report.load_fair`)
and draws; matplotlib is imported when a figure is drawn, so importing it costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from learnlaw.analysis.fair_report import paired_entry
from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.optional import require

__all__ = ["forest_rows", "forest_plot", "set_ratio_ticks"]

# the ticks a ratio axis may show (log axis, plain numbers)
TICKS = (0.1, 0.25, 0.5, 0.8, 1, 1.25, 2, 4, 8)
# the two tuned baselines of regime (b), as paired_entry names them, and how the figure draws them
BASELINES = {
    "uniform": ("tuned constant step", "C0", "o"),
    "scheduled": ("tuned schedule", "C1", "s"),
}


def forest_rows(
    fair: Mapping[str, dict], methods: Sequence[str], key: str = "cr_ratio", regime: str = "b"
) -> list[dict[str, Any]]:
    """The numbers a forest plot draws, one dict per (case, method, baseline) that was run.

    Args:
        fair: case name → committed fair-grid summary (``load_fair(case)``).
        methods: method names, in the order of the rows (top first); a method that did not run in
            a case, or has no entry against a baseline, is left out of that case's panel.
        key: ``"cr_ratio"`` (held-out compression ratio, larger is better) or ``"final_ratio"``
            (final held-out loss, smaller is better).
        regime: ``"b"`` (each method at its own tuned η) or ``"a"`` (the paper's η; against
            uniform training at that η only).

    Returns:
        Dicts with ``case``, ``method``, ``versus`` (``"uniform"`` or ``"scheduled"``),
        ``geometric_mean``, ``low``, ``high`` (the 95% interval), ``beats`` and ``n`` (seeds).

    Raises:
        ArgumentValueError: an unknown ``key`` or ``regime``, or no method of ``methods`` in any case
            (ArgumentTypeError: a ``key`` or ``regime`` that is not a string).
    """
    checks.check_choice(key, "key", ("cr_ratio", "final_ratio"))
    checks.check_choice(regime, "regime", ("a", "b"))
    rows = []
    for case, data in fair.items():
        for method in methods:
            for versus in BASELINES:
                try:
                    entry = paired_entry(data, regime, method, versus)
                except KeyError:  # the method did not run here, or not against this baseline
                    continue
                if key not in entry:
                    continue
                r = entry[key]
                rows.append(
                    dict(
                        case=case,
                        method=method,
                        versus=versus,
                        n=entry["n"],
                        geometric_mean=r["geometric_mean"],
                        low=r["low"],
                        high=r["high"],
                        beats=bool(entry["beats"]),
                    )
                )
    if not rows:
        raise ArgumentValueError(
            f"none of the methods {list(methods)} has a paired entry in regime ({regime}) of the "
            f"cases {list(fair)}; pass method names as the fair-grid files spell them"
        )
    return rows


def set_ratio_ticks(axis, ticks, suffix: str = "") -> None:
    """Label a log-scaled ratio ``axis`` (``ax.xaxis`` or ``ax.yaxis``) at ``ticks`` only, in plain
    numbers (``f"{t:g}"`` plus ``suffix``), with no minor labels: matplotlib's default log labels
    (``2 × 10⁰``) crowd a range that spans less than a decade."""
    ticker = require("matplotlib.ticker", "set_ratio_ticks")
    ticks = list(ticks)
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_major_formatter(ticker.FixedFormatter([f"{t:g}{suffix}" for t in ticks]))
    axis.set_minor_formatter(ticker.NullFormatter())


def forest_plot(
    fair: Mapping[str, dict],
    methods: Sequence[str],
    *,
    titles: Mapping[str, str] | None = None,
    key: str = "cr_ratio",
    regime: str = "b",
    width: float = 4.2,
    row_height: float = 0.32,
):
    """Draw the paired ratios of ``methods`` against both tuned baselines, one panel per case.

    Args:
        fair, methods, key, regime: as in :func:`forest_rows`.
        titles: case → panel title (default: the case name).
        width: width of one panel in inches; ``row_height``: height of one method's row.

    Returns:
        The matplotlib ``Figure`` (one ``Axes`` per case, sharing the method rows).
    """
    plt = require("matplotlib.pyplot", "forest_plot")
    Line2D = require("matplotlib.lines", "forest_plot").Line2D

    rows = forest_rows(fair, methods, key, regime)
    shown = [m for m in methods if any(r["method"] == m for r in rows)]
    y = {m: len(shown) - 1 - i for i, m in enumerate(shown)}
    cases = list(fair)
    fig, axes = plt.subplots(
        1,
        len(cases),
        figsize=(width * len(cases), 0.9 + row_height * len(shown)),
        sharey=True,
        squeeze=False,
    )
    for ax, case in zip(axes[0], cases):
        mine = [r for r in rows if r["case"] == case]
        # each panel its own range (at least 0.8 to 1.25 around the tie), ticks in plain numbers
        lo = min([0.8] + [r["low"] for r in mine]) / 1.1
        hi = max([1.25] + [r["high"] for r in mine]) * 1.1
        for r in mine:
            name, colour, marker = BASELINES[r["versus"]]
            dy = 0.15 if r["versus"] == "uniform" else -0.15
            g = r["geometric_mean"]
            ax.errorbar(
                g,
                y[r["method"]] + dy,
                xerr=[[g - r["low"]], [r["high"] - g]],
                fmt=marker,
                color=colour,
                mfc=colour if r["beats"] else "white",
                ms=5,
                capsize=2,
                lw=1.2,
            )
        ax.axvline(1, color="gray", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        set_ratio_ticks(
            ax.xaxis, [t for t in TICKS if lo <= t <= hi and (hi / lo < 4 or t not in (0.8, 1.25))]
        )
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.set_title((titles or {}).get(case, case), fontsize=9)
        ax.set_xlabel(
            "held-out CR ratio (> 1: better)"
            if key == "cr_ratio"
            else "final held-out loss ratio (< 1: better)",
            fontsize=8,
        )
        ax.grid(axis="x", which="major", alpha=0.25)
    axes[0][0].set_yticks(range(len(shown)), list(reversed(shown)), fontsize=8)
    handles = [
        Line2D([], [], color=c, marker=m, ls="", label=f"against the {n}")
        for n, c, m in BASELINES.values()
    ]
    handles.append(
        Line2D([], [], color="k", marker="o", mfc="white", ls="", label="open: does not beat it")
    )
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
