"""learnlaw.analysis: regularisers (finite differences), holdout split, evaluation, SIM fit."""

import math

import numpy as np
import pytest
import torch
from helpers import central_difference, sparse_random_policy

import learnlaw as ll
from learnlaw.analysis.diagnostics import kind_weight_shares, law_diagnostics
from learnlaw.analysis.evaluation import evaluate_policy, holdout_split
from learnlaw.analysis.penalties import entropy_penalty, smoothness_penalty
from learnlaw.analysis.sim_fit import fit_sim_cr

F64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=6, n_train=30, n_desired=16, n_test=12, dtype=F64, seed=3)


def _finite_difference(penalty, policy, direction, h=1e-6):
    return central_difference(lambda p: penalty(p)[0], policy, direction, h)


@pytest.mark.parametrize("make", [lambda: smoothness_penalty(0.7), lambda: entropy_penalty(0.3)])
def test_penalty_gradients_match_finite_differences(make):
    penalty = make()
    policy = sparse_random_policy(5, 7, spread=3.0).clamp_min(1e-3)  # keep the entropy's log smooth
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        d = torch.randn(policy.shape, generator=g, dtype=F64)
        _, grad = penalty(policy)
        assert float((grad * d).sum()) == pytest.approx(
            _finite_difference(penalty, policy, d), rel=1e-6, abs=1e-9
        )


def test_smoothness_closed_form_and_zero_on_constant_policies():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=F64)
    value, grad = smoothness_penalty(2.0)(p)
    assert value == pytest.approx(2.0 * (2 + 0.5))
    # row sums of the gradient vanish: it only moves weight between examples
    torch.testing.assert_close(grad.sum(1), torch.zeros(3, dtype=F64))
    value, grad = smoothness_penalty(2.0)(ll.uniform_policy(4, 3, dtype=F64))
    assert value == 0 and float(grad.abs().max()) == 0
    assert smoothness_penalty(0.5).__name__ == "smoothness_0.5"


def test_entropy_is_minimised_by_the_uniform_policy():
    pen = entropy_penalty(1.0)
    uniform = ll.uniform_policy(3, 5, dtype=F64)
    value, grad = pen(uniform)
    assert value == pytest.approx(-3 * math.log(5))
    # at the uniform policy the gradient is constant over each row: no projected step moves it
    torch.testing.assert_close(ll.project_simplex(uniform - 0.1 * grad), uniform)
    assert pen(sparse_random_policy(3, 5, spread=3.0))[0] > value
    # a zero weight gets a finite gradient
    assert torch.isfinite(pen(torch.tensor([[1.0, 0.0]], dtype=F64))[1]).all()


def test_penalties_reject_bad_weights():
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="penalty weight"):
            smoothness_penalty(bad)
    with pytest.raises(ValueError, match="floor"):
        entropy_penalty(1.0, floor=0.0)


def test_smoothness_penalty_smooths_a_search(task):
    free = ll.optimize_policy(task, 12, 0.5, 0.2, 4, progress=False)
    smooth = ll.optimize_policy(
        task, 12, 0.5, 0.2, 4, penalty=smoothness_penalty(0.5), progress=False
    )
    rough = lambda p: float((p[1:] - p[:-1]).pow(2).sum())  # noqa: E731
    assert rough(smooth.policy) < rough(free.policy)
    assert "penalty" in smooth.history[0]


def test_holdout_split_partitions_the_desired_set(task):
    h = holdout_split(task, 5, seed=1)
    assert h.n_desired == 11 and h.n_test == 5
    rows = lambda x: {tuple(r.tolist()) for r in x}  # noqa: E731
    assert rows(h.desired[0]) | rows(h.test[0]) == rows(task.desired[0])
    assert not rows(h.desired[0]) & rows(h.test[0])
    torch.testing.assert_close(h.train[0], task.train[0])
    h2 = holdout_split(task, 5, seed=1)
    torch.testing.assert_close(h.test[0], h2.test[0])  # same seed, same split
    for bad in (0, 1, 15, 2.5):
        with pytest.raises(ValueError, match="n_holdout"):
            holdout_split(task, bad)


def test_evaluate_policy_of_the_uniform_policy_is_the_baseline(task):
    uniform = ll.uniform_policy(20, task.n_train, dtype=F64)
    ev = evaluate_policy(task, uniform, 0.5)
    run = ll.train(task, uniform, 0.5)
    assert ev["ar_desired"] == 1 and ev["ar_test"] == 1 and ev["zero_fraction"] == 0
    assert ev["J"] == pytest.approx(run.auc("desired"))
    assert ev["cr_test"] == pytest.approx(run.compression_ratio("test"))
    # a searched policy is faster on the desired set, and consistent with the search's record
    res = ll.optimize_policy(task, 20, 0.5, 0.3, 5, progress=False)
    ev = evaluate_policy(task, res.policy, 0.5, baseline=res.baseline)
    assert ev["J"] == pytest.approx(res.history[-1]["J"])
    assert ev["ar_test"] == pytest.approx(res.history[-1]["ar_test"], nan_ok=True)
    assert ev["ar_desired"] >= 1
    with pytest.raises(ValueError, match="steps"):
        evaluate_policy(task, res.policy, 0.5, baseline=ll.train(task, uniform[:10], 0.5))


def test_law_diagnostics_against_direct_computation(task):
    policy = sparse_random_policy(15, task.n_train, seed=4, spread=3.0)
    policy[:, :3] = 0
    policy = policy / policy.sum(1, keepdim=True)
    d = law_diagnostics(task, policy, 0.5, loss_threshold=0.05, head=4)
    run = ll.train(task, policy, 0.5, keep_params=True)
    ct = torch.stack([ll.contributions(task, run.params_at(t)) for t in range(15)])
    assert d.sim == pytest.approx(ll.sim(ct, policy).mean)
    torch.testing.assert_close(d.sim_per_step, ll.sim(ct, policy).per_step)
    assert d.zero_fraction_noncontrib == pytest.approx(ll.law.zero_weight_fraction(policy, ct))
    torch.testing.assert_close(d.noncontrib_per_step, (ct <= 0).sum(1))
    torch.testing.assert_close(d.zero_noncontrib_per_step, ((ct <= 0) & (policy == 0)).sum(1))
    ratio = d.zero_noncontrib_per_step.sum() / d.noncontrib_per_step.sum()
    assert float(ratio) == pytest.approx(d.zero_fraction_noncontrib)
    assert int(d.zero_noncontrib_per_step.sum()) > 0  # the test exercises zero weights
    early = law_diagnostics(task, policy, 0.5, before=5)
    assert early.zero_fraction_noncontrib == pytest.approx(
        ll.law.zero_weight_fraction(policy[:5], ct[:5])
    )
    torch.testing.assert_close(d.head_contributions, ct[:4])
    losses = torch.stack([task.losses(run.params_at(t)) for t in range(15)])
    ratios = ll.law.learned_weight_ratios(policy, losses, 0.05)
    assert d.learned_count == len(ratios) > 0
    assert d.learned_below == pytest.approx(float((ratios < 0.2).double().mean()))
    assert d.learned_cdf[-1] == 1 and bool((d.learned_cdf.diff() >= 0).all())
    assert d.cr == pytest.approx(run.compression_ratio("desired"))
    # with a threshold no example reaches, the CDF is undefined rather than made up
    none = law_diagnostics(task, policy, 0.5, loss_threshold=0.0)
    assert none.learned_count == 0 and math.isnan(none.learned_below)
    with pytest.raises(ValueError, match="split"):
        law_diagnostics(task, policy, 0.5, split="train")


def test_fit_sim_cr_recovers_planted_parameters():
    a, b, c = 2.0, 6.5, 0.8
    cr = np.linspace(4.0, 6.3, 25)
    sim_values = c * np.log(a / (b - cr))
    fit = fit_sim_cr(cr, sim_values)
    assert fit.b == pytest.approx(b, rel=1e-4)
    assert fit.c == pytest.approx(c, rel=1e-3) and fit.a == pytest.approx(a, rel=1e-3)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(fit(cr), sim_values, rtol=1e-4)
    assert np.isnan(fit(np.array([b + 1]))).all()  # beyond the asymptote the law is undefined
    # noise: still close, r² below 1
    rng = np.random.default_rng(0)
    noisy = fit_sim_cr(cr, sim_values + rng.normal(0, 0.01, cr.shape))
    assert noisy.b == pytest.approx(b, rel=0.05) and 0.95 < noisy.r2 < 1


def test_fit_sim_cr_rejects_bad_inputs():
    with pytest.raises(ValueError, match="length"):
        fit_sim_cr([1, 2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        fit_sim_cr([1, 2, 3], [1, np.nan, 3])
    with pytest.raises(ValueError, match="equal"):
        fit_sim_cr([2, 2, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="b_max"):
        fit_sim_cr([1, 2, 3], [1, 2, 3], b_max=2.5)


def test_kind_weight_shares():
    policy = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.0, 0.0, 0.5, 0.5]], dtype=F64)
    kinds = {
        "a": torch.tensor([True, True, False, False]),
        "b": torch.tensor([False, False, True, True]),
        "empty": torch.zeros(4, dtype=torch.bool),
    }
    shares = kind_weight_shares(policy, kinds)
    assert set(shares) == {"a", "b"}
    torch.testing.assert_close(shares["a"], torch.tensor([0.75, 0.0], dtype=F64))
    torch.testing.assert_close(shares["a"] + shares["b"], torch.ones(2, dtype=F64))
    rel = kind_weight_shares(ll.uniform_policy(3, 4, dtype=F64), kinds, relative=True)
    torch.testing.assert_close(rel["b"], torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="bool mask"):
        kind_weight_shares(policy, {"x": torch.ones(3, dtype=torch.bool)})
