"""The fair grid's committed summaries (learnlaw/data/fair/*.json) and their reader,
learnlaw.analysis.fair_report: the paired ratios the chapters print are recomputed from the
per-seed rows, the bookkeeping the issue asks for holds (no chosen η at a grid edge, ≥ 5 report
seeds per perceptron case, ≥ 3 for the Transformer at T ≥ 1000, design seed 0 never reported)."""

from __future__ import annotations

import math

import pytest

from learnlaw.analysis.fair_report import (
    format_paired,
    load_fair,
    paired_between,
    paired_entry,
    seed_rows,
    speedups,
)
from learnlaw.analysis.paired import paired_ratio

CASES = ["clean512", "clean4096", "noisy512", "transformer"]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param, load_fair(request.param)


def test_report_seeds_and_horizon(case):
    name, data = case
    seeds = [s["seed"] for s in data["seeds"]]
    assert 0 not in seeds  # the design seed
    if name == "transformer":
        assert len(seeds) >= 3 and data["steps"] >= 1000
    else:
        assert len(seeds) >= 5


def test_paired_entries_are_recomputed_from_the_rows(case):
    _, data = case
    base = {r["seed"]: r for r in seed_rows(data, "b", "uniform")}
    for method, entry in data["paired"]["b"].items():
        e = entry["vs_uniform"]
        if "cr_ratio" not in e:
            continue
        rows = [r for r in seed_rows(data, "b", method) if r["seed"] in base]
        pr = paired_ratio([r["cr_test"] for r in rows], [base[r["seed"]]["cr_test"] for r in rows])
        assert e["cr_ratio"]["geometric_mean"] == pytest.approx(pr.geometric_mean, rel=1e-12)
        assert e["cr_ratio"]["low"] == pytest.approx(pr.low, rel=1e-12)
        assert paired_entry(data, "b", method) is e


def test_no_chosen_lr_at_a_grid_edge(case):
    """Every method with an η grid of its own has at_edge False in every seed; replays of a
    fitted policy (controls, schedules) and learned schedules have none (at_edge None)."""
    _, data = case
    for method in data["paired"]["b"]:
        flags = [r.get("at_edge") for r in seed_rows(data, "b", method)]
        replay = method.endswith((" control", ", scheduled")) and method != "uniform, scheduled"
        if replay or method.startswith("learned schedule"):
            assert all(f is None for f in flags), method
        else:
            assert flags and all(f is False for f in flags), method


def test_paired_between_matches_the_uniform_entry_and_is_antisymmetric(case):
    _, data = case
    method = "online relu"
    p = paired_between(data, method, "uniform")
    e = paired_entry(data, "b", method)
    assert p["cr_ratio"].geometric_mean == pytest.approx(e["cr_ratio"]["geometric_mean"], rel=1e-12)
    q = paired_between(data, "uniform", method)
    assert q["cr_ratio"].geometric_mean == pytest.approx(
        1 / p["cr_ratio"].geometric_mean, rel=1e-12
    )
    assert q["cr_ratio"].low == pytest.approx(1 / p["cr_ratio"].high, rel=1e-12)
    assert p["beats"] == e["beats"]


def test_paired_between_needs_two_common_seeds():
    data = load_fair("noisy512")
    with pytest.raises(ValueError, match="'no such method' and 'uniform' share 0 seed.*at least 2"):
        paired_between(data, "no such method", "uniform")


def test_format_paired_and_speedups(case):
    _, data = case
    methods = list(data["paired"]["b"])
    text = format_paired(data, "b", methods)
    assert text.splitlines()[0].startswith("method") and len(text.splitlines()) == len(methods) + 2
    for m in methods:
        for gm, reached, n in speedups(data, "b", m):
            assert 0 <= reached <= n and (reached == 0) == math.isnan(gm)
