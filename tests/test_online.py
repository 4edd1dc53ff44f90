"""Online Learning-Law policies: each rule against an independent re-computation (float64).

γ_t is recomputed by hand from θ_t of ``train(task, result.policy, lr, keep_params=True)``, the
contributions of :func:`learnlaw.contributions` at θ_t and the rule's formula; the quadratic
rule against a dense solve of its quadratic programme (per-example Jacobian and Hessian by
plain autograd, SLSQP) and its KKT conditions.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch.func import functional_call, jacrev

import learnlaw as ll
from learnlaw.core.dispatch import kernels_for
from learnlaw.policies.online import ONLINE_RULES, _Curvature, project_capped_simplex
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
LR = 0.5


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=8, n_train=48, n_desired=24, n_test=24, dtype=F64, seed=3)


@pytest.fixture(scope="module")
def mlp():
    return mlp_task(
        dim=4, hidden=5, classes=3, n_train=24, n_desired=12, n_test=12, dtype=F64, seed=2
    ).with_(kernels="autodiff")


def by_hand(ct, power=1.0):
    pos = torch.clamp(ct, min=0)
    if not bool((pos > 0).any()):
        return torch.full_like(ct, 1 / len(ct))
    w = pos**power
    return w / w.sum()


def assert_same_curves(a, b):
    for x, y in ((a.desired_loss, b.desired_loss), (a.test_loss, b.test_loss)):
        assert bool(((x - y).abs() <= 1e-10 * y.abs()).all())


RULE_CASES = [("perceptron", "relu", {}), ("perceptron", "power", {"power": 1})]
RULE_CASES += [("perceptron", "power", {"power": p}) for p in (0.5, 2.5, 4)]
RULE_CASES += [("mlp", "relu", {}), ("mlp", "power", {"power": 2.5})]


@pytest.mark.parametrize("which, rule, params", RULE_CASES)
def test_simple_rules_match_a_recomputation(task, mlp, which, rule, params):
    t_ = task if which == "perceptron" else mlp
    steps = 30 if which == "perceptron" else 12
    res = ll.online_policy(t_, steps, LR, rule, keep_contributions=True, **params)
    ref = ll.train(t_, res.policy, LR, keep_params=True)
    assert_same_curves(res.run, ref)
    ll.policies.validate_policy(res.policy, steps=steps, n=t_.n_train)
    for t in (0, 1, 7, steps - 1):
        ct = ll.contributions(t_, ref.params_at(t))  # CT at θ_t of the replayed run
        torch.testing.assert_close(res.contributions[t], ct, rtol=1e-9, atol=1e-13)
        torch.testing.assert_close(
            res.policy[t], by_hand(ct, params.get("power", 1.0)), rtol=1e-9, atol=1e-13
        )
    # the rule zeroes exactly the examples that do not contribute
    assert bool(((res.policy == 0) == (res.contributions <= 0)).all())


def test_relu_is_uniform_when_no_example_contributes(task):
    # Desired examples are the training inputs with flipped labels: every CT_n < 0 at θ₀
    # (CT_n = mean_k (o_k − y'_k)(o_n − y_n) x_k·x_n with x_k·x_n = ‖x_n‖² on the diagonal and
    # orthogonal inputs elsewhere).
    x = torch.eye(4, dtype=F64) * 3
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64)
    t_ = ll.perceptron_task(dim=4, n_train=4, dtype=F64).with_(
        train=(x, y), desired=(x, 1 - y), test=(x, y)
    )
    ct = ll.contributions(t_)
    assert bool((ct < 0).all())
    res = ll.online_policy(t_, 3, 0.1, "power", power=2)
    torch.testing.assert_close(res.policy[0], torch.full((4,), 0.25, dtype=F64))


def test_contributions_use_the_given_part_of_the_desired_split(task):
    part = (task.desired[0][:10], task.desired[1][:10])
    res = ll.online_policy(task, 12, LR, "relu", desired=part)
    ref = ll.train(task, res.policy, LR, keep_params=True)
    assert_same_curves(res.run, ref)  # the curves still use the task's own splits
    sub = task.with_(desired=part)
    for t in (0, 5, 11):
        ct = ll.contributions(sub, ref.params_at(t))
        torch.testing.assert_close(res.policy[t], by_hand(ct), rtol=1e-9, atol=1e-13)
    full = ll.online_policy(task, 12, LR, "relu")
    assert not torch.allclose(full.policy, res.policy)


# -- the quadratic rule ------------------------------------------------------------------------
def dense_model(t_, theta):
    """G (N, P) and H_dsr (P, P) by plain autograd, independent of the kernels."""
    spec = t_.spec

    def losses(th, x, y):
        return t_.loss_fn(functional_call(t_.model, spec.unflatten(th), (x,)), y)

    g = jacrev(losses)(theta, *t_.train)
    h = torch.autograd.functional.hessian(lambda th: losses(th, *t_.desired).mean(), theta)
    return g, h


def solve_qp(ct, m, lr, cap):
    """argmin −η γ·ct + ½η² γᵀMγ over {Σγ = 1, 0 ≤ γ ≤ cap} by SLSQP."""
    c, mm = ct.numpy(), m.numpy()
    n = len(c)
    res = minimize(
        lambda g: -lr * g @ c + 0.5 * lr**2 * g @ mm @ g,
        np.full(n, 1 / n),
        jac=lambda g: -lr * c + lr**2 * mm @ g,
        bounds=[(0, cap)] * n,
        constraints=[{"type": "eq", "fun": lambda g: g.sum() - 1, "jac": lambda g: np.ones(n)}],
        method="SLSQP",
        options=dict(ftol=1e-15, maxiter=2000),
    )
    assert res.success, res.message
    return torch.as_tensor(res.x)


@pytest.mark.parametrize("cap", [None, 3.0])
def test_quadratic_rule_solves_its_quadratic_programme(cap):
    # P = 16 ≥ N = 12 and K = 48 ≥ D: M = G H Gᵀ is positive definite, the minimiser unique.
    t_ = ll.perceptron_task(dim=16, n_train=12, n_desired=48, n_test=8, dtype=F64, seed=4)
    lr, steps = 1.0, 6
    res = ll.online_policy(t_, steps, lr, "quadratic", cap=cap, iters=3000, tol=1e-14)
    ref = ll.train(t_, res.policy, lr, keep_params=True)
    assert_same_curves(res.run, ref)
    n = t_.n_train
    for t in (0, 3, steps - 1):
        theta = ref.trajectory[t]
        ct = ll.contributions(t_, ref.params_at(t))
        g, h = dense_model(t_, theta)
        m = g @ h @ g.T
        gamma = res.policy[t]
        expected = solve_qp(ct, m, lr, 1.0 if cap is None else cap / n)
        torch.testing.assert_close(gamma, expected, rtol=0, atol=2e-6)
        # KKT: the contribution after the step is equal on the free support, lower at 0 and
        # higher at the cap (the one-step Learning Law)
        after = ct - lr * m @ gamma
        hi = 1.0 if cap is None else cap / n
        free = (gamma > 1e-9) & (gamma < hi - 1e-9)
        mu = after[free].mean()
        scale = float(ct.abs().max())
        assert float((after[free] - mu).abs().max()) <= 1e-6 * scale
        assert bool((after[gamma <= 1e-9] <= mu + 1e-6 * scale).all())
        assert bool((after[gamma >= hi - 1e-9] >= mu - 1e-6 * scale).all())
    if cap is not None:
        assert float(res.policy.max()) <= cap / n + 1e-12
        assert bool((res.policy == cap / n).any())  # the trust region is active here


def test_curvature_products_match_dense_autograd(mlp):
    # The MLP path (autodiff kernels, forward-over-reverse Hessian-vector products)
    theta = mlp.spec.flatten(mlp.params0) + 0.1
    ops = _Curvature(kernels_for(mlp), mlp)
    ops.at(theta)
    g, h = dense_model(mlp, theta)
    gen = torch.Generator().manual_seed(0)
    gamma = torch.rand(mlp.n_train, generator=gen, dtype=F64)
    v = torch.randn(mlp.n_params, generator=gen, dtype=F64)
    torch.testing.assert_close(ops.gt(gamma), g.T @ gamma)
    torch.testing.assert_close(ops.g(v), g @ v)
    torch.testing.assert_close(ops.h(v), h @ v)


def test_quadratic_rule_on_the_mlp_replays(mlp):
    res = ll.online_policy(mlp, 3, LR, "quadratic", cap=4.0, iters=2)
    assert_same_curves(res.run, ll.train(mlp, res.policy, LR))
    assert float(res.policy.max()) <= 4.0 / mlp.n_train + 1e-12
    assert res.inner_iters.shape == (3,) and int(res.inner_iters.min()) >= 1


def test_project_capped_simplex_kkt():
    gen = torch.Generator().manual_seed(1)
    for cap in (0.03, 0.05, 0.2, 1.0):
        v = torch.randn(40, generator=gen, dtype=F64)
        x = project_capped_simplex(v, cap)
        assert float(x.sum()) == pytest.approx(1, abs=1e-12)
        assert float(x.min()) >= 0 and float(x.max()) <= cap + 1e-15
        # x = clip(v − τ, 0, cap): one τ with v − τ = x on the free set, ≤ 0 at 0, ≥ cap at cap
        free = (x > 0) & (x < cap)
        lo = torch.cat([v[x == cap] - cap, (v - x)[free]]).min()
        hi = torch.cat([v[x == 0], (v - x)[free]]).max()
        assert float(hi - lo) <= 1e-12
    torch.testing.assert_close(project_capped_simplex(v, 1.0), ll.project_simplex(v))


# -- bad inputs --------------------------------------------------------------------------------
def test_bad_inputs(task):
    with pytest.raises(ValueError, match="known rules.*relu.*power.*quadratic"):
        ll.online_policy(task, 5, LR, "softmax")
    assert ONLINE_RULES == ("relu", "power", "quadratic")
    for p in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="power"):
            ll.online_policy(task, 5, LR, "power", power=p)
    with pytest.raises(TypeError, match="needs power"):
        ll.online_policy(task, 5, LR, "power")
    with pytest.raises(TypeError, match="takes the parameters"):
        ll.online_policy(task, 5, LR, "relu", power=2)
    with pytest.raises(ValueError, match="cap"):
        ll.online_policy(task, 5, LR, "quadratic", cap=0.5)
    with pytest.raises(ValueError, match="steps"):
        ll.online_policy(task, 0, LR)
    with pytest.raises(ValueError, match="learning rate"):
        ll.online_policy(task, 5, -1.0)
    empty = (task.desired[0][:0], task.desired[1][:0])
    with pytest.raises(ValueError, match="desired split is empty"):
        ll.online_policy(task, 5, LR, desired=empty)
    with pytest.raises(ValueError, match="desired split is empty"):
        ll.online_policy(task.with_(desired=empty), 5, LR)
    nan_x = torch.full_like(task.desired[0][:4], float("nan"))
    with pytest.raises(ValueError, match="4?8 of the 48 contributions at step 0 are not finite"):
        ll.online_policy(task, 5, LR, desired=(nan_x, task.desired[1][:4]))


def test_divergence_names_step_and_lr(task):
    with pytest.raises(ll.training.DivergenceError, match=r"step 1 .*lr=1e\+06"):
        ll.online_policy(task, 20, 1e6, "relu")
    with pytest.raises(ll.training.DivergenceError) as online:
        ll.online_policy(task, 20, 1e6, "relu")
    with pytest.raises(ll.training.DivergenceError) as plain:
        ll.train(task, ll.uniform_policy(20, task.n_train, dtype=F64), 1e6)
    assert "lr=1e+06" in str(online.value) and "lr=1e+06" in str(plain.value)
