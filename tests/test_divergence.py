"""The divergence criterion: finite but exploding runs are reported, legitimate runs are not."""

import pytest
import torch

import learnlaw as ll
from learnlaw.core.training import DIVERGENCE_FACTOR, check_divergence
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64


def small_perceptron():
    return ll.perceptron_task(dim=8, n_train=64, n_desired=32, n_test=32, dtype=F64, seed=1)


def test_finite_divergence_of_the_perceptron_is_reported():
    task = small_perceptron()
    policy = ll.uniform_policy(20, task.n_train, dtype=F64)
    with pytest.raises(
        ll.training.DivergenceError, match=r"desired loss at step \d+ is .* lr=1e\+307"
    ):
        ll.train(task, policy, 1e307)
    # the old criterion (non-finite only) lets it through, at an absurd but finite loss
    run = ll.train(task, policy, 1e307, divergence_factor=None)
    assert torch.isfinite(run.desired_loss).all()
    assert float(run.desired_loss[-1]) > 1e300


def test_finite_divergence_of_the_mlp_is_reported_by_every_entry_point():
    task = mlp_task(n_train=64, n_desired=16, n_test=16, dtype=F64)
    policy = ll.uniform_policy(10, task.n_train, dtype=F64)
    with pytest.raises(ll.training.DivergenceError, match=r"more than 100 times its initial value"):
        ll.train(task, policy, 1e30)
    with pytest.raises(ll.training.DivergenceError, match=r"lr=1e\+30"):
        ll.policy_gradient(task, policy, 1e30)
    with pytest.raises(ll.training.DivergenceError, match=r"lr=1e\+30"):
        ll.optimize_policy(task, 10, 1e30, 0.1, 1, progress=False)
    # a looser factor lets a moderately growing run finish
    run = ll.train(task, policy, 1e30, divergence_factor=None)
    assert float(run.desired_loss.max()) > DIVERGENCE_FACTOR * float(run.desired_loss[0])


def test_the_factor_is_a_keyword():
    task = small_perceptron()
    policy = ll.uniform_policy(30, task.n_train, dtype=F64)
    run = ll.train(task, policy, 50.0, divergence_factor=None)
    ratio = float(run.desired_loss.max() / run.desired_loss[0])
    assert ratio > 1.5  # this run's loss rises above its start
    with pytest.raises(ll.training.DivergenceError, match="more than 1.5 times"):
        ll.train(task, policy, 50.0, divergence_factor=1.5)
    ll.train(task, policy, 50.0, divergence_factor=ratio * 1.01)
    for bad in (1.0, 0.5, float("inf"), "big"):
        with pytest.raises(ValueError, match="divergence_factor"):
            ll.train(task, policy, 0.1, divergence_factor=bad)


def test_check_divergence_helper():
    check_divergence(5.0, 3, 0.1, initial=1.0)  # below 100 × 1.0
    check_divergence(500.0, 3, 0.1, initial=1.0, factor=None)
    check_divergence(500.0, 3, 0.1, initial=-1.0)  # no factor check for L0 ≤ 0
    with pytest.raises(ll.training.DivergenceError, match=r"the loss at step 3 is 101.*lr=0.1"):
        check_divergence(101.0, 3, 0.1, initial=1.0)
    with pytest.raises(ll.training.DivergenceError, match=r"test loss at step 7 is nan"):
        check_divergence(torch.tensor(float("nan")), 7, 2.0, initial=1.0, what="test loss")


@pytest.mark.parametrize("lr", [3.0])
def test_the_paper_perceptron_never_comes_near_the_criterion(lr):
    task = ll.perceptron_task()  # the chapters' paper-scale perceptron, η up to 3
    run = ll.train(task, ll.uniform_policy(2000, task.n_train), lr)
    for curve in (run.desired_loss, run.test_loss):
        assert float(curve.max() / curve[0]) < 0.1 * DIVERGENCE_FACTOR
