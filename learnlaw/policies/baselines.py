"""Baselines a Learning-Law policy must beat besides the uniform one (:func:`learnlaw.uniform_policy`):
desired-only, train ∪ desired, importance weights.

* :func:`desired_only_task`: train on the desired set alone (K examples; pass a validation
  task to train on its fit part only).
* :func:`union_task`: train uniformly on train ∪ desired (N + K examples).
* :func:`importance_policy`: the classical answer to covariate shift. The perceptron (and the
  MLP) task draws training inputs from p_trn = N(μ_trn·1, σ_trn² I) and desired inputs from
  p_dsr = N(μ_dsr·1, σ_dsr² I), with the labels from the same teacher, so the desired loss is the
  importance-weighted training loss E_trn[w(x) l(x)] with w = p_dsr/p_trn. The policy weights
  every example by its known density ratio, normalised over the N examples (self-normalised
  importance sampling), the same row at every step:

      log w(x) = −‖x − μ_dsr·1‖²/(2σ_dsr²) + ‖x − μ_trn·1‖²/(2σ_trn²) + D log(σ_trn/σ_dsr).

  In D = 128 dimensions these weights are very uneven (see :func:`effective_sample_size`);
  ``exponent=α`` tempers them, γ ∝ w^α (α = 1 exact, α = 0 uniform). Planted ``easy`` and
  ``combinations`` inputs do not follow p_trn; the ratio is the nominal one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.task import Task

__all__ = [
    "desired_only_task",
    "union_task",
    "covariate_shift",
    "importance_log_ratio",
    "importance_weights",
    "importance_policy",
    "effective_sample_size",
]


def desired_only_task(task: Task) -> Task:
    """A copy of ``task`` that trains on its desired split (K examples) instead of its train split.

    The desired and test splits are unchanged, so the run's desired curve is its training loss
    and its test curve is comparable with any other method's. Pass a validation task
    (:func:`learnlaw.fit.validation_task`) to keep the validation part out of
    training. Planted-kind masks refer to the old training set and are dropped.
    """
    if task.n_desired == 0:
        raise ArgumentValueError("the desired split is empty: there is nothing to train on")
    return task.with_(
        train=task.desired,
        kinds={},
        name=f"{task.name}-desired-only",
        info={**task.info, "baseline": "desired-only"},
    )


def union_task(task: Task) -> Task:
    """A copy of ``task`` that trains on train ∪ desired (N + K examples, train first).

    ``kinds`` masks are padded with ``False`` for the K appended examples, and
    ``kinds["desired"]`` marks them.
    """
    (xt, yt), (xd, yd) = task.train, task.desired
    if xt.shape[1:] != xd.shape[1:] or yt.shape[1:] != yd.shape[1:]:
        raise ArgumentValueError(
            f"train inputs {tuple(xt.shape)} and desired inputs {tuple(xd.shape)} differ in shape"
        )
    k = len(xd)
    pad = torch.zeros(k, dtype=torch.bool, device=task.device)
    kinds = {name: torch.cat([m, pad]) for name, m in task.kinds.items()}
    no = torch.zeros(task.n_train, dtype=torch.bool, device=task.device)
    kinds["desired"] = torch.cat([no, ~pad])
    return task.with_(
        train=(torch.cat([xt, xd]), torch.cat([yt, yd.to(yt.dtype)])),
        kinds=kinds,
        name=f"{task.name}-union",
        info={**task.info, "baseline": "train+desired"},
    )


def covariate_shift(task: Task) -> dict[str, float]:
    """The Gaussian input distributions of a task built by ``perceptron_task`` or ``mlp_task``.

    Returns ``dict(train_mean, train_std, desired_mean, desired_std)`` (per coordinate): the
    perceptron's are in ``task.info`` (``train_std``, ``desired_mean``; desired std 1), the MLP's
    are fixed by :func:`learnlaw.tasks.mlp_task` (√3, 0.5, 1).
    """
    if "train_std" in task.info and "desired_mean" in task.info:
        return dict(
            train_mean=0.0,
            train_std=float(task.info["train_std"]),
            desired_mean=float(task.info["desired_mean"]),
            desired_std=1.0,
        )
    if task.name == "mlp":
        return dict(train_mean=0.0, train_std=math.sqrt(3.0), desired_mean=0.5, desired_std=1.0)
    raise ArgumentValueError(
        f"the density ratio of task {task.name!r} is not known: only tasks built by "
        "perceptron_task or mlp_task record their input distributions; pass shift=dict("
        "train_mean=, train_std=, desired_mean=, desired_std=)"
    )


def importance_log_ratio(task: Task, shift: dict | None = None) -> Tensor:
    """log p_dsr(x_n) − log p_trn(x_n) for every training input, ``(N,)`` (float64).

    Args:
        task: a task whose inputs are ``(N, D)`` vectors.
        shift: the Gaussian parameters (default :func:`covariate_shift` of the task).
    """
    s = covariate_shift(task) if shift is None else shift
    for key in ("train_mean", "train_std", "desired_mean", "desired_std"):
        if key not in s:
            raise ArgumentValueError(f"shift needs {key!r}; got {sorted(s)}")
    if not (s["train_std"] > 0 and s["desired_std"] > 0):
        raise ArgumentValueError(f"standard deviations must be > 0, got {s}")
    x = task.train[0].to(torch.float64)
    if x.ndim != 2:
        raise ArgumentValueError(
            f"importance weights need (N, D) vector inputs, got {tuple(x.shape)}"
        )
    d = x.shape[1]
    log_dsr = -((x - s["desired_mean"]) ** 2).sum(1) / (2 * s["desired_std"] ** 2)
    log_trn = -((x - s["train_mean"]) ** 2).sum(1) / (2 * s["train_std"] ** 2)
    return log_dsr - log_trn + d * math.log(s["train_std"] / s["desired_std"])


def importance_weights(task: Task, exponent: float = 1.0, shift: dict | None = None) -> Tensor:
    """γ_n ∝ (p_dsr(x_n)/p_trn(x_n))^α over the N training examples, ``(N,)``, summing to 1.

    Computed as a softmax of α·log w (no overflow), in the task's dtype and device.
    """
    checks.check_number(
        exponent, "exponent", minimum=0.0, expected="a finite number ≥ 0 (1: exact ratio)"
    )
    if not (isinstance(exponent, (int, float)) and math.isfinite(exponent) and exponent >= 0):
        raise ArgumentValueError(
            f"exponent must be a finite number ≥ 0 (1: exact ratio), got {exponent!r}"
        )
    log_w = exponent * importance_log_ratio(task, shift)
    return torch.softmax(log_w, 0).to(dtype=task.dtype, device=task.device)


def importance_policy(
    task: Task, steps: int, exponent: float = 1.0, shift: dict | None = None
) -> Tensor:
    """The importance-weighting policy: the row :func:`importance_weights` at each of T steps."""
    steps = checks.check_steps(steps)
    checks.check_number(
        exponent, "exponent", minimum=0.0, expected="a finite number ≥ 0 (1: exact ratio)"
    )
    return importance_weights(task, exponent, shift).expand(steps, -1).contiguous()


def effective_sample_size(weights: Tensor) -> float:
    """Kish's effective sample size (Σ γ)² / Σ γ² of a weight vector: N for uniform, 1 for one-hot."""
    w = torch.as_tensor(weights, dtype=torch.float64)
    return float(w.sum() ** 2 / (w * w).sum())
