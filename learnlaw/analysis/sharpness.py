"""λ_max along a run: the sharpness of the weighted training loss, and the edge of stability.

Training is θ_{t+1} = θ_t − η ∇L_t(θ_t) with L_t(θ) = Σ_n γ_{t,n} l_n(θ); write
H_t = ∇²L_t(θ_t) (P×P) and λ_max(H_t) its largest eigenvalue. Along an eigenvector of H_t with
eigenvalue λ, one step multiplies a small perturbation of θ by (1 − ηλ): gradient descent on
the local quadratic model is stable iff η·λ_max < 2 — the *edge of stability* criterion
η·λ_max(H_t) = 2, which full-batch training is known to hover at when η is large.

The same factor drives the exact adjoint of :mod:`learnlaw.core.adjoint`,

    a_t = (I − η H_t) a_{t+1} + ∇L_dsr(θ_t),

so wherever η·λ_max(H_t) > 2 the component of a along the top eigenvector is multiplied by
|1 − ηλ_max| > 1 per step, going backwards: over a stretch of S such steps the adjoint (and
∂J/∂γ_{t,n} = −η ∇l_n(θ_t)·a_{t+1}) grows like Π|1 − ηλ_max|, exponentially in S, and the
sweep may overflow. (Negative curvature, λ < 0, multiplies by 1 + η|λ| > 1 too, but only mildly
for small η|λ|; :func:`sharpness` reports the largest, algebraic, eigenvalue.) Measuring λ_max
along the runs therefore says at which η a fitted policy's outer gradient can be trusted.

:func:`sharpness` measures λ_max(H_t) at every ``every``-th step of ``train(task, policy, lr)``
by Lanczos iteration with full reorthogonalisation on Hessian-vector products H_t v
(``kernels_for(task).reverse(θ, γ, v)``: closed form for the perceptron, one
forward-over-reverse or double-backward pass otherwise). It never forms H_t; with ``iters`` ≥ P
it is exact up to rounding (the Krylov space is all of R^P, or an invariant subspace that holds
every eigenvalue the random start vector touches — all of them, almost surely).
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task, check_task
from learnlaw.core.training import DivergenceError

__all__ = ["sharpness", "top_eigenvalue"]


def top_eigenvalue(hvp, dim: int, iters: int, start: Tensor) -> float:
    """The largest eigenvalue of a symmetric operator v ↦ Hv on R^dim, by Lanczos.

    m = min(iters, dim) Lanczos steps with full (twice-applied Gram–Schmidt) reorthogonalisation
    build the tridiagonal T_m = Q_mᵀ H Q_m; its largest eigenvalue (float64, on the CPU) is the
    estimate, which increases monotonically to λ_max(H) with m (exactly λ_max at m = dim, or
    when the Krylov space becomes invariant: β_j ≈ 0). Memory: m·dim floats (the basis).

    Args:
        hvp: v ↦ H v, ``(dim,)`` → ``(dim,)``, H symmetric.
        dim: P.
        iters: the most Lanczos steps (≥ 1).
        start: a nonzero ``(dim,)`` start vector (dtype and device of the iteration).

    Returns:
        The estimate of λ_max(H), a Python float.
    """
    m = min(iters, dim)
    basis = start.new_empty(m, dim)
    q = start / start.norm()
    alphas: list[float] = []
    betas: list[float] = []
    tiny = 1e3 * torch.finfo(start.dtype).eps
    for j in range(m):
        basis[j] = q
        w = hvp(q)
        alpha = torch.dot(w, q)
        for _ in range(2):  # full reorthogonalisation against q_0 … q_j (includes α q_j, β q_{j−1})
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = w.norm()
        a, b = float(alpha), float(beta)
        alphas.append(a)
        scale = max(abs(x) for x in alphas + betas + [b])
        if j == m - 1 or not b > tiny * scale:  # the Krylov space is invariant (or full)
            break
        betas.append(b)
        q = w / beta
    tri = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        tri += torch.diag(off, 1) + torch.diag(off, -1)
    return float(torch.linalg.eigvalsh(tri)[-1])


def sharpness(
    task: Task,
    policy: Tensor,
    lr: float,
    *,
    every: int = 1,
    iters: int = 30,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """λ_max(H_t), H_t = ∇²Σ_n γ_{t,n} l_n(θ_t), at every ``every``-th step of a training run.

    The run is ``train(task, policy, lr)``'s: θ_0 = the task's initial parameters and
    θ_{t+1} = θ_t − η ∇L_t(θ_t), stepped here segment by segment with the task's kernels
    (O(P) memory; no trajectory is stored). At each measured t = 0, every, 2·every, … ≤ T − 1
    (the steps whose Hessian enters the update and the adjoint) λ_max comes from
    :func:`top_eigenvalue` with ``iters`` Hessian-vector products, each costing about one
    gradient of L_t (closed form for the perceptron). Compare η·λ_max with 2: above it the
    step is past the edge of stability and the adjoint grows backwards through that step
    (module note).

    Args:
        task: the task (single process); its dtype and device are those of the iteration.
        policy: γ, ``(T, N)``, rows on the simplex.
        lr: η (only used to step θ; λ_max does not depend on η at a given θ_t).
        every: measure every this many steps (≥ 1; every ≥ T measures step 0 only).
        iters: Lanczos steps per measurement (≥ 1; min(iters, P) are taken; iters ≥ P is exact
            up to rounding, a few tens usually suffice for the top eigenvalue).
        seed: seeds the Lanczos start vector (one CPU ``torch.Generator``, the same start at
            every measured step).

    Returns:
        ``(steps, lam_max)``: ``(M,)`` int64 steps t and ``(M,)`` float64 λ_max(H_t), both on
        the CPU, M = ⌈T / every⌉.

    Raises:
        DivergenceError: θ_t becomes non-finite (names the step and the lr).
    """
    check_task(task)
    checks.check_int(every, "every", minimum=1)
    checks.check_int(iters, "iters", minimum=1)
    checks.check_int(seed, "seed")
    lr = checks.check_lr(lr)
    policy = validate_policy(policy, n=task.n_train).to(dtype=task.dtype, device=task.device)
    steps = len(policy)
    kernels = kernels_for(task)
    theta = task.spec.flatten(task.params0).detach()
    dim = theta.numel()
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(dim, generator=gen, dtype=torch.float64).to(theta.dtype).to(theta.device)
    measured = list(range(0, steps, every))
    lams = []
    with torch.no_grad():
        for i, t in enumerate(measured):
            gamma = policy[t]
            lams.append(
                top_eigenvalue(lambda v: kernels.reverse(theta, gamma, v)[0], dim, iters, start)
            )
            stop = measured[i + 1] if i + 1 < len(measured) else steps
            if stop > t and i + 1 < len(measured):
                theta = kernels.forward_segment(theta, policy[t:stop], lr)[-1]
                if not bool(torch.isfinite(theta).all()):
                    raise DivergenceError(
                        f"training diverged: θ is not finite by step {stop} (between steps {t} "
                        f"and {stop}) with learning rate lr={lr:g}; lower the learning rate"
                    )
    return torch.tensor(measured, dtype=torch.int64), torch.tensor(lams, dtype=torch.float64)
