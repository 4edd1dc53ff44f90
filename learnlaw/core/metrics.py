"""Scalar summaries of a loss curve: the AUC, the compression ratio, the acceleration ratio.

A loss curve is a ``(T+1,)`` tensor (or array) of mean losses in nats at θ_0 … θ_T.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from learnlaw.analysis.scaling import empirical_acceleration_ratio
from learnlaw.core import checks

__all__ = ["auc", "compression_ratio", "reach_step", "empirical_acceleration"]


def _curve(curve) -> Tensor:
    c = torch.as_tensor(curve, dtype=torch.float64).detach().cpu()
    if c.ndim != 1 or len(c) < 2:
        raise ValueError(
            f"a loss curve must have shape (T+1,) with T ≥ 1 (losses at θ_0…θ_T), "
            f"got shape {tuple(c.shape)}"
        )
    if not bool(torch.isfinite(c).all()):
        raise ValueError("the loss curve has non-finite entries")
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
        raise ValueError(f"vocab_size must be an int ≥ 2, got {vocab_size!r}")
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


def empirical_acceleration(reference, curve) -> float:
    """AR = T / min{t : curve[t] ≤ reference[T]} (paper Eq. 9, left-hand form) at the final T.

    How many times fewer steps ``curve`` needs to reach the final loss of ``reference``; ``nan``
    when it never gets there. A shorthand for
    :func:`learnlaw.analysis.scaling.empirical_acceleration_ratio` (which also takes other T).
    """
    return empirical_acceleration_ratio(reference, curve)
