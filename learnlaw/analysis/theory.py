r"""Checks of the theory chapters: optimality conditions, projections and finite differences.

The policy search minimises J(γ) = Σ_{t=1}^T L_dsr(θ_t) over policies whose rows lie on the
simplex Δ^{N-1}. Its first-order (KKT) conditions, with g = ∂J/∂γ of shape ``(T, N)``, are

.. math::  g_{t,n} = \lambda_t \ \text{ if } \gamma_{t,n} > 0, \qquad
           g_{t,n} \ge \lambda_t \ \text{ if } \gamma_{t,n} = 0,

one multiplier λ_t per step: the discrete counterpart of the Learning Law. :func:`kkt_report`
measures how far a policy is from them. :func:`projection_kkt` checks the KKT conditions of the
Euclidean projection onto the simplex, :func:`fd_directional_derivative` differentiates J by
central differences (an independent check of the adjoint gradient), and
:func:`future_contributions` is the approximation of ∂J/∂γ that the continuous derivation of the
Learning Law makes (every example's gradient carried unchanged along the trajectory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import train

__all__ = [
    "KKTReport",
    "kkt_report",
    "ProjectionKKT",
    "projection_kkt",
    "fd_directional_derivative",
    "future_contributions",
]


@dataclass(frozen=True)
class KKTReport:
    """How far a policy is from the KKT conditions of min_γ J(γ) on a product of simplices.

    Attributes:
        multiplier: ``(T,)`` λ_t = Σ_n γ_{t,n} g_{t,n}, the γ-weighted mean of the gradient
            (at a KKT point g_{t,n} = λ_t on the support, so this is exactly the multiplier).
        spread: ``(T,)`` s_t = (Σ_n γ_{t,n} (g_{t,n} − λ_t)²)^{1/2}, the γ-weighted standard
            deviation of the gradient over the support (0 at a KKT point).
        residual: Σ_t s_t / Σ_t |λ_t|, the spread relative to the size of the multipliers.
        violations: the fraction of zero-weight pairs (γ_{t,n} = 0) whose gradient is below the
            multiplier, g_{t,n} < λ_t − tol·|λ_t| (0 at a KKT point; nan if no weight is zero).
        zero_fraction: the fraction of pairs with γ_{t,n} = 0.
    """

    multiplier: Tensor
    spread: Tensor
    residual: float
    violations: float
    zero_fraction: float


def kkt_report(policy: Tensor, grad: Tensor, *, tol: float = 0.0) -> KKTReport:
    """Measure the KKT conditions of the policy problem at ``policy``.

    Args:
        policy: γ, ``(T, N)``, rows on the simplex.
        grad: ∂J/∂γ at ``policy``, ``(T, N)`` (e.g. from :func:`learnlaw.policy_gradient`).
        tol: relative tolerance below the multiplier before an off-support gradient counts as a
            violation.

    Returns:
        A :class:`KKTReport`.
    """
    checks.check_number(tol, "tol", minimum=0.0)
    validate_policy(policy)
    if not isinstance(grad, Tensor) or grad.shape != policy.shape:
        got = tuple(grad.shape) if isinstance(grad, Tensor) else type(grad).__name__
        raise ArgumentValueError(
            f"grad must have the policy's shape {tuple(policy.shape)}, got {got}"
        )
    if tol < 0:
        raise ArgumentValueError(f"tol must be non-negative, got {tol!r}")
    w = policy.to(grad)
    lam = (w * grad).sum(1)
    spread = (w * (grad - lam[:, None]) ** 2).sum(1).sqrt()
    off = w == 0
    below = off & (grad < (lam - tol * lam.abs())[:, None])
    n_off = int(off.sum())
    return KKTReport(
        multiplier=lam,
        spread=spread,
        residual=float(spread.sum() / lam.abs().sum()),
        violations=float(below.sum()) / n_off if n_off else float("nan"),
        zero_fraction=n_off / w.numel(),
    )


class ProjectionKKT(NamedTuple):
    """KKT conditions of x = argmin_{x ∈ Δ} ½‖x − v‖², row by row (all zero when they hold).

    Attributes:
        tau: ``(rows,)`` the threshold τ = mean of v − x over the support.
        stationarity: max over rows of the range of v − x over the support (x = v − τ there).
        complementarity: max over rows of max(v − τ) off the support, clipped at 0 (v ≤ τ there).
        feasibility: max(|Σ x − 1|, max(−x, 0)).
    """

    tau: Tensor
    stationarity: float
    complementarity: float
    feasibility: float


def projection_kkt(v: Tensor, x: Tensor) -> ProjectionKKT:
    """Check that every row of ``x`` is the Euclidean projection of the row of ``v`` onto Δ.

    The projection's KKT conditions are x ≥ 0, Σx = 1, x_i = v_i − τ where x_i > 0 and
    v_i ≤ τ where x_i = 0; they are necessary and (the problem being strictly convex) sufficient.

    Args:
        v: ``(..., N)`` the points.
        x: ``(..., N)`` their claimed projections.
    """
    if not (isinstance(v, Tensor) and isinstance(x, Tensor)) or v.shape != x.shape:
        raise ArgumentValueError("v and x must be tensors of the same shape (..., N)")
    v2, x2 = v.reshape(-1, v.shape[-1]), x.reshape(-1, x.shape[-1]).to(v)
    support = x2 > 0
    if not bool(support.any(1).all()):
        raise ArgumentValueError(
            "a row of x has no positive entry, so it cannot lie on the simplex"
        )
    d = v2 - x2
    count = support.sum(1)
    tau = (d * support).sum(1) / count
    big = torch.finfo(v2.dtype).max
    hi = torch.where(support, d, -big).max(1).values
    lo = torch.where(support, d, big).min(1).values
    off = torch.where(support, -big, v2 - tau[:, None]).max(1).values
    return ProjectionKKT(
        tau=tau,
        stationarity=float((hi - lo).max()),
        complementarity=float(off.clamp_min(0).max()),
        feasibility=max(float((x2.sum(1) - 1).abs().max()), float((-x2).clamp_min(0).max())),
    )


def fd_directional_derivative(
    task: Task, policy: Tensor, lr: float, direction: Tensor, eps: float = 1e-5
) -> float:
    """(J(γ + εd) − J(γ − εd)) / 2ε by two training runs: an independent check of ∂J/∂γ.

    Args:
        task: the task.
        policy: γ, ``(T, N)``.
        lr: η of the inner gradient descent.
        direction: d, ``(T, N)``, every row summing to 0 so that γ ± εd stays on the simplex's
            affine hull; γ ± εd must also be non-negative.
        eps: the step ε.

    Returns:
        The central difference, which equals ⟨∂J/∂γ, d⟩ up to O(ε²) and rounding.
    """
    checks.check_lr(lr)
    checks.check_number(eps, "eps", minimum=0.0, strict=True)
    if direction.shape != policy.shape:
        raise ArgumentValueError(
            f"direction must have the policy's shape {tuple(policy.shape)}, got "
            f"{tuple(direction.shape)}"
        )
    rows = direction.sum(1).abs().max()
    if float(rows) > 1e-12 * max(1.0, float(direction.abs().max())):
        raise ArgumentValueError(
            f"every row of the direction must sum to 0 (it moves weight between examples), "
            f"got a row sum of {float(rows):.3g}"
        )
    if not eps > 0:
        raise ArgumentValueError(f"eps must be positive, got {eps!r}")
    plus = train(task, policy + eps * direction, lr).auc()
    minus = train(task, policy - eps * direction, lr).auc()
    return (plus - minus) / (2 * eps)


def future_contributions(contributions: Tensor, lr: float) -> Tensor:
    """The approximation ∂J/∂γ_{t,n} ≈ −η Σ_{t'=t+1}^{T} CT_{t',n}, shape ``(T, N)``.

    If the desired loss depended on the policy only through the cumulative weights
    Γ_n = η Σ_{s<t} γ_{s,n} (the assumption behind the continuous derivation of the Learning
    Law), raising γ_{t,n} would raise every later Γ_n(t') by η and change each later L_dsr(θ_t')
    by −η CT_{t',n}. The exact adjoint gradient −η ∇l_n(θ_t)·a_{t+1} instead carries ∇l_n(θ_t)
    through the Jacobians of the later steps.

    Args:
        contributions: CT at θ_0 … θ_T, ``(T+1, N)``.
        lr: η.
    """
    checks.check_lr(lr)
    if contributions.ndim != 2 or len(contributions) < 2:
        raise ArgumentValueError(
            "contributions must have shape (T+1, N): CT at θ_0 … θ_T, got "
            f"{tuple(contributions.shape)}"
        )
    later = contributions[1:].flip(0).cumsum(0).flip(0)  # row t: Σ_{t' ≥ t+1} CT_{t'}
    return -lr * later
