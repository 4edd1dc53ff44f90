"""Learning policies γ ∈ R^{T×N}: construction, validation and the projection onto the simplex.

A learning policy gives every training example ``n`` a weight ``γ[t, n]`` at every step ``t``;
each row ``γ[t]`` lies on the probability simplex Δ^{N-1} = {x ∈ R^N : x ≥ 0, Σ x = 1}.
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.errors import LearnlawError

__all__ = ["uniform_policy", "validate_policy", "project_simplex", "PolicyError"]


class PolicyError(LearnlawError, ValueError):
    """A policy tensor that is not a valid (T, N) stack of simplex rows."""


def uniform_policy(
    steps: int,
    n: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The conventional policy γ_{t,n} = 1/N, shape ``(T, N)``.

    Args:
        steps: T, the number of training steps (rows).
        n: N, the number of training examples (columns).
        dtype, device: of the result (default: torch's default dtype, CPU).
    """
    steps = checks.check_steps(steps)
    n = checks.check_int(n, "n", minimum=1)
    return torch.full((steps, n), 1.0 / n, dtype=dtype, device=device)


def _row_tolerance(dtype: torch.dtype, n: int) -> float:
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 1e-7
    return max(
        1e-6 if dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-9, 64 * eps * n**0.5
    )


def validate_policy(
    policy: Tensor,
    *,
    steps: int | None = None,
    n: int | None = None,
    atol: float | None = None,
) -> Tensor:
    """Check that ``policy`` is a ``(T, N)`` stack of probability vectors; return it.

    Args:
        policy: the candidate γ.
        steps: expected T, if known.
        n: expected N (the task's number of training examples), if known.
        atol: tolerance on every row sum (default: a few float ulps times √N).

    Raises:
        PolicyError: with what was received, what was expected, and how to fix it.
    """
    checks.check_int(steps, "steps", minimum=1, allow_none=True)
    checks.check_int(n, "n", minimum=1, allow_none=True)
    checks.check_number(atol, "atol", minimum=0.0, allow_none=True)
    if not isinstance(policy, Tensor):
        raise PolicyError(
            f"policy must be a torch.Tensor of shape (T, N), got {type(policy).__name__}; "
            "build one with learnlaw.uniform_policy(T, N)"
        )
    if policy.ndim != 2:
        raise PolicyError(
            f"policy must have shape (T, N) (one row per training step), got shape "
            f"{tuple(policy.shape)}"
        )
    if not policy.dtype.is_floating_point:
        raise PolicyError(f"policy must be a floating-point tensor, got dtype {policy.dtype}")
    t_, n_ = policy.shape
    if n is not None and n_ != n:
        raise PolicyError(
            f"policy has {n_} columns but the task has N = {n} training examples; "
            f"expected shape (T, {n})"
        )
    if steps is not None and t_ != steps:
        raise PolicyError(f"policy has {t_} rows but {steps} training steps were asked for")
    finite = torch.isfinite(policy)
    if not bool(finite.all()):
        t, j = (~finite).nonzero()[0].tolist()
        raise PolicyError(
            f"policy[{t}, {j}] = {policy[t, j].item()} is not finite; every weight must be a "
            "finite number in [0, 1]"
        )
    if bool((policy < 0).any()):
        t, j = (policy < 0).nonzero()[0].tolist()
        raise PolicyError(
            f"policy[{t}, {j}] = {policy[t, j].item():.3g} is negative; project the policy "
            "onto the simplex with learnlaw.project_simplex"
        )
    sums = policy.sum(dim=1)
    tol = _row_tolerance(policy.dtype, n_) if atol is None else atol
    bad = (sums - 1).abs() > tol
    if bool(bad.any()):
        t = int(bad.nonzero()[0])
        raise PolicyError(
            f"policy row {t} sums to {sums[t].item():.6g} (off by {sums[t].item() - 1:.1e}, "
            f"tolerance {tol:.1e}); "
            "project it with learnlaw.project_simplex"
        )
    return policy


def project_simplex(v: Tensor, *, max_iter: int = 64) -> Tensor:
    """Euclidean projection of every row of ``v`` onto the probability simplex.

    Solves, for each row v ∈ R^N, the quadratic programme

    .. math:: \\min_x \\tfrac12\\lVert x - v\\rVert^2 \\quad\\text{s.t.}\\quad x \\ge 0,\\ \\mathbf 1^\\top x = 1,

    whose KKT conditions give x = max(v − τ, 0) with the threshold τ fixed by Σ x = 1.
    τ is found by Michelot's fixed-point iteration, batched over rows: start from the mean
    shift τ = (Σ v − 1)/N over the active set S = all indices, then repeatedly drop indices with
    v_i ≤ τ and recompute τ = (Σ_{i∈S} v_i − 1)/|S|. τ increases monotonically and the active
    set only shrinks, so the iteration ends exactly after at most N rounds; in practice a
    handful, each O(N) — cheaper than the O(N log N) sort-based method, to which rows that have
    not converged after ``max_iter`` rounds fall back.

    Args:
        v: ``(..., N)`` tensor, any float dtype, any device.
        max_iter: rounds of the fixed-point iteration before the sort-based fallback.

    Returns:
        ``(..., N)`` tensor, same dtype and device, every row on the simplex.
    """
    checks.check_int(max_iter, "max_iter", minimum=0)  # 0: the sort-based threshold
    if not isinstance(v, Tensor) or not v.dtype.is_floating_point:
        raise ArgumentTypeError(
            f"project_simplex needs a floating-point tensor, got {type(v).__name__}"
        )
    if v.ndim == 0 or v.shape[-1] == 0:
        raise ArgumentValueError(
            f"project_simplex needs shape (..., N) with N ≥ 1, got {tuple(v.shape)}"
        )
    if not bool(torch.isfinite(v).all()):
        raise ArgumentValueError(
            "project_simplex got non-finite values; the gradient step diverged"
        )
    shape = v.shape
    x = v.reshape(-1, shape[-1])
    n = x.shape[1]
    # Shift each row by its max: the projection commutes with adding a constant to a row
    # (τ absorbs it), and this keeps huge values from swamping the "- 1" in rounding.
    x = x - x.max(dim=1, keepdim=True).values
    tau = (x.sum(1, keepdim=True) - 1) / n
    count = torch.full_like(tau, n)
    buf = torch.empty_like(x)
    converged = False
    for _ in range(max_iter):
        # Newton step on f(τ) = Σ max(x − τ, 0) − 1: τ ← τ + f(τ)/|{x > τ}|, which is
        # Michelot's τ = (Σ_{x>τ} x − 1)/|{x > τ}|. τ only increases, so the sets only shrink
        # and equal counts mean equal sets: the iteration has reached the exact threshold.
        torch.sub(x, tau, out=buf).clamp_min_(0)
        excess = buf.sum(1, keepdim=True) - 1
        new_count = buf.sign_().sum(1, keepdim=True)
        tau = tau + excess / new_count
        if bool((new_count == count).all()):
            converged = True
            break
        count = new_count
    if not converged:
        tau = _sort_threshold(x)
    return (x - tau).clamp_min(0).reshape(shape)


def _sort_threshold(x: Tensor) -> Tensor:
    """Threshold τ of the projection of each row by sorting (Held et al.; Duchi et al. 2008)."""
    n = x.shape[1]
    u = torch.sort(x, dim=1, descending=True).values
    css = u.cumsum(1) - 1
    k = torch.arange(1, n + 1, device=x.device, dtype=x.dtype)
    cond = u - css / k > 0
    rho = cond.sum(1, keepdim=True) - 1  # cond holds on a prefix: its last index
    return css.gather(1, rho) / (rho + 1).to(x.dtype)
