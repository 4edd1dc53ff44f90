"""Regularisers of a policy for :func:`learnlaw.optimize_policy`'s ``penalty=`` hook.

* :func:`smoothness_penalty`: γ should change slowly over t;
* :func:`entropy_penalty`: γ_t should stay spread over many examples.

Each returns ``penalty(policy) -> (R, ∂R/∂γ)`` for a ``(T, N)`` policy γ, with R in the units of
J (nats summed over the steps).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from learnlaw.core.checks import ArgumentValueError

__all__ = ["Penalty", "smoothness_penalty", "entropy_penalty"]

Penalty = Callable[[Tensor], tuple[float, Tensor]]


def _check_weight(weight: float) -> float:
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
        raise ArgumentValueError(f"a penalty weight must be a finite number ≥ 0, got {weight!r}")
    return float(weight)


def smoothness_penalty(weight: float) -> Penalty:
    """R(γ) = λ Σ_{t=0}^{T-2} ‖γ_{t+1} − γ_t‖², a penalty on how fast the policy changes over t.

    Its gradient is the discrete Laplacian along t, ∂R/∂γ_t = 2λ(2γ_t − γ_{t−1} − γ_{t+1}) in the
    interior and 2λ(γ_0 − γ_1), 2λ(γ_{T−1} − γ_{T−2}) at the ends. Every row of the gradient
    sums to 0 when the rows of γ sum to 1, so it moves weight between examples only.

    Args:
        weight: λ ≥ 0, in the units of J (nats summed over the steps).

    Returns:
        ``penalty(policy) -> (R, ∂R/∂γ)`` for ``optimize_policy(penalty=...)``, named
        ``smoothness_<λ>``.
    """
    lam = _check_weight(weight)

    def penalty(policy: Tensor) -> tuple[float, Tensor]:
        d = policy[1:] - policy[:-1]  # (T-1, N)
        grad = torch.zeros_like(policy)
        grad[:-1] -= 2 * lam * d
        grad[1:] += 2 * lam * d
        return lam * float((d * d).sum()), grad

    penalty.__name__ = f"smoothness_{lam:g}"
    return penalty


def entropy_penalty(weight: float, floor: float = 1e-12) -> Penalty:
    """R(γ) = λ Σ_t Σ_n γ_{t,n} ln γ_{t,n} (minus λ times the summed entropies of the rows).

    Minimising R raises the entropy of every row, i.e. keeps the weight spread over many
    examples. ∂R/∂γ_{t,n} = λ(ln γ_{t,n} + 1), with γ clamped below at ``floor`` so that a zero
    weight gets a large but finite push back into the support.

    Args:
        weight: λ ≥ 0 (nats of J per nat of entropy).
        floor: the smallest γ used inside the logarithm.
    """
    lam = _check_weight(weight)
    if not (0 < floor < 1):
        raise ArgumentValueError(f"floor must be in (0, 1), got {floor!r}")

    def penalty(policy: Tensor) -> tuple[float, Tensor]:
        log = policy.clamp_min(floor).log()
        return lam * float((policy * log).sum()), lam * (log + 1)

    penalty.__name__ = f"entropy_{lam:g}"
    return penalty
