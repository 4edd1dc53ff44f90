"""learnlaw.reweight: a model and its data in, θ_T and a trust score per example out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnlaw as ll
from learnlaw.policies.tuning import select_lr

D, C, N, K, T = 8, 3, 120, 48, 30
GRID = (0.1, 0.3, 1.0, 3.0, 10.0)


def _loss(outputs, targets):
    return F.cross_entropy(outputs, targets, reduction="none")


def _data(seed: int = 0, noise: float = 0.4):
    """A 3-class linear teacher; ``noise`` of the training labels moved to another class."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(D, C))
    x, xd = rng.normal(size=(N, D)), rng.normal(size=(K, D))
    y, yd = (x @ w).argmax(1), (xd @ w).argmax(1)
    noisy = rng.random(N) < noise
    y[noisy] = (y[noisy] + rng.integers(1, C, noisy.sum())) % C
    return (x, y), (xd, yd), noisy


def _mlp(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, C)).to(dtype)


@pytest.fixture(scope="module")
def result():
    train_data, desired, noisy = _data()
    kinds = {"noisy": torch.from_numpy(noisy)}
    r = ll.reweight(
        _mlp(), _loss, train_data, desired, steps=T, lrs=GRID, kinds=kinds, progress=False
    )
    return r, noisy


def test_noisy_labels_get_less_trust_than_clean_ones(result):
    r, noisy = result
    clean = float(r.trust[torch.from_numpy(~noisy)].mean())
    assert r.kind_trust["noisy"] == pytest.approx(float(r.trust[torch.from_numpy(noisy)].mean()))
    assert r.kind_trust["noisy"] < 0.5 < 1.2 < clean  # measured 0.21 and 1.51


def test_trust_is_n_times_the_mean_weight_and_the_run_replays(result):
    r, _ = result
    assert r.policy.shape == (T, N)
    torch.testing.assert_close(r.policy.sum(1), torch.ones(T, dtype=torch.float64))
    torch.testing.assert_close(r.trust, N * r.policy.mean(0))
    assert float(r.trust.mean()) == pytest.approx(1.0)
    again = ll.online_policy(r.task, T, r.lr, "relu")
    for name, p in again.run.final_params.items():
        torch.testing.assert_close(r.params[name], p, rtol=0, atol=0)
    replay = ll.train(r.task, r.policy, r.lr)
    torch.testing.assert_close(replay.desired_loss, r.run.desired_loss, rtol=1e-12, atol=1e-12)


def test_both_step_sizes_are_chosen_on_validation_alone(result):
    r, _ = result
    assert r.lr in GRID and r.baseline_lr in GRID
    assert r.choice.info == r.baseline_choice.info  # one split for both
    assert r.choice.info["n_holdout"] == K // 4
    uniform = select_lr(
        r.task, lambda t, lr: ll.train(t, ll.uniform_policy(T, N, dtype=torch.float64), lr), GRID
    )
    assert uniform.lr == r.baseline_lr
    assert uniform.scores() == pytest.approx(r.baseline_choice.scores())
    assert r.validation_ratio == pytest.approx(r.baseline_choice.score / r.choice.score)
    assert r.validation_ratio > 1.1  # measured 1.36 (rule at η = 0.3, uniform at η = 3)
    # the baseline is the uniform run at its η on every desired example
    base = ll.train(r.task, ll.uniform_policy(T, N, dtype=torch.float64), r.baseline_lr)
    torch.testing.assert_close(base.desired_loss, r.baseline.desired_loss)


def test_numpy_float64_data_meet_a_float32_model():
    train_data, desired, _ = _data(seed=1)
    model = _mlp(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # η at the edge of this short grid
        r = ll.reweight(model, _loss, train_data, desired, steps=5, lrs=(0.1, 1.0),
                        progress=False)  # fmt: skip
    assert all(p.dtype == torch.float32 for p in r.params.values())
    assert r.task.train[0].dtype == torch.float32 and r.task.train[1].dtype == torch.int64
    assert r.task.vocab_size == C
    first = next(model.parameters())
    assert not torch.equal(first, r.params["0.weight"])  # trained a copy; model untouched
    torch.testing.assert_close(first, _mlp(torch.float32)[0].weight)


def test_a_chosen_step_size_at_the_grid_edge_warns():
    train_data, desired, _ = _data(seed=2)
    with pytest.warns(UserWarning, match="largest of the grid.*extend lrs"):
        ll.reweight(_mlp(), _loss, train_data, desired, steps=5, lrs=(1e-4, 1e-3),
                    progress=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll.reweight(_mlp(), _loss, train_data, desired, steps=5, lrs=(1e-5,), progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(model="mlp"), "model must be a torch.nn.Module"),
        (dict(loss_fn=3), "loss_fn must be callable"),
        (dict(train_data=np.zeros((4, D))), r"train_data must be an \(inputs, targets\) pair"),
        (dict(desired=(object(), [0])), "the inputs of desired cannot become a tensor"),
        (dict(rule="softmax"), "rule"),
        (dict(steps=0), "steps"),
        (dict(lrs=()), "grid"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs, match):
    train_data, desired, _ = _data(seed=3)
    args = dict(model=_mlp(), loss_fn=_loss, train_data=train_data, desired=desired)
    args.update({k: v for k, v in kwargs.items() if k in args})
    rest = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ll.LearnlawError, match=match):
        ll.reweight(
            args["model"], args["loss_fn"], args["train_data"], args["desired"],
            **{"steps": 3, "progress": False, **rest},
        )  # fmt: skip
