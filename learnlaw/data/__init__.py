"""Committed results that the chapters read, installed with learnlaw as package data.

A chapter opened alone (on Colab, or copied into an empty folder) finds them here, read through
:mod:`importlib.resources`:

- ``perceptron_variants.json``: the perceptron variants (``scripts/perceptron_variants.py``);
- ``scaling_grid.json``: the scaling chapter's seed sweep (``scripts/scaling_grid.sh seeds``);
- ``bench_distributed.json``: the records of ``python -m learnlaw.bench --distributed --record
  FILE`` (one epoch on 1 and on 2 gloo processes) that the scale chapter quotes;
- ``results/<chapter>.json``: a snapshot of a chapter's headline numbers (and, for the
  perceptron, its loss curves), taken by ``scripts/snapshot_results.py`` from an execution at the
  chapter's default parameters. The landing page shows them; the chapter itself, run at those
  parameters, checks its fresh numbers against them with :func:`check_snapshot`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["load_json", "snapshot", "check_snapshot", "SNAPSHOT_RTOL"]

SNAPSHOT_RTOL = 1e-6  # numbers of a deterministic CPU run (torch is bit-reproducible here)
CURVE_RTOL = 1e-4  # curves are stored with 6 significant digits


def _files():
    return resources.files(__name__)


def load_json(name: str) -> Any:
    """The parsed JSON file ``name`` (e.g. ``"scaling_grid.json"``) from learnlaw's data.

    Raises:
        FileNotFoundError: no such file; the message lists the files there are.
    """
    path = _files().joinpath(*name.split("/"))
    if not path.is_file():
        have = sorted(
            p.name if p.is_file() else f"{p.name}/"
            for p in _files().iterdir()
            if p.name.endswith(".json") or (p.is_dir() and not p.name.startswith("_"))
        )
        raise FileNotFoundError(f"learnlaw has no data file {name!r}; learnlaw/data has {have}")
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(chapter: str) -> dict:
    """The committed snapshot of ``chapter`` (e.g. ``"perceptron"``).

    Returns:
        ``{"chapter": "book/<chapter>.ipynb", "parameters": {...}, "results": {...}}`` and, when
        the chapter has them, ``"curves": {"step": [...], "<name>": [...]}``. ``parameters`` are
        the chapter's defaults the snapshot was taken at; a number that was NaN is ``None``.
    """
    return load_json(f"results/{chapter}.json")


def _close(a: Any, b: Any, rtol: float) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-12)


def check_snapshot(
    chapter: str,
    results: Mapping[str, Any],
    namespace: Mapping[str, Any],
    curves: Mapping[str, Any] | None = None,
) -> bool:
    """Check a chapter's fresh numbers against its committed snapshot, at its default parameters.

    Args:
        chapter: the snapshot's name (``learnlaw/data/results/<chapter>.json``).
        results: the chapter's fresh headline numbers; every key of the snapshot's ``results``
            must be there and agree within a relative ``SNAPSHOT_RTOL``.
        namespace: where the chapter's parameters live (``globals()`` in a notebook).
        curves: fresh curves, compared with the snapshot's within ``CURVE_RTOL``, if it has any.

    Returns:
        ``False`` (nothing compared) when a parameter differs from the snapshot's, e.g. a
        papermill run at other sizes; ``True`` when everything agrees.

    Raises:
        AssertionError: a number or curve differs; the message names them and the fix.
    """
    snap = snapshot(chapter)
    for name, value in snap["parameters"].items():
        if name not in namespace:
            return False
        try:  # as JSON stores it: a tuple is a list
            here = json.loads(json.dumps(namespace[name]))
        except (TypeError, ValueError):
            return False
        if here != value:
            return False
    bad = [
        f"{k}: fresh {results.get(k, 'missing')!r}, snapshot {v!r}"
        for k, v in snap["results"].items()
        if k not in results or not _close(results[k], v, SNAPSHOT_RTOL)
    ]
    for k, v in (snap.get("curves") or {}).items():
        fresh = None if curves is None else curves.get(k)
        if fresh is None or len(fresh) != len(v):
            bad.append(
                f"curve {k}: fresh length {None if fresh is None else len(fresh)}, "
                f"snapshot {len(v)}"
            )
        elif not all(_close(a, b, CURVE_RTOL) for a, b in zip(fresh, v)):
            bad.append(f"curve {k} differs")
    if bad:
        raise AssertionError(
            f"book/{chapter}.ipynb no longer reproduces its snapshot "
            f"learnlaw/data/results/{chapter}.json (which the landing page shows): "
            + "; ".join(bad)
            + f". If the change is intended, execute the chapter and run "
            f"`python scripts/snapshot_results.py {chapter}`, then re-execute book/intro.ipynb."
        )
    return True
