"""Classic step-size schedules η_t for the tuned learner: constant, linear and cosine decay.

A schedule is a ``(T,)`` tensor of positive step sizes, η_t for the update θ_t → θ_{t+1}
(t = 0 … T−1), that ``learnlaw.train(task, policy, lr)`` takes in place of a constant η. These
are the baselines a learning policy must beat besides the constant-η uniform learner: the
same uniform data weights with the step size that practice uses.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError

__all__ = ["SCHEDULE_KINDS", "classic_schedule"]

SCHEDULE_KINDS = ("constant", "linear", "cosine")


def classic_schedule(
    kind: str,
    steps: int,
    lr: float,
    *,
    warmup: float = 0.0,
    final: float = 0.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """The step sizes η_0 … η_{T−1} of a constant, linear or cosine schedule with warm-up.

    With T = ``steps``, the zero-based step index t = 0 … T−1, W = round(warmup·T) warm-up steps
    (Python's round, half to even), D = T − W decay steps, s = t − W the index within the decay
    and φ = ``final``:

    * warm-up, t < W:  η_t = lr·(t + 1)/W  (from lr/W at t = 0 up to lr at t = W − 1);
    * ``"constant"``:  η_t = lr;
    * ``"linear"``:    η_t = lr·(φ + (1 − φ)·(D − s)/D);
    * ``"cosine"``:    η_t = lr·(φ + (1 − φ)·(1 + cos(π·s/D))/2) = lr·(φ + (1 − φ)·cos²(π·s/(2D))).

    Both decays start at η_W = lr and would reach φ·lr at s = D, the step *after* the last one.
    So every entry is strictly positive even for φ = 0 (training refuses a step size ≤ 0), and
    the last step is lr·(φ + (1 − φ)/D) for the linear and lr·(φ + (1 − φ)·sin²(π/(2D))) for the
    cosine schedule. Without warm-up the linear schedule with φ = 0 is lr·(T − t)/T. The
    values are computed in float64 (the cos² form, which keeps the last cosine step accurate)
    and then cast to ``dtype``.

    Args:
        kind: ``"constant"``, ``"linear"`` or ``"cosine"``.
        steps: T ≥ 1, the number of training steps.
        lr: the peak step size, > 0.
        warmup: the fraction of T spent warming up linearly, in [0, 1); W must stay < T.
        final: φ ∈ [0, 1], the decay's end point as a fraction of ``lr`` (ignored by
            ``"constant"``).
        dtype, device: of the result.

    Returns:
        ``(T,)`` step sizes, all > 0.

    Raises:
        ValueError: an unknown ``kind`` (the message lists the valid ones), ``steps`` < 1,
            ``lr`` ≤ 0, ``warmup`` outside [0, 1) or taking all T steps, ``final`` outside [0, 1],
            or a step size that underflows to 0 in ``dtype``.
    """
    checks.check_choice(kind, "kind", SCHEDULE_KINDS)
    t_steps = checks.check_steps(steps)
    peak = checks.check_lr(lr)
    w = checks.check_number(warmup, "warmup", minimum=0.0, expected="a number in [0, 1)")
    if w >= 1:
        raise checks.ArgumentValueError(
            f"warmup must be a number in [0, 1) (a fraction of the T steps), got {warmup!r}"
        )
    phi = checks.check_number(final, "final", minimum=0.0, maximum=1.0)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise checks.ArgumentTypeError(
            f"dtype must be a floating-point torch.dtype, got {checks.describe(dtype)}"
        )
    n_warm = round(w * t_steps)
    if n_warm >= t_steps:
        raise checks.ArgumentValueError(
            f"warmup = {warmup!r} of T = {t_steps} steps gives round(warmup·T) = {n_warm} "
            "warm-up steps, leaving none for the schedule; lower warmup or raise steps"
        )
    n_decay = t_steps - n_warm
    s = torch.arange(n_decay, dtype=torch.float64)
    if kind == "constant":
        shape = torch.ones(n_decay, dtype=torch.float64)
    elif kind == "linear":
        shape = phi + (1 - phi) * (n_decay - s) / n_decay
    else:
        shape = phi + (1 - phi) * torch.cos(math.pi * s / (2 * n_decay)) ** 2
    ramp = torch.arange(1, n_warm + 1, dtype=torch.float64) / max(n_warm, 1)
    eta = (peak * torch.cat([ramp, shape])).to(dtype=dtype)
    if not bool((eta > 0).all()):  # checked on the CPU, before the move to ``device``
        raise ArgumentValueError(
            f"a step size of the {kind} schedule underflows to 0 in {dtype} (lr = {peak:g}, "
            f"T = {t_steps}); use float64 or a larger lr"
        )
    return eta.to(device=device)
