"""learnlaw.analysis.protocol: methods tuned on validation, reported on test."""

import functools
import math

import numpy as np
import pytest
import torch

import learnlaw as ll
from learnlaw.analysis.protocol import (
    Candidate,
    compare,
    format_summary,
    hitting_ratio,
    run_trials,
    select,
    summarize,
    uniform_method,
)
from learnlaw.core.metrics import empirical_acceleration_ratio

T = 30


@pytest.fixture(scope="module")
def tasks():
    task = ll.perceptron_task(dim=8, n_train=64, n_desired=40, n_test=50, dtype=torch.float64)
    val = ll.fit.validation_task(task, 10, seed=0)
    report = task.with_(desired=val.desired)
    return task, val, report


def test_methods_see_the_validation_part_never_the_test_split(tasks):
    task, val, report = tasks
    seen = []

    def spy(t, lr):
        seen.append(t)
        return uniform_method(t, lr, T)

    trials = run_trials(val, report, {"spy": (spy, [{}])}, [0.1, 1.0])
    assert len(trials) == 2 and len(seen) == 2
    for t in seen:
        assert torch.equal(t.test[0], val.test[0])  # the held-out validation part
        assert t.n_test == 10 and t.n_desired == 30
        # not one test example reaches the method
        assert not (torch.cdist(t.desired[0], task.test[0]) == 0).any()
        assert not (torch.cdist(t.test[0], task.test[0]) == 0).any()


def test_trials_score_validation_and_report_test(tasks):
    task, val, report = tasks
    trials = run_trials(
        val, report, {"uniform": (functools.partial(uniform_method, steps=T), [{}])}, [0.3]
    )
    (t,) = trials
    pol = ll.uniform_policy(T, task.n_train, dtype=task.dtype)
    ref_val = ll.train(val, pol, 0.3)
    ref_rep = ll.train(report, pol, 0.3)
    assert t.val_auc == pytest.approx(ll.auc(ref_val.test_loss), rel=1e-12)
    assert t.val_final == pytest.approx(float(ref_val.test_loss[-1]), rel=1e-12)
    np.testing.assert_allclose(t.test, ref_rep.test_loss.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.desired, ref_rep.desired_loss.numpy(), rtol=1e-12)
    assert t.zero_fraction == 0 and not t.diverged


def test_select_and_compare_regimes(tasks):
    task, val, report = tasks
    uni = functools.partial(uniform_method, steps=T)

    def half(t, lr):  # weight only the first half of the examples: a real, different policy
        pol = torch.zeros(T, t.n_train, dtype=t.dtype)
        pol[:, : t.n_train // 2] = 2.0 / t.n_train
        return pol

    lrs = [0.1, 0.5, 2.0]
    trials = run_trials(val, report, {"uniform": (uni, [{}]), "half": (half, [{}])}, lrs)
    by = {(t.method, t.lr): t for t in trials}
    best_u = min(lrs, key=lambda lr: by["uniform", lr].val_auc)
    assert select(trials, "uniform").lr == best_u
    assert select(trials, "uniform", 0.1).lr == 0.1

    rows_a = {r["method"]: r for r in compare(trials, vocab_size=2, fixed_lr=0.1)}
    rows_b = {r["method"]: r for r in compare(trials, vocab_size=2)}
    assert rows_a["half"]["lr"] == 0.1 and rows_a["uniform"]["lr"] == 0.1
    assert rows_b["uniform"]["lr"] == best_u
    # AR against the regime's own baseline, recomputed independently
    for rows, base_lr in ((rows_a, 0.1), (rows_b, best_u)):
        h = rows["half"]
        ref = hitting_ratio(by["uniform", base_lr].test, by["half", h["lr"]].test)
        assert (math.isnan(ref) and math.isnan(h["ar_test"])) or h["ar_test"] == ref
        assert h["final_test"] == pytest.approx(float(by["half", h["lr"]].test[-1]))
        assert h["cr_test"] == pytest.approx(ll.compression_ratio(by["half", h["lr"]].test, 2))
    assert rows_a["half"]["zero_fraction"] == pytest.approx(0.5)


def test_diverged_trials_are_scored_infinite_and_skipped(tasks):
    task, val, report = tasks
    uni = functools.partial(uniform_method, steps=T)
    trials = run_trials(val, report, {"uniform": (uni, [{}])}, [0.1, 1e6])
    big = next(t for t in trials if t.lr == 1e6)
    assert big.diverged and big.val_auc == math.inf and "lr" in big.error
    assert select(trials, "uniform").lr == 0.1
    rows = compare(trials, vocab_size=2)
    assert rows[0]["lr"] == 0.1 and rows[0]["tuning_cost"] > 0

    only_big = [t for t in trials if t.lr == 1e6]
    with pytest.raises(LookupError, match="diverged"):
        select(only_big, "uniform")


def test_replaced_training_split_and_inspect(tasks):
    task, val, report = tasks

    def desired_only(t, lr):
        pol = ll.uniform_policy(T, t.n_desired, dtype=t.dtype)
        return Candidate(pol, train=t.desired)

    calls = []
    trials = run_trials(
        val,
        report,
        {
            "uniform": (functools.partial(uniform_method, steps=T), [{}]),
            "dsr": (desired_only, [{}]),
        },
        [0.5],
        inspect=lambda pol: calls.append(pol.shape) or {"n": pol.shape[1]},
    )
    dsr = next(t for t in trials if t.method == "dsr")
    ref = ll.train(
        report.with_(train=val.desired, kinds={}), ll.uniform_policy(T, 30, dtype=task.dtype), 0.5
    )
    np.testing.assert_allclose(dsr.test, ref.test_loss.numpy(), rtol=1e-12)
    assert dsr.info == {}  # inspect only sees policies over the task's own training split
    assert calls == [(T, task.n_train)]


def test_bad_inputs(tasks):
    task, val, report = tasks
    uni = functools.partial(uniform_method, steps=T)
    with pytest.raises(ValueError, match="empty"):
        run_trials(val, report, {"uniform": (uni, [{}])}, [])
    with pytest.raises(TypeError, match="policy"):
        run_trials(val, report, {"bad": (lambda t, lr: 3.0, [{}])}, [0.1])
    with pytest.raises(LookupError, match="no trial"):
        select([], "uniform")


def test_summarize_mean_and_spread():
    per_seed = [
        [dict(method="m", lr=0.1, ar_test=2.0, cr_test=4.0, final_test=0.1, cost=1.0)],
        [dict(method="m", lr=0.3, ar_test=4.0, cr_test=5.0, final_test=0.2, cost=1.0)],
        [dict(method="m", lr=0.1, ar_test=float("nan"), cr_test=6.0, final_test=0.3, cost=1.0)],
    ]
    s = summarize(per_seed)["m"]
    assert s["seeds"] == 3 and s["lrs"] == [0.1, 0.3, 0.1]
    assert s["cr_test"]["mean"] == pytest.approx(5.0) and s["cr_test"]["std"] == pytest.approx(1.0)
    assert s["ar_test"]["reached"] == 2 and math.isnan(s["ar_test"]["mean"])
    assert s["ar_test"]["min"] == 2.0 and s["ar_test"]["max"] == 4.0


def test_hitting_ratio_is_eq9_for_monotone_and_fair_otherwise():
    ref = np.array([1.0, 0.8, 0.6, 0.5, 0.4])  # monotone: L = 0.4, t_ref = T = 4
    fast = np.array([1.0, 0.5, 0.3, 0.2, 0.1])  # reaches 0.4 at t = 2
    assert hitting_ratio(ref, fast) == 2.0 == empirical_acceleration_ratio(ref, fast)
    assert hitting_ratio(ref, ref) == 1.0
    bumpy = np.array([1.0, 0.6, 0.3, 0.45, 0.4])  # best 0.3 at t = 2, ends above it
    assert empirical_acceleration_ratio(bumpy, bumpy) == 2.0  # Eq. 9 credits the baseline with 2x
    assert hitting_ratio(bumpy, bumpy) == 1.0
    assert hitting_ratio(bumpy, fast) == 1.0  # fast reaches 0.3 at t = 2 too
    assert hitting_ratio(bumpy, ref) != hitting_ratio(bumpy, ref)  # never reaches 0.3: nan
    assert math.isnan(hitting_ratio(ref, np.array([1.0, 0.9, 0.9, 0.9, 0.9])))
    assert math.isnan(hitting_ratio(np.array([0.5, 0.6, 0.7]), fast[:3]))  # never improves


def test_format_summary_marks_never_and_partial():
    per_seed = [
        [
            dict(method="m", lr=0.1, ar_test=2.0, cr_test=4.0, final_test=0.1, cost=1.0),
            dict(method="n", lr=1.0, ar_test=float("nan"), cr_test=4.0, final_test=0.1, cost=2.0),
        ],
        [
            dict(method="m", lr=0.1, ar_test=float("nan"), cr_test=4.0, final_test=0.1, cost=1.0),
            dict(method="n", lr=1.0, ar_test=float("nan"), cr_test=4.0, final_test=0.1, cost=2.0),
        ],
    ]
    text = format_summary(summarize(per_seed))
    m_line = next(x for x in text.splitlines() if x.startswith("m "))
    n_line = next(x for x in text.splitlines() if x.startswith("n "))
    assert "2 (1 of 2 seeds)" in m_line and "never" in n_line
