"""∂J/∂γ from the adjoint sweep against finite differences and unrolled autograd (float64)."""

import pytest
import torch
from helpers import central_difference, random_policy, tiny_transformer
from torch.func import functional_call

import learnlaw as ll
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64


def small_perceptron(kernels="logistic"):
    return ll.perceptron_task(
        dim=6, n_train=20, n_desired=10, n_test=10, dtype=F64, seed=3, kernels=kernels
    )


def unrolled_J(task, policy, lr):
    """J(γ) by plain autograd through an unrolled training loop (an independent reference)."""
    params = {k: v.clone().requires_grad_(True) for k, v in task.params0.items()}
    total = 0.0
    for t in range(len(policy)):
        losses = task.loss_fn(functional_call(task.model, params, (task.train[0],)), task.train[1])
        grads = torch.autograd.grad(
            (policy[t] * losses).sum(), list(params.values()), create_graph=True
        )
        params = {k: p - lr * g for (k, p), g in zip(params.items(), grads)}
        dl = task.loss_fn(functional_call(task.model, params, (task.desired[0],)), task.desired[1])
        total = total + dl.mean()
    return total


def finite_difference_check(task, policy, lr, grad, pairs, eps=1e-5):
    """Central differences of J along in-simplex directions e_{t,n} − e_{t,m}."""
    for t, n, m in pairs:
        d = torch.zeros_like(policy)
        d[t, n], d[t, m] = 1.0, -1.0
        fd = central_difference(lambda p: ll.train(task, p, lr).auc(), policy, d, eps)
        exact = float(grad[t, n] - grad[t, m])
        assert abs(fd - exact) <= 1e-6 * max(abs(fd), 1e-3), (t, n, m, fd, exact)


PAIRS = [(0, 0, 1), (3, 5, 2), (7, 19, 4), (11, 8, 9)]


@pytest.mark.parametrize("checkpoint_every", [None, 3, "auto", 12])
def test_perceptron_gradient_matches_finite_differences(checkpoint_every):
    task = small_perceptron()
    policy = random_policy(12, task.n_train)
    J, grad = ll.policy_gradient(task, policy, 0.5, checkpoint_every=checkpoint_every)
    assert grad.shape == (12, task.n_train)
    assert J == pytest.approx(ll.train(task, policy, 0.5).auc(), rel=1e-13)
    finite_difference_check(task, policy, 0.5, grad, PAIRS)


AUTODIFF = ["autodiff", "autodiff_rr"]  # forward-over-reverse and reverse-over-reverse


@pytest.mark.parametrize("kernels", AUTODIFF)
@pytest.mark.parametrize("checkpoint_every", [None, 4])
def test_mlp_gradient_matches_finite_differences(checkpoint_every, kernels):
    task = mlp_task(
        dim=5, hidden=7, classes=3, n_train=24, n_desired=10, n_test=10, dtype=F64, chunk_size=10
    ).with_(kernels=kernels)
    policy = random_policy(12, task.n_train, seed=1)
    J, grad = ll.policy_gradient(task, policy, 0.3, checkpoint_every=checkpoint_every)
    finite_difference_check(task, policy, 0.3, grad, PAIRS)


@pytest.mark.parametrize(
    "make",
    [
        small_perceptron,
        lambda: mlp_task(dim=4, hidden=6, classes=3, n_train=15, n_desired=8, n_test=8, dtype=F64),
        lambda: mlp_task(
            dim=4, hidden=6, classes=3, n_train=15, n_desired=8, n_test=8, dtype=F64
        ).with_(kernels="autodiff_rr"),
    ],
)
def test_gradient_matches_unrolled_autograd(make):
    task = make()
    policy = random_policy(9, task.n_train, seed=2).requires_grad_(True)
    J_ref = unrolled_J(task, policy, 0.4)
    (g_ref,) = torch.autograd.grad(J_ref, policy)
    J, grad = ll.policy_gradient(task, policy.detach(), 0.4)
    assert J == pytest.approx(float(J_ref), rel=1e-12)
    torch.testing.assert_close(grad, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kernels", AUTODIFF)
def test_closed_form_and_autodiff_kernels_agree(kernels):
    policy = random_policy(10, 20, seed=4)
    J1, g1 = ll.policy_gradient(small_perceptron("logistic"), policy, 0.5)
    J2, g2 = ll.policy_gradient(small_perceptron(kernels), policy, 0.5)
    assert J1 == pytest.approx(J2, rel=1e-13)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-14)


def test_linear_model_reverse_over_reverse():
    # a loss linear in θ has no second-order graph: the double backward must give H v = 0
    from learnlaw.core.kernels import ReverseOverReverseKernels

    task = small_perceptron("autodiff_rr").with_(loss_fn=lambda logits, y: -(logits[:, 0] * y))
    theta = task.params0["weight"].reshape(-1)
    v = torch.randn(theta.shape, dtype=F64, generator=torch.Generator().manual_seed(0))
    gamma = torch.full((task.n_train,), 1 / task.n_train, dtype=F64)
    hv, dots = ReverseOverReverseKernels(task).reverse(theta, gamma, v)
    assert bool((hv == 0).all())
    x, y = task.train
    torch.testing.assert_close(dots, -(x @ v) * y)


def test_unknown_kernels():
    with pytest.raises(ValueError, match="autodiff_rr"):
        ll.policy_gradient(small_perceptron("nope"), random_policy(4, 20), 0.5)


def test_checkpointing_memory_and_equality():
    task = small_perceptron()
    policy = random_policy(100, task.n_train, seed=5)
    full = ll.training.adjoint_sweep(task, policy, 0.5)
    auto = ll.training.adjoint_sweep(task, policy, 0.5, checkpoint_every="auto")
    assert auto.checkpoint_every == 10
    assert full.stored_floats == 101 * task.n_params
    assert auto.stored_floats <= 2 * 10 * task.n_params + task.n_params
    torch.testing.assert_close(auto.grad, full.grad, rtol=1e-12, atol=1e-15)


def test_bad_checkpointing_argument():
    task = small_perceptron()
    with pytest.raises(ValueError, match="checkpoint_every"):
        ll.policy_gradient(task, random_policy(4, 20), 0.5, checkpoint_every=0)


@pytest.mark.parametrize("kernels", AUTODIFF)
def test_tiny_transformer_gradient_matches_finite_differences(kernels):
    task = tiny_transformer(chunk_size=4).with_(kernels=kernels)
    policy = random_policy(5, task.n_train, seed=7)
    J, grad = ll.policy_gradient(task, policy, 0.5, checkpoint_every=2)
    assert J == pytest.approx(ll.train(task, policy, 0.5).auc(), rel=1e-12)
    finite_difference_check(task, policy, 0.5, grad, [(0, 0, 1), (2, 5, 3), (4, 2, 4)])
