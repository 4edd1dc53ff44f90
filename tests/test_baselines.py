"""Baselines: uniform, desired-only, train ∪ desired, and the known density ratio (float64)."""

import math

import pytest
import torch
from scipy.stats import multivariate_normal

import learnlaw as ll
from learnlaw.policies.baselines import (
    covariate_shift,
    desired_only_task,
    effective_sample_size,
    importance_log_ratio,
    importance_policy,
    importance_weights,
    union_task,
)
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=6, n_train=40, n_desired=16, n_test=8, dtype=F64, noisy=3)


def test_desired_only_trains_on_the_desired_set(task):
    d = desired_only_task(task)
    assert d.n_train == task.n_desired and d.kinds == {}
    assert d.desired is task.desired and d.test is task.test
    lr = 0.3
    run = ll.train(d, ll.uniform_policy(1, d.n_train, dtype=F64), lr, keep_params=True)
    # one GD step on the mean desired loss, in closed form: θ₁ = θ₀ − η Xᵀ(σ(Xθ₀) − y)/K
    x, y = task.desired
    th0 = task.params0["weight"][0]
    th1 = th0 - lr * x.T @ (torch.sigmoid(x @ th0) - y) / len(y)
    torch.testing.assert_close(run.trajectory[1], th1)
    with pytest.raises(ValueError, match="empty"):
        desired_only_task(task.with_(desired=(x[:0], y[:0])))


def test_union_appends_the_desired_set(task):
    u = union_task(task)
    n, k = task.n_train, task.n_desired
    assert u.n_train == n + k
    torch.testing.assert_close(u.train[0][:n], task.train[0])
    torch.testing.assert_close(u.train[0][n:], task.desired[0])
    torch.testing.assert_close(u.train[1][n:], task.desired[1])
    assert int(u.kinds["desired"].sum()) == k and bool(u.kinds["desired"][n:].all())
    assert torch.equal(u.kinds["noisy"][:n], task.kinds["noisy"])
    assert not bool(u.kinds["noisy"][n:].any())
    # uniform on the union = the mean of the two gradients weighted by N and K
    run = ll.train(u, ll.uniform_policy(1, u.n_train, dtype=F64), 0.5, keep_params=True)
    th0 = task.params0["weight"][0]
    x, y = u.train
    th1 = th0 - 0.5 * x.T @ (torch.sigmoid(x @ th0) - y) / (n + k)
    torch.testing.assert_close(run.trajectory[1], th1)


def test_log_ratio_is_the_difference_of_gaussian_log_densities(task):
    s = covariate_shift(task)
    assert s == dict(train_mean=0.0, train_std=math.sqrt(3.0), desired_mean=0.5, desired_std=1.0)
    d = task.train[0].shape[1]
    x = task.train[0].numpy()
    p_dsr = multivariate_normal(mean=[0.5] * d, cov=1.0)
    p_trn = multivariate_normal(mean=[0.0] * d, cov=3.0)
    expected = torch.as_tensor(p_dsr.logpdf(x) - p_trn.logpdf(x))
    torch.testing.assert_close(importance_log_ratio(task), expected, rtol=1e-12, atol=1e-10)
    w = importance_weights(task)
    torch.testing.assert_close(w, torch.softmax(expected, 0))
    torch.testing.assert_close(
        importance_weights(task, exponent=0), torch.full((40,), 1 / 40, dtype=F64)
    )
    torch.testing.assert_close(importance_weights(task, 0.5), torch.softmax(0.5 * expected, 0))
    p = importance_policy(task, 4)
    ll.policies.validate_policy(p, steps=4, n=40)
    assert bool((p == w).all())


def test_the_ratio_reweights_train_expectations_to_desired_ones():
    # Monte Carlo, D = 2: E_trn[w] = 1 and E_trn[w x] = E_dsr[x] = 0.5·1 with the unnormalised w
    t = ll.perceptron_task(dim=2, n_train=200_000, n_desired=4, n_test=4, dtype=F64, seed=1)
    w = importance_log_ratio(t).exp()
    assert float(w.mean()) == pytest.approx(1.0, abs=0.02)
    torch.testing.assert_close(
        (w[:, None] * t.train[0]).mean(0), torch.full((2,), 0.5, dtype=F64), atol=0.03, rtol=0
    )


def test_the_mlp_shift_and_the_effective_sample_size():
    m = mlp_task(n_train=64, dtype=F64)
    assert covariate_shift(m)["train_std"] == math.sqrt(3.0)
    assert importance_weights(m).shape == (64,)
    assert effective_sample_size(torch.full((10,), 0.1)) == pytest.approx(10)
    assert effective_sample_size(torch.tensor([1.0, 0, 0])) == pytest.approx(1)
    # exact weights in D = 128 collapse onto a few examples; tempering spreads them
    t = ll.perceptron_task(dtype=F64)
    assert effective_sample_size(importance_weights(t)) < 2
    assert effective_sample_size(importance_weights(t, 0.05)) > 1000


def test_bad_inputs(task):
    with pytest.raises(ValueError, match="exponent"):
        importance_weights(task, -1.0)
    with pytest.raises(ValueError, match="steps"):
        importance_policy(task, 0)
    other = task.with_(info={}, name="custom")
    with pytest.raises(ValueError, match="not known.*shift="):
        importance_weights(other)
    shift = dict(train_mean=0.0, train_std=math.sqrt(3.0), desired_mean=0.5, desired_std=1.0)
    torch.testing.assert_close(importance_weights(other, shift=shift), importance_weights(task))
    with pytest.raises(ValueError, match="desired_std"):
        importance_weights(other, shift=dict(train_mean=0.0, train_std=1.0, desired_mean=0.5))
