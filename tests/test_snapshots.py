"""The chapters' committed snapshots (learnlaw/data/results/), which the landing page shows.

Each chapter, executed at its default parameters, checks its fresh headline numbers against its
snapshot (``learnlaw.data.check_snapshot``), and the landing page reads the snapshots. These
tests make sure that check really runs under ``make test``: a snapshot was taken at the
chapter's current defaults, and the chapter calls the check.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

from learnlaw import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import snapshot_results  # noqa: E402

SNAPSHOTS = sorted((ROOT / "learnlaw" / "data" / "results").glob("*.json"))
NAMES = [p.stem for p in SNAPSHOTS]


def test_every_chapter_the_landing_page_shows_has_a_snapshot():
    assert set(NAMES) == set(snapshot_results.HEADLINE)
    intro = "\n".join(c.source for c in nbformat.read(ROOT / "book" / "intro.ipynb", 4).cells)
    for name in NAMES:
        assert f'"{name}"' in intro, f"book/intro.ipynb does not read the {name} snapshot"


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_was_taken_at_the_chapters_defaults_and_the_chapter_checks_it(name):
    snap = data.snapshot(name)
    chapter = ROOT / snap["chapter"]
    assert snap["parameters"] == snapshot_results.default_parameters(chapter), (
        f"{chapter.name}'s defaults changed since its snapshot: execute it and run "
        f"`python scripts/snapshot_results.py {name}`"
    )
    assert set(snap["results"]) == set(snapshot_results.HEADLINE[name])
    nb = nbformat.read(chapter, as_version=4)
    calls = [
        c for c in nb.cells if c.cell_type == "code" and f'check_snapshot("{name}"' in c.source
    ]
    assert len(calls) == 1, f"{chapter.name} must call check_snapshot({name!r}, ...) once"
    json.dumps(snap, allow_nan=False)  # NaN is stored as null


def test_check_snapshot_compares_at_the_defaults_only_and_fails_on_a_change(monkeypatch):
    snap = data.snapshot("perceptron")
    results, curves, params = dict(snap["results"]), snap["curves"], dict(snap["parameters"])
    # The tolerances below are those of the snapshot's own platform (SNAPSHOT_RTOL): set it, so
    # that the test means the same on any host (another CPU takes CROSS_CPU_RTOL, tested below).
    made_on = snap["platform"]
    monkeypatch.setattr(data, "platform", lambda device="cpu": {**made_on, "device": "cpu"})
    assert data.check_snapshot("perceptron", results, params, curves) is True
    assert data.check_snapshot("perceptron", results, {**params, "steps": 10}, curves) is False
    assert data.check_snapshot("perceptron", results, {}, curves) is False
    changed = {**results, "ar_desired": results["ar_desired"] * (1 + 1e-4)}
    with pytest.raises(AssertionError, match="ar_desired: fresh"):
        data.check_snapshot("perceptron", changed, params, curves)
    with pytest.raises(AssertionError, match="ar_test: fresh"):
        data.check_snapshot("perceptron", {**results, "ar_test": 2.0}, params, curves)
    bent = {**curves, "near_optimal_test": [x * 1.01 for x in curves["near_optimal_test"]]}
    with pytest.raises(AssertionError, match="curve near_optimal_test differs"):
        data.check_snapshot("perceptron", results, params, bent)
    with pytest.raises(AssertionError, match="curve .* fresh length None"):
        data.check_snapshot("perceptron", results, params, None)
    nan = {**results, "ar_test": math.nan}  # a fresh NaN matches a stored null
    assert data.check_snapshot("perceptron", nan, params, curves) is True


def test_missing_data_is_named():
    with pytest.raises(FileNotFoundError, match="learnlaw has no data file 'nope.json'"):
        data.load_json("nope.json")


def test_check_snapshot_tolerance_follows_the_platform(monkeypatch, capsys):
    snap = data.snapshot("perceptron")
    results, curves, params = dict(snap["results"]), snap["curves"], dict(snap["parameters"])
    made_on = snap["platform"]
    assert made_on == {"torch": made_on["torch"], "device": "cpu", "cpu_capability": "AVX512"}
    moved = {**results, "ar_desired": results["ar_desired"] * (1 + 1e-4)}
    bent = {**curves, "near_optimal_test": [x * (1 + 1e-4) for x in curves["near_optimal_test"]]}
    far = {**results, "ar_desired": results["ar_desired"] * (1 + 1e-2)}

    monkeypatch.setattr(data, "platform", lambda device="cpu": {**made_on, "device": "cpu"})
    with pytest.raises(AssertionError, match=r"ar_desired: fresh .*relative 0\.0001"):
        data.check_snapshot("perceptron", moved, params, curves)  # the same platform: to 1e-6

    other_cpu = {**made_on, "cpu_capability": "AVX2"}
    monkeypatch.setattr(data, "platform", lambda device="cpu": other_cpu)
    assert data.check_snapshot("perceptron", moved, params, bent) is True  # within CROSS_CPU_RTOL
    with pytest.raises(AssertionError, match="on another CPU: relative 0.002"):
        data.check_snapshot("perceptron", far, params, curves)
    with pytest.raises(AssertionError, match="ar_test: missing"):
        data.check_snapshot(
            "perceptron", {k: v for k, v in results.items() if k != "ar_test"}, params, curves
        )

    gpu = {**made_on, "device": "cuda"}
    monkeypatch.setattr(data, "platform", lambda device="cpu": gpu)
    capsys.readouterr()
    assert data.check_snapshot("perceptron", far, {**params, "device": "cuda"}, curves) is False
    note = capsys.readouterr().out
    assert note.startswith("Note: this run") and "ar_desired" in note and "0.01" in note
    assert data.check_snapshot("perceptron", results, params, curves) is True  # nothing differs
    with pytest.raises(AssertionError, match="ar_test: missing"):  # a missing number: everywhere
        data.check_snapshot(
            "perceptron", {k: v for k, v in results.items() if k != "ar_test"}, params, curves
        )


def test_platform_names_torch_the_device_and_the_cpu_kernels():
    import torch

    here = data.platform()
    assert here == {
        "torch": torch.__version__,
        "device": "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": data.cpu_model(),
    }
    gpu = data.platform("cuda:1")
    assert gpu == {k: v for k, v in here.items() if k != "cpu"} | {"device": "cuda"}
    if Path("/proc/cpuinfo").exists():  # Linux: vendor, family, model, stepping, flags' hash
        assert re.fullmatch(
            r"\S+ family \d+ model \d+ stepping \d+, flags [0-9a-f]{12}", here["cpu"]
        )


def test_a_snapshot_without_the_processor_is_compared_as_from_another_cpu(monkeypatch):
    """Snapshots that name only torch's kernel path (all of them before the processor was
    recorded) are compared within CROSS_CPU_RTOL on every CPU: the same capability on another
    processor moved the Transformer's numbers by up to 6.4e-4."""
    snap = data.snapshot("perceptron")
    results, curves, params = dict(snap["results"]), snap["curves"], dict(snap["parameters"])
    assert "cpu" not in snap["platform"]
    here = {**snap["platform"], "cpu": "GenuineIntel family 6 model 1 stepping 1, flags 0"}
    monkeypatch.setattr(data, "platform", lambda device="cpu": here)
    moved = {**results, "ar_desired": results["ar_desired"] * (1 + 1e-4)}
    assert data.check_snapshot("perceptron", moved, params, curves) is True  # within CROSS_CPU_RTOL
