"""Learned step-size schedules (issue #18): ``fit_schedule``, ``fit_joint`` and the step-size KKT
conditions (learnlaw/policies/schedule_fit.py, learnlaw/analysis/schedule_theory.py).

η_t = exp(ρ_{c(t)}); ∂J/∂ρ_c = Σ_{t∈c} η_t ∂J/∂η_t is checked against central differences of J
(whole-run retraining, float64) on the perceptron (closed-form kernels) and an MLP (autodiff
kernels); the fits against their own recorded history, hand-recomputed first updates, resumed
runs, and fit_block_policy when the schedule is frozen.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import central_difference

import learnlaw as ll
import learnlaw.core.engine as engine
from learnlaw.core.checkpoint import load_file
from learnlaw.core.engine import rms_normalize
from learnlaw.core.policy import project_simplex
from learnlaw.policies.parametric import (
    block_index,
    block_policy,
    block_pullback,
    feature_policy,
    feature_pullback,
)
from learnlaw.policies.schedule_fit import block_schedule, schedule_pullback
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
T, LR = 12, 0.8
FD_RTOL = 1e-6


def perceptron():
    return ll.perceptron_task(dim=6, n_train=20, n_desired=8, n_test=8, dtype=F64, seed=1)


def mlp():
    return mlp_task(dim=4, hidden=6, classes=3, n_train=15, n_desired=6, n_test=5, dtype=F64)


CASES = {"perceptron": (perceptron, T, LR), "mlp": (mlp, 8, 0.4)}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def auc(task, policy, lr) -> float:
    return ll.train(task, policy, lr).auc()


def uniform(task, steps):
    return ll.uniform_policy(steps, task.n_train, dtype=F64)


# ---- the pullbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("blocks", [None, 4, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_rho_gradient_matches_central_differences(name, blocks):
    make, steps, lr = CASES[name]
    task = make()
    c = steps if blocks is None else blocks
    rho = math.log(lr) + 0.3 * torch.randn(c, generator=gen(2), dtype=F64)
    pol = torch.softmax(0.5 * torch.randn(steps, task.n_train, generator=gen(3), dtype=F64), 1)
    eta = block_schedule(rho, steps)
    sweep = ll.training.adjoint_sweep(task, pol, eta)
    g = schedule_pullback(sweep.lr_grad, eta, c)
    assert g.shape == (c,)
    # ∂J/∂ρ_c = Σ_{t∈c} λ_t with λ_t = γ_t·∂J/∂γ_t (the Law's multipliers)
    lam = (pol * sweep.grad).sum(1)
    idx = block_index(steps, c)
    assert torch.allclose(g, torch.zeros(c, dtype=F64).index_add_(0, idx, lam), rtol=1e-12)
    h = 1e-5
    for k in range(c):
        e = torch.eye(c, dtype=F64)[k]
        fd = central_difference(lambda r: auc(task, pol, block_schedule(r, steps)), rho, e, h)
        assert abs(fd - float(g[k])) <= FD_RTOL * max(abs(fd), 1e-3), (k, fd, float(g[k]))


def test_block_schedule_is_positive_and_shared_over_blocks():
    rho = torch.tensor([-800.0, 0.0, 3.0], dtype=F64)  # exp(−800) underflows to 0 in float64
    eta = block_schedule(torch.tensor([-30.0, 0.0, 3.0], dtype=F64), 7)
    assert bool((eta > 0).all())
    idx = block_index(7, 3)
    for b in range(3):
        assert len(set(eta[idx == b].tolist())) == 1
    assert torch.equal(
        eta[idx == 2], torch.full((int((idx == 2).sum()),), math.exp(3.0), dtype=F64)
    )
    assert float(block_schedule(rho, 3)[0]) == 0.0  # what the fit's step-size guard catches


@pytest.mark.parametrize("family", ["block", "feature"])
@pytest.mark.parametrize("name", list(CASES))
def test_joint_gradient_matches_central_differences_along_random_directions(name, family):
    make, steps, lr = CASES[name]
    task = make()
    n, blocks, c = task.n_train, 3, 4
    g0 = gen(5)
    rho = math.log(lr) + 0.2 * torch.randn(c, generator=g0, dtype=F64)
    d_rho = torch.randn(c, generator=g0, dtype=F64)
    if family == "block":
        phi = torch.softmax(0.4 * torch.randn(blocks, n, generator=g0, dtype=F64), 1)
        d_phi = torch.randn(blocks, n, generator=g0, dtype=F64)
        d_phi -= d_phi.mean(1, keepdim=True)  # stays on the simplex's affine hull
        to_policy = lambda p: block_policy(p, steps)  # noqa: E731
        pull = lambda p, gg: block_pullback(gg, blocks)  # noqa: E731
        h = 1e-6
    else:
        feats = torch.randn(n, 3, generator=g0, dtype=F64)
        phi = 0.3 * torch.randn(blocks, 3, generator=g0, dtype=F64)
        d_phi = torch.randn(blocks, 3, generator=g0, dtype=F64)
        to_policy = lambda p: feature_policy(p, feats, steps)  # noqa: E731
        pull = lambda p, gg: feature_pullback(p, feats, gg)  # noqa: E731
        h = 1e-5
    sweep = ll.training.adjoint_sweep(task, to_policy(phi), block_schedule(rho, steps))
    g_phi = pull(phi, sweep.grad)
    g_rho = schedule_pullback(sweep.lr_grad, block_schedule(rho, steps), c)

    def j(a, b):
        return auc(task, to_policy(phi + a * d_phi), block_schedule(rho + b * d_rho, steps))

    for (a, b), exact in (  # along (a·d_φ, b·d_ρ)
        ((1.0, 0.0), float((g_phi * d_phi).sum())),
        ((0.0, 1.0), float((g_rho * d_rho).sum())),
        ((1.0, 1.0), float((g_phi * d_phi).sum() + (g_rho * d_rho).sum())),
    ):
        fd = central_difference(lambda s: j(s * a, s * b), 0.0, 1.0, h)  # noqa: B023
        assert abs(fd - exact) <= FD_RTOL * max(abs(fd), 1e-3), (a, b, fd, exact)


# ---- fit_schedule -------------------------------------------------------------------------------


def spy_lrs(monkeypatch):
    """Record the step sizes of every sweep the fits run."""
    real, seen = engine.adjoint_sweep, []

    def sweep(task, policy, lr, **kw):
        seen.append(lr.clone())
        return real(task, policy, lr, **kw)

    monkeypatch.setattr(engine, "adjoint_sweep", sweep)
    return seen


def test_fit_schedule_lowers_J_and_chooses_by_validation(monkeypatch):
    task = perceptron()
    seen = spy_lrs(monkeypatch)
    r = ll.fit.fit_schedule(task, T, LR, 12, blocks=4, validation=3, outer_lr=0.1)
    js, vals = r.column("J"), r.column("val_auc")
    assert [h["epoch"] for h in r.history] == list(range(13)) and r.stopped is None
    assert js[-1] < 0.5 * js[0]
    assert r.best_epoch == min(range(len(vals)), key=vals.__getitem__)
    # every sweep ran a positive schedule, constant over the 4 blocks
    idx = block_index(T, 4)
    assert len(seen) == 12
    for eta in seen:
        assert bool((eta > 0).all())
        assert all(len(set(eta[idx == b].tolist())) == 1 for b in range(4))
    # the result: the chosen epoch's schedule, its run on the whole task
    assert r.lr.shape == (T,) and r.lr.device.type == "cpu" and r.policy is None
    assert torch.equal(r.lr, block_schedule(r.rho, T))
    assert torch.equal(r.run.desired_loss, ll.train(task, uniform(task, T), r.lr).desired_loss)
    assert torch.equal(r.baseline.desired_loss, ll.train(task, uniform(task, T), LR).desired_loss)


def test_fit_schedule_first_update_by_hand(tmp_path):
    task = perceptron()
    init = LR * (0.5 + torch.rand(T, generator=gen(4), dtype=F64))
    ll.fit.fit_schedule(
        task, T, LR, 1, blocks=3, initial=init, checkpoint_dir=tmp_path, outer_lr=0.07
    )
    state = load_file(tmp_path / "state.pt", "cpu")
    assert state["epoch"] == 1
    idx = block_index(T, 3)
    rho0 = torch.stack([init[idx == b].log().mean() for b in range(3)])  # geometric means
    eta0 = block_schedule(rho0, T)
    g = schedule_pullback(ll.schedule_gradient(task, uniform(task, T), eta0)[1], eta0, 3)
    expected = rho0 - 0.07 * g / g.square().mean().sqrt()
    assert torch.allclose(state["params"]["rho"], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("blocks", [None, 3])
def test_max_norm_moves_the_largest_log_step_by_exactly_epsilon(tmp_path, blocks):
    task = perceptron()
    init = LR * (0.5 + torch.rand(T, generator=gen(5), dtype=F64))
    ll.fit.fit_schedule(task, T, LR, 1, blocks=blocks, initial=init, checkpoint_dir=tmp_path,
                    outer_lr=0.07, lr_norm="max")  # fmt: skip
    c = T if blocks is None else blocks
    idx = block_index(T, c)
    rho0 = torch.stack([init[idx == b].log().mean() for b in range(c)])
    eta0 = block_schedule(rho0, T)
    g = schedule_pullback(ll.schedule_gradient(task, uniform(task, T), eta0)[1], eta0, c)
    rho1 = load_file(tmp_path / "state.pt", "cpu")["params"]["rho"]
    assert torch.allclose(rho1, rho0 - 0.07 * g / g.abs().max(), rtol=1e-12, atol=1e-14)
    step = (rho1 - rho0).abs()
    assert abs(float(step.max()) - 0.07) < 1e-12  # the largest move is ε, whatever ∂J/∂ρ's scale
    assert float(step.square().mean().sqrt()) < 0.07  # and the RMS move below it


def test_sign_moves_every_log_step_by_epsilon(tmp_path):
    task = perceptron()
    ll.fit.fit_schedule(
        task, T, LR, 1, blocks=4, checkpoint_dir=tmp_path, outer_lr=0.03, lr_norm="sign"
    )
    rho0 = torch.full((4,), math.log(LR), dtype=F64)
    eta0 = block_schedule(rho0, T)
    g = schedule_pullback(ll.schedule_gradient(task, uniform(task, T), eta0)[1], eta0, 4)
    rho1 = load_file(tmp_path / "state.pt", "cpu")["params"]["rho"]
    assert bool((g != 0).all())
    assert torch.allclose(rho1, rho0 - 0.03 * g.sign(), rtol=0, atol=1e-15)


def test_joint_max_norm_first_update_by_hand(tmp_path):
    task = perceptron()
    ll.fit.fit_joint(task, T, LR, 1, blocks=3, lr_blocks=4, lr_outer_lr=0.05, lr_norm="max",
                 checkpoint_dir=tmp_path)  # fmt: skip
    rho = load_file(tmp_path / "state.pt", "cpu")["params"]["rho"]
    n = task.n_train
    phi0 = torch.full((3, n), 1 / n, dtype=F64)
    rho0 = torch.full((4,), math.log(LR), dtype=F64)
    sweep = ll.training.adjoint_sweep(task, block_policy(phi0, T), block_schedule(rho0, T))
    g = schedule_pullback(sweep.lr_grad, block_schedule(rho0, T), 4)
    assert torch.allclose(rho, rho0 - 0.05 * g / g.abs().max(), rtol=1e-12, atol=1e-15)


def test_fit_schedule_on_the_mlp_lowers_J():
    task = mlp()
    r = ll.fit.fit_schedule(task, 8, 0.4, 8, outer_lr=0.1, track_test=False)
    js = r.column("J")
    assert js[-1] < 0.8 * js[0] and r.best_epoch == 8
    assert all(b < a for a, b in zip(js, js[1:]))


def test_too_large_an_outer_step_keeps_the_best_finite_epoch():
    task = mlp()
    r = ll.fit.fit_schedule(task, 8, 0.4, 10, outer_lr=2.0, track_test=False)
    assert r.stopped is not None and "diverged at epoch" in r.stopped
    last = r.history[-1]
    assert math.isnan(last["J"]) and last["stopped"] == r.stopped
    finite = [h["J"] for h in r.history if math.isfinite(h["J"])]
    assert r.best_epoch == finite.index(min(finite)) and r.best_epoch > 0
    assert r.run.auc() == pytest.approx(min(finite), rel=1e-12)  # no validation: J is the task's


def test_a_diverging_start_raises():
    task = perceptron()
    with pytest.raises(ll.training.DivergenceError, match="lr=10000"):  # the uniform baseline at lr
        ll.fit.fit_schedule(task, T, 1e4, 2, track_test=False)
    with pytest.raises(ll.training.DivergenceError, match="lr=10000.*epoch 0 of the schedule"):
        ll.fit.fit_schedule(task, T, LR, 2, initial=torch.full((T,), 1e4), track_test=False)


class Stop(Exception):
    pass


def interrupt_at(epoch):
    def callback(entry):
        if entry["epoch"] == epoch:
            raise Stop

    return callback


def same(a, b):
    assert torch.equal(a.lr, b.lr) and a.best_epoch == b.best_epoch and a.stopped == b.stopped
    for key in ("J", "val_auc", "test_auc"):
        assert a.column(key) == b.column(key), key
    assert torch.equal(a.run.desired_loss, b.run.desired_loss)
    if a.policy is not None:
        assert torch.equal(a.policy, b.policy)


@pytest.mark.parametrize("how", ["callback", "epochs"])
def test_fit_schedule_resumes_exactly(tmp_path, how):
    task = perceptron()
    kw = dict(blocks=4, validation=3, outer_lr=0.1, checkpoint_dir=tmp_path)
    full = ll.fit.fit_schedule(task, T, LR, 7, **{**kw, "checkpoint_dir": tmp_path / "full"})
    if how == "callback":
        with pytest.raises(Stop):
            ll.fit.fit_schedule(task, T, LR, 7, callback=interrupt_at(4), **kw)
    else:
        short = ll.fit.fit_schedule(task, T, LR, 3, **kw)
        assert len(short.history) == 4
    assert load_file(tmp_path / "state.pt", "cpu")["epoch"] in (3, 4)
    same(ll.fit.fit_schedule(task, T, LR, 7, resume=True, **kw), full)


def test_resume_refuses_another_fit(tmp_path):
    task = perceptron()
    ll.fit.fit_schedule(task, T, LR, 2, blocks=4, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different fit.*lr_outer_lr"):
        ll.fit.fit_schedule(
            task, T, LR, 3, blocks=4, outer_lr=0.2, checkpoint_dir=tmp_path, resume=True
        )
    with pytest.raises(ValueError, match="epochs ≥ 2"):
        ll.fit.fit_schedule(task, T, LR, 1, blocks=4, checkpoint_dir=tmp_path, resume=True)


# ---- fit_joint ----------------------------------------------------------------------------------


def test_fit_joint_first_update_by_hand(tmp_path):
    task = perceptron()
    n = task.n_train
    ll.fit.fit_joint(
        task, T, LR, 1, blocks=3, lr_blocks=2, lr_outer_lr=0.05, checkpoint_dir=tmp_path
    )
    p = load_file(tmp_path / "state.pt", "cpu")["params"]
    phi0 = torch.full((3, n), 1 / n, dtype=F64)
    rho0 = torch.full((2,), math.log(LR), dtype=F64)
    sweep = ll.training.adjoint_sweep(task, block_policy(phi0, T), block_schedule(rho0, T))
    g_phi = block_pullback(sweep.grad, 3)
    g_rho = schedule_pullback(sweep.lr_grad, block_schedule(rho0, T), 2)
    assert torch.allclose(p["phi"], project_simplex(phi0 - 0.1 / n * rms_normalize(g_phi)), rtol=1e-12, atol=1e-15)  # fmt: skip
    assert torch.allclose(p["rho"], rho0 - 0.05 * rms_normalize(g_rho), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("family", ["block", "full", "feature"])
def test_fit_joint_lowers_J(family):
    task = perceptron()
    r = ll.fit.fit_joint(task, T, LR, 8, family=family, blocks=3, lr_blocks=4, track_test=False)
    js = r.column("J")
    assert js[-1] < 0.5 * js[0] and r.stopped is None
    assert r.policy.shape == (T, task.n_train) and torch.equal(r.lr, block_schedule(r.rho, T))
    assert torch.equal(r.run.desired_loss, ll.train(task, r.policy, r.lr).desired_loss)
    if family == "full":
        assert r.phi.shape == (T, task.n_train)


def test_frozen_schedule_is_fit_block_policy():
    """lr_outer_lr = 1e-13 moves log η by ~1e-13 per epoch: the weights' trajectory is that of
    fit_block_policy(outer_step="normalized") up to the schedule path's rounding."""
    task = perceptron()
    eps = 0.3 / task.n_train
    a = ll.fit.fit_joint(task, T, LR, 6, blocks=3, outer_lr=eps, lr_outer_lr=1e-13, validation=3)
    b = ll.fit.fit_block_policy(
        task, T, LR, 3, eps, 6, validation=3, outer_step="normalized", progress=False
    )
    for key in ("J", "val_auc", "test_auc"):
        x, y = torch.tensor(a.column(key)), torch.tensor(b.column(key))
        assert torch.allclose(x, y, rtol=1e-10, atol=0), key
    assert a.best_epoch == b.best_epoch
    assert torch.allclose(a.phi, b.phi, rtol=1e-10, atol=1e-13)
    assert float((a.lr / LR - 1).abs().max()) < 1e-11


def test_fit_joint_feature_with_adam_resumes_exactly(tmp_path):
    task = perceptron()
    kw = dict(family="feature", blocks=2, lr_blocks=3, validation=3, checkpoint_dir=tmp_path)
    full = ll.fit.fit_joint(task, T, LR, 6, **{**kw, "checkpoint_dir": tmp_path / "full"})
    with pytest.raises(Stop):
        ll.fit.fit_joint(task, T, LR, 6, callback=interrupt_at(3), **kw)
    state = load_file(tmp_path / "state.pt", "cpu")
    assert state["epoch"] == 3 and float(state["opt_state"]["v"].abs().sum()) > 0
    same(ll.fit.fit_joint(task, T, LR, 6, resume=True, **kw), full)


# ---- the KKT conditions of the step sizes -------------------------------------------------------


def test_schedule_kkt_residual_is_its_formula():
    task = perceptron()
    pol = torch.softmax(0.5 * torch.randn(T, task.n_train, generator=gen(7), dtype=F64), 1)
    eta = LR * (0.5 + torch.rand(T, generator=gen(8), dtype=F64))
    _, dj_deta = ll.schedule_gradient(task, pol, eta)
    grad = ll.policy_gradient(task, pol, eta)[1]
    scale = float((pol * grad.abs()).sum())
    r = ll.theory.schedule_kkt_residual(task, pol, eta)
    assert r == pytest.approx(float((eta * dj_deta).abs().sum()) / scale, rel=1e-12)
    idx = block_index(T, 3)
    sums = torch.zeros(3, dtype=F64).index_add_(0, idx, eta * dj_deta)
    r3 = ll.theory.schedule_kkt_residual(task, pol, eta, blocks=3)
    assert r3 == pytest.approx(float(sums.abs().sum()) / scale, rel=1e-12)
    assert 0 <= r3 <= r <= 1


@pytest.mark.parametrize("blocks", [3, 1])
def test_schedule_kkt_residual_falls_as_fit_schedule_converges(blocks):
    task = perceptron()
    u = uniform(task, T)
    first = ll.theory.schedule_kkt_residual(task, u, LR, blocks=blocks)
    r = ll.fit.fit_schedule(task, T, LR, 40, blocks=blocks, outer_lr=0.1, track_test=False)
    last = ll.theory.schedule_kkt_residual(task, u, r.lr, blocks=blocks)
    assert last < first / 10, (first, last)


def flipped():
    """The perceptron with every desired input repeated under the other label: L_dsr ≥ log 2,
    so J is bounded below by T·log 2 and no free total weight drives it to 0."""
    task = perceptron()
    x, y = task.desired
    return task.with_(desired=(torch.cat([x, x]), torch.cat([y, 1 - y])))


def test_total_free_gradient_matches_central_differences():
    task = flipped()
    steps = 6
    beta = LR / task.n_train * (0.5 + torch.rand(steps, task.n_train, generator=gen(9), dtype=F64))
    beta[2] = 0.0  # a row without weight: swept at η_t = √tiny
    j, d = ll.theory.total_free_gradient(task, beta)
    # the same J as training with θ_{t+1} = θ_t − Σ_n β_{t,n} ∇l_n: γ = β/s, η = s
    s = beta.sum(1)
    gam = torch.where(s[:, None] > 0, beta / s.clamp_min(1e-300)[:, None], 1 / task.n_train)
    assert j == pytest.approx(auc(task, gam, torch.where(s > 0, s, 1e-154)), rel=1e-14)
    for seed in (10, 11):
        dirn = torch.randn(steps, task.n_train, generator=gen(seed), dtype=F64)
        dirn[2] = dirn[2].abs()  # keep the empty row's weights ≥ 0

        def j_at(b):
            return ll.theory.total_free_gradient(task, b)[0]

        h, on = 1e-6, beta > 0
        # inside the support a central difference; at β = 0 (the empty row) a forward one
        fd = central_difference(j_at, beta, dirn * on, h)
        exact = float((d * dirn * on).sum())
        assert abs(fd - exact) <= FD_RTOL * abs(exact), (fd, exact)
        fwd = (j_at(beta + h * dirn * ~on) - j) / h
        assert fwd == pytest.approx(float((d * dirn * ~on).sum()), rel=1e-4)


def test_total_free_residual_falls_under_projected_gradient():
    task = flipped()
    beta = torch.full((6, task.n_train), LR / task.n_train, dtype=F64)
    first = ll.theory.total_free_residual(task, beta)
    assert first.relative == pytest.approx(1.0) and first.violation == 0.0
    for _ in range(40):
        _, d = ll.theory.total_free_gradient(task, beta)
        beta = (beta - 0.01 * d).clamp_min(0)
    last = ll.theory.total_free_residual(task, beta)
    assert last.residual < first.residual / 5, (first, last)
    assert last.J < first.J and last.J > 6 * math.log(2)
    assert bool((beta == 0).any())  # the search switched examples off, as the Law does


# ---- bad inputs ---------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    task = perceptron()
    for lr in (0.0, -1.0):
        with pytest.raises(ValueError, match="lr must be a positive"):
            ll.fit.fit_schedule(task, T, lr, 1)
    with pytest.raises(ValueError, match=r"blocks must be an int in \[1, 12\]"):
        ll.fit.fit_schedule(task, T, LR, 1, blocks=13)
    with pytest.raises(ValueError, match=r"lr_blocks must be an int in \[1, 12\]"):
        ll.fit.fit_joint(task, T, LR, 1, lr_blocks=0)
    with pytest.raises(ValueError, match=r"blocks must be an int in \[1, 12\]"):
        ll.fit.fit_joint(task, T, LR, 1, blocks=20)
    with pytest.raises(ValueError, match="unknown family 'diag'"):
        ll.fit.fit_joint(task, T, LR, 1, family="diag")
    with pytest.raises(ValueError, match="initial must be a .T,. schedule with T = 12"):
        ll.fit.fit_schedule(task, T, LR, 1, blocks=3, initial=torch.ones(5))
    with pytest.raises(ValueError, match=r"initial\[1\] = -1.0"):
        ll.fit.fit_schedule(task, T, LR, 1, blocks=3, initial=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        ll.fit.fit_schedule(task, T, LR, 1, resume=True)
    for fit in (ll.fit.fit_schedule, ll.fit.fit_joint):
        with pytest.raises(
            ValueError, match=r"lr_norm must be one of \('rms', 'max', 'sign'\).*got 'l2'"
        ):
            fit(task, T, LR, 1, lr_norm="l2")
    with pytest.raises(ValueError, match="non-negative and finite"):
        ll.theory.total_free_gradient(task, -torch.ones(T, task.n_train, dtype=F64))
    with pytest.raises(ValueError, match="N = 20 columns"):
        ll.theory.total_free_residual(task, torch.ones(T, 3, dtype=F64))
