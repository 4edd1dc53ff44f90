"""run_contributions: the contributions along a run without its stored trajectory."""

from __future__ import annotations

import pytest
import torch
from helpers import sparse_random_policy, tiny_transformer

from learnlaw.core.law import contribution_trajectory, run_contributions
from learnlaw.core.policy import uniform_policy
from learnlaw.core.training import train
from learnlaw.tasks.perceptron import perceptron_task


@pytest.mark.parametrize("steps", [1, 7, 8, 21])  # shorter than, equal to and past a block
def test_matches_the_stored_trajectory_perceptron(steps):
    task = perceptron_task(dim=5, n_train=12, n_desired=6, n_test=6, dtype=torch.float64)
    policy = sparse_random_policy(steps, 12)
    run = train(task, policy, 0.7, keep_params=True)
    want = contribution_trajectory(task, run.trajectory[:-1])
    got = run_contributions(task, policy, 0.7)
    assert got.shape == (steps, 12) and got.device.type == "cpu"
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        run_contributions(task, policy, 0.7, split="test"),
        contribution_trajectory(task, run.trajectory[:-1], split="test"),
        rtol=1e-12,
        atol=1e-14,
    )


def test_matches_the_stored_trajectory_transformer():
    task = tiny_transformer(max_len=6, seed=1)
    policy = sparse_random_policy(11, 6, seed=2)
    run = train(task, policy, 0.5, keep_params=True)
    want = contribution_trajectory(task, run.trajectory[:-1])
    torch.testing.assert_close(run_contributions(task, policy, 0.5), want, rtol=1e-10, atol=1e-12)


def test_bad_inputs_are_refused():
    task = perceptron_task(dim=3, n_train=4, n_desired=2, n_test=2, dtype=torch.float64)
    with pytest.raises(ValueError, match="learning rate"):
        run_contributions(task, uniform_policy(3, 4, dtype=torch.float64), -1.0)
    with pytest.raises(Exception, match="4"):
        run_contributions(task, uniform_policy(3, 5, dtype=torch.float64), 0.1)
