"""The fair grid's committed summaries (learnlaw/data/fair/*.json) and their reader,
learnlaw.analysis.fair_report: the paired ratios the chapters print are recomputed from the
per-seed rows, the bookkeeping the issue asks for holds (no chosen η at a grid edge, ≥ 5 report
seeds per perceptron case, ≥ 3 for the Transformer at T ≥ 1000, design seed 0 never reported)."""

from __future__ import annotations

import copy
import math

import pytest

from learnlaw import LearnlawError
from learnlaw.analysis.fair_figures import forest_plot, forest_rows
from learnlaw.analysis.fair_report import (
    FITTED,
    LAW,
    ONLINE,
    best_by_validation,
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


def test_method_groups_are_the_grids(case):
    """ONLINE, FITTED and LAW name what the grid ran: the JSON's own lists, and every Law method
    with a paired entry is one of LAW."""
    _, data = case
    assert tuple(data["online"]) == ONLINE and tuple(data["fitted"]) == FITTED
    paired = set(data["paired"]["b"])
    law_like = {m for m in paired if m.split(",")[0] in ONLINE + FITTED and "control" not in m}
    assert law_like <= set(LAW) and set(LAW) & paired


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


def _synthetic(val_aucs: dict[str, dict[int, float]]) -> dict:
    """A fair-grid summary with one regime-(b) row per (method, seed) and the given val_auc."""
    seeds = sorted({s for v in val_aucs.values() for s in v})
    return {
        "case": "synthetic",
        "seeds": [
            {
                "seed": s,
                "regimes": {
                    "b": {
                        "rows": [
                            {"method": m, "val_auc": v[s], "cr_test": 1.0, "final_test": 1.0}
                            for m, v in val_aucs.items()
                            if s in v
                        ]
                    }
                },
            }
            for s in seeds
        ],
    }


def test_best_by_validation_takes_the_lowest_geometric_mean_on_common_seeds():
    # b has the lower arithmetic mean (5.05 < 5.5), a the lower geometric one (√10 ≈ 3.2 < √25.5 ≈ 5.0)
    data = _synthetic({"a": {1: 1.0, 2: 10.0}, "b": {1: 5.0, 2: 5.1}})
    assert math.sqrt(1.0 * 10.0) < math.sqrt(5.0 * 5.1)
    assert best_by_validation(data, ["a", "b"]) == "a"
    # seed 3 is only c's: it is compared on seeds 1 and 2 alone, where it is worst
    data = _synthetic({"a": {1: 2.0, 2: 2.0}, "c": {1: 3.0, 2: 3.0, 3: 0.001}})
    assert best_by_validation(data, ["a", "c"]) == "a"
    with pytest.raises(ValueError, match="share no seed"):
        best_by_validation(_synthetic({"a": {1: 1.0}, "b": {2: 1.0}}), ["a", "b"])


def test_best_by_validation_never_reads_the_test_split(case):
    _, data = case
    law = [m for m in data["paired"]["b"] if m.startswith(("online", "block", "feature", "full"))]
    best = best_by_validation(data, law)
    common = set.intersection(*({r["seed"] for r in seed_rows(data, "b", m)} for m in law))
    score = {
        m: sum(math.log(r["val_auc"]) for r in seed_rows(data, "b", m) if r["seed"] in common)
        for m in law
    }
    assert score[best] == min(score.values())
    # scrambling the test numbers does not move the choice
    scrambled = copy.deepcopy(data)
    for s in scrambled["seeds"]:
        for r in s["regimes"]["b"]["rows"]:
            if "cr_test" in r:
                r["cr_test"], r["final_test"] = 1 / r["cr_test"], 1 / r["final_test"]
    assert best_by_validation(scrambled, law) == best


def test_forest_rows_are_the_paired_entries(case):
    name, data = case
    methods = ["online relu", "block policy (10 blocks)", "no such method"]
    rows = forest_rows({name: data}, methods)
    for r in rows:
        e = paired_entry(data, "b", r["method"], r["versus"])
        assert (r["geometric_mean"], r["low"], r["high"], r["beats"]) == (
            e["cr_ratio"]["geometric_mean"],
            e["cr_ratio"]["low"],
            e["cr_ratio"]["high"],
            e["beats"],
        )
        assert r["low"] <= r["geometric_mean"] <= r["high"]
    have = {(r["method"], r["versus"]) for r in rows}
    for m in methods:
        for versus in ("uniform", "scheduled"):
            present = m in data["paired"]["b"] and f"vs_{versus}" in data["paired"]["b"][m]
            assert ((m, versus) in have) == present
    finals = forest_rows({name: data}, methods, key="final_ratio")
    assert [r["method"] for r in finals] == [r["method"] for r in rows]


def test_forest_rows_refuse_bad_arguments():
    fair = {"noisy512": load_fair("noisy512")}
    with pytest.raises(
        LearnlawError, match=r"unknown key 'auc'; expected one of \('cr_ratio', 'final_ratio'\)"
    ):
        forest_rows(fair, ["online relu"], key="auc")
    with pytest.raises(LearnlawError, match=r"unknown regime 'c'; expected one of \('a', 'b'\)"):
        forest_rows(fair, ["online relu"], regime="c")
    with pytest.raises(LearnlawError, match="none of the methods .* spell them"):
        forest_rows(fair, ["Online ReLU"])


def test_forest_plot_draws_one_mark_per_row_at_its_mean():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fair = {c: load_fair(c) for c in ("clean4096", "noisy512")}
    methods = ["online relu", "block policy (10 blocks)"]
    fig = forest_plot(fair, methods, titles={"noisy512": "flipped"})
    try:
        assert len(fig.axes) == 2 and fig.axes[1].get_title() == "flipped"
        for ax, case in zip(fig.axes, fair):
            drawn = sorted(
                float(line.get_xdata()[0])
                for line in ax.lines
                if line.get_marker() in ("o", "s") and len(line.get_xdata()) == 1
            )
            expect = sorted(r["geometric_mean"] for r in forest_rows({case: fair[case]}, methods))
            assert drawn == pytest.approx(expect, rel=1e-12)
            lo, hi = ax.get_xlim()
            assert lo < 1 < hi and ax.get_xscale() == "log"
    finally:
        plt.close(fig)
