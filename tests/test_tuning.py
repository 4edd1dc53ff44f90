"""The step-size tuner on a task whose best η is known in closed form (float64).

One-dimensional least squares l_n(θ) = ½(x_n θ − y_n)² with noise-free labels y = θ* x: every
split's loss is c_split (θ − θ*)², and full-batch GD gives θ_t − θ* = (1 − ηλ)^t (θ₀ − θ*) with
λ = mean(x_train²). Every validation AUC and final loss is therefore minimised by η* = 1/λ,
where one step lands on θ*, and the one-step score is L_val(θ₀)(1 − ηλ)².
"""

import math

import pytest
import torch
from torch import nn

import learnlaw as ll
from learnlaw.policies.tuning import run_of, select_lr, tune_lr, validation_task

F64 = torch.float64


def half_squared(logits, y):
    return 0.5 * (logits.reshape(-1) - y) ** 2


@pytest.fixture(scope="module")
def lsq():
    g = torch.Generator().manual_seed(0)
    theta_star = 1.7
    model = nn.Linear(1, 1, bias=False).to(F64)

    def split(n, mean, std):
        x = torch.randn(n, 1, generator=g, dtype=F64) * std + mean
        return x, theta_star * x[:, 0]

    return ll.Task(
        model=model,
        params0={"weight": torch.tensor([[-0.4]], dtype=F64)},
        train=split(64, 0.0, 2.0),
        desired=split(40, 0.5, 1.0),
        test=split(40, 0.5, 1.0),
        loss_fn=half_squared,
        vocab_size=2,
        name="lsq",
        kernels="autodiff",
    )


def eta_star(task):
    return 1.0 / float((task.train[0] ** 2).mean())


def uniform_run(steps):
    return lambda t, lr: ll.train(t, ll.uniform_policy(steps, t.n_train, dtype=F64), lr)


@pytest.mark.parametrize("criterion", ["auc", "final"])
def test_select_lr_finds_the_known_best_step(lsq, criterion):
    star = eta_star(lsq)
    grid = [f * star for f in (0.25, 0.5, 0.8, 1.0, 1.25, 1.9, 1e4)]  # the last one diverges
    choice = select_lr(lsq, uniform_run(4), grid, criterion=criterion)
    assert choice.lr == star
    assert choice.criterion == criterion and choice.split == "test"
    assert [row["lr"] for row in choice.table] == grid
    assert choice.table[-1]["diverged"] and choice.table[-1]["score"] == math.inf
    assert "diverged" in choice.table[-1]["error"]
    finite = [row["score"] for row in choice.table[:-1]]
    assert all(math.isfinite(s) for s in finite)
    # scores fall towards η* and rise after it
    assert finite[:4] == sorted(finite[:4], reverse=True) and finite[3:] == sorted(finite[3:])
    assert choice.info == dict(n_holdout=10, holdout_seed=0, n_fit=30)
    assert isinstance(choice.result, ll.Run)


def test_one_step_scores_follow_the_closed_form(lsq):
    # score(η) = L_val(θ₀)(1 − ηλ)² for T = 1 and criterion "final"
    val = validation_task(lsq)
    lam = float((lsq.train[0] ** 2).mean())
    l0 = val.mean_loss(split="test")
    grid = [f / lam for f in (0.4, 0.9, 1.5)]
    choice = tune_lr(lambda lr: uniform_run(1)(val, lr), grid, criterion="final")
    for row in choice.table:
        assert row["score"] == pytest.approx(l0 * (1 - row["lr"] * lam) ** 2, rel=1e-12)
        assert row["auc"] == pytest.approx(row["final"], rel=1e-15)  # T = 1: AUC = L(θ₁)
    assert choice.lr == grid[1]  # |1 − ηλ| = 0.1 beats 0.6 and 0.5
    assert choice.scores() == {r["lr"]: r["score"] for r in choice.table}


def test_the_validation_split_is_held_out_desired_data(lsq):
    seen = []

    def method(t, lr):
        seen.append(t)
        return uniform_run(3)(t, lr)

    choice = select_lr(lsq, method, [0.1, 0.2], n_holdout=8, holdout_seed=3)
    val = seen[0]
    assert val.n_test == 8 and val.n_desired == lsq.n_desired - 8
    desired_rows = {tuple(r.tolist()) for r in lsq.desired[0]}
    test_rows = {tuple(r.tolist()) for r in lsq.test[0]}
    assert all(tuple(r.tolist()) in desired_rows for r in val.test[0])
    assert not any(tuple(r.tolist()) in test_rows for r in val.test[0])
    # the score is the AUC of the validation (= val.test) curve
    run = ll.train(val, ll.uniform_policy(3, val.n_train, dtype=F64), choice.lr)
    assert choice.score == pytest.approx(run.auc("test"), rel=1e-12)


def test_every_kind_of_method_result(lsq):
    task = ll.perceptron_task(dim=4, n_train=32, n_desired=16, n_test=8, dtype=F64)
    steps = 10
    val = validation_task(task)
    grid = [0.3, 1.0]
    policy = ll.uniform_policy(steps, task.n_train, dtype=F64)
    from_policy = select_lr(task, lambda t, lr: policy, grid)
    from_run = select_lr(task, lambda t, lr: ll.train(t, policy, lr), grid)
    assert from_policy.table[0]["score"] == from_run.table[0]["score"]
    online = select_lr(task, lambda t, lr: ll.online_policy(t, steps, lr, "relu"), grid)
    assert online.lr in grid and online.score == min(online.scores().values())
    assert isinstance(online.result, ll.policies.OnlineResult)
    assert run_of(online.result) is online.result.run
    assert run_of(policy, val, 0.3).steps == steps


def test_bad_inputs(lsq):
    fn = lambda lr: uniform_run(2)(lsq, lr)  # noqa: E731
    with pytest.raises(ValueError, match="grid is empty"):
        tune_lr(fn, [])
    with pytest.raises(ValueError, match="grid is empty"):
        select_lr(lsq, uniform_run(2), ())
    with pytest.raises(ValueError, match="positive finite"):
        tune_lr(fn, [0.1, -1.0])
    with pytest.raises(ValueError, match="criterion"):
        tune_lr(fn, [0.1], criterion="median")
    with pytest.raises(ValueError, match="split"):
        tune_lr(fn, [0.1], split="train")
    with pytest.raises(ll.training.DivergenceError, match="every η of the grid"):
        tune_lr(fn, [1e5, 1e6])
    with pytest.raises(TypeError, match="policy tensor"):
        tune_lr(lambda lr: ll.uniform_policy(2, lsq.n_train, dtype=F64), [0.1])
    with pytest.raises(TypeError, match="expected a learnlaw.Run"):
        tune_lr(lambda lr: 3.0, [0.1])
