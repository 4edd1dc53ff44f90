"""Committed results that the chapters read, installed with learnlaw as package data.

A chapter opened alone (on Colab, or copied into an empty folder) finds them here, read through
:mod:`importlib.resources`:

- ``perceptron_variants.json``: the perceptron variants (``scripts/perceptron_variants.py``);
- ``scaling_grid.json``: the scaling chapter's seed sweep (``scripts/scaling_grid.sh seeds``);
- ``bench_distributed.json``: the records of ``python -m learnlaw.bench --distributed --record
  FILE`` (one epoch on 1 and on 2 gloo processes) that the scale chapter quotes;
- ``bench_autograd.json``: the record of ``python -m learnlaw.bench --vs-autograd --record FILE``
  (the adjoint against autograd through the unrolled loop, time and peak memory against T), with
  the unrolled baseline's ``over_budget`` runs and the Transformer's ``epoch_over_plain`` rows,
  that the policy-search chapter plots;
- ``results/<chapter>.json``: a snapshot of a chapter's headline numbers (and, for the
  perceptron, its loss curves), taken by ``scripts/snapshot_results.py`` from an execution at the
  chapter's default parameters. The landing page shows them; the chapter itself, run at those
  parameters, checks its fresh numbers against them with :func:`check_snapshot`.

A snapshot records the numeric platform that made it (:func:`platform`: torch's version, the
device type and the CPU kernel path). Floating-point sums run in another order on another CPU
kernel path, another thread count or a GPU, so a chapter's numbers are only reproducible to the
last digits on the platform that made them: :func:`check_snapshot` compares them to
``SNAPSHOT_RTOL`` there, to ``CROSS_CPU_RTOL`` on another CPU (a bound derived from measured
differences), and on a GPU, where nothing was measured, prints a note of what differs instead of
failing. The claims a chapter's prose makes are asserted in the chapter itself, everywhere.

Functions: :func:`load_json` (a committed file), :func:`snapshot` (a chapter's snapshot),
:func:`check_snapshot`, :func:`platform`, :func:`cpu_model`; tolerances: :data:`SNAPSHOT_RTOL`,
:data:`CURVE_RTOL`, :data:`CROSS_CPU_RTOL`, :data:`CROSS_CPU_CURVE_RTOL`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from learnlaw.core.checks import MissingFileError

__all__ = [
    "load_json",
    "snapshot",
    "check_snapshot",
    "platform",
    "cpu_model",
    "SNAPSHOT_RTOL",
    "CURVE_RTOL",
    "CROSS_CPU_RTOL",
    "CROSS_CPU_CURVE_RTOL",
]

SNAPSHOT_RTOL = 1e-6  # the platform that made the snapshot (torch is bit-reproducible there)
CURVE_RTOL = 1e-4  # curves are stored with 6 significant digits
CROSS_CPU_RTOL = 2e-3
"""Another processor, CPU kernel path, thread count or torch version. Measured at the chapters'
defaults against the committed snapshots: the Transformer's largest relative change 6.4e-4
(``sim_optimal``, on another AVX-512 processor), 5.1e-4 (no vectorised kernels,
``ATEN_CPU_CAPABILITY=default``) and 8.9e-5 (AVX2 kernels); the perceptron's 3.8e-5 and the
scaling chapter's 5.3e-6. The bound is about 3 times the largest."""
CROSS_CPU_CURVE_RTOL = 1e-3
"""Curves on another CPU (the perceptron's: bit-identical in the same measurement); the bound
of the numbers."""


def platform(device: str = "cpu") -> dict:
    """The numeric platform a chapter runs on: what decides the order of its floating-point sums.

    torch's kernel path alone does not identify it: two AVX-512 machines with the same torch
    gave the Transformer chapter's ``sim_optimal`` 2.5549 and 2.5566 (relative 6.4e-4), since
    MKL and oneDNN pick their own kernels by CPU model. On a CPU the record therefore also names
    the processor (vendor, family, model, stepping and a hash of its feature flags), and a
    snapshot is compared to the last digits only where all of it matches.

    Args:
        device: the device the chapter runs on (its ``device`` variable).

    Returns:
        ``{"torch": "2.13.0+cpu", "device": "cpu", "cpu_capability": "AVX512", "cpu": "..."}``:
        torch's version, the device type, the vectorised CPU kernels torch dispatches to
        (``torch.backends.cpu.get_cpu_capability()``; ``ATEN_CPU_CAPABILITY`` changes it), and
        on a CPU the processor (:func:`cpu_model`).
    """
    import torch

    out = {
        "torch": torch.__version__,
        "device": torch.device(device).type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if out["device"] == "cpu":
        out["cpu"] = cpu_model()
    return out


def cpu_model() -> str:
    """The processor: ``"GenuineIntel family 6 model 143 stepping 8, flags 1a2b3c4d5e6f"``.

    Read from ``/proc/cpuinfo`` (Linux); elsewhere :func:`platform.processor` and the machine.
    The flags are hashed (sha256, 12 hex digits): two CPUs of one model with different enabled
    features (a hypervisor may hide some) differ.
    """
    import hashlib
    import platform as _platform

    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    first = text.split("\n\n", 1)[0]
    info = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    if "flags" not in info:
        return f"{_platform.processor() or 'unknown'} {_platform.machine()}"
    flags = hashlib.sha256(" ".join(sorted(info["flags"].split())).encode()).hexdigest()[:12]
    return (
        f"{info.get('vendor_id', '?')} family {info.get('cpu family', '?')} model "
        f"{info.get('model', '?')} stepping {info.get('stepping', '?')}, flags {flags}"
    )


def _files():
    return resources.files(__name__)


def load_json(name: str) -> Any:
    """The parsed JSON file ``name`` (e.g. ``"scaling_grid.json"``) from learnlaw's data.

    Raises:
        MissingFileError: no such file (a ``FileNotFoundError``); the message lists the files
            there are.
    """
    path = _files().joinpath(*name.split("/"))
    if not path.is_file():
        have = sorted(
            p.name if p.is_file() else f"{p.name}/"
            for p in _files().iterdir()
            if p.name.endswith(".json") or (p.is_dir() and not p.name.startswith("_"))
        )
        raise MissingFileError(f"learnlaw has no data file {name!r}; learnlaw/data has {have}")
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


def _rel(a: Any, b: Any) -> float:
    """|a − b| / |b| for two numbers (0 when equal, inf when one is missing or NaN)."""
    if _close(a, b, 0.0):
        return 0.0
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return math.inf
    if math.isnan(a) or math.isnan(b):
        return math.inf
    return abs(a - b) / max(abs(b), 1e-12)


def check_snapshot(
    chapter: str,
    results: Mapping[str, Any],
    namespace: Mapping[str, Any],
    curves: Mapping[str, Any] | None = None,
) -> bool:
    """Check a chapter's fresh numbers against its committed snapshot, at its default parameters.

    The tolerance depends on where the chapter runs (:func:`platform` of ``namespace["device"]``
    against the snapshot's ``"platform"``):

    * the platform that made the snapshot: numbers within ``SNAPSHOT_RTOL``, curves within
      ``CURVE_RTOL``; a difference raises;
    * another CPU (kernel path, torch version): numbers within ``CROSS_CPU_RTOL``, curves
      within ``CROSS_CPU_CURVE_RTOL`` (bounds derived from measured differences); a
      difference raises;
    * another device type (a GPU): float32 reductions in another order, never measured by the
      snapshot; the differences are printed as a note, nothing raises.

    Args:
        chapter: the snapshot's name (``learnlaw/data/results/<chapter>.json``).
        results: the chapter's fresh headline numbers; every key of the snapshot's ``results``
            must be there.
        namespace: where the chapter's parameters live (``globals()`` in a notebook), and its
            ``device`` (``"cpu"`` if absent).
        curves: fresh curves, compared with the snapshot's, if it has any.

    Returns:
        ``False`` (nothing compared) when a parameter differs from the snapshot's, e.g. a
        papermill run at other sizes, or when a run on a GPU differs (after the note); ``True``
        when everything agrees within the platform's tolerance.

    Raises:
        AssertionError: a number or curve differs beyond the tolerance on a CPU, or a number
            or curve is missing anywhere; the message names them, the tolerance and the fix.
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
    made_on = snap.get("platform")
    here = platform(str(namespace.get("device", "cpu")))
    if made_on == here:
        where, rtol, curve_rtol = "the platform that made the snapshot", SNAPSHOT_RTOL, CURVE_RTOL
    elif made_on is not None and made_on["device"] == here["device"] == "cpu":
        where, rtol, curve_rtol = "another CPU", CROSS_CPU_RTOL, CROSS_CPU_CURVE_RTOL
    else:
        where, rtol, curve_rtol = "another device", None, None
    missing, bad = [], []
    for k, v in snap["results"].items():
        if k not in results:
            missing.append(f"{k}: missing")
        elif not _close(results[k], v, rtol or SNAPSHOT_RTOL):
            bad.append(
                f"{k}: fresh {results[k]!r}, snapshot {v!r} (relative {_rel(results[k], v):.2g})"
            )
    for k, v in (snap.get("curves") or {}).items():
        fresh = None if curves is None else curves.get(k)
        if fresh is None or len(fresh) != len(v):
            missing.append(
                f"curve {k}: fresh length {None if fresh is None else len(fresh)}, "
                f"snapshot {len(v)}"
            )
            continue
        worst = max(_rel(a, b) for a, b in zip(fresh, v))
        if worst > (CURVE_RTOL if curve_rtol is None else curve_rtol):
            bad.append(f"curve {k} differs (largest relative difference {worst:.2g})")
    fix = (
        f"If the change is intended, execute the chapter and run "
        f"`python scripts/snapshot_results.py {chapter}`, then re-execute book/intro.ipynb."
    )
    if missing or (bad and rtol is not None):
        tol = "" if rtol is None else f" (on {where}: relative {rtol:g}, curves {curve_rtol:g})"
        raise AssertionError(
            f"book/{chapter}.ipynb no longer reproduces its snapshot "
            f"learnlaw/data/results/{chapter}.json (which the landing page shows){tol}: "
            + "; ".join(missing + bad)
            + f". Snapshot made on {made_on}, this run on {here}. "
            + fix
        )
    if bad:
        print(
            f"Note: this run ({here}) is on another device than the snapshot's ({made_on}), "
            f"where sums run in another order; these numbers differ from the snapshot beyond "
            f"{SNAPSHOT_RTOL:g} (the chapter's own assertions above still hold): " + "; ".join(bad)
        )
        return False
    return True
