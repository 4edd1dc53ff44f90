"""Tasks, training, metrics and Learning-Law measurements against closed forms (float64)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import learnlaw as ll
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=8, n_train=64, n_desired=32, n_test=32, dtype=F64, seed=1)


def sigmoid(u):
    return 1 / (1 + torch.exp(-u))


# -- the perceptron task ------------------------------------------------------------------------
def test_perceptron_task_matches_the_paper_setting():
    t = ll.perceptron_task(dim=128, n_train=4096, n_desired=512, n_test=512, dtype=F64)
    z, y = t.train
    assert z.shape == (4096, 128) and y.shape == (4096,)
    assert t.desired[0].shape == (512, 128) and t.test[0].shape == (512, 128)
    assert float(z.std()) == pytest.approx(math.sqrt(3), rel=0.01)
    assert float(z.mean()) == pytest.approx(0, abs=0.01)
    assert float(t.desired[0].mean()) == pytest.approx(0.5, abs=0.02)
    teacher = t.info["teacher"]
    for split in ("train", "desired", "test"):
        zz, yy = t.split(split)
        torch.testing.assert_close(yy, (zz @ teacher > 0).to(F64))
    assert t.vocab_size == 2 and t.n_params == 128
    w = t.params0["weight"]
    assert w.shape == (1, 128) and float(w.abs().max()) <= 1 / math.sqrt(128)


def test_perceptron_task_is_deterministic_per_seed():
    a, b = (
        ll.perceptron_task(dim=4, n_train=8, seed=5),
        ll.perceptron_task(dim=4, n_train=8, seed=5),
    )
    c = ll.perceptron_task(dim=4, n_train=8, seed=6)
    assert torch.equal(a.train[0], b.train[0]) and torch.equal(
        a.params0["weight"], b.params0["weight"]
    )
    assert not torch.equal(a.train[0], c.train[0])


def test_test_set_follows_the_desired_draws_unless_pooled():
    # Without a pool the test set of K = 8 is desired examples 8..15 of K = 16: pairing them
    # would leak. With one pool, desired sets nest and everything else is shared.
    k8, k16 = (ll.perceptron_task(dim=4, n_train=8, n_desired=k, n_test=8) for k in (8, 16))
    assert torch.equal(k8.test[0], k16.desired[0][8:])
    a, b = (
        ll.perceptron_task(
            dim=4, n_train=8, n_desired=k, n_test=8, desired_pool=16, desired_noise=0.3
        )
        for k in (8, 16)
    )
    assert torch.equal(a.desired[0], b.desired[0][:8]) and torch.equal(
        a.desired[1], b.desired[1][:8]
    )
    for x, y in ((a.test, b.test), (a.train, b.train)):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    assert torch.equal(a.params0["weight"], b.params0["weight"])
    assert not (b.test[0][:, None] == b.desired[0][None]).all(-1).any()
    # the default pool (K) reproduces the unpooled draws exactly
    c = ll.perceptron_task(dim=4, n_train=8, n_desired=8, n_test=8, desired_pool=8)
    assert torch.equal(c.test[0], k8.test[0]) and torch.equal(
        c.params0["weight"], k8.params0["weight"]
    )


def test_planted_kinds():
    t = ll.perceptron_task(
        dim=16, n_train=200, dtype=F64, noisy=10, duplicates=0.05, combinations=10, easy=10
    )
    k = t.kinds
    assert [int(k[n].sum()) for n in ("noisy", "duplicates", "combinations", "easy")] == [
        10,
        10,
        10,
        10,
    ]
    total = sum(
        k[n].to(torch.int) for n in ("noisy", "duplicates", "combinations", "easy", "clean")
    )
    assert bool((total == 1).all()), "every example has exactly one kind"
    z, y = t.train
    teacher = t.info["teacher"]
    clean_label = (z @ teacher > 0).to(F64)
    assert bool((y[k["noisy"]] != clean_label[k["noisy"]]).all())
    assert bool((y[~k["noisy"]] == clean_label[~k["noisy"]]).all())
    for i in k["duplicates"].nonzero()[:, 0]:
        same = (z == z[i]).all(1) & k["clean"]
        assert bool(same.any())
    unit = teacher / teacher.norm()
    assert bool(((z[k["easy"]] @ unit).abs() > 49).all())
    clean = z[k["clean"]]
    for i in k["combinations"].nonzero()[:, 0]:  # z_i lies in the span of clean inputs
        coef = torch.linalg.lstsq(clean.T, z[i]).solution
        torch.testing.assert_close(clean.T @ coef, z[i])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dim=0),
        dict(n_train=-1),
        dict(noisy=-1),
        dict(noisy=0.6, duplicates=0.5),
        dict(desired_noise=2),
        dict(n_desired=8, desired_pool=4),
    ],
)
def test_perceptron_task_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ll.perceptron_task(**{**dict(dim=4, n_train=10), **kwargs})


# -- training -------------------------------------------------------------------------------------
def test_training_steps_and_losses_follow_the_closed_form(task):
    g = torch.Generator().manual_seed(0)
    policy = torch.softmax(torch.randn(5, task.n_train, generator=g, dtype=F64), 1)
    run = ll.train(task, policy, 0.3, keep_params=True)
    z, y = task.train
    zd, yd = task.desired
    zt, yt = task.test
    theta = task.params0["weight"][0].clone()

    def bce(zz, yy, th):
        o = sigmoid(zz @ th)
        return -(yy * torch.log(o) + (1 - yy) * torch.log(1 - o)).mean()

    for t in range(6):
        torch.testing.assert_close(run.trajectory[t], theta)
        assert float(run.desired_loss[t]) == pytest.approx(float(bce(zd, yd, theta)), rel=1e-12)
        assert float(run.test_loss[t]) == pytest.approx(float(bce(zt, yt, theta)), rel=1e-12)
        if t < 5:
            theta = theta - 0.3 * ((sigmoid(z @ theta) - y) * policy[t]) @ z
    assert run.steps == 5 and run.desired_loss.shape == (6,)
    torch.testing.assert_close(run.final_params["weight"][0], theta)
    torch.testing.assert_close(run.params_at(2)["weight"][0], run.trajectory[2])


def test_autodiff_and_closed_form_training_agree(task):
    policy = ll.uniform_policy(20, task.n_train, dtype=F64)
    a = ll.train(task, policy, 0.5)
    b = ll.train(task.with_(kernels="autodiff"), policy, 0.5)
    torch.testing.assert_close(a.desired_loss, b.desired_loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.test_loss, b.test_loss, rtol=1e-12, atol=0)


def test_policy_is_validated_and_cast(task):
    with pytest.raises(ll.policies.PolicyError, match="N = 64"):
        ll.train(task, ll.uniform_policy(3, 10), 0.1)
    run = ll.train(task, ll.uniform_policy(3, 64, dtype=torch.float32), 0.1)
    assert run.desired_loss.dtype == F64
    with pytest.raises(ValueError, match="learning rate"):
        ll.train(task, ll.uniform_policy(3, 64), -1.0)


def test_divergence_names_the_step_and_learning_rate():
    model = nn.Linear(3, 1, bias=False).double()
    x = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(0)) * 10
    y = torch.zeros(10, dtype=F64)
    task = ll.Task(
        model=model,
        params0={"weight": torch.ones(1, 3, dtype=F64)},
        train=(x, y),
        desired=(x, y),
        test=(x, y),
        loss_fn=lambda out, yy: (out[:, 0] - yy) ** 2,
        vocab_size=2,
    )
    with pytest.raises(ll.training.DivergenceError, match=r"step \d+ .*lr=50"):
        ll.train(task, ll.uniform_policy(200, 10, dtype=F64), 50.0)


# -- metrics ------------------------------------------------------------------------------------------
def test_auc_and_compression_ratio_units():
    curve = torch.tensor([5.0, 1.0, 2.0, 3.0])
    assert ll.auc(curve) == 6.0  # t = 1 … T
    one_bit = torch.full((11,), math.log(2))  # 1 bit per label at every step
    assert ll.compression_ratio(one_bit, 2) == pytest.approx(1.0)
    assert ll.compression_ratio(one_bit, 4) == pytest.approx(2.0)
    assert ll.compression_ratio(one_bit / 4, 2) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        ll.compression_ratio(one_bit, 1)
    with pytest.raises(ValueError, match=r"\(T\+1,\)"):
        ll.auc(torch.ones(2, 2))


def test_empirical_acceleration_on_curves_with_a_known_answer():
    t = torch.arange(101, dtype=F64)
    slow, fast = 1 / (1 + t), 1 / (1 + 4 * t)  # fast(t) = slow(4t)
    assert ll.scaling.empirical_acceleration_ratio(slow, fast) == pytest.approx(4.0)
    assert ll.scaling.empirical_acceleration_ratio(slow, slow) == pytest.approx(1.0)
    assert math.isnan(ll.scaling.empirical_acceleration_ratio(fast, slow))  # never reaches it
    assert ll.scaling.reach_step(slow, 0.5) == 1


# -- Learning-Law measurements ------------------------------------------------------------------
def test_contributions_closed_form(task):
    theta = task.params0["weight"][0] + 0.3
    params = {"weight": theta[None]}
    z, y = task.train
    zd, yd = task.desired
    g_dsr = ((sigmoid(zd @ theta) - yd) @ zd) / len(yd)
    expected = (sigmoid(z @ theta) - y) * (z @ g_dsr)
    for kernels in ("logistic", "autodiff"):
        torch.testing.assert_close(
            ll.contributions(task.with_(kernels=kernels), params), expected, rtol=1e-12, atol=1e-15
        )


def test_contributions_of_a_chunked_mlp_match_per_example_gradients():
    t = mlp_task(
        dim=5, hidden=6, classes=3, n_train=30, n_desired=12, n_test=12, dtype=F64, chunk_size=7
    )
    params = {k: v.clone().requires_grad_(True) for k, v in t.params0.items()}
    (zd, yd), (z, y) = t.desired, t.train
    g_dsr = torch.autograd.grad(t.per_example_loss(params, zd, yd).mean(), list(params.values()))
    expected = []
    for n in range(30):
        gn = torch.autograd.grad(
            t.per_example_loss(params, z[n : n + 1], y[n : n + 1]).sum(), list(params.values())
        )
        expected.append(sum((a * b).sum() for a, b in zip(g_dsr, gn)))
    torch.testing.assert_close(ll.contributions(t), torch.stack(expected), rtol=1e-10, atol=1e-14)


def numpy_sim(ct, w):
    out = []
    for c, g in zip(ct, w):
        s = g != 0
        mean = (g * c).sum()
        if s.sum() < 2:
            out.append(np.nan)
            continue
        sd = np.sqrt(((c[s] - mean) ** 2).sum() / (s.sum() - 1))
        out.append(mean / sd)
    return np.array(out)


def test_sim_against_numpy():
    rng = np.random.default_rng(0)
    ct = rng.normal(1.0, 0.5, size=(6, 40))
    w = rng.random((6, 40)) * (rng.random((6, 40)) > 0.3)
    w[5] = 0
    w[5, 3] = 1  # a single non-zero weight: SIM undefined
    w /= w.sum(1, keepdims=True)
    res = ll.sim(torch.tensor(ct), torch.tensor(w))
    ref = numpy_sim(ct, w)
    np.testing.assert_allclose(res.per_step[:5].numpy(), ref[:5], rtol=1e-12)
    assert math.isnan(float(res.per_step[5]))
    assert res.mean == pytest.approx(np.nanmean(ref), rel=1e-12)
    one = ll.sim(torch.tensor(ct[0]), torch.tensor(w[0]))
    assert float(one.per_step) == pytest.approx(ref[0])
    with pytest.raises(ValueError):
        ll.sim(torch.ones(2, 3), torch.ones(2, 4) / 4)


def test_chain_rule_local_and_global_speeds(task):
    """−ΔL_dsr ≈ η Σ_n γ_n CT_n, with an error that shrinks like η²."""
    errs = []
    for lr in (0.02, 0.01):
        sp = ll.law.learning_speeds(task, ll.uniform_policy(10, task.n_train, dtype=F64), lr)
        assert sp["local"].shape == (10, task.n_train)
        errs.append(float((sp["global"] - sp["predicted"]).abs().max()))
        rel = errs[-1] / float(sp["global"].abs().max())
        assert rel < 0.05
    assert errs[1] < errs[0] / 3  # second order in η


def test_zero_weight_diagnostics():
    w = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    ct = torch.tensor([[1.0, -1.0, -2.0, 3.0], [-1.0, -1.0, 2.0, 2.0]])
    # CT ≤ 0 at (0,1), (0,2), (1,0), (1,1); zero weight at (0,2), (1,1): 2 of 4
    assert ll.law.zero_weight_fraction(w, ct) == pytest.approx(0.5)
    losses = torch.tensor([[1e-7, 1.0, 1e-9, 1.0], [1.0, 1e-8, 1.0, 1.0]])
    torch.testing.assert_close(
        ll.law.learned_weight_ratios(w, losses), torch.tensor([1.0, 0.0, 0.0])
    )
    assert math.isnan(ll.law.zero_weight_fraction(w, torch.ones(2, 4)))
