"""Step-size schedules: ``train`` with a ``(T,)`` η_t and the exact ∂J/∂η_t of ``schedule_gradient``.

θ_{t+1} = θ_t − η_t Σ_n γ_{t,n} ∇l_n(θ_t); the adjoint gives ∂J/∂η_t = (γ_t·∂J/∂γ_t)/η_t from the
same sweep as ∂J/∂γ. Checked in float64 against central differences of J (whole-run retraining)
on the perceptron (closed-form kernels), an MLP and a tiny Transformer (both autodiff kernels),
with and without θ checkpointing; the 2-process group is checked in tests/test_distributed.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import central_difference, random_policy, tiny_transformer

import learnlaw as ll
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
FD_RTOL = 1e-6


def perceptron():
    return ll.perceptron_task(dim=6, n_train=20, n_desired=8, n_test=8, dtype=F64, seed=1), 12, 0.8


def mlp(kernels):
    task = mlp_task(dim=4, hidden=6, classes=3, n_train=15, n_desired=6, n_test=5, dtype=F64)
    return task.with_(kernels=kernels), 8, 0.4


def transformer(kernels):
    task = tiny_transformer(chunk_size=3)
    return task.with_(kernels=kernels), 5, 0.5


CASES = {
    "perceptron": perceptron,
    "mlp-autodiff": lambda: mlp("autodiff"),
    "mlp-autodiff_rr": lambda: mlp("autodiff_rr"),
    "transformer-autodiff": lambda: transformer("autodiff"),
    "transformer-autodiff_rr": lambda: transformer("autodiff_rr"),
}


def policy(steps, n, seed=0):
    return random_policy(steps, n, seed, scale=0.7)


def random_schedule(steps, lr, seed=1):
    g = torch.Generator().manual_seed(seed)
    return lr * (0.4 + torch.rand(steps, generator=g, dtype=F64))


def auc(task, policy, lr) -> float:
    return ll.train(task, policy, lr).auc()


@pytest.mark.parametrize("name", list(CASES))
def test_constant_schedule_is_the_scalar(name):
    task, steps, lr = CASES[name]()
    pol = policy(steps, task.n_train)
    a = ll.train(task, pol, lr, keep_params=True)
    b = ll.train(task, pol, torch.full((steps,), lr, dtype=F64), keep_params=True)
    # the schedule path multiplies by a 0-d tensor of the same value: equal to the last bit
    # for the autodiff kernels; the perceptron's fused addmv folds η_t into the residuals,
    # which rounds differently (measured: ≤ 9e-16 per entry, ≤ 4e-16 in norm)
    for x, y in ((a.desired_loss, b.desired_loss), (a.test_loss, b.test_loss),
                 (a.trajectory, b.trajectory)):  # fmt: skip
        if name == "perceptron":
            assert float((x - y).norm() / y.norm()) <= 1e-15
            assert torch.allclose(x, y, rtol=1e-14, atol=0)
        else:
            assert torch.equal(x, y), float((x - y).abs().max())
    assert isinstance(b.lr, torch.Tensor) and b.lr.shape == (steps,) and a.lr == lr


@pytest.mark.parametrize("checkpoint_every", [None, 3, "auto"])
@pytest.mark.parametrize("name", list(CASES))
def test_schedule_gradient_matches_central_differences(name, checkpoint_every):
    task, steps, lr = CASES[name]()
    pol = policy(steps, task.n_train)
    sched = random_schedule(steps, lr)
    J, g = ll.schedule_gradient(task, pol, sched, checkpoint_every)
    assert g.shape == (steps,) and J == pytest.approx(auc(task, pol, sched), rel=1e-13)
    h = 1e-5 * lr
    gen = torch.Generator().manual_seed(7)
    directions = [torch.randn(steps, generator=gen, dtype=F64) for _ in range(2)]
    directions += [torch.eye(steps, dtype=F64)[i] for i in (0, steps // 2, steps - 1)]
    for d in directions:
        fd = central_difference(lambda s: auc(task, pol, s), sched, d, h)
        got = float(g @ d)
        assert abs(got - fd) <= FD_RTOL * max(abs(fd), 1e-8), (got, fd)


@pytest.mark.parametrize("name", ["perceptron", "mlp-autodiff_rr"])
def test_schedule_gradient_at_a_scalar_lr(name):
    """A float lr: the gradient at the constant schedule, equal to the one given as a tensor."""
    task, steps, lr = CASES[name]()
    pol = policy(steps, task.n_train)
    J1, g1 = ll.schedule_gradient(task, pol, lr)
    J2, g2 = ll.schedule_gradient(task, pol, torch.full((steps,), lr, dtype=F64))
    assert J1 == pytest.approx(J2, rel=1e-13)
    assert torch.allclose(g1, g2, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["perceptron", "mlp-autodiff", "transformer-autodiff_rr"])
def test_lr_gradient_is_gamma_dot_policy_gradient_over_eta(name):
    """η_t ∂J/∂η_t = γ_t · ∂J/∂γ_t (one sweep gives both: Sweep.lr_grad)."""
    task, steps, lr = CASES[name]()
    pol = policy(steps, task.n_train)
    sched = random_schedule(steps, lr)
    sweep = ll.training.adjoint_sweep(task, pol, sched, track_test=False)
    _, g_pol = ll.policy_gradient(task, pol, sched)
    assert torch.allclose(sweep.grad, g_pol, rtol=1e-13, atol=0)
    lhs, rhs = sched * sweep.lr_grad, (pol * g_pol).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-15)


def test_schedule_changes_the_run():
    """A non-constant schedule is used step by step (against a hand loop on the perceptron)."""
    task, steps, lr = perceptron()
    pol = policy(steps, task.n_train)
    sched = random_schedule(steps, lr)
    run = ll.train(task, pol, sched, keep_params=True)
    x, y = task.train
    theta = task.spec.flatten(task.params0).clone()
    for t in range(steps):
        resid = torch.sigmoid(x @ theta) - y
        theta = theta - sched[t] * (x.T @ (pol[t] * resid))
        assert torch.allclose(run.trajectory[t + 1], theta, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(run.desired_loss, ll.train(task, pol, lr).desired_loss)


def test_divergence_names_the_step_and_its_lr():
    task, steps, lr = perceptron()
    sched = torch.full((steps,), 0.5, dtype=F64)
    sched[2] = 1e307
    with pytest.raises(ll.training.DivergenceError, match=r"step 3 .*lr=1e\+307"):
        ll.train(task, ll.uniform_policy(steps, task.n_train, dtype=F64), sched)


def test_bad_schedules_are_clear_errors():
    task, steps, lr = perceptron()
    pol = ll.uniform_policy(steps, task.n_train, dtype=F64)
    with pytest.raises(ArgumentValueError, match=r"5 steps but the policy has T = 12"):
        ll.train(task, pol, torch.full((5,), 0.1))
    with pytest.raises(ArgumentValueError, match=r"\(T,\) schedule"):
        ll.train(task, pol, torch.full((steps, 1), 0.1))
    for bad, shown in ((0.0, "0.0"), (-1.0, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf")):
        sched = torch.full((steps,), 0.1, dtype=F64)
        sched[4] = bad
        with pytest.raises(ArgumentValueError, match=rf"lr\[4\] = {shown}.*positive finite"):
            ll.schedule_gradient(task, pol, sched)
    with pytest.raises(ArgumentTypeError):
        ll.train(task, pol, ["a"] * steps)
    # a list and a numpy array are schedules too (Python floats kept in float64)
    ref = ll.train(task, pol, torch.full((steps,), 0.1, dtype=F64)).desired_loss
    for sched in ([0.1] * steps, (0.1,) * steps, np.full(steps, 0.1)):
        run = ll.train(task, pol, sched)
        assert torch.equal(run.desired_loss, ref) and run.lr.dtype == F64


@pytest.mark.parametrize(
    "call",
    [
        lambda t, s, sch: ll.online_policy(t, s, sch),
        lambda t, s, sch: ll.fit.fit_block_policy(t, s, sch, 2, 0.1, 1, progress=False),
        lambda t, s, sch: ll.fit.fit_feature_policy(t, s, sch, epochs=1, progress=False),
        lambda t, s, sch: ll.optimize_policy(t, s, sch, 0.1, 1, progress=False),
        lambda t, s, sch: ll.policies.replay_policy(t, ll.uniform_policy(s, t.n_train), sch),
        lambda t, s, sch: ll.fit.tune_lr(
            lambda lr: ll.train(t, ll.uniform_policy(s, t.n_train), lr), [sch]
        ),
        lambda t, s, sch: ll.select_lr(
            t, lambda v, lr: ll.train(v, ll.uniform_policy(s, v.n_train), lr), [sch]
        ),
        lambda t, s, sch: ll.policies.trajectory_features(t, s, sch, 2),
        lambda t, s, sch: ll.policies.classic_schedule("cosine", s, sch),
    ],
    ids=[
        "online_policy",
        "fit_block_policy",
        "fit_feature_policy",
        "optimize_policy",
        "replay_policy",
        "tune_lr",
        "select_lr",
        "trajectory_features",
        "classic_schedule",
    ],  # fmt: skip
)
def test_scalar_only_functions_name_the_fix(call):
    task, steps, lr = perceptron()
    sched = random_schedule(steps, lr)
    with pytest.raises((TypeError, ValueError), match=r"schedule is only supported by train"):
        call(task, steps, sched)


@pytest.mark.parametrize("value", ["0.1,0.05", "[0.1, 0.05]", "0.1 0.05"])
def test_launcher_lr_refuses_a_schedule(value, capsys):
    from learnlaw import search

    with pytest.raises(SystemExit) as exc:
        search.main(["--lr", value, "--out", "unused"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "schedule is only supported by train" in err and "pass a float" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("fn", ["train", "schedule_gradient"])
def test_a_schedule_on_the_device_costs_no_per_step_sync_or_copy(fn):
    """On the meta device (tests/test_device.py's audit): a schedule adds a constant number of
    host syncs per call (its check; ``Run.lr``'s copy to the CPU), none per step, and no
    host→device copy or mixed-device op — against the scalar path at two horizons."""
    from learnlaw.analysis.device_audit import DeviceAudit

    tasks = [
        ll.perceptron_task(dim=8, n_train=32, n_desired=8, n_test=8, device="meta"),
        mlp_task(dim=4, hidden=6, classes=3, n_train=24, n_desired=8, n_test=8, device="meta"),
    ]
    for task in tasks:
        counts = {}
        for kind in ("scalar", "schedule"):
            for steps in (8, 16):
                pol = ll.uniform_policy(steps, task.n_train, dtype=task.dtype, device="meta")
                lr = 0.1 if kind == "scalar" else torch.full((steps,), 0.1, device="meta")
                with DeviceAudit() as audit:
                    if fn == "train":
                        ll.train(task, pol, lr)
                    else:
                        ll.schedule_gradient(task, pol, lr, 4)
                assert audit.mixed_device_ops == [] and audit.copies["host_to_device"] == 0
                counts[kind, steps] = audit.host_syncs
        slope = {k: counts[k, 16] - counts[k, 8] for k in ("scalar", "schedule")}
        assert slope["schedule"] == slope["scalar"], counts
        assert 0 < counts["schedule", 8] - counts["scalar", 8] <= 2, counts
