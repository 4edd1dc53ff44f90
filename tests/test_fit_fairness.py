"""Fair fitted policies (issue #21): the scale-invariant outer step, the best finite epoch kept on
divergence, and λ_max along a run.

What ``outer_step="normalized"`` makes invariant is the step's dependence on the *scale* of
∂J/∂γ (hence of ∂J/∂φ): any c > 0 multiplying the gradient leaves every φ step unchanged. It does
not make a fit independent of η: η also shapes the trajectory θ_t, hence the direction of the
gradient and J itself. The end-to-end tests rescale the sweep's ∂J/∂γ by c and compare.
"""

import math

import pytest
import torch

import learnlaw as ll
import learnlaw.core.engine as engine
import learnlaw.policies.parametric_fit as pf
from learnlaw.core.engine import rms_normalize, split_validation
from learnlaw.core.policy import project_simplex
from learnlaw.policies.parametric import block_policy

F64 = torch.float64
T = 12


def perceptron(n_desired=10):
    return ll.perceptron_task(dim=6, n_train=20, n_desired=n_desired, n_test=10, dtype=F64, seed=3)


def scaled_sweeps(monkeypatch, c: float, at: dict | None = None):
    """Replace the fits' adjoint_sweep by one whose ∂J/∂γ is multiplied by c (or, at the calls
    listed in ``at``, by another factor)."""
    real = engine.adjoint_sweep
    calls = []

    def sweep(*args, **kwargs):
        out = real(*args, **kwargs)
        factor = (at or {}).get(len(calls), c)
        calls.append(factor)
        out.grad.mul_(factor)
        return out

    monkeypatch.setattr(engine, "adjoint_sweep", sweep)
    return calls


# ---- 1. the normalised outer step ---------------------------------------------------------------


@pytest.mark.parametrize("c", [1e-3, 10.0, 1e4])
def test_normalized_update_is_invariant_to_the_gradient_scale(c):
    g = torch.randn(3, 20, generator=torch.Generator().manual_seed(0), dtype=F64)
    g_hat = rms_normalize(g)
    assert torch.allclose(g_hat.square().mean(), torch.ones((), dtype=F64), rtol=1e-14)
    assert torch.allclose(g_hat, g / g.square().mean().sqrt(), rtol=1e-14, atol=0)
    assert torch.allclose(rms_normalize(c * g), g_hat, rtol=1e-14, atol=0)
    # the block update that uses it: Proj_Δ(φ − ε ĝ) is the same from g and from c·g
    phi = torch.full((3, 20), 1 / 20, dtype=F64)
    step = project_simplex(phi - 0.01 * g_hat)
    assert torch.allclose(project_simplex(phi - 0.01 * rms_normalize(c * g)), step, rtol=1e-13)
    # ... while the plain update is not
    assert not torch.allclose(project_simplex(phi - 0.01 * c * g), step, rtol=1e-3)


def test_rms_normalize_edge_cases():
    assert torch.equal(rms_normalize(torch.zeros(2, 3)), torch.zeros(2, 3))
    assert rms_normalize(torch.zeros(0)).shape == (0,)
    big = torch.tensor([3e30, -4e30], dtype=torch.float32)  # g² overflows float32
    assert torch.allclose(rms_normalize(big), torch.tensor([0.6, -0.8]) * math.sqrt(2))
    tiny = torch.tensor([3e-30, 4e-30], dtype=torch.float32)  # g² underflows float32
    assert torch.allclose(rms_normalize(tiny), torch.tensor([0.6, 0.8]) * math.sqrt(2))


FITS = {
    "block": lambda task, eps, **kw: ll.fit.fit_block_policy(task, T, 10.0, 3, eps, 4, **kw),
    "feature_gd": lambda task, eps, **kw: ll.fit.fit_feature_policy(
        task, T, 10.0, blocks=2, outer_lr=eps, epochs=4, optimizer="gd", **kw
    ),
    "feature_adam": lambda task, eps, **kw: ll.fit.fit_feature_policy(
        task, T, 10.0, blocks=2, outer_lr=eps, epochs=4, **kw
    ),
}


@pytest.mark.parametrize("family", list(FITS))
def test_normalized_fit_takes_the_same_steps_whatever_the_gradient_scale(monkeypatch, family):
    """∂J/∂γ rescaled by c ∈ {10⁻³, 10, 10⁴}: identical J at every epoch and the same φ."""
    task = perceptron()
    eps = 0.005 if family == "block" else 0.3
    fit = FITS[family]
    scaled_sweeps(monkeypatch, 1.0)
    ref = fit(task, eps, outer_step="normalized", progress=False)
    js = ref.column("J")
    assert len(js) == 5 and len({round(j, 9) for j in js}) == 5, js  # the fit moves φ
    for c in (1e-3, 10.0, 1e4):
        scaled_sweeps(monkeypatch, c)
        res = fit(task, eps, outer_step="normalized", progress=False)
        assert res.column("J") == pytest.approx(js, rel=1e-10)
        assert torch.allclose(res.policy, ref.policy, rtol=1e-9, atol=1e-14)
        if family != "feature_adam":  # Adam: the softmax-invariant bias weight's ∂J/∂φ is
            # round-off (≈ 1e-17) that Adam's per-coordinate step turns into ±ε moves
            assert torch.allclose(res.phi, ref.phi, rtol=1e-9, atol=1e-12)
        assert res.best_epoch == ref.best_epoch and res.stopped is None


def test_plain_fit_depends_on_the_gradient_scale(monkeypatch):
    """The control: with outer_step="plain" (the default) the same rescaling changes the fit."""
    task = perceptron()
    scaled_sweeps(monkeypatch, 1.0)
    ref = ll.fit.fit_block_policy(task, T, 10.0, 3, 1e-3, 3, progress=False)
    scaled_sweeps(monkeypatch, 10.0)
    res = ll.fit.fit_block_policy(task, T, 10.0, 3, 1e-3, 3, progress=False)
    assert res.column("J")[1] != pytest.approx(ref.column("J")[1], rel=1e-6)


def test_normalized_step_is_a_step_per_entry():
    """One normalised GD epoch on a feature scorer moves φ by exactly ε in root mean square."""
    task = perceptron()
    eps = 0.01  # small: a descent step lowers J, so the fit returns the moved φ (epoch 1)
    res = ll.fit.fit_feature_policy(
        task, T, 10.0, blocks=2, outer_lr=eps, epochs=1, optimizer="gd",
        outer_step="normalized", progress=False,
    )  # fmt: skip
    assert res.best_epoch == 1
    assert float(res.phi.square().mean().sqrt()) == pytest.approx(eps, rel=1e-12)


def test_outer_step_is_checked():
    task = perceptron()
    with pytest.raises(ValueError, match="outer_step"):
        ll.fit.fit_block_policy(task, T, 1.0, 2, 0.1, 1, outer_step="unit", progress=False)
    with pytest.raises(TypeError, match="outer_step"):
        ll.fit.fit_feature_policy(task, T, 1.0, outer_step=1, progress=False)


# ---- 2. the best finite epoch ------------------------------------------------------------------


def test_a_fit_diverging_later_returns_its_best_finite_epoch():
    """A real divergence: lr = 50 trains the uniform policy but not the blocks the fit reaches at
    epoch 6; the fit stops there and returns epoch 3, the lowest validation AUC before it."""
    task = perceptron(n_desired=14)
    args = (task, T, 50.0, 2, 1e-3)
    res = ll.fit.fit_block_policy(*args, 8, validation=4, progress=False)
    assert res.stopped is not None and res.stopped.startswith("diverged at epoch 6: ")
    assert "lr=50" in res.stopped
    assert [h["epoch"] for h in res.history] == list(range(7))
    last = res.history[-1]
    assert last["stopped"] == res.stopped and math.isnan(last["J"])
    assert all("stopped" not in h for h in res.history[:-1])
    vals = res.column("val_auc")[:-1]
    assert res.best_epoch == min(range(len(vals)), key=vals.__getitem__)
    assert 0 < res.best_epoch < 6
    # the returned policy is that epoch's: its validation AUC is the history entry's …
    fit_task, val = split_validation(task, 4)
    run = ll.train(fit_task.with_(test=val), res.policy, 50.0)
    assert float(run.test_loss[1:].sum()) == pytest.approx(
        res.history[res.best_epoch]["val_auc"], rel=1e-12
    )
    # … and the φ that a fit stopped by its epoch count at that epoch ends with
    short = ll.fit.fit_block_policy(*args, res.best_epoch, validation=4, progress=False)
    assert short.stopped is None and short.best_epoch == res.best_epoch
    assert torch.equal(short.phi, res.phi)
    assert torch.equal(res.policy, block_policy(res.phi, T))
    assert torch.equal(res.run.desired_loss, ll.train(task, res.policy, 50.0).desired_loss)


def test_a_non_finite_gradient_after_epoch_0_stops_the_fit(monkeypatch):
    task = perceptron()
    scaled_sweeps(monkeypatch, 1.0, at={2: math.inf})
    res = ll.fit.fit_block_policy(task, T, 10.0, 3, 1e-3, 5, progress=False)
    assert res.stopped.startswith("diverged at epoch 2: ∂J/∂γ is not finite")
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert res.history[-1]["stopped"] == res.stopped and math.isfinite(res.history[-1]["J"])
    js = res.column("J")
    assert res.best_epoch == js.index(min(js))  # epoch 2's policy is finite: a candidate


def test_non_finite_parameters_stop_the_fit(monkeypatch):
    task = perceptron()
    real = pf.feature_pullback
    calls = []

    def pullback(*args, **kwargs):  # epoch 1: a finite ∂J/∂φ whose GD step overflows
        g = real(*args, **kwargs)
        if len(calls) == 1:
            g = g * (1e308 / g.abs().max())
        calls.append(1)
        return g

    monkeypatch.setattr(pf, "feature_pullback", pullback)
    res = ll.fit.fit_feature_policy(
        task, T, 10.0, outer_lr=10.0, epochs=5, optimizer="gd", progress=False
    )
    assert res.stopped.startswith("diverged at epoch 2: the feature policy parameters")
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert math.isnan(res.history[-1]["J"]) and res.best_epoch in (0, 1)
    assert bool(torch.isfinite(res.phi).all())


def test_patience_and_full_runs_are_not_stopped():
    task = perceptron()
    res = ll.fit.fit_block_policy(task, T, 10.0, 3, 1e-3, 3, progress=False)
    assert res.stopped is None and len(res.history) == 4
    res = ll.fit.fit_block_policy(task, T, 50.0, 2, 1.0, 6, patience=1, progress=False)
    assert res.stopped is None and len(res.history) < 7


def test_epoch_0_divergence_still_raises(monkeypatch):
    task = perceptron()
    # the uniform policy (the start, and the baseline) diverges at η = 10⁴
    with pytest.raises(ll.training.DivergenceError, match=r"step \d+ .*lr=10000"):
        ll.fit.fit_block_policy(task, T, 1e4, 2, 1e-3, 3, progress=False)
    with pytest.raises(ll.training.DivergenceError, match=r"step \d+ .*lr=10000"):
        ll.fit.fit_feature_policy(task, T, 1e4, epochs=0, progress=False)
    # at η = 50 the uniform baseline trains but all the weight on example 0 does not
    start = torch.zeros(2, 20, dtype=F64)
    start[:, 0] = 1
    for epochs in (0, 3):
        with pytest.raises(
            ll.training.DivergenceError, match=r"step \d+ .*lr=50.*epoch 0 .*smaller lr"
        ):
            ll.fit.fit_block_policy(task, T, 50.0, 2, 1e-3, epochs, initial=start, progress=False)
    scaled_sweeps(monkeypatch, 1.0, at={0: math.nan})
    with pytest.raises(ll.training.DivergenceError, match=r"not finite at epoch 0 .*lr = 10"):
        ll.fit.fit_block_policy(task, T, 10.0, 2, 1e-3, 3, progress=False)


# ---- 3. λ_max along a run ----------------------------------------------------------------------


def exact_top_eigenvalues(task, policy, lr, steps):
    """λ_max of the full Hessian of Σ_n γ_{t,n} l_n at θ_t (torch.func.hessian, eigvalsh), with θ_t
    from an independent train(keep_params=True)."""
    run = ll.train(task, policy, lr, keep_params=True)
    spec = task.spec
    x, y = task.train

    def weighted(theta, gamma):
        return (gamma * task.per_example_loss(spec.unflatten(theta), x, y)).sum()

    out = []
    for t in steps:
        h = torch.func.hessian(weighted)(run.trajectory[t], policy[t])
        out.append(float(torch.linalg.eigvalsh((h + h.T) / 2)[-1]))
    return out


def tiny_mlp():
    from learnlaw.tasks.toy import mlp_task

    return mlp_task(dim=3, hidden=4, classes=3, n_train=10, n_desired=5, n_test=5, dtype=F64)


@pytest.mark.parametrize("make", ["perceptron", "perceptron_autodiff", "mlp"])
def test_sharpness_matches_the_exact_top_eigenvalue(make):
    if make == "mlp":
        task = tiny_mlp()
    else:
        kernels = "autodiff" if make.endswith("autodiff") else "logistic"
        task = ll.perceptron_task(
            dim=5, n_train=12, n_desired=6, n_test=6, dtype=F64, seed=2, kernels=kernels
        )
    steps, lr = 9, 2.0
    g = torch.Generator().manual_seed(4)
    policy = torch.softmax(torch.randn(steps, task.n_train, generator=g, dtype=F64), 1)
    measured, lam = ll.theory.sharpness(task, policy, lr, every=4, iters=task.n_params)
    assert measured.tolist() == [0, 4, 8] and measured.dtype == torch.int64
    assert lam.dtype == F64 and lam.shape == (3,)
    exact = exact_top_eigenvalues(task, policy, lr, [0, 4, 8])
    assert lam.tolist() == pytest.approx(exact, rel=1e-8)
    assert len({round(v, 6) for v in exact}) == 3  # θ_t moved: three different Hessians
    # every step, and a different seed: the same eigenvalues
    m1, lam1 = ll.theory.sharpness(task, policy, lr, iters=task.n_params, seed=7)
    assert m1.tolist() == list(range(steps))
    assert lam1[[0, 4, 8]].tolist() == pytest.approx(exact, rel=1e-8)
    # fewer Lanczos steps: a lower bound (Ritz values increase to λ_max)
    _, few = ll.theory.sharpness(task, policy, lr, every=4, iters=2)
    assert all(f <= e * (1 + 1e-12) for f, e in zip(few.tolist(), exact))


def test_sharpness_edge_cases_and_bad_inputs():
    task = ll.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4, dtype=F64, seed=1)
    policy = ll.uniform_policy(5, 8, dtype=F64)
    steps, lam = ll.theory.sharpness(task, policy, 1.0, every=50, iters=4)  # every > T: step 0 only
    assert steps.tolist() == [0]
    assert lam.tolist() == pytest.approx(exact_top_eigenvalues(task, policy, 1.0, [0]), rel=1e-8)
    steps, _ = ll.theory.sharpness(task, policy, 1.0, every=5, iters=4)
    assert steps.tolist() == [0]
    steps, _ = ll.theory.sharpness(task, policy, 1.0, every=2, iters=4)
    assert steps.tolist() == [0, 2, 4]
    # a zero Hessian: at η = 1e300 one step saturates every sigmoid (H = Xᵀdiag(o(1−o))X = 0)
    _, lam = ll.theory.sharpness(task, policy, 1e300, every=2, iters=4)
    assert lam[0] > 0 and lam[1:].tolist() == [0.0, 0.0]
    with pytest.raises(ll.policies.PolicyError):
        ll.theory.sharpness(task, torch.zeros(5, 8, dtype=F64), 1.0)
    with pytest.raises(ValueError, match="every"):
        ll.theory.sharpness(task, policy, 1.0, every=0)
    with pytest.raises(ValueError, match="iters"):
        ll.theory.sharpness(task, policy, 1.0, iters=0)
    with pytest.raises(TypeError, match="seed"):
        ll.theory.sharpness(task, policy, 1.0, seed=1.5)
    with pytest.raises(ValueError, match="learning rate"):
        ll.theory.sharpness(task, policy, -1.0)
    with pytest.raises(TypeError, match="Task"):
        ll.theory.sharpness("task", policy, 1.0)
    with pytest.raises(ll.policies.PolicyError):
        ll.theory.sharpness(task, ll.uniform_policy(5, 7, dtype=F64), 1.0)
    # θ overflows at the first step when all the weight sits on an example whose gradient has an
    # entry |(o − y) x_i| > 1.8 (1e308 times it is past float64's 1.8e308, in any order of the
    # products); with the uniform policy, whether θ overflows by step 4 depends on how the CPU's
    # kernels order the products, so that case is not the test
    x, y = task.train
    o = torch.sigmoid(x @ task.params0["weight"][0])
    worst = int(((o - y).abs()[:, None] * x.abs()).amax(1).argmax())
    assert float(((o - y)[worst] * x[worst]).abs().max()) > 1.8
    one = torch.zeros(5, 8, dtype=F64)
    one[:, worst] = 1
    with pytest.raises(ll.training.DivergenceError, match=r"by step 2 .*lr=1e\+308"):
        ll.theory.sharpness(task, one, 1e308, every=2)


# ---- the full search (optimize_policy) ---------------------------------------------------------


def test_optimize_policy_normalized_step(monkeypatch, tmp_path):
    """outer_step="normalized" in the full search: invariant to the gradient's scale, the same
    steps as fit_block_policy with B = T, and a pre-outer_step checkpoint resumes as "plain"."""
    task = perceptron()
    eps = 0.005
    ref = ll.optimize_policy(task, T, 10.0, eps, 3, outer_step="normalized", progress=False)
    assert ref.config.outer_step == "normalized"
    js = ref.column("J")
    assert len({round(j, 9) for j in js}) == 4, js
    fit = ll.fit.fit_block_policy(task, T, 10.0, T, eps, 3, outer_step="normalized", progress=False)
    assert fit.column("J") == pytest.approx(js, rel=1e-12)
    real = engine.adjoint_sweep

    def scaled(*args, **kwargs):
        out = real(*args, **kwargs)
        out.grad.mul_(1e4)
        return out

    monkeypatch.setattr(engine, "adjoint_sweep", scaled)
    res = ll.optimize_policy(task, T, 10.0, eps, 3, outer_step="normalized", progress=False)
    assert res.column("J") == pytest.approx(js, rel=1e-10)
    assert torch.allclose(res.policy, ref.policy, rtol=1e-9, atol=1e-14)
    plain = ll.optimize_policy(task, T, 10.0, eps, 1, progress=False)  # scaled: a huge step
    assert plain.column("J")[1] != pytest.approx(js[1], rel=1e-6)
    monkeypatch.setattr(engine, "adjoint_sweep", real)
    with pytest.raises(ValueError, match="outer_step"):
        ll.optimize_policy(task, T, 10.0, eps, 1, outer_step="rms", progress=False)
    # a state saved before outer_step existed (no such key) resumes as "plain"
    full = ll.optimize_policy(task, T, 10.0, 1e-3, 2, progress=False)

    def interrupt(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ll.optimize_policy(
            task, T, 10.0, 1e-3, 2, checkpoint_dir=tmp_path, callback=interrupt, progress=False
        )
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    del state["config"]["outer_step"]
    torch.save(state, tmp_path / "state.pt")
    resumed = ll.optimize_policy(
        task, T, 10.0, 1e-3, 2, checkpoint_dir=tmp_path, resume=True, progress=False
    )
    assert torch.equal(resumed.policy, full.policy)
    with pytest.raises(ValueError, match="outer_step"):
        ll.optimize_policy(
            task, T, 10.0, 1e-3, 2, checkpoint_dir=tmp_path, resume=True,
            outer_step="normalized", progress=False,
        )  # fmt: skip


def test_optimize_policy_divergence_after_epoch_0_names_the_epoch(monkeypatch):
    """The full search keeps raising (its best-finite-epoch twin is fit_block_policy with B = T),
    but as a DivergenceError naming the epoch and lr, before a non-finite step reaches γ."""
    task = perceptron()
    real = engine.adjoint_sweep

    def failing_at(call: int, how: str):
        calls = []

        def sweep(*args, **kwargs):
            calls.append(1)
            if len(calls) == call and how == "raise":
                raise ll.training.DivergenceError(
                    "training diverged at step 7 with learning rate lr=10"
                )
            out = real(*args, **kwargs)
            if len(calls) == call:
                out.grad[5, 3] = math.inf
            return out

        monkeypatch.setattr(engine, "adjoint_sweep", sweep)
        return calls

    calls = failing_at(2, "inf")
    seen = []
    with pytest.raises(
        ll.training.DivergenceError, match=r"not finite at epoch 1 .*lr = 10.*blocks=steps"
    ):
        ll.optimize_policy(task, T, 10.0, 1e-3, 3, callback=seen.append, progress=False)
    assert [h["epoch"] for h in seen] == [0, 1] and len(calls) == 2  # entry 1 is finite
    failing_at(2, "raise")
    with pytest.raises(
        ll.training.DivergenceError, match=r"step 7 .*lr=10 \(at epoch 1 of the policy"
    ):
        ll.optimize_policy(task, T, 10.0, 1e-3, 3, progress=False)
    failing_at(1, "raise")  # epoch 0: the sweep's own message, unchanged
    with pytest.raises(ll.training.DivergenceError, match=r"lr=10$"):
        ll.optimize_policy(task, T, 10.0, 1e-3, 3, progress=False)
    failing_at(1, "inf")
    with pytest.raises(ll.training.DivergenceError, match=r"not finite at epoch 0"):
        ll.optimize_policy(task, T, 10.0, 1e-3, 3, progress=False)
