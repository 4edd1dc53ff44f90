"""Evaluating a policy on data it was not fitted to.

* :func:`holdout_split`: a task whose "test" split is a held-out part of the desired set, for
  early stopping of a policy search on data the search never sees;
* :func:`evaluate_policy`: desired- and test-set acceleration and compression ratios of a policy
  against the uniform baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnlaw.core.metrics import empirical_acceleration
from learnlaw.core.task import Task
from learnlaw.core.training import Run, train

__all__ = ["holdout_split", "evaluate_policy"]


def holdout_split(task: Task, n_holdout: int, seed: int = 0) -> Task:
    """A copy of ``task`` whose desired split loses ``n_holdout`` random examples to its test split.

    The returned task's desired split (K − h examples) is what a policy search fits; its test
    split is the held-out h desired examples, so the ``ar_test``/``cr_test`` that
    :func:`~learnlaw.core.optimize.optimize_policy` records per epoch measure generalisation to data
    the search never saw, and can choose the epoch to stop at. The original test split is not
    touched (evaluate the chosen policy on ``task``).
    """
    k = task.n_desired
    if not (isinstance(n_holdout, int) and 2 <= n_holdout <= k - 2):
        raise ValueError(
            f"n_holdout must be an int in [2, K − 2] = [2, {k - 2}] (K = {k} desired examples), "
            f"got {n_holdout!r}"
        )
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(k, generator=g).to(task.device)
    x, y = task.desired
    keep, held = perm[: k - n_holdout], perm[k - n_holdout :]
    return task.with_(
        desired=(x[keep], y[keep]),
        test=(x[held], y[held]),
        name=f"{task.name}-holdout{n_holdout}",
        info={**task.info, "holdout": n_holdout, "holdout_seed": seed},
    )


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
        raise ValueError(f"baseline has T = {baseline.steps} steps but the policy {run.steps}")
    return dict(
        J=run.auc("desired"),
        test_auc=run.auc("test"),
        cr_desired=run.compression_ratio("desired"),
        cr_test=run.compression_ratio("test"),
        ar_desired=empirical_acceleration(baseline.desired_loss, run.desired_loss),
        ar_test=empirical_acceleration(baseline.test_loss, run.test_loss),
        final_desired=float(run.desired_loss[-1]),
        final_test=float(run.test_loss[-1]),
        zero_fraction=float((policy == 0).sum()) / policy.numel(),
    )
