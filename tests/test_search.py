"""The proximal-gradient policy search: progress, schedule options, checkpoints and resume."""

import math

import pytest
import torch

import learnlaw as ll

F64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=8, n_train=40, n_desired=20, n_test=20, dtype=F64, seed=2)


def test_search_lowers_J_and_keeps_the_policy_feasible(task):
    res = ll.optimize_policy(task, 30, 0.5, 0.05, 6, keep=(0, 3, 6), progress=False)
    J = res.column("J")
    assert len(res.history) == 7 and [h["epoch"] for h in res.history] == list(range(7))
    assert J[-1] < J[0]
    assert J[0] == pytest.approx(res.baseline.auc("desired"))
    assert J[-1] == pytest.approx(res.final.auc("desired"))
    ll.policies.validate_policy(res.policy, steps=30, n=40)
    assert sorted(res.kept) == [0, 3, 6]
    torch.testing.assert_close(res.kept[0], ll.uniform_policy(30, 40, dtype=F64))
    torch.testing.assert_close(res.kept[6], res.policy)
    h0 = res.history[0]
    assert h0["ar_test"] == pytest.approx(1.0) and h0["zero_fraction"] == 0
    assert h0["cr_test"] == pytest.approx(res.baseline.compression_ratio("test"))


def test_one_epoch_is_one_projected_gradient_step(task):
    res = ll.optimize_policy(task, 10, 0.5, 0.1, 1, progress=False)
    uniform = ll.uniform_policy(10, 40, dtype=F64)
    _, grad = ll.policy_gradient(task, uniform, 0.5)
    torch.testing.assert_close(res.policy, ll.project_simplex(uniform - 0.1 * grad))


def test_uniform_steps_and_linear_schedule(task):
    res = ll.optimize_policy(
        task, 12, 0.5, 0.05, 4, uniform_steps=5, schedule="linear", progress=False
    )
    torch.testing.assert_close(res.policy[:5], ll.uniform_policy(5, 40, dtype=F64))
    assert not torch.allclose(res.policy[5:], ll.uniform_policy(7, 40, dtype=F64))
    assert res.column("outer_lr")[:4] == pytest.approx([0.05, 0.0375, 0.025, 0.0125])
    assert math.isnan(res.history[-1]["outer_lr"])


def test_penalty_enters_the_step(task):
    def pull_to_uniform(policy):
        d = policy - 1 / policy.shape[1]
        return 5.0 * float((d**2).sum()), 10.0 * d

    free = ll.optimize_policy(task, 10, 0.5, 0.05, 3, progress=False)
    held = ll.optimize_policy(task, 10, 0.5, 0.05, 3, penalty=pull_to_uniform, progress=False)
    u = ll.uniform_policy(10, 40, dtype=F64)
    assert float((held.policy - u).norm()) < float((free.policy - u).norm())
    assert "penalty" in held.history[1]


def test_resume_reaches_the_same_policy(task, tmp_path):
    full = ll.optimize_policy(task, 15, 0.5, 0.05, 5, keep=(1, 4), progress=False)
    # "Interrupt" after 2 epochs: run a 5-epoch search whose loop we stop by raising.
    calls = {"n": 0}

    def interrupt(policy):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return 0.0, torch.zeros_like(policy)

    with pytest.raises(KeyboardInterrupt):
        ll.optimize_policy(
            task,
            15,
            0.5,
            0.05,
            5,
            keep=(1, 4),
            checkpoint_dir=tmp_path,
            penalty=interrupt,
            progress=False,
        )
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert state["epoch"] == 2

    def no_penalty(policy):
        return 0.0, torch.zeros_like(policy)

    no_penalty.__name__ = "interrupt"  # same configuration as the interrupted search
    resumed = ll.optimize_policy(
        task,
        15,
        0.5,
        0.05,
        5,
        keep=(1, 4),
        checkpoint_dir=tmp_path,
        resume=True,
        penalty=no_penalty,
        progress=False,
    )
    torch.testing.assert_close(resumed.policy, full.policy, rtol=0, atol=0)
    assert resumed.column("J") == pytest.approx(full.column("J"), rel=1e-14)
    assert sorted(resumed.kept) == [1, 4]
    torch.testing.assert_close(resumed.kept[1], full.kept[1], rtol=0, atol=0)


def test_resume_refuses_a_different_search(task, tmp_path):
    ll.optimize_policy(task, 10, 0.5, 0.05, 1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different search"):
        ll.optimize_policy(
            task, 10, 0.5, 0.07, 2, checkpoint_dir=tmp_path, resume=True, progress=False
        )
    with pytest.raises(ValueError, match="checkpoint_dir"):
        ll.optimize_policy(task, 10, 0.5, 0.05, 1, resume=True, progress=False)


@pytest.mark.parametrize(
    "kwargs", [dict(epochs=-1), dict(schedule="cosine"), dict(uniform_steps=11), dict(outer_lr=0.0)]
)
def test_bad_arguments(task, kwargs):
    args = dict(steps=10, lr=0.5, outer_lr=0.05, epochs=1, progress=False) | kwargs
    with pytest.raises(ValueError):
        ll.optimize_policy(task, **args)
