r"""Optimality conditions of the step sizes: the schedule's KKT condition and the problem with a
free total weight.

**The step size.** Training is θ_{t+1} = θ_t − η_t Σ_n γ_{t,n} ∇l_n(θ_t) with rows γ_t on the
simplex and J = Σ_{t=1}^T L_dsr(θ_t). With the adjoint a_{t+1} = dJ/dθ_{t+1} and
g = ∂J/∂γ = −η_t ∇l_n(θ_t)·a_{t+1} ``(T, N)`` (:func:`~learnlaw.training.adjoint_sweep`),

    η_t ∂J/∂η_t = −η_t Σ_n γ_{t,n} ∇l_n(θ_t)·a_{t+1} = Σ_n γ_{t,n} g_{t,n} = λ_t,

the Learning Law's multiplier (:func:`~learnlaw.theory.kkt_report`). An interior
optimum over η_t (η_t > 0 is open, so every optimum is interior) has ∂J/∂η_t = 0, i.e. λ_t = 0:
the weighted gradient is orthogonal to the adjoint. With log-steps ρ_c shared over blocks of
steps (:mod:`learnlaw.policies.schedule_fit`) the condition is Σ_{t∈c} λ_t = 0 per block.
:func:`schedule_kkt_residual` measures it relative to the per-example magnitudes,

    r_η = Σ_c |Σ_{t∈c} λ_t| / Σ_{t,n} γ_{t,n} |g_{t,n}|   ∈ [0, 1]

(the triangle inequality bounds it by 1; r_η = 1 when every used example pushes η the same way,
as at a far too small or too large step; r_η = 0 exactly at the condition). It is dimensionless
and unchanged by rescaling J.

**A free total weight.** Dropping the sum constraint, the weights β_{t,n} = η_t γ_{t,n} ≥ 0 are
the variables (θ_{t+1} = θ_t − Σ_n β_{t,n} ∇l_n(θ_t)) and

    d_{t,n} = ∂J/∂β_{t,n} = −∇l_n(θ_t)·a_{t+1} = g_{t,n} / η_t     (γ_t = β_t/s_t, η_t = s_t = Σ_n β_{t,n}).

Its KKT conditions (the constraint β ≥ 0 only) are d_{t,n} = 0 where β_{t,n} > 0 and
d_{t,n} ≥ 0 where β_{t,n} = 0: the Law with its multiplier μ_t = 0 (no budget to share — which
also gives λ_t = s_t Σ_n γ_{t,n} d_{t,n} = 0, the step-size condition). Its residual is the norm of
the projected gradient P_{t,n} = d_{t,n} where β_{t,n} > 0, min(d_{t,n}, 0) where β_{t,n} = 0
(the part of −d a feasible step can follow; P = 0 iff KKT), :func:`total_free_residual`. Its
scale-free form ‖P‖/‖d‖ ∈ [0, 1] is also reported, but is not a convergence measure on its own:
where the search can drive θ to the desired loss's minimiser (or J to 0 on separable data), the
whole gradient d vanishes with P and the ratio stays O(1) while ‖P‖ → 0. A row with no weight (s_t = 0) is swept
with γ_t uniform and η_t = √(tiny) of the dtype, where θ does not move to rounding and
d = g/η_t keeps its precision.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.adjoint import adjoint_sweep
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task
from learnlaw.policies.parametric import block_index

__all__ = ["FreeTotalKKT", "schedule_kkt_residual", "total_free_gradient", "total_free_residual"]


def schedule_kkt_residual(
    task: Task,
    policy: Tensor,
    lr: float | Tensor,
    *,
    blocks: int | None = None,
    checkpoint_every: int | str | None = None,
) -> float:
    """r_η = Σ_c |Σ_{t∈c} η_t ∂J/∂η_t| / Σ_{t,n} γ_{t,n}|∂J/∂γ_{t,n}| (module note): 0 where
    the step sizes are stationary, at most 1.

    Args:
        task: the task.
        policy: γ, ``(T, N)``.
        lr: η (a float) or the ``(T,)`` schedule η_t.
        blocks: C, the blocks of steps that share one step size (``None``: every step its own,
            the condition ∂J/∂η_t = 0 for each t).
        checkpoint_every: θ checkpointing of the sweep.

    Returns:
        The residual, a float in [0, 1] (nan if every γ_{t,n} ∂J/∂γ_{t,n} is 0).
    """
    validate_policy(policy, n=task.n_train)
    steps = len(policy)
    checks.check_int(blocks, "blocks", minimum=1, maximum=steps, allow_none=True)
    sweep = adjoint_sweep(task, policy, lr, checkpoint_every=checkpoint_every, track_test=False)
    w = policy.to(sweep.grad)
    lam = (w * sweep.grad).sum(1)  # λ_t = η_t ∂J/∂η_t
    if blocks is not None:
        idx = block_index(steps, blocks, lam.device)
        lam = lam.new_zeros(blocks).index_add_(0, idx, lam)
    return float(lam.abs().sum() / (w * sweep.grad.abs()).sum())


def total_free_gradient(
    task: Task, weights: Tensor, *, checkpoint_every: int | str | None = None
) -> tuple[float, Tensor]:
    """J and d = ∂J/∂β ``(T, N)`` for θ_{t+1} = θ_t − Σ_n β_{t,n} ∇l_n(θ_t), β ≥ 0 free of any
    sum constraint (module note): one adjoint sweep at γ_t = β_t/s_t, η_t = s_t, d = g/η_t.

    Args:
        task: the task.
        weights: β, ``(T, N)``, non-negative and finite.
        checkpoint_every: θ checkpointing of the sweep.

    Raises:
        ValueError: ``weights`` is not a non-negative finite ``(T, N)`` tensor.
    """
    n = task.n_train
    if not (
        isinstance(weights, Tensor)
        and weights.ndim == 2
        and weights.shape[1] == n
        and weights.dtype.is_floating_point
    ):
        raise ArgumentValueError(
            f"weights must be a floating-point (T, N) tensor with N = {n} columns, got "
            f"{checks.describe(weights)}"
        )
    w = weights.to(dtype=task.dtype, device=task.device)
    if not bool((torch.isfinite(w) & (w >= 0)).all()):
        raise ArgumentValueError(
            "weights must be non-negative and finite (β_{t,n} = η_t γ_{t,n} ≥ 0); clip them "
            "with weights.clamp_min(0)"
        )
    s = w.sum(1)
    empty = s == 0
    eta = torch.where(empty, torch.finfo(w.dtype).tiny ** 0.5, s)
    gamma = torch.where(empty[:, None], torch.full_like(w, 1.0 / n), w / eta[:, None])
    sweep = adjoint_sweep(task, gamma, eta, checkpoint_every=checkpoint_every, track_test=False)
    return sweep.J, sweep.grad / eta[:, None]


class FreeTotalKKT(NamedTuple):
    """How far β ≥ 0 is from the KKT point of the free-total problem (module note).

    Attributes:
        residual: ‖P‖, the Frobenius norm of the projected gradient (J per unit weight; 0 iff
            the KKT conditions hold).
        relative: ‖P‖/‖d‖ ∈ [0, 1] (scale-free; undefined where the whole gradient vanishes,
            e.g. where the search reaches the desired loss's minimiser and a = 0).
        stationarity: max |d_{t,n}| over the support β > 0 (0 at KKT; nan if β = 0).
        violation: max(−d_{t,n}, 0) over β = 0 (0 at KKT; 0 if β > 0 everywhere).
        J: the AUC at β.
    """

    residual: float
    relative: float
    stationarity: float
    violation: float
    J: float


def total_free_residual(
    task: Task, weights: Tensor, *, checkpoint_every: int | str | None = None
) -> FreeTotalKKT:
    """The KKT residual of the free-total problem at β: ‖P‖, the projected gradient's norm,
    and its parts (module note): all 0 at its KKT point (d = 0 on the support, d ≥ 0 off it).

    Args:
        task: the task.
        weights: β, ``(T, N)``, non-negative (e.g. η_t γ_{t,n}).
        checkpoint_every: θ checkpointing of the sweep.

    Returns:
        A :class:`FreeTotalKKT`.
    """
    j, d = total_free_gradient(task, weights, checkpoint_every=checkpoint_every)
    on = weights.to(d) > 0
    proj = torch.where(on, d, d.clamp_max(0))
    residual = float(proj.norm())
    nan = float("nan")
    return FreeTotalKKT(
        residual=residual,
        relative=residual / float(d.norm()) if bool((d != 0).any()) else nan,
        stationarity=float(d[on].abs().max()) if bool(on.any()) else nan,
        violation=float((-d[~on]).clamp_min(0).max()) if bool((~on).any()) else 0.0,
        J=j,
    )
