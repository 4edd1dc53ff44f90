"""The online rules' desired-set line search (``step="line_search"``) against a hand run.

Every run is re-run by hand from θ_0 in float64 with plain torch.func, never the library's
kernels: per-example gradients G (N, P) by ``jacrev`` of the per-example losses, g = ∇L_dsr by
``grad``, H_dsr by ``torch.func.hessian`` of the mean desired loss; the rule's row w_t from
CT = G g at the hand θ̂_t; d = Gᵀw, s = g·d, q = dᵀH d and η_t by the rule written out with
Python floats (the three cases of :mod:`learnlaw.policies.online_step`); θ̂_{t+1} = θ̂_t − η_t d.
Compared at every step, twice: at the library's own θ_t and η_{t−1} (the step's arithmetic,
to TOL) and along the hand run's own θ̂_t from θ_0 (to TRAJECTORY_TOL): w_t, s_t, q_t, η_t and
θ_{t+1}. The perceptron's fused path (closed
forms) and the generic autodiff path (an MLP, both kernels) are covered; the cap, the trust
region, a non-convex desired loss (q ≤ 0) and a step with no descent direction (s ≤ 0) are
constructed; on a quadratic desired loss the line search is the exact minimiser along d.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch import nn
from torch.func import functional_call, grad, hessian, jacrev

import learnlaw as ll
from learnlaw.core.task import Task
from learnlaw.policies.online_step import DEFAULT_TRUST, STEP_MODES
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
LR = 0.5
TOL = 1e-12
"""Relative error of each step's quantities recomputed at the library's θ_t (measured ≤ 4e-14)."""
TRAJECTORY_TOL = 1e-11
"""Relative error along the hand run from θ_0 (its own θ̂_t). Looser: the runs amplify rounding —
measured, the library's own relu run with the desired part from θ_0·(1 + 1e-15) differs from
the run from θ_0 by 2.3e-13 in η_t after 15 steps, and the hand run by 1.3e-12 in q_t at most
(≤ 2e-13 in every other case)."""


@pytest.fixture(scope="module")
def tasks():
    mlp = mlp_task(dim=4, hidden=5, classes=3, n_train=24, n_desired=12, n_test=12, dtype=F64)
    return {
        "perceptron": ll.perceptron_task(
            dim=8, n_train=48, n_desired=24, n_test=24, dtype=F64, seed=3
        ),
        "perceptron_ad": ll.perceptron_task(
            dim=8, n_train=48, n_desired=24, n_test=24, dtype=F64, seed=3, kernels="autodiff"
        ),
        "mlp": mlp.with_(kernels="autodiff"),
        "mlp_rr": mlp.with_(kernels="autodiff_rr"),
    }


# -- the independent re-computation ----------------------------------------------------------
def losses(task, theta, x, y):
    return task.loss_fn(functional_call(task.model, task.spec.unflatten(theta), (x,)), y)


def hand_model(task, theta, desired=None):
    """G (N, P), g = ∇L_dsr (P,) and H_dsr (P, P) at θ by plain torch.func."""
    xd, yd = task.desired if desired is None else desired
    g_n = jacrev(lambda th: losses(task, th, *task.train))(theta)
    g = grad(lambda th: losses(task, th, xd, yd).mean())(theta)
    h = hessian(lambda th: losses(task, th, xd, yd).mean())(theta)
    return g_n, g, h


def power_row(ct, power=1.0):
    pos = ct.clamp(min=0)
    if not bool((pos > 0).any()):
        return torch.full_like(ct, 1 / len(ct))
    w = pos**power
    return w / w.sum()


def hand_eta(s, q, prev, lr, max_lr, trust):
    """The documented rule with Python floats: (η_t, which case)."""
    bound = trust * prev if max_lr is None else min(max_lr, trust * prev)
    if s > 0 and q > 0:
        return (s / q, "model") if s / q <= bound else (bound, "bound")
    if s > 0:
        return bound, "concave"
    return min(lr, bound), "no descent"


KEYS = ("w", "s", "q", "eta", "case", "theta")


def hand_step(task, theta, prev, lr, power, max_lr, trust, desired):
    """One line-search step by hand at θ: (w, s, q, η, case, θ − η d)."""
    g_n, g, h = hand_model(task, theta, desired)
    w = power_row(g_n @ g, power)
    d = g_n.T @ w
    s, q = float(g @ d), float(d @ h @ d)
    eta, case = hand_eta(s, q, prev, lr, max_lr, trust)
    return w, s, q, eta, case, theta - eta * d


def hand_run(task, steps, lr, power=1.0, max_lr=None, trust=DEFAULT_TRUST, desired=None, res=None):
    """The line-search run by hand from θ_0 (``res=None``: along its own θ̂_t), or each step of
    ``res`` redone at the library's θ_t and η_{t−1}; per step w, s, q, η, case, θ_{t+1}."""
    theta = task.spec.flatten(task.params0).detach().clone()
    out = {k: [] for k in KEYS}
    prev = lr
    for t in range(steps):
        if res is not None:
            theta, prev = res.run.trajectory[t], (lr if t == 0 else float(res.lrs[t - 1]))
        step = hand_step(task, theta, prev, lr, power, max_lr, trust, desired)
        for k, v in zip(KEYS, step):
            out[k].append(v)
        prev, theta = step[3], step[5]
    return out


def check_run(task, res, lr, **kw):
    """Both comparisons of :func:`compare`: per step at the library's θ_t, and from θ_0.

    Returns the hand run from θ_0."""
    steps = res.run.steps
    assert_small(compare(res, hand_run(task, steps, lr, **kw, res=res)))
    hand = hand_run(task, steps, lr, **kw)
    assert_small(compare(res, hand), TRAJECTORY_TOL)
    return hand


def rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def compare(res, hand) -> dict:
    """The largest relative error of each recorded quantity, over all steps."""
    err = dict(w=0.0, s=0.0, q=0.0, eta=0.0, theta=0.0)
    for t in range(res.run.steps):
        err["w"] = max(err["w"], rel(res.policy[t], hand["w"][t]))
        err["s"] = max(err["s"], rel(res.step_model[t, 0], hand["s"][t]))
        err["q"] = max(err["q"], rel(res.step_model[t, 1], hand["q"][t]))
        err["eta"] = max(err["eta"], rel(res.lrs[t], hand["eta"][t]))
        err["theta"] = max(err["theta"], rel(res.run.trajectory[t + 1], hand["theta"][t]))
    return err


def assert_small(err, tol=TOL):
    bad = {k: f"{v:.2e}" for k, v in err.items() if not v <= tol}
    assert not bad, f"above {tol:g}: {bad}"


def line_search(task, steps, lr, rule="relu", **kw):
    return ll.online_policy(task, steps, lr, rule, step="line_search", keep_params=True, **kw)


def replay(task, res):
    """θ_T of θ_{t+1} = θ_t − η_t Gᵀγ_t from the recorded rows and steps: ``train`` with the
    ``(T,)`` schedule ``res.lrs``."""
    run = ll.train(task, res.policy, res.lrs)
    return task.spec.flatten(run.final_params)


# -- every step against the hand run ---------------------------------------------------------
CASES = [
    ("perceptron", "relu", {}, 25),
    ("perceptron", "power", {"power": 2.0}, 25),
    ("perceptron_ad", "relu", {}, 8),
    ("mlp", "relu", {}, 10),
    ("mlp_rr", "power", {"power": 0.5}, 8),
]


@pytest.mark.parametrize("which, rule, params, steps", CASES)
def test_line_search_matches_a_hand_run(tasks, which, rule, params, steps):
    task = tasks[which]
    res = line_search(task, steps, LR, rule, **params)
    assert res.step == "line_search" and res.step_params == {"max_lr": None, "trust": 2.0}
    assert res.lrs.shape == (steps,) and res.lrs.device.type == "cpu"
    assert res.step_model.shape == (steps, 2)
    ll.policies.validate_policy(res.policy, steps=steps, n=task.n_train)
    hand = check_run(task, res, LR, power=params.get("power", 1.0))
    # the check can fail: η_t moves away from lr, both by the model and by the trust region
    cases = set(hand["case"])
    assert {"model", "bound"} <= cases, cases
    assert float((res.lrs - LR).abs().max()) > 0.1
    # at an unclipped step η_t minimises the model m(η) = −ηs + ½η²q (m(η_t ± δ) > m(η_t))
    # and solves its linearised condition (g − η H d)·d = 0 at the library's own θ_t
    for t in [t for t, c in enumerate(hand["case"]) if c == "model"][:4]:
        s, q, eta = float(res.step_model[t, 0]), float(res.step_model[t, 1]), float(res.lrs[t])

        def m(e, s=s, q=q):
            return -e * s + 0.5 * e * e * q

        for delta in (1e-3 * eta, 1e-6 * eta):
            assert m(eta + delta) > m(eta) and m(eta - delta) > m(eta)
        g_n, g, h = hand_model(task, res.run.trajectory[t])
        d = g_n.T @ res.policy[t]
        assert abs(float((g - eta * h @ d) @ d)) <= 1e-12 * abs(float(g @ d))
    # the recorded rows and steps replay the run (train(task, policy, lrs), a (T,) schedule);
    # the loss curves are those of the run's θ_t
    torch.testing.assert_close(replay(task, res), res.run.trajectory[-1], rtol=1e-12, atol=0)
    dsr = torch.stack([losses(task, th, *task.desired).mean() for th in res.run.trajectory])
    torch.testing.assert_close(res.run.desired_loss, dsr, rtol=1e-12, atol=0)


def test_line_search_reads_the_given_desired_part(tasks):
    task = tasks["perceptron"]
    part = (task.desired[0][:10], task.desired[1][:10])
    res = line_search(task, 15, LR, desired=part)
    check_run(task, res, LR, desired=part)
    full = line_search(task, 15, LR)
    assert float((full.lrs - res.lrs).abs().max()) > 1e-3


# -- the cap and the trust region -------------------------------------------------------------
def test_cap_is_active_and_respected(tasks):
    task, max_lr = tasks["perceptron"], 0.6
    res = line_search(task, 25, LR, max_lr=max_lr)
    hand = check_run(task, res, LR, max_lr=max_lr)
    assert float(res.lrs.max()) <= max_lr
    capped = [t for t, e in enumerate(hand["eta"]) if e == max_lr]
    assert capped and all(hand["s"][t] / hand["q"][t] > max_lr for t in capped)
    assert all(float(res.lrs[t]) == max_lr for t in capped)


@pytest.mark.parametrize("which", ["perceptron", "mlp"])
def test_trust_region_is_active_and_respected(tasks, which):
    task, lr, trust = tasks[which], 0.01, 1.5
    res = line_search(task, 12, lr, trust=trust)
    hand = check_run(task, res, lr, trust=trust)
    prev = torch.cat([torch.tensor([lr], dtype=F64), res.lrs[:-1]])
    assert bool((res.lrs <= trust * prev * (1 + 1e-15)).all())
    # from a small reference step the first steps grow by exactly ρ: η_t = lr·ρ^{t+1}
    assert hand["case"][:3] == ["bound"] * 3
    for t in range(3):
        assert float(res.lrs[t]) == pytest.approx(lr * trust ** (t + 1), rel=1e-15)
    # trust = 1: the steps never grow
    flat = line_search(task, 12, lr, trust=1.0)
    assert bool((flat.lrs[1:] <= flat.lrs[:-1]).all()) and float(flat.lrs.max()) <= lr


# -- the two degenerate cases -------------------------------------------------------------------
class Linear(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.w = nn.Linear(dim, 1, bias=False)

    def forward(self, x):
        return self.w(x).reshape(-1)


def custom_task(loss_fn, train, desired, theta0, name):
    model = Linear(train[0].shape[1]).double()
    params0 = {"w.weight": theta0.reshape(1, -1).clone()}
    return Task(model, params0, train, desired, desired, loss_fn, 2, name, kernels="autodiff")


def test_a_concave_desired_loss_takes_the_bound():
    """l(u, y) = 1 − cos(u − y): at residual 2 the desired loss is concave along d (q < 0)
    while d descends it (s > 0): η_0 is the bound min(max_lr, ρ·lr)."""
    x = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=F64)
    xd = torch.tensor([[1.0, 0.0]], dtype=F64)
    zero = torch.zeros(2, dtype=F64)
    task = custom_task(
        lambda u, y: 1 - torch.cos(u - y),
        (x, zero),
        (xd, zero[:1]),
        torch.tensor([2.0, 0.0], dtype=F64),
        "cosine",
    )
    for max_lr, expected in ((0.3, 0.3), (None, DEFAULT_TRUST * LR)):
        res = line_search(task, 6, LR, max_lr=max_lr)
        hand = check_run(task, res, LR, max_lr=max_lr)
        assert hand["case"][0] == "concave" and hand["s"][0] > 0 > hand["q"][0]
        assert float(res.step_model[0, 0]) > 0 > float(res.step_model[0, 1])
        assert float(res.lrs[0]) == expected


def test_no_descent_direction_takes_the_reference_step():
    """Desired labels flipped: every CT_n < 0, the rule is uniform and s = mean CT < 0; the
    step is min(lr, bound) (the fixed step), never 0 (which would stall the run)."""
    x = torch.eye(4, dtype=F64) * 3
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64)
    task = ll.perceptron_task(dim=4, n_train=4, dtype=F64).with_(
        train=(x, y), desired=(x, 1 - y), test=(x, y)
    )
    for max_lr, expected in ((None, 0.1), (0.04, 0.04)):
        res = line_search(task, 5, 0.1, max_lr=max_lr)
        hand = check_run(task, res, 0.1, max_lr=max_lr)
        assert hand["case"] == ["no descent"] * 5
        assert bool((res.step_model[:, 0] < 0).all())
        assert bool((res.lrs == expected).all())
        torch.testing.assert_close(res.policy[0], torch.full((4,), 0.25, dtype=F64))


# -- a quadratic desired loss: the exact line search -------------------------------------------
def test_quadratic_desired_loss_gives_the_exact_minimiser_along_d():
    """Linear regression (½(x·θ − y)²): the second-order model of L_dsr is exact, so with a
    huge trust region and cap η_t = argmin_η L_dsr(θ_t − η d_t) = (X_dsr d)·r / ‖X_dsr d‖²."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(30, 6, generator=gen, dtype=F64) * 2
    xd = torch.randn(20, 6, generator=gen, dtype=F64) + 0.5
    beta = torch.randn(6, generator=gen, dtype=F64)
    train = (x, x @ beta + 0.3 * torch.randn(30, generator=gen, dtype=F64))
    desired = (xd, xd @ beta)
    task = custom_task(
        lambda u, y: 0.5 * (u - y) ** 2, train, desired, torch.zeros(6, dtype=F64), "linreg"
    )
    res = line_search(task, 10, 0.01, max_lr=1e12, trust=1e12)
    check_run(task, res, 0.01, max_lr=1e12, trust=1e12)
    for t in range(10):
        theta, gamma, eta = res.run.trajectory[t], res.policy[t], float(res.lrs[t])
        d = (x * (x @ theta - train[1])[:, None]).T @ gamma  # Gᵀγ of the squared loss
        r, xdd = xd @ theta - desired[1], xd @ d
        exact = float(xdd @ r / (xdd @ xdd))
        assert eta == pytest.approx(exact, rel=1e-12)
        # the desired gradient after the step is orthogonal to d: ∂L_dsr(θ_t − ηd)/∂η = 0
        after = xd.T @ (xd @ res.run.trajectory[t + 1] - desired[1]) / len(xd)
        assert abs(float(after @ d)) <= 1e-12 * float(d.norm() * after.norm() + 1e-300) + 1e-14
        dsr = res.run.desired_loss
        for e in (eta * (1 - 1e-3), eta * (1 + 1e-3)):
            assert float(0.5 * ((xd @ (theta - e * d) - desired[1]) ** 2).mean()) > float(
                dsr[t + 1]
            )
    assert float(res.run.desired_loss[-1]) < 1e-3 * float(res.run.desired_loss[0])


# -- the quadratic rule with the line search --------------------------------------------------
def solve_qp(ct, m, lr):
    """argmin −η γ·ct + ½η² γᵀMγ over the simplex by SLSQP."""
    c, mm, n = ct.numpy(), m.numpy(), len(ct)
    res = minimize(
        lambda g: -lr * g @ c + 0.5 * lr**2 * g @ mm @ g,
        np.full(n, 1 / n),
        jac=lambda g: -lr * c + lr**2 * mm @ g,
        bounds=[(0, 1)] * n,
        constraints=[{"type": "eq", "fun": lambda g: g.sum() - 1, "jac": lambda g: np.ones(n)}],
        method="SLSQP",
        options=dict(ftol=1e-15, maxiter=2000),
    )
    assert res.success, res.message
    return torch.as_tensor(res.x)


def test_quadratic_rule_picks_its_row_with_the_previous_step():
    """γ_t minimises the quadratic rule's model at η_{t−1} (η_{−1} = lr), then η_t is the line
    search along its d_t. Two steps: later ones leave the inner solver unconverged here (M's
    condition number grows), which is the rule's own tolerance, not the line search's."""
    t_ = ll.perceptron_task(dim=16, n_train=12, n_desired=48, n_test=8, dtype=F64, seed=4)
    res = line_search(t_, 2, 1.0, "quadratic", cap=None, iters=3000, tol=1e-14)
    assert int(res.inner_iters.max()) < 3000  # the inner solve converged
    for t in range(2):
        g_n, g, h = hand_model(t_, res.run.trajectory[t])
        prev = 1.0 if t == 0 else float(res.lrs[t - 1])
        ct, m = g_n @ g, g_n @ h @ g_n.T
        torch.testing.assert_close(res.policy[t], solve_qp(ct, m, prev), rtol=0, atol=2e-6)
        if t > 0:  # the check can fail: the row at the reference step is another one
            assert float((res.policy[t] - solve_qp(ct, m, 1.0)).abs().max()) > 1e-2
        d = g_n.T @ res.policy[t]
        s, q = float(g @ d), float(d @ h @ d)
        expected = hand_eta(s, q, prev, 1.0, None, 2.0)[0]
        assert float(res.lrs[t]) == pytest.approx(expected, rel=1e-12)
    assert abs(float(res.lrs[0]) - 1.0) > 0.05


# -- the fixed step and bad inputs ------------------------------------------------------------
def test_fixed_step_records_lr_and_is_unchanged(tasks):
    task = tasks["perceptron"]
    res = ll.online_policy(task, 10, LR, "relu")
    assert res.step == "fixed" and res.step_params == {} and res.step_model is None
    assert res.lrs.device.type == "cpu" and bool((res.lrs == LR).all())
    ref = ll.train(task, res.policy, LR)
    assert torch.equal(ref.desired_loss, res.run.desired_loss)


def test_bad_inputs(tasks):
    task = tasks["perceptron"]
    assert STEP_MODES == ("fixed", "line_search")
    with pytest.raises(ValueError, match="unknown step 'newton'.*fixed.*line_search"):
        ll.online_policy(task, 3, LR, step="newton")
    with pytest.raises(TypeError, match="step must be one of"):
        ll.online_policy(task, 3, LR, step=1)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_lr must be None or a positive finite number"):
            ll.online_policy(task, 3, LR, step="line_search", max_lr=bad)
    for bad in (0.5, 0.0, float("inf")):
        with pytest.raises(ValueError, match="trust must be None or a finite number ≥ 1"):
            ll.online_policy(task, 3, LR, step="line_search", trust=bad)
    with pytest.raises(TypeError, match="trust must be"):
        ll.online_policy(task, 3, LR, step="line_search", trust="2")
    with pytest.raises(ValueError, match=r"max_lr=1\.0 given with step='fixed'"):
        ll.online_policy(task, 3, LR, max_lr=1.0)
    with pytest.raises(ValueError, match="trust=2.0 given with step='fixed'"):
        ll.online_policy(task, 3, LR, trust=2.0)
    with pytest.raises(ValueError, match="control='length' cannot be combined"):
        ll.online_policy(task, 3, LR, control="length", step="line_search")


def test_divergence_names_the_chosen_steps():
    x = torch.eye(4, dtype=F64) * 3
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64)
    task = ll.perceptron_task(dim=4, n_train=4, dtype=F64).with_(
        train=(x, y), desired=(x, 1 - y), test=(x, y)
    )
    # no descent direction: η_t = min(lr, bound) = lr, which blows the loss up at step 1; the
    # steps are checked once per block (here all 5 steps), and the message names them
    expected = r"step 1 .*lr=1e\+06.*line_search.*η_0…η_4 ranged over \[1e\+06, 1e\+06\]"
    with pytest.raises(ll.training.DivergenceError, match=expected):
        ll.online_policy(task, 5, 1e6, step="line_search")
