"""Scalar summaries of a loss curve: the AUC, the compression ratio, the acceleration ratio.

A loss curve is a ``(T+1,)`` tensor (or array) of mean losses in nats at θ_0 … θ_T.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError

__all__ = [
    "auc",
    "compression_ratio",
    "reach_step",
    "empirical_acceleration_ratio",
    "hitting_ratio",
]


def _curve(curve) -> Tensor:
    c = torch.as_tensor(curve, dtype=torch.float64).detach().cpu()
    if c.ndim != 1 or len(c) < 2:
        raise ArgumentValueError(
            f"a loss curve must have shape (T+1,) with T ≥ 1 (losses at θ_0…θ_T), "
            f"got shape {tuple(c.shape)}"
        )
    if not bool(torch.isfinite(c).all()):
        raise ArgumentValueError("the loss curve has non-finite entries")
    return c


def auc(curve) -> float:
    """The discrete AUC J = Σ_{t=1}^{T} L(θ_t) (paper Eq. 6), in nats.

    The sum starts at t = 1: L(θ_0) does not depend on the policy. (The paper's reference code
    sums t = 0…T and divides by T; that shifts and scales J without moving its minimiser.)
    """
    return float(_curve(curve)[1:].sum())


def compression_ratio(curve, vocab_size: int) -> float:
    """CR = T·log₂|V| / Σ_{t=1}^{T} L(θ_t)/ln 2 (paper Sec. 4.3), with the loss in bits.

    Coding one label (or token) at step t with the model θ_t costs L(θ_t)/ln 2 bits; coding it
    with no model costs log₂|V| bits. CR > 1 means the learning process compresses.
    """
    checks.check_int(vocab_size, "vocab_size", minimum=2, expected="an int ≥ 2")
    if not (isinstance(vocab_size, int) and vocab_size >= 2):
        raise ArgumentValueError(f"vocab_size must be an int ≥ 2, got {vocab_size!r}")
    c = _curve(curve)
    steps = len(c) - 1
    bits = float(c[1:].sum()) / math.log(2)
    return steps * math.log2(vocab_size) / bits


def reach_step(curve, level: float) -> int | None:
    """The first t with ``curve[t] ≤ level``, or ``None`` if the curve never gets there."""
    checks.check_number(level, "level", finite=False)
    c = _curve(curve)
    hit = (c <= level).nonzero()
    return int(hit[0]) if len(hit) else None


def finite_vector(name: str, x) -> np.ndarray:
    """A 1-D finite float64 array from a tensor, array or sequence (named in the error).

    Shared with :mod:`learnlaw.analysis.scaling`; not part of the public API.
    """
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ArgumentValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ArgumentValueError(f"{name} has a non-finite entry at index {bad} ({a[bad]})")
    return a


def empirical_acceleration_ratio(reference, curve, T=None):
    """AR(T) = T / min{t : curve[t] ≤ reference[T]} (Eq. 9, left-hand side).

    How many times fewer steps ``curve`` needs to reach the loss ``reference`` has after T
    steps. Both curves are ``(T_max+1,)`` losses at steps 0…T_max; ``curve`` may take up to
    T_max steps to get there (AR < 1 if it is slower).

    Args:
        reference, curve: ``(T_max+1,)`` arrays or tensors (e.g. the conventional and the
            near-optimal ``test_loss``).
        T: an int or an array of ints in 1…T_max (default T_max).

    Returns:
        A float (or an array like T). ``nan`` where ``curve`` never reaches reference[T] within
        T_max steps; ``inf`` where it is already there at t = 0.
    """
    ref, cur = finite_vector("reference", reference), finite_vector("curve", curve)
    if len(ref) != len(cur) or len(ref) < 2:
        raise ArgumentValueError(
            f"both curves need the same shape (T+1,) with T ≥ 1, got {len(ref)} and {len(cur)}"
        )
    Ts = np.asarray(len(ref) - 1 if T is None else T)
    if Ts.dtype.kind not in "iu" or (Ts < 1).any() or (Ts >= len(ref)).any():
        raise ArgumentValueError(f"T must be integer steps in 1…{len(ref) - 1}, got {T!r}")
    running_min = np.minimum.accumulate(cur)  # first t with cur[t] ≤ level = first with min ≤ level
    t = np.searchsorted(-running_min, -ref[Ts], side="left")
    with np.errstate(divide="ignore"):
        ar = np.where(t < len(cur), Ts / t.astype(np.float64), np.nan)
    return float(ar) if ar.ndim == 0 else ar


def hitting_ratio(reference, curve) -> float:
    """t_ref / t_curve for the level L = min_t reference[t]: the paper's acceleration ratio (Eq. 9),
    made fair to a reference whose loss does not fall monotonically.

    t_x = min{t : x[t] ≤ L}. For a reference whose loss never rises (the paper's case) L is its
    final loss, t_ref = T, and this is :func:`empirical_acceleration_ratio`. A
    large step size makes the loss oscillate; its final value can then sit above losses it
    reached long before, and Eq. 9 against that final value rewards the oscillation (the
    reference compared with itself gives T / t_ref > 1). Against the reference's best loss the
    reference gives 1 and a method is credited for reaching what the reference reached, as early
    as it did. ``nan`` when ``curve`` never gets there (or the reference never improves).
    """
    ref = torch.as_tensor(reference, dtype=torch.float64)
    level = float(ref.min())
    t_ref, t_cur = reach_step(ref, level), reach_step(curve, level)
    if t_cur is None or t_ref == 0:
        return math.nan
    if t_cur == 0:
        return math.inf
    return t_ref / t_cur
