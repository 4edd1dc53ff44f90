"""Evaluating a policy on data it was not fitted to.

* :func:`holdout_split`: a task whose "test" split is a held-out part of the desired set, for
  early stopping of a policy search on data the search never sees;
* :func:`evaluate_policy`: desired- and test-set acceleration and compression ratios of a policy
  against the uniform baseline.
"""

from __future__ import annotations

from torch import Tensor

from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.metrics import empirical_acceleration_ratio
from learnlaw.core.task import Task, holdout_split
from learnlaw.core.training import Run, train

__all__ = ["holdout_split", "evaluate_policy"]


def evaluate_policy(task: Task, policy: Tensor, lr: float, baseline: Run | None = None) -> dict:
    """Train under ``policy`` and summarise it against the uniform baseline run.

    Args:
        task: the task (its desired and test splits).
        policy: γ, ``(T, N)``.
        lr: η.
        baseline: the run of the uniform policy (trained here if ``None``).

    Returns:
        A flat dict: ``J`` (desired AUC, nats), ``test_auc``, ``cr_desired``, ``cr_test``,
        ``ar_desired`` and ``ar_test`` (empirical acceleration, paper Eq. 9, against the
        baseline on each split; nan if the baseline's final loss is never reached),
        ``final_desired``/``final_test`` (the losses at θ_T) and ``zero_fraction``.
    """
    from learnlaw.core.policy import uniform_policy

    run = train(task, policy, lr)
    if baseline is None:
        baseline = train(
            task, uniform_policy(*policy.shape, dtype=task.dtype, device=task.device), lr
        )
    if baseline.steps != run.steps:
        raise ArgumentValueError(
            f"baseline has T = {baseline.steps} steps but the policy {run.steps}"
        )
    return dict(
        J=run.auc("desired"),
        test_auc=run.auc("test"),
        cr_desired=run.compression_ratio("desired"),
        cr_test=run.compression_ratio("test"),
        ar_desired=empirical_acceleration_ratio(baseline.desired_loss, run.desired_loss),
        ar_test=empirical_acceleration_ratio(baseline.test_loss, run.test_loss),
        final_desired=float(run.desired_loss[-1]),
        final_test=float(run.test_loss[-1]),
        zero_fraction=float((policy == 0).sum()) / policy.numel(),
    )
