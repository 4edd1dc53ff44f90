"""Parameterised policies: the maps γ(φ), their exact pullbacks ∂J/∂φ and the fitting loops."""

import pytest
import torch
from helpers import central_difference

import learnlaw as ll
from learnlaw.policies.parametric import (
    block_index,
    block_policy,
    block_pullback,
    coarsen_policy,
    feature_policy,
    feature_pullback,
)
from learnlaw.policies.parametric_features import example_features, trajectory_features
from learnlaw.policies.parametric_fit import fit_block_policy, fit_feature_policy
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
T, LR = 12, 0.5


def perceptron():
    return ll.perceptron_task(dim=6, n_train=20, n_desired=10, n_test=10, dtype=F64, seed=3)


def mlp():
    return mlp_task(dim=4, hidden=6, classes=3, n_train=15, n_desired=8, n_test=8, dtype=F64)


TASKS = [perceptron, mlp]


def J(task, policy):
    return ll.train(task, policy, LR).auc()


def test_block_index_and_policy():
    assert block_index(10, 3).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert torch.equal(block_index(7, 7), torch.arange(7))
    assert torch.equal(block_index(5, 1), torch.zeros(5, dtype=torch.long))
    phi = torch.softmax(torch.randn(3, 4, dtype=F64), 1)
    gamma = block_policy(phi, 10)
    assert gamma.shape == (10, 4)
    assert torch.equal(gamma[5], phi[1])
    assert torch.allclose(coarsen_policy(gamma, 3), phi)
    g = torch.randn(10, 4, dtype=F64)
    assert torch.allclose(block_pullback(g, 10), g)
    assert torch.allclose(block_pullback(g, 1), g.sum(0, keepdim=True))
    assert torch.allclose(block_pullback(g, 3)[2], g[7:].sum(0))


@pytest.mark.parametrize("make", TASKS)
def test_block_gradient_matches_finite_differences(make):
    task = make()
    g = torch.Generator().manual_seed(0)
    phi = torch.softmax(0.5 * torch.randn(4, task.n_train, generator=g, dtype=F64), 1)
    _, grad_gamma = ll.policy_gradient(task, block_policy(phi, T), LR)
    grad = block_pullback(grad_gamma, 4)
    eps = 1e-5
    for b, n, m in [(0, 0, 1), (3, 7, 11), (2, 13, 4)]:
        d = torch.zeros_like(phi)
        d[b, n], d[b, m] = 1.0, -1.0  # stays on the simplex
        fd = central_difference(lambda p: J(task, block_policy(p, T)), phi, d, eps)
        exact = float(grad[b, n] - grad[b, m])
        assert abs(fd - exact) <= 1e-6 * max(abs(fd), 1e-3), (b, n, m, fd, exact)


@pytest.mark.parametrize("per_block", [False, True])
@pytest.mark.parametrize("link", ["softmax", "sparsemax"])
@pytest.mark.parametrize("make", TASKS)
def test_feature_gradient_matches_finite_differences(make, link, per_block):
    task = make()
    if per_block:  # (B, N, D): features at the start of each block of the uniform run
        feats, names = trajectory_features(task, T, LR, 3)
        assert feats.shape[:2] == (3, task.n_train)
    else:
        feats, names = example_features(task)
    g = torch.Generator().manual_seed(1)
    phi = 0.7 * torch.randn(3, feats.shape[-1], generator=g, dtype=F64)

    def pol(p):
        return feature_policy(p, feats, T, link=link, temperature=0.8)

    if link == "sparsemax":
        assert bool((pol(phi) == 0).any()), "the test point should switch some examples off"
    _, grad_gamma = ll.policy_gradient(task, pol(phi), LR)
    grad = feature_pullback(phi, feats, grad_gamma, link=link, temperature=0.8)
    assert grad.shape == phi.shape
    eps = 1e-6
    for seed in range(3):
        d = torch.randn(phi.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
        fd = central_difference(lambda p: J(task, pol(p)), phi, d, eps)
        exact = float((grad * d).sum())
        assert abs(fd - exact) <= 1e-6 * max(abs(fd), 1e-3), (seed, fd, exact)


def test_trajectory_features_are_the_features_at_each_block_start():
    task = mlp()
    feats, names = trajectory_features(task, 10, LR, 3)
    first, first_names = example_features(task)
    assert names == first_names and torch.allclose(feats[0], first)
    run = ll.train(task, ll.uniform_policy(10, task.n_train, dtype=F64), LR, keep_params=True)
    at4, _ = example_features(task, run.params_at(4))  # block 1 starts at t = ⌈10/3⌉ = 4
    assert torch.allclose(feats[1], at4)
    policy = feature_policy(torch.randn(3, feats.shape[-1], dtype=F64), feats, 10)
    assert torch.equal(policy[4], policy[6]) and not torch.equal(policy[3], policy[4])


def test_feature_map_rows_on_the_simplex_and_uniform_at_zero():
    task = perceptron()
    feats, _ = example_features(task)
    n = task.n_train
    for link in ("softmax", "sparsemax"):
        zero = feature_policy(torch.zeros(2, feats.shape[1], dtype=F64), feats, 5, link=link)
        assert torch.allclose(zero, torch.full((5, n), 1.0 / n, dtype=F64))
        phi = 5 * torch.randn(2, feats.shape[1], dtype=F64)
        ll.policies.validate_policy(feature_policy(phi, feats, 5, link=link), steps=5, n=n)
    sparse = feature_policy(
        torch.ones(1, feats.shape[1], dtype=F64) * 3, feats, 5, link="sparsemax"
    )
    assert bool((sparse == 0).any()) and bool((sparse > 0).any())


def test_default_features():
    task = ll.perceptron_task(
        dim=6, n_train=40, n_desired=10, n_test=10, dtype=F64, seed=2, noisy=4
    )
    feats, names = example_features(task)
    assert names == ["bias", "loss", "ct", "grad_norm", "cos", "label"]
    assert torch.allclose(feats[:, 0], torch.ones(40, dtype=F64))
    assert torch.allclose(feats[:, 1:].mean(0), torch.zeros(5, dtype=F64), atol=1e-12)
    ct = ll.contributions(task)
    assert torch.allclose(feats[:, 2], (ct - ct.mean()) / ct.std())
    # logistic loss: ‖∇l_n‖ = |σ(x·θ) − y| ‖x‖
    x, y = task.train
    w = task.params0["weight"][0]
    norms = (torch.sigmoid(x @ w) - y).abs() * x.norm(dim=1)
    assert torch.allclose(feats[:, 3], (norms - norms.mean()) / norms.std())
    sub, sub_names = example_features(task, columns=["grad_norm", "bias"])
    assert sub_names == ["grad_norm", "bias"] and torch.equal(sub, feats[:, [3, 0]])
    _, with_kinds = example_features(task, use_kinds=True)
    assert "kind=noisy" in with_kinds and "kind=clean" in with_kinds
    _, mlp_names = example_features(mlp(), grad_norm=False)
    assert mlp_names[:3] == ["bias", "loss", "ct"] and mlp_names[3].startswith("label=")


def test_full_block_search_equals_optimize_policy():
    task = perceptron()
    ref = ll.optimize_policy(task, T, LR, outer_lr=0.05, epochs=2, progress=False)
    res = fit_block_policy(task, T, LR, T, 0.05, 2, progress=False)
    assert res.best_epoch == 2
    assert torch.allclose(res.policy, ref.policy, atol=1e-12)
    assert res.column("J") == pytest.approx(ref.column("J"), rel=1e-12)
    assert res.column("ar_test") == pytest.approx(ref.column("ar_test"), nan_ok=True)
    assert torch.allclose(res.run.test_loss, ref.final.test_loss)


def test_feature_fit_lowers_J_and_validation_selects_the_epoch():
    task = perceptron()
    res = fit_feature_policy(task, T, LR, blocks=2, epochs=6, outer_lr=0.2, progress=False)
    js = res.column("J")
    assert min(js[1:]) < js[0]
    assert res.best_epoch == min(range(len(js)), key=js.__getitem__)
    assert torch.allclose(res.run.desired_loss, ll.train(task, res.policy, LR).desired_loss)
    val = fit_feature_policy(
        task, T, LR, epochs=8, outer_lr=0.5, validation=3, patience=2, progress=False
    )
    vals = val.column("val_auc")
    assert len(vals) <= 9 and all(h["epoch"] == i for i, h in enumerate(val.history))
    assert val.best_epoch == min(range(len(vals)), key=vals.__getitem__)
    assert "ar_test" in val.history[0] and val.run.steps == T
    uniform = ll.train(task, ll.uniform_policy(T, task.n_train, dtype=F64), LR)
    extra = (task.desired[0][:4] + 0.1, task.desired[1][:4])  # an extra desired part
    for track in (True, False):
        r = fit_feature_policy(
            task, T, LR, epochs=1, validation=extra, track_test=track, progress=False
        )
        assert torch.allclose(r.baseline.test_loss, uniform.test_loss)
        assert ("ar_test" in r.history[0]) == track and "val_auc" in r.history[0]
    feats, names = trajectory_features(task, T, LR, 3)
    per_block = fit_feature_policy(
        task, T, LR, features=feats, feature_names=names, blocks=3, link="sparsemax",
        optimizer="gd", outer_lr=1e-3, epochs=2, progress=False,
    )  # fmt: skip
    assert per_block.phi.shape == (3, len(names)) and per_block.feature_names == names
    assert min(per_block.column("J")[1:]) < per_block.column("J")[0]
    ll.policies.validate_policy(val.policy, steps=T, n=task.n_train)


def test_bad_inputs():
    task = perceptron()
    feats, _ = example_features(task)
    phi = torch.zeros(2, feats.shape[1], dtype=F64)
    with pytest.raises(ValueError, match="blocks must be an int"):
        block_index(5, 6)
    with pytest.raises(ValueError, match="blocks must be an int"):
        fit_block_policy(task, T, LR, 0, 0.1, 1, progress=False)
    with pytest.raises(ValueError, match="unknown link 'relu'"):
        feature_policy(phi, feats, T, link="relu")
    with pytest.raises(ValueError, match="temperature"):
        feature_policy(phi, feats, T, temperature=0)
    with pytest.raises(ValueError, match="D = 6"):
        feature_policy(torch.zeros(2, 3, dtype=F64), feats, T)
    with pytest.raises(ValueError, match="N = 20 rows"):
        fit_feature_policy(task, T, LR, features=feats[:5], progress=False)
    with pytest.raises(ValueError, match="Q = 2 blocks"):
        fit_feature_policy(task, T, LR, features=feats.expand(3, -1, -1), blocks=2)
    with pytest.raises(ValueError, match="3 blocks but phi has Q = 2"):
        feature_policy(phi, feats.expand(3, -1, -1), T)
    with pytest.raises(ValueError, match="non-finite"):
        feature_policy(phi, feats * torch.nan, T)
    with pytest.raises(ValueError, match=r"unknown feature columns \['margin'\]"):
        example_features(task, columns=["loss", "margin"])
    with pytest.raises(ValueError, match="optimizer"):
        fit_feature_policy(task, T, LR, optimizer="sgd", progress=False)
    with pytest.raises(ValueError, match="validation"):
        fit_feature_policy(task, T, LR, validation=10, progress=False)
    with pytest.raises(ll.policies.PolicyError):
        fit_block_policy(task, T, LR, 2, 0.1, 1, initial=torch.ones(2, 20, dtype=F64))
    with pytest.raises(ValueError, match="learning rate"):
        fit_block_policy(task, T, LR, 2, -1.0, 1)
    with pytest.raises(ValueError, match="epochs"):
        fit_block_policy(task, T, LR, 2, 0.1, -1, progress=False)


def test_an_overflowing_adjoint_is_reported_as_divergence(monkeypatch):
    """A non-finite ∂J/∂γ (the adjoint overflowing at a large η) is a DivergenceError naming the
    epoch and lr, not a NaN policy further on."""
    import learnlaw.core.engine as engine

    real = engine.adjoint_sweep

    def overflowing(*args, **kwargs):
        sweep = real(*args, **kwargs)
        sweep.grad[3, 1] = float("inf")
        return sweep

    monkeypatch.setattr(engine, "adjoint_sweep", overflowing)
    task = ll.perceptron_task(dim=4, n_train=12, n_desired=6, n_test=6, dtype=torch.float64)
    with pytest.raises(ll.training.DivergenceError, match=r"epoch 0 .*lr = 0\.5"):
        ll.fit.fit_block_policy(task, 10, 0.5, 2, 1e-2, 3, progress=False)
