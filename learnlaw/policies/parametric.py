"""Parameterised learning policies γ(φ) with few parameters, and their exact pullbacks.

A full policy has T·N free weights; the families here tie them together so that a search over
φ has far fewer degrees of freedom (the question of issue 12: do fewer free parameters transfer
to held-out data where the T×N search over-fits?). Both families split the T steps into Q blocks
of consecutive steps, b(t) = ⌊t·Q/T⌋ (sizes differ by at most one), and give every step of a
block the same row γ_t = g_{b(t)}.

* **Block policy**: φ ∈ (Q, N), every row on the simplex; g_b = φ_b.
* **Feature scorer**: fixed per-example features F ∈ (N, D) — or one set per block,
  F ∈ (Q, N, D) (e.g. measured along a reference run, :mod:`learnlaw.policies.parametric_features`)
  — and φ ∈ (Q, D) (unconstrained); scores s_{b,n} = f_{b,n}ᵀ φ_b and g_b = link(s_b) with
  ``"softmax"``: g_b = softmax(s_b / τ) (every weight positive), or
  ``"sparsemax"``: g_b = Proj_Δ(1/N + s_b / (τN)) (the Euclidean projection onto the simplex,
  which switches examples off exactly, as the Law's optimal policies do). Both give the uniform
  policy at φ = 0, and τ measures a score change that moves a weight by O(1) *relative* to 1/N.

The pullback of ∂J/∂γ (from :func:`learnlaw.training.adjoint_sweep`) to φ is exact
(∂J/∂φ = (∂γ/∂φ)ᵀ ∂J/∂γ). With G_b = Σ_{t∈b} ∂J/∂γ_t:

    block:    ∂J/∂φ_b = G_b
    softmax:  ∂J/∂s_b = g_b ⊙ (G_b − (g_bᵀ G_b) 1) / τ
    sparsemax: ∂J/∂s_b = m_b ⊙ (G_b − mean_{n: g_{b,n}>0} G_{b,n}) / (τN),   m_b = 1[g_b > 0]
    scorer:   ∂J/∂φ_b = F_bᵀ ∂J/∂s_b

(the link's Jacobian is the same for every step of a block, so it applies to the block sum).
The sparsemax Jacobian is that of the projection away from its kinks (measure zero).
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.policy import project_simplex

__all__ = [
    "LINKS",
    "block_index",
    "block_policy",
    "block_pullback",
    "coarsen_policy",
    "feature_scores",
    "feature_policy",
    "feature_pullback",
]

LINKS = ("softmax", "sparsemax")


def block_index(steps: int, blocks: int, device: torch.device | str | None = None) -> Tensor:
    """b(t) = ⌊t·Q/T⌋ for t = 0…T−1, shape ``(T,)`` (int64); Q = T gives b(t) = t.

    Raises:
        ValueError: unless 1 ≤ Q ≤ T.
    """
    checks.check_int(steps, "steps", minimum=1)
    checks.check_int(blocks, "blocks", minimum=1, maximum=steps)
    return torch.arange(steps, device=device) * blocks // steps


def _sum_over_blocks(grad_gamma: Tensor, blocks: int) -> Tensor:
    """G_b = Σ_{t∈b} ∂J/∂γ_t, ``(T, N) → (Q, N)``."""
    if not (isinstance(grad_gamma, Tensor) and grad_gamma.ndim == 2):
        raise ArgumentValueError(
            f"∂J/∂γ must be a (T, N) tensor, got {getattr(grad_gamma, 'shape', type(grad_gamma))}"
        )
    idx = block_index(len(grad_gamma), blocks, grad_gamma.device)
    out = grad_gamma.new_zeros(blocks, grad_gamma.shape[1])
    return out.index_add_(0, idx, grad_gamma)


def block_policy(phi: Tensor, steps: int) -> Tensor:
    """γ_t = φ_{b(t)}: a ``(T, N)`` policy from ``(Q, N)`` block rows on the simplex.

    Args:
        phi: ``(Q, N)``, every row on the simplex (e.g. from :func:`project_simplex`).
        steps: T ≥ Q.
    """
    checks.check_steps(steps)
    if not (isinstance(phi, Tensor) and phi.ndim == 2 and phi.dtype.is_floating_point):
        raise ArgumentValueError(
            "phi must be a floating-point (Q, N) tensor of block rows on the simplex, got "
            f"{getattr(phi, 'shape', type(phi).__name__)}"
        )
    idx = block_index(steps, len(phi), phi.device)
    return phi[idx]


def block_pullback(grad_gamma: Tensor, blocks: int) -> Tensor:
    """∂J/∂φ of a block policy: ``(T, N)`` ∂J/∂γ → ``(Q, N)`` block sums G_b."""
    return _sum_over_blocks(grad_gamma, blocks)


def coarsen_policy(policy: Tensor, blocks: int) -> Tensor:
    """The block rows that average a full ``(T, N)`` policy over each block, ``(Q, N)``.

    Means of simplex rows are on the simplex, so this warm-starts a block search from any policy
    (e.g. an online rule's). ``block_policy(coarsen_policy(γ, T), T)`` is γ.
    """
    sums = _sum_over_blocks(policy, blocks)
    idx = block_index(len(policy), blocks, policy.device)
    counts = torch.bincount(idx, minlength=blocks).to(policy.dtype)
    return sums / counts[:, None]


def _check_features(phi: Tensor, features: Tensor) -> None:
    if not (isinstance(features, Tensor) and features.ndim in (2, 3)):
        raise ArgumentValueError(
            "features must be an (N, D) tensor (one row per training example) or (Q, N, D) "
            f"(one set per block), got {getattr(features, 'shape', type(features).__name__)}; "
            "build one with learnlaw.policies.example_features(task)"
        )
    d = features.shape[-1]
    if not (isinstance(phi, Tensor) and phi.ndim == 2 and phi.shape[1] == d):
        raise ArgumentValueError(
            f"phi must have shape (Q, D) with D = {d} feature columns, got "
            f"{getattr(phi, 'shape', type(phi).__name__)}"
        )
    if features.ndim == 3 and len(features) != len(phi):
        raise ArgumentValueError(
            f"per-block features have {len(features)} blocks but phi has Q = {len(phi)} rows"
        )
    if not bool(torch.isfinite(features).all()):
        raise ArgumentValueError("features has non-finite entries; fix or drop those columns")


def _check_link(link: str, temperature: float) -> None:
    checks.check_choice(link, "link", LINKS)
    checks.check_number(temperature, "temperature", minimum=0.0, strict=True)


def feature_scores(phi: Tensor, features: Tensor) -> Tensor:
    """s_{b,n} = f_{b,n}ᵀ φ_b, shape ``(Q, N)`` (F ``(N, D)`` shared or ``(Q, N, D)``)."""
    _check_features(phi, features)
    if features.ndim == 2:
        return phi @ features.to(phi).T
    return torch.einsum("bd,bnd->bn", phi, features.to(phi))


def _link(scores: Tensor, link: str, temperature: float) -> Tensor:
    n = scores.shape[1]
    if link == "softmax":
        return torch.softmax(scores / temperature, dim=1)
    return project_simplex(1.0 / n + scores / (temperature * n))


def feature_policy(
    phi: Tensor,
    features: Tensor,
    steps: int,
    *,
    link: str = "softmax",
    temperature: float = 1.0,
) -> Tensor:
    """γ_t = link(F φ_{b(t)}): the ``(T, N)`` policy of a feature scorer (see the module doc).

    Args:
        phi: ``(Q, D)`` score weights, one row per block (zeros give the uniform policy).
        features: F, ``(N, D)`` fixed per-example features, or ``(Q, N, D)`` one set per block
            (:mod:`learnlaw.policies.parametric_features`).
        steps: T ≥ Q.
        link: ``"softmax"`` or ``"sparsemax"``.
        temperature: τ.
    """
    checks.check_steps(steps)
    _check_link(link, temperature)
    rows = _link(feature_scores(phi, features), link, temperature)
    return rows[block_index(steps, len(phi), phi.device)]


def feature_pullback(
    phi: Tensor,
    features: Tensor,
    grad_gamma: Tensor,
    *,
    link: str = "softmax",
    temperature: float = 1.0,
) -> Tensor:
    """∂J/∂φ of a feature scorer from ∂J/∂γ ``(T, N)``; returns ``(Q, D)`` (formulas above)."""
    _check_link(link, temperature)
    rows = _link(feature_scores(phi, features), link, temperature)  # g_b, (Q, N)
    big_g = _sum_over_blocks(grad_gamma.to(phi), len(phi))  # G_b
    if big_g.shape[1] != rows.shape[1]:
        raise ArgumentValueError(
            f"∂J/∂γ has {big_g.shape[1]} columns but features has N = {rows.shape[1]} rows"
        )
    if link == "softmax":
        ds = rows * (big_g - (rows * big_g).sum(1, keepdim=True)) / temperature
    else:
        mask = (rows > 0).to(rows)
        mean = (mask * big_g).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        ds = mask * (big_g - mean) / (temperature * rows.shape[1])
    if features.ndim == 2:
        return ds @ features.to(phi)
    return torch.einsum("bn,bnd->bd", ds, features.to(phi))
