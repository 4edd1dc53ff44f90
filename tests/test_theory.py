"""The checks of the theory chapters: KKT reports, projection KKT, finite differences (float64)."""

import math

import pytest
import torch

import learnlaw as ll
from learnlaw.analysis.theory import (
    fd_directional_derivative,
    future_contributions,
    kkt_report,
    projection_kkt,
)

F64 = torch.float64


def kkt_point(steps=5, n=12, seed=0):
    """A policy and a gradient that satisfy the KKT conditions exactly, by construction."""
    g = torch.Generator().manual_seed(seed)
    policy = torch.rand(steps, n, generator=g, dtype=F64)
    policy[policy < 0.4] = 0
    policy[:, 0] = policy[:, 0] + 0.1  # every row keeps a non-zero weight
    policy = policy / policy.sum(1, keepdim=True)
    lam = torch.randn(steps, generator=g, dtype=F64)
    grad = lam[:, None] + (policy == 0) * torch.rand(steps, n, generator=g, dtype=F64)
    return policy, grad, lam


def test_kkt_report_is_zero_at_a_kkt_point():
    policy, grad, lam = kkt_point()
    rep = kkt_report(policy, grad)
    torch.testing.assert_close(rep.multiplier, lam)
    assert float(rep.spread.max()) < 1e-14 and rep.residual < 1e-14
    assert rep.violations == 0
    assert rep.zero_fraction == pytest.approx(float((policy == 0).double().mean()))
    # a KKT point is a fixed point of the projected-gradient step, for every step size
    for eps in (1e-3, 0.1, 10.0):
        torch.testing.assert_close(ll.project_simplex(policy - eps * grad), policy)


def test_kkt_report_measures_departures():
    policy, grad, lam = kkt_point(seed=1)
    bumped = grad.clone()
    n = 0  # column 0 always carries weight (see kkt_point)
    bumped[0, n] = grad[0, n] + 1.0
    rep = kkt_report(policy, bumped)
    w = policy[0, n]
    # one support entry off by 1: weighted mean moves by w, weighted std is sqrt(w(1-w))
    assert float(rep.multiplier[0] - lam[0]) == pytest.approx(float(w))
    assert float(rep.spread[0]) == pytest.approx(math.sqrt(float(w * (1 - w))))
    assert float(rep.spread[1:].max()) < 1e-14
    off = (policy[2] == 0).nonzero()[0, 0]
    low = grad.clone()
    low[2, off] = lam[2] - 1.0  # an excluded example that would lower J
    rep = kkt_report(policy, low)
    assert rep.violations == pytest.approx(1 / int((policy == 0).sum()))
    assert kkt_report(policy, low, tol=1e9).violations == 0


def test_kkt_report_of_the_uniform_policy_has_no_off_support_pairs():
    u = ll.uniform_policy(3, 4, dtype=F64)
    grad = torch.arange(12, dtype=F64).reshape(3, 4)
    rep = kkt_report(u, grad)
    assert math.isnan(rep.violations) and rep.zero_fraction == 0
    torch.testing.assert_close(rep.multiplier, grad.mean(1))
    torch.testing.assert_close(rep.spread, grad.std(1, unbiased=False))


def test_kkt_residual_falls_along_a_policy_search():
    task = ll.perceptron_task(dim=4, n_train=10, n_desired=10, n_test=10, dtype=F64, seed=0)
    res = ll.optimize_policy(task, 6, 0.5, 0.5, 60, keep=(0, 60), progress=False)
    first = kkt_report(res.kept[0], ll.policy_gradient(task, res.kept[0], 0.5)[1])
    last = kkt_report(res.kept[60], ll.policy_gradient(task, res.kept[60], 0.5)[1])
    assert last.residual < first.residual / 20  # measured: 1.83 -> 0.0148
    assert last.zero_fraction > 0


@pytest.mark.parametrize("kwargs", [dict(grad=torch.zeros(3, 5, dtype=F64)), dict(tol=-1.0)])
def test_kkt_report_bad_inputs(kwargs):
    args = dict(policy=ll.uniform_policy(3, 4, dtype=F64), grad=torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError):
        kkt_report(**(args | kwargs))
    with pytest.raises(ll.policies.PolicyError):
        kkt_report(torch.ones(3, 4, dtype=F64), torch.zeros(3, 4, dtype=F64))


def test_projection_kkt_accepts_projections_and_rejects_other_points():
    v = torch.randn(20, 50, dtype=F64, generator=torch.Generator().manual_seed(0))
    kkt = projection_kkt(v, ll.project_simplex(v))
    assert kkt.stationarity < 1e-14 and kkt.complementarity == 0 and kkt.feasibility < 1e-14
    # τ from the KKT conditions: Σ max(v − τ, 0) = 1
    torch.testing.assert_close(
        (v - kkt.tau[:, None]).clamp_min(0).sum(1), torch.ones(20, dtype=F64)
    )
    soft = projection_kkt(v, torch.softmax(v, 1))  # on the simplex, but not the projection
    assert soft.feasibility < 1e-14 and soft.stationarity > 0.1
    x = ll.project_simplex(v)
    bad = x.clone()
    bad[0, (x[0] == 0).nonzero()[0, 0]] = 1e-3  # put a tiny weight where v is far below τ
    bad[0] /= bad[0].sum()
    assert projection_kkt(v, bad).stationarity > 0.1
    with pytest.raises(ValueError):
        projection_kkt(v, x[:, :10])
    with pytest.raises(ValueError, match="no positive"):
        projection_kkt(v, torch.zeros_like(v))


def test_fd_directional_derivative_matches_the_adjoint_gradient():
    task = ll.perceptron_task(dim=5, n_train=12, n_desired=8, n_test=8, dtype=F64, seed=4)
    g = torch.Generator().manual_seed(1)
    policy = torch.softmax(0.3 * torch.randn(7, 12, generator=g, dtype=F64), 1)
    d = torch.randn(7, 12, generator=g, dtype=F64)
    d = d - d.mean(1, keepdim=True)
    _, grad = ll.policy_gradient(task, policy, 0.5)
    fd = fd_directional_derivative(task, policy, 0.5, d, eps=1e-5)
    exact = float((grad * d).sum())
    assert abs(fd - exact) <= 1e-7 * abs(exact)
    with pytest.raises(ValueError, match="sum to 0"):
        fd_directional_derivative(task, policy, 0.5, torch.ones(7, 12, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        fd_directional_derivative(task, policy, 0.5, d[:, :3])


def test_future_contributions_closed_form():
    ct = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], dtype=F64)
    expected = -0.5 * torch.tensor([[15.0, 18.0], [12.0, 14.0], [7.0, 8.0]], dtype=F64)
    torch.testing.assert_close(future_contributions(ct, 0.5), expected)
    with pytest.raises(ValueError, match=r"\(T\+1, N\)"):
        future_contributions(torch.ones(1, 3), 0.1)


def test_future_contributions_are_exact_for_a_linear_loss():
    """With l_n(θ) = c_n·θ every gradient is constant, the Hessian is 0, and a_{t+1} is the sum
    of the later desired gradients: the approximation is then exact."""
    from torch import nn

    g = torch.Generator().manual_seed(0)
    c = torch.randn(6, 3, generator=g, dtype=F64)
    model = nn.Linear(3, 1, bias=False).double()
    task = ll.Task(
        model=model,
        params0={"weight": torch.zeros(1, 3, dtype=F64)},
        train=(c, torch.zeros(6, dtype=F64)),
        desired=(c[:2], torch.zeros(2, dtype=F64)),
        test=(c[:2], torch.zeros(2, dtype=F64)),
        loss_fn=lambda out, y: out[:, 0],
        vocab_size=2,
    )
    policy = torch.softmax(torch.randn(5, 6, generator=g, dtype=F64), 1)
    _, grad = ll.policy_gradient(task, policy, 0.3)
    run = ll.train(task, policy, 0.3, keep_params=True)
    ct = ll.law.contribution_trajectory(task, run.trajectory)
    torch.testing.assert_close(future_contributions(ct, 0.3), grad, rtol=1e-12, atol=1e-14)
