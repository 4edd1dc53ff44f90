"""Norm-matched controls and the random-sparsification control, against an independent run.

Every controlled run is re-run by hand from θ_0 (float64): per-example gradients G (N, P) by
``torch.func.jacrev`` of the per-example losses and ∇L_dsr by ``torch.func.grad``, never the
library's kernels; the rule's row w_t from CT = G ∇L_dsr at the current θ_t; d_rule = Gᵀw_t,
d_uni = Gᵀu; the step of ``"direction"`` is d_rule·‖d_uni‖/‖d_rule‖ and of ``"length"``
d_uni·‖d_rule‖/‖d_uni‖. Checked at EVERY step of the library's run: the direction of
θ_{t+1} − θ_t (unit vectors equal, cosine 1), its length (η‖d_uni‖ resp. η‖d_rule‖), the
recorded norms and scale, the rule's row at the controlled θ_t, and the whole hand trajectory.
Both the perceptron's fused path (closed-form kernels) and the generic autodiff path (an MLP)
are covered.
"""

import warnings

import pytest
import torch
from torch.func import functional_call, grad, jacrev

import learnlaw as ll
from learnlaw.analysis.device_audit import DeviceAudit
from learnlaw.policies.controls import CONTROLS, controlled_step
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
LR = 0.5
TOL = 1e-12
TRAJECTORY_TOL = 1e-9
"""The whole hand trajectory against the library's, relative. Looser than the per-step checks
(which use the library's own θ_t): under ``"length"`` the perceptron's relu run amplifies
rounding — measured, the library's own run from θ_0·(1 + 1e-15) differs from the run from θ_0
by 9e-11 (relative) at step 24, and the hand run by 1.1e-10 at most; under ``"direction"``
both stay below 2e-14."""


@pytest.fixture(scope="module")
def tasks():
    mlp = mlp_task(dim=4, hidden=5, classes=3, n_train=24, n_desired=12, n_test=12, dtype=F64)
    return {
        "perceptron": ll.perceptron_task(
            dim=8, n_train=48, n_desired=24, n_test=24, dtype=F64, seed=3
        ),
        "mlp": mlp.with_(kernels="autodiff"),
        "mlp_rr": mlp.with_(kernels="autodiff_rr"),
    }


# -- the independent re-computation ----------------------------------------------------------
def losses(task, theta, split):
    x, y = task.split(split)
    return task.loss_fn(functional_call(task.model, task.spec.unflatten(theta), (x,)), y)


def hand_grads(task, theta):
    """G (N, P) and ∇L_dsr (P,) at θ by plain torch.func, independent of the kernels."""
    g = jacrev(lambda th: losses(task, th, "train"))(theta)
    g_dsr = grad(lambda th: losses(task, th, "desired").mean())(theta)
    return g, g_dsr


def power_row(ct, power):
    pos = ct.clamp(min=0)
    if not bool((pos > 0).any()):
        return torch.full_like(ct, 1 / len(ct))
    w = pos**power
    return w / w.sum()


def hand_step(g, w, control):
    """(s, ‖d_rule‖, ‖d_uni‖, d_rule, d_uni) of the control from G and the row w."""
    d_rule, d_uni = g.T @ w, g.mean(0)
    nr, nu = d_rule.norm(), d_uni.norm()
    assert float(nr) > 0 and float(nu) > 0  # the non-degenerate case is checked here
    s = d_rule * (nu / nr) if control == "direction" else d_uni * (nr / nu)
    return s, nr, nu, d_rule, d_uni


def check_run(task, res, control, rows=None, power=1.0):
    """Check every step of ``res`` (an OnlineResult or ReplayResult with keep_params) by hand.

    ``rows``: the fixed rows of a replay; ``None``: recompute the rule's row from CT at the
    run's own θ_t. Returns the largest error of each kind.
    """
    traj, steps = res.run.trajectory, res.run.steps
    err = dict.fromkeys(("unit", "cos", "length", "norms", "scale", "row", "trajectory"), 0.0)
    sep = dict(angle=0.0, ratio=0.0)  # how far d_rule is from d_uni (the test's power)
    theta_hand = traj[0].clone()
    for t in range(steps):
        theta = traj[t]
        g, g_dsr = hand_grads(task, theta)
        w = power_row(g @ g_dsr, power) if rows is None else rows[t]
        if rows is None:
            got = res.policy[t]
            err["row"] = max(err["row"], float((got - w).abs().max() / w.abs().max()))
        s, nr, nu, d_rule, d_uni = hand_step(g, w, control)
        kept = d_rule if control == "direction" else d_uni
        length = LR * (nu if control == "direction" else nr)
        delta = traj[t + 1] - theta
        unit = -delta / delta.norm()
        err["unit"] = max(err["unit"], float((unit - kept / kept.norm()).norm()))
        err["cos"] = max(err["cos"], abs(1 - float(unit @ kept / kept.norm())))
        err["length"] = max(err["length"], float((delta.norm() - length).abs() / length))
        norms = torch.stack((nr, nu))
        err["norms"] = max(err["norms"], float(((res.step_norms[t] - norms) / norms).abs().max()))
        scale = nu / nr if control == "direction" else nr / nu
        err["scale"] = max(err["scale"], float((res.step_scale[t] - scale).abs() / scale))
        sep["angle"] = max(sep["angle"], float((d_rule / nr - d_uni / nu).norm()))
        sep["ratio"] = max(sep["ratio"], abs(float(nr / nu) - 1))
        # the hand run from θ_0, with its own θ̂_t (not the library's)
        g_h, g_dsr_h = hand_grads(task, theta_hand)
        w_h = power_row(g_h @ g_dsr_h, power) if rows is None else rows[t]
        theta_hand = theta_hand - LR * hand_step(g_h, w_h, control)[0]
        rel = float((traj[t + 1] - theta_hand).norm() / theta_hand.norm())
        err["trajectory"] = max(err["trajectory"], rel)
    # the check can fail: the rule's direction and length differ from the uniform row's
    assert sep["angle"] > 1e-2 and sep["ratio"] > 1e-2, sep
    return err


def assert_small(err, tol=TOL):
    bad = {
        k: f"{v:.2e}"
        for k, v in err.items()
        if not v <= (TRAJECTORY_TOL if k == "trajectory" else tol)
    }
    assert not bad, f"above {tol:g}: {bad}"


ONLINE_CASES = [
    ("perceptron", "relu", {}, 25),
    ("perceptron", "power", {"power": 2.0}, 25),
    ("mlp", "relu", {}, 10),
    ("mlp_rr", "power", {"power": 0.5}, 6),
]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("which, rule, params, steps", ONLINE_CASES)
def test_online_controls_match_a_hand_run(tasks, which, rule, params, steps, control):
    task = tasks[which]
    res = ll.online_policy(task, steps, LR, rule, control=control, keep_params=True, **params)
    assert res.control == control and res.step_norms.shape == (steps, 2)
    assert res.step_scale.shape == (steps,)
    ll.policies.validate_policy(res.policy, steps=steps, n=task.n_train)
    assert_small(check_run(task, res, control, power=params.get("power", 1.0)))
    # the controlled run is not the policy's own run, and train does not replay it
    plain = ll.train(task, res.policy, LR)
    assert float((plain.desired_loss - res.run.desired_loss).abs().max()) > 1e-6


def test_online_without_control_is_replayed_by_train(tasks):
    for which, steps in (("perceptron", 30), ("mlp", 10)):
        task = tasks[which]
        res = ll.online_policy(task, steps, LR, "relu", keep_params=True)
        ref = ll.train(task, res.policy, LR, keep_params=True)
        assert res.control is None and res.step_norms is None and res.step_scale is None
        # bit-identical: the same kernels in the same order as before the controls existed
        assert torch.equal(res.run.desired_loss, ref.desired_loss)
        assert torch.equal(res.run.test_loss, ref.test_loss)
        assert torch.equal(res.run.trajectory, ref.trajectory)


def fitted_like_policy(steps, n, seed):
    """A (T, N) policy with uneven weights and zeros, as a search returns (rows on Δ)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(steps, n, generator=gen, dtype=F64) ** 3
    w[torch.rand(steps, n, generator=gen) < 0.5] = 0
    w[:, 0] += 1e-3  # no empty row
    return w / w.sum(1, keepdim=True)


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("which, steps", [("perceptron", 25), ("mlp", 10)])
def test_replay_controls_match_a_hand_run(tasks, which, steps, control):
    task = tasks[which]
    policy = fitted_like_policy(steps, task.n_train, seed=5)
    res = ll.policies.replay_policy(task, policy, LR, control, keep_params=True)
    assert isinstance(res, ll.policies.ReplayResult) and res.control == control
    assert_small(check_run(task, res, control, rows=policy))


def test_replay_without_control_is_train(tasks):
    for which in ("perceptron", "mlp"):
        task = tasks[which]
        policy = fitted_like_policy(12, task.n_train, seed=6)
        res = ll.policies.replay_policy(task, policy, LR, keep_params=True)
        ref = ll.train(task, policy, LR, keep_params=True)
        assert res.control is None and res.step_norms is None
        for a, b in zip(
            (res.run.desired_loss, res.run.test_loss, res.run.trajectory),
            (ref.desired_loss, ref.test_loss, ref.trajectory),
        ):
            assert torch.equal(a, b)


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("which, steps", [("perceptron", 30), ("mlp", 8)])
def test_replay_reproduces_a_controlled_online_run(tasks, which, steps, control):
    task = tasks[which]
    res = ll.online_policy(task, steps, LR, "relu", control=control, keep_params=True)
    rep = ll.policies.replay_policy(task, res.policy, LR, control, keep_params=True)
    for a, b in ((rep.run.trajectory, res.run.trajectory), (rep.step_norms, res.step_norms)):
        assert float((a - b).abs().max() / b.abs().max()) <= TOL
    curve = rep.run.desired_loss
    assert float(((curve - res.run.desired_loss) / curve).abs().max()) <= TOL


def test_controls_with_the_quadratic_rule(tasks):
    """Allowed: the quadratic rule's rows (checked as fixed rows), the controlled step."""
    task = tasks["perceptron"]
    for control in CONTROLS:
        res = ll.online_policy(task, 6, LR, "quadratic", control=control, keep_params=True)
        assert res.inner_iters.shape == (6,)
        assert_small(check_run(task, res, control, rows=res.policy))


# -- degenerate steps -------------------------------------------------------------------------
def test_zero_norms_give_a_zero_step():
    # the arithmetic of both paths: a zero column gives s = 0, scale 0, no nan
    d = torch.tensor([3.0, 4.0], dtype=F64)
    zero = torch.zeros(2, dtype=F64)
    for control in CONTROLS:
        for pair in (torch.stack((d, zero), 1), torch.stack((zero, d), 1)):
            s, norms, scale = controlled_step(pair, control)
            assert torch.equal(s, zero) and float(scale) == 0
            assert sorted(norms.tolist()) == [0.0, 5.0]
        s, _, scale = controlled_step(torch.stack((zero, zero), 1), control)
        assert torch.equal(s, zero) and float(scale) == 0


def test_online_with_a_zero_uniform_gradient_stays_put():
    # θ₀ = 0: ∇l_1 = −½e₁ and ∇l_2 = +½e₁ cancel (d_uni = 0), while relu keeps example 1 only
    # (CT = (¼, −¼)) and moves θ without a control
    e1 = torch.tensor([[1.0, 0.0]], dtype=F64)
    y = torch.ones(2, dtype=F64)
    task = ll.perceptron_task(dim=2, n_train=2, n_desired=1, n_test=1, dtype=F64).with_(
        train=(torch.cat((e1, -e1)), y),
        desired=(e1, y[:1]),
        test=(e1, y[:1]),
        params0={"weight": torch.zeros(1, 2, dtype=F64)},
    )
    plain = ll.online_policy(task, 4, LR, "relu", keep_params=True)
    assert float(plain.run.trajectory[-1].norm()) > 0.1
    for control in CONTROLS:
        res = ll.online_policy(task, 4, LR, "relu", control=control, keep_params=True)
        assert bool((res.run.trajectory == 0).all())  # zero steps, no nan
        assert bool((res.step_scale == 0).all()) and bool((res.step_norms[:, 1] == 0).all())
        torch.testing.assert_close(res.step_norms[:, 0], torch.full((4,), 0.5, dtype=F64))


def test_replay_with_a_zero_policy_gradient_stays_put():
    # example 2 has input 0 (∇l_2 = 0): rows on it give d_rule = 0 while d_uni ≠ 0
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=F64)
    y = torch.ones(2, dtype=F64)
    task = ll.perceptron_task(dim=2, n_train=2, n_desired=1, n_test=1, dtype=F64).with_(
        train=(x, y), desired=(x[:1], y[:1]), test=(x[:1], y[:1])
    )
    policy = torch.tensor([[0.0, 1.0]] * 3, dtype=F64)
    for control in CONTROLS:
        res = ll.policies.replay_policy(task, policy, LR, control, keep_params=True)
        assert bool((res.run.trajectory == res.run.trajectory[0]).all())
        assert bool((res.step_norms[:, 0] == 0).all()) and bool((res.step_norms[:, 1] > 0).all())
        assert bool((res.step_scale == 0).all())


# -- the random-sparsification control for SIM -------------------------------------------------
def test_random_sparse_policy():
    policy = fitted_like_policy(40, 30, seed=7)
    policy[3] = 0
    policy[3, 4] = 1.0  # a one-hot row
    policy[5] = 1 / 30  # a full row
    a = ll.policies.random_sparse_policy(policy, seed=0)
    assert a.shape == policy.shape and a.dtype == policy.dtype
    ll.policies.validate_policy(a, steps=40, n=30)
    k = (policy != 0).sum(1)
    assert torch.equal((a != 0).sum(1), k)
    # uniform over the chosen examples
    nz = a != 0
    torch.testing.assert_close(a[nz], (1 / k.to(F64))[:, None].expand_as(a)[nz], rtol=0, atol=0)
    assert torch.equal(a, ll.policies.random_sparse_policy(policy, seed=0))  # reproducible
    b = ll.policies.random_sparse_policy(policy, seed=1)
    assert not torch.equal(a != 0, b != 0)  # another seed, other examples
    assert not torch.equal(a != 0, policy != 0)  # not the policy's own support
    assert ll.policies.random_sparse_policy(policy.float(), seed=0).dtype == torch.float32


def test_random_sparse_policy_places_weights_uniformly():
    # k_t = 1 … 4 non-zeros in N = 8 columns, 4000 rows: every column is chosen
    # Σ_t k_t / N times on average; the counts stay within 5 standard deviations
    steps, n = 4000, 8
    k = torch.arange(steps) % 4 + 1
    policy = (torch.arange(n)[None, :] < k[:, None]).to(F64)
    policy /= policy.sum(1, keepdim=True)
    counts = (ll.policies.random_sparse_policy(policy, seed=3) != 0).sum(0).to(F64)
    p = k.to(F64) / n
    mean, sd = float(p.sum()), float((p * (1 - p)).sum().sqrt())
    assert float((counts - mean).abs().max()) <= 5 * sd
    assert float(counts[-1]) > 0  # the original put nothing in the last columns


def test_sim_of_a_random_sparsification_is_the_papers_formula_over_its_own_support(tasks):
    task = tasks["perceptron"]
    res = ll.online_policy(task, 10, LR, "relu", keep_contributions=True)
    rand = ll.policies.random_sparse_policy(res.policy, seed=0)
    own, other = ll.sim(res.contributions, res.policy), ll.sim(res.contributions, rand)
    assert torch.equal((rand != 0).sum(1), (res.policy != 0).sum(1))  # as sparse, row by row
    checked = 0
    for t in range(10):  # Eq. 7 by hand: γ-weighted mean over the unbiased sd on the support
        for pol, got in ((res.policy, own), (rand, other)):
            ct, w = res.contributions[t].to(F64), pol[t].to(F64)
            on = w != 0
            if int(on.sum()) < 2:
                assert torch.isnan(got.per_step[t])
                continue
            mean = float((w * ct).sum())
            sd = float(((ct[on] - mean) ** 2).sum() / (int(on.sum()) - 1)) ** 0.5
            assert float(got.per_step[t]) == pytest.approx(mean / sd, rel=1e-10)
            checked += 1
    assert checked >= 10
    assert not torch.equal(rand != 0, res.policy != 0)  # the control moved the weights


# -- bad inputs -----------------------------------------------------------------------------
def test_bad_inputs(tasks):
    task = tasks["perceptron"]
    policy = ll.uniform_policy(3, task.n_train, dtype=F64)
    for call in (
        lambda c: ll.online_policy(task, 3, LR, control=c),
        lambda c: ll.policies.replay_policy(task, policy, LR, c),
    ):
        with pytest.raises(ValueError, match="unknown control 'norm'.*direction.*length"):
            call("norm")
        with pytest.raises(TypeError, match="control must be None or one of"):
            call(1)
    with pytest.raises(ll.policies.PolicyError):
        ll.policies.replay_policy(task, policy[:, :5], LR, "length")
    with pytest.raises(ll.policies.PolicyError):
        ll.policies.random_sparse_policy(policy * 2, seed=0)
    with pytest.raises(ValueError, match="seed"):
        ll.policies.random_sparse_policy(policy, seed=-1)
    with pytest.raises(ll.training.DivergenceError, match="lr=1e\\+06"):
        ll.policies.replay_policy(
            task, ll.uniform_policy(20, task.n_train, dtype=F64), 1e6, "direction"
        )


# -- device hygiene on the meta device --------------------------------------------------------
def _syncs_per_step(make, t1=8, t2=16):
    audits = []
    for t in (t1, t2):
        with DeviceAudit() as audit:
            make(t)
        audits.append(audit)
    for a in audits:
        assert a.mixed_device_ops == [] and a.copies["host_to_device"] == 0, a.report()
    return (audits[1].host_syncs - audits[0].host_syncs) / (t2 - t1)


@pytest.mark.parametrize("which, kernels", [("perceptron", "logistic"), ("mlp", "autodiff")])
def test_controls_add_no_host_sync_per_step(which, kernels):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "perceptron":
            task = ll.perceptron_task(dim=8, n_train=32, n_desired=8, n_test=8, device="meta")
        else:
            task = mlp_task(
                dim=4, hidden=6, classes=3, n_train=24, n_desired=8, n_test=8, device="meta"
            )
    task = task.with_(kernels=kernels)
    for control in CONTROLS:
        # the same budget as the uncontrolled rule: one host sync per block of ≥ 8 steps
        slope = _syncs_per_step(lambda t: ll.online_policy(task, t, 0.1, control=control))
        assert slope <= 1 / 8
        policy = ll.uniform_policy(16, task.n_train, device="meta")
        slope = _syncs_per_step(lambda t: ll.policies.replay_policy(task, policy[:t], 0.1, control))
        assert slope <= 1 / 8
