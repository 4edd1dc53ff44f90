"""Parameterised learning policies γ(φ) with few parameters, and their exact pullbacks.

A full policy has T·N free weights; the families here tie them together so that a search over
φ has far fewer degrees of freedom (the question of issue 12: do fewer free parameters transfer
to held-out data where the T×N search over-fits?). Both families split the T steps into B blocks
of consecutive steps, b(t) = ⌊t·B/T⌋ (sizes differ by at most one), and give every step of a
block the same row γ_t = g_{b(t)}.

* **Block policy**: φ ∈ (B, N), every row on the simplex; g_b = φ_b.
* **Feature scorer**: fixed per-example features F ∈ (N, D) and φ ∈ (B, D) (unconstrained);
  scores s_{b,n} = f_nᵀ φ_b and g_b = link(s_b) with
  ``"softmax"``: g_b = softmax(s_b / τ) (every weight positive), or
  ``"sparsemax"``: g_b = Proj_Δ(1/N + s_b / (τN)) (the Euclidean projection onto the simplex,
  which switches examples off exactly, as the Law's optimal policies do). Both give the uniform
  policy at φ = 0, and τ measures a score change that moves a weight by O(1) *relative* to 1/N.

The pullback of ∂J/∂γ (from :func:`learnlaw.core.adjoint.adjoint_sweep`) to φ is exact
(∂J/∂φ = (∂γ/∂φ)ᵀ ∂J/∂γ). With G_b = Σ_{t∈b} ∂J/∂γ_t:

    block:    ∂J/∂φ_b = G_b
    softmax:  ∂J/∂s_b = g_b ⊙ (G_b − (g_bᵀ G_b) 1) / τ
    sparsemax: ∂J/∂s_b = m_b ⊙ (G_b − mean_{n: g_{b,n}>0} G_{b,n}) / (τN),   m_b = 1[g_b > 0]
    scorer:   ∂J/∂φ_b = Fᵀ ∂J/∂s_b

(the link's Jacobian is the same for every step of a block, so it applies to the block sum).
The sparsemax Jacobian is that of the projection away from its kinks (measure zero).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call, grad, vmap

from learnlaw.core.kernels import kernels_for
from learnlaw.core.law import contributions
from learnlaw.core.policy import project_simplex
from learnlaw.core.task import Task

__all__ = [
    "LINKS",
    "block_index",
    "block_policy",
    "block_pullback",
    "coarsen_policy",
    "feature_scores",
    "feature_policy",
    "feature_pullback",
    "example_features",
]

LINKS = ("softmax", "sparsemax")


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):
        span = f"[{low}, {high}]" if high is not None else f"≥ {low}"
        raise ValueError(f"{name} must be an int {span}, got {value!r}")
    return value


def block_index(steps: int, blocks: int, device: torch.device | str | None = None) -> Tensor:
    """b(t) = ⌊t·B/T⌋ for t = 0…T−1, shape ``(T,)`` (int64); B = T gives b(t) = t.

    Raises:
        ValueError: unless 1 ≤ B ≤ T.
    """
    _check_int("steps", steps, 1)
    _check_int("blocks", blocks, 1, steps)
    return torch.arange(steps, device=device) * blocks // steps


def _sum_over_blocks(grad_gamma: Tensor, blocks: int) -> Tensor:
    """G_b = Σ_{t∈b} ∂J/∂γ_t, ``(T, N) → (B, N)``."""
    if not (isinstance(grad_gamma, Tensor) and grad_gamma.ndim == 2):
        raise ValueError(
            f"∂J/∂γ must be a (T, N) tensor, got {getattr(grad_gamma, 'shape', type(grad_gamma))}"
        )
    idx = block_index(len(grad_gamma), blocks, grad_gamma.device)
    out = grad_gamma.new_zeros(blocks, grad_gamma.shape[1])
    return out.index_add_(0, idx, grad_gamma)


def block_policy(phi: Tensor, steps: int) -> Tensor:
    """γ_t = φ_{b(t)}: a ``(T, N)`` policy from ``(B, N)`` block rows on the simplex.

    Args:
        phi: ``(B, N)``, every row on the simplex (e.g. from :func:`project_simplex`).
        steps: T ≥ B.
    """
    if not (isinstance(phi, Tensor) and phi.ndim == 2 and phi.dtype.is_floating_point):
        raise ValueError(
            "phi must be a floating-point (B, N) tensor of block rows on the simplex, got "
            f"{getattr(phi, 'shape', type(phi).__name__)}"
        )
    idx = block_index(steps, len(phi), phi.device)
    return phi[idx]


def block_pullback(grad_gamma: Tensor, blocks: int) -> Tensor:
    """∂J/∂φ of a block policy: ``(T, N)`` ∂J/∂γ → ``(B, N)`` block sums G_b."""
    return _sum_over_blocks(grad_gamma, blocks)


def coarsen_policy(policy: Tensor, blocks: int) -> Tensor:
    """The block rows that average a full ``(T, N)`` policy over each block, ``(B, N)``.

    Means of simplex rows are on the simplex, so this warm-starts a block search from any policy
    (e.g. an online rule's). ``block_policy(coarsen_policy(γ, T), T)`` is γ.
    """
    sums = _sum_over_blocks(policy, blocks)
    idx = block_index(len(policy), blocks, policy.device)
    counts = torch.bincount(idx, minlength=blocks).to(policy.dtype)
    return sums / counts[:, None]


def _check_features(phi: Tensor, features: Tensor) -> None:
    if not (isinstance(features, Tensor) and features.ndim == 2):
        raise ValueError(
            "features must be an (N, D) tensor (one row per training example), got "
            f"{getattr(features, 'shape', type(features).__name__)}; build one with "
            "learnlaw.example_features(task)"
        )
    if not (isinstance(phi, Tensor) and phi.ndim == 2 and phi.shape[1] == features.shape[1]):
        raise ValueError(
            f"phi must have shape (B, D) with D = {features.shape[1]} feature columns, got "
            f"{getattr(phi, 'shape', type(phi).__name__)}"
        )
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features has non-finite entries; fix or drop those columns")


def _check_link(link: str, temperature: float) -> None:
    if link not in LINKS:
        raise ValueError(f"unknown link {link!r}; expected one of {LINKS}")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")


def feature_scores(phi: Tensor, features: Tensor) -> Tensor:
    """s_{b,n} = f_nᵀ φ_b, shape ``(B, N)``."""
    _check_features(phi, features)
    return phi @ features.to(phi).T


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
        phi: ``(B, D)`` score weights, one row per block (zeros give the uniform policy).
        features: F, ``(N, D)`` fixed per-example features (:func:`example_features`).
        steps: T ≥ B.
        link: ``"softmax"`` or ``"sparsemax"``.
        temperature: τ.
    """
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
    """∂J/∂φ of a feature scorer from ∂J/∂γ ``(T, N)``; returns ``(B, D)`` (formulas above)."""
    _check_link(link, temperature)
    rows = _link(feature_scores(phi, features), link, temperature)  # g_b, (B, N)
    big_g = _sum_over_blocks(grad_gamma.to(phi), len(phi))
    if big_g.shape[1] != rows.shape[1]:
        raise ValueError(
            f"∂J/∂γ has {big_g.shape[1]} columns but features has N = {rows.shape[1]} rows"
        )
    if link == "softmax":
        ds = rows * (big_g - (rows * big_g).sum(1, keepdim=True)) / temperature
    else:
        mask = (rows > 0).to(rows)
        mean = (mask * big_g).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        ds = mask * (big_g - mean) / (temperature * rows.shape[1])
    return ds @ features.to(phi)


def _grad_norms(task: Task) -> Tensor:
    """‖∇l_n(θ₀)‖ for every training example, ``(N,)``; memory: one chunk × P floats."""
    names = list(task.params0)

    def one(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        logits = functional_call(task.model, params, (x[None],))
        return task.loss_fn(logits, y[None]).sum()

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    params = {k: v.detach() for k, v in task.params0.items()}
    out = []
    for _, x, y in task.chunks("train"):
        g = per_example(params, x, y)
        out.append(torch.stack([g[k].reshape(len(x), -1).pow(2).sum(1) for k in names]).sum(0))
    return torch.cat(out).sqrt()


def example_features(
    task: Task,
    *,
    grad_norm: bool = True,
    use_kinds: bool = False,
    standardize: bool = True,
) -> tuple[Tensor, list[str]]:
    """Default per-example features F ``(N, D)`` for a feature scorer, computed ONCE at θ₀.

    Columns: ``bias`` (1), ``loss`` l_n(θ₀), ``ct`` = CT_n(θ₀) = ∇L_dsr·∇l_n (the contribution,
    on ``task``'s desired split — pass the fitting part only, never the test split), and with
    ``grad_norm`` ``grad_norm`` ‖∇l_n(θ₀)‖ and ``cos`` = CT_n/(‖∇l_n‖‖∇L_dsr‖) (the alignment);
    then the label (``label`` for one 0/1 or real target, ``label=c`` one-hot columns for up to
    16 integer classes; sequence targets add none); with ``use_kinds``, one indicator per entry
    of ``task.kinds`` (``kind=noisy``, ...). Planted kinds are ground truth a real learner does not
    have (an oracle), hence off by default. Because F is fixed before the search, γ(φ) is a fixed
    differentiable map and ∂J/∂φ stays exact.

    Cost: one pass over the training set for the losses and one JVP for CT; ``grad_norm`` adds
    per-example gradients by ``vmap`` (memory: one chunk × P floats).

    Args:
        task: the task (θ₀ = ``task.params0``).
        grad_norm: include ``grad_norm`` and ``cos``.
        use_kinds: include the planted-kind indicators.
        standardize: z-score every column but the bias over the N examples; columns that are
            constant are dropped (they duplicate the bias).

    Returns:
        ``(F, names)``: F in the task's dtype and device, and one name per column.
    """
    if not isinstance(task, Task):
        raise TypeError(f"example_features needs a learnlaw Task, got {type(task).__name__}")
    n = task.n_train
    cols: dict[str, Tensor] = {"bias": torch.ones(n, dtype=task.dtype, device=task.device)}
    cols["loss"] = task.losses(split="train")
    ct = contributions(task)
    cols["ct"] = ct
    if grad_norm:
        norms = _grad_norms(task)
        theta = task.spec.flatten(task.params0).detach()
        g_dsr = kernels_for(task).desired_grad(theta).norm()
        cols["grad_norm"] = norms
        cols["cos"] = ct / (norms * g_dsr).clamp_min(torch.finfo(task.dtype).tiny)
    y = task.train[1]
    if y.ndim == 1 and y.dtype.is_floating_point:
        cols["label"] = y
    elif y.ndim == 1:
        classes = torch.unique(y)
        if len(classes) <= 16:
            for c in classes.tolist():
                cols[f"label={c}"] = y == c
    if use_kinds:
        for name, mask in task.kinds.items():
            cols[f"kind={name}"] = mask
    names, out = [], []
    for name, col in cols.items():
        col = col.to(dtype=task.dtype, device=task.device).reshape(n)
        if name != "bias" and standardize:
            std = col.std()
            if not bool(std > 1e-12 * col.abs().max().clamp_min(1)):
                continue
            col = (col - col.mean()) / std
        names.append(name)
        out.append(col)
    feats = torch.stack(out, 1)
    if not bool(torch.isfinite(feats).all()):
        bad = [nm for nm, c in zip(names, out) if not bool(torch.isfinite(c).all())]
        raise ValueError(f"features {bad} are not finite at θ₀; check the task's loss and data")
    return feats, names
