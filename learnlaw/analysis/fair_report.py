"""Tables of the fair comparison (scripts/fair_grid.py → learnlaw/data/fair/<case>.json).

A case's file holds, per report seed, every method's validation-selected trial in two regimes —
(a) at the paper's η, (b) at the method's own tuned η (and schedule) — with its held-out
compression ratio (CR), final loss and time-to-target against the tuned uniform learner, and,
over seeds, paired ratios with 95% Student-t intervals on the log scale
(:func:`learnlaw.compare.paired_ratio`). This module only reads and formats: nothing
here trains.
"""

from __future__ import annotations

import math

import numpy as np

from learnlaw.analysis.paired import PairedRatio, beats, paired_ratio
from learnlaw.core.checks import ArgumentValueError
from learnlaw.data import load_json

__all__ = [
    "ONLINE",
    "FITTED",
    "LAW",
    "load_fair",
    "paired_entry",
    "paired_between",
    "paired_over",
    "seed_rows",
    "format_paired",
    "speedups",
    "best_by_validation",
]

#: The online Law rules of the grid (one step ahead, no search), in table order.
ONLINE = ("online relu", "online power", "online relu, line search")
#: The fitted Law policies (an outer search through the exact adjoint), in table order.
FITTED = ("block policy (10 blocks)", "feature scorer", "full search")
#: Every Law method of the fair comparison: the online rules, the fitted policies, and each fitted
#: policy trained under the tuned classic schedule.
LAW = (*ONLINE, *FITTED, *(f"{m}, scheduled" for m in FITTED))


def load_fair(case: str) -> dict:
    """The committed fair-grid summary of ``case`` (``"clean512"``, ``"noisy512"``, …)."""
    return load_json(f"fair/{case}.json")


def seed_rows(data: dict, regime: str, method: str) -> list[dict]:
    """The per-seed rows of ``method`` in ``regime`` (seeds where it had a finite trial)."""
    out = []
    for s in data["seeds"]:
        for r in s["regimes"][regime]["rows"]:
            if r["method"] == method and "cr_test" in r:
                out.append(dict(r, seed=s["seed"]))
    return out


def paired_entry(data: dict, regime: str, method: str, versus: str = "uniform") -> dict:
    """``{"cr_ratio": {...}, "final_ratio": {...}, "beats": bool, "n": S}`` of ``method`` against
    the tuned uniform learner (``versus="uniform"``) or the tuned scheduled one
    (``"scheduled"``, regime (b) only)."""
    return data["paired"][regime][method][f"vs_{versus}"]


def paired_between(data: dict, method: str, baseline: str, regime: str = "b") -> dict:
    """``method`` against another method of the file (not only the tuned learners), paired over
    the seeds where both have a finite row: ``{"seeds", "cr_ratio", "final_ratio", "beats"}``,
    the ratios :class:`~learnlaw.compare.PairedRatio` of method ÷ baseline on the held-out
    CR and final loss, ``beats`` by :func:`~learnlaw.compare.beats`.

    Raises:
        ValueError: fewer than two common seeds (no interval).
    """
    a = {r["seed"]: r for r in seed_rows(data, regime, method)}
    b = {r["seed"]: r for r in seed_rows(data, regime, baseline)}
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ArgumentValueError(
            f"{method!r} and {baseline!r} share {len(seeds)} seed(s) with a finite row in regime "
            f"({regime}); a paired interval needs at least 2 (run the grid for more seeds)"
        )
    return paired_over(seeds, a, b)


def paired_over(seeds: list[int], rows: dict, base: dict) -> dict:
    """Rows ÷ base rows (each ``{seed: row}`` with ``cr_test`` and ``final_test``) paired over
    ``seeds`` (≥ 2): ``{"seeds", "cr_ratio", "final_ratio", "beats"}`` as in
    :func:`paired_between`. The committed summaries' paired entries (scripts/fair_summary.py) are
    this same computation."""
    cr: PairedRatio = paired_ratio(
        [rows[k]["cr_test"] for k in seeds], [base[k]["cr_test"] for k in seeds]
    )
    fin = paired_ratio(
        [rows[k]["final_test"] for k in seeds], [base[k]["final_test"] for k in seeds]
    )
    return dict(seeds=list(seeds), cr_ratio=cr, final_ratio=fin, beats=bool(beats(cr, fin.ratios)))


def best_by_validation(data: dict, methods: list[str], regime: str = "b") -> str:
    """The method of ``methods`` with the lowest validation AUC, the selection rule of the grid.

    Each trial's ``val_auc`` is the area under its loss curve on the validation part of the
    desired set (never the test split), at the η, schedule and epoch that validation chose. The
    score of a method is the geometric mean of its ``val_auc`` over the seeds where every
    candidate has a finite row, so that all are compared on the same validation sets.

    Raises:
        ValueError: no candidate has a row, or the candidates share no seed.
    """
    rows = {m: {r["seed"]: r["val_auc"] for r in seed_rows(data, regime, m)} for m in methods}
    rows = {m: v for m, v in rows.items() if v}
    common = set.intersection(*(set(v) for v in rows.values())) if rows else set()
    if not common:
        raise ArgumentValueError(
            f"the methods {methods} share no seed with a finite row in regime ({regime}) of "
            f"{data.get('case', 'this case')!r}; pass methods that ran there"
        )
    score = {m: float(np.mean([math.log(v[s]) for s in sorted(common)])) for m, v in rows.items()}
    return min(score, key=score.get)


def speedups(data: dict, regime: str, method: str) -> list[tuple[float, int, int]]:
    """Per target level (the tuned uniform learner's best loss by T/64, T/8, T): the geometric mean
    over seeds of its time ÷ the method's time to reach it, among the seeds that reach it, and
    (reached, seeds). ``nan`` when no seed reaches it."""
    rows = seed_rows(data, regime, method)
    out = []
    for i in range(len(rows[0]["speedup_at_target"]) if rows else 0):
        v = [r["speedup_at_target"][i] for r in rows if r["speedup_at_target"][i] is not None]
        gm = float(np.exp(np.mean(np.log(v)))) if v else math.nan
        out.append((gm, len(v), len(rows)))
    return out


def _ci(entry: dict | None, key: str) -> str:
    if not entry or key not in entry:
        return "—"
    e = entry[key]
    return f"{e['geometric_mean']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"


def format_paired(data: dict, regime: str, methods: list[str], versus: str = "uniform") -> str:
    """A plain-text table: η per seed, the paired held-out CR ratio and final-loss ratio against
    the tuned learner (geometric mean [95% interval] over seeds), whether the method beats it by
    the chapter's rule, and time-to-target speed-ups at the three levels."""
    head = [
        "method",
        "η per seed",
        "CR ratio",
        "final-loss ratio",
        "beats",
        "speed-up at T/64, T/8, T",
    ]
    lines = []
    for m in methods:
        rows = seed_rows(data, regime, m)
        if not rows:
            lines.append([m, "every trial diverged", "", "", "", ""])
            continue
        lrs = ",".join(f"{r['lr']:g}" for r in rows)
        try:
            entry = paired_entry(data, regime, m, versus)
        except KeyError:
            entry = None
        beats = "—" if not entry or "beats" not in entry else ("yes" if entry["beats"] else "no")
        sp = " ".join(
            "never" if k == 0 else f"{g:.2g}" + ("" if k == n else f"({k}/{n})")
            for g, k, n in speedups(data, regime, m)
        )
        lines.append([m, lrs, _ci(entry, "cr_ratio"), _ci(entry, "final_ratio"), beats, sp])
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
    fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])
