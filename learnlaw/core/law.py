"""Measurements of the Learning Law: contributions, SIM, learning speeds, zero-weight diagnostics.

The contribution of training example n at θ is CT_n(θ) = ∇L_dsr(θ)·∇l_n(θ) (its "local learning
speed"); the Learning Law says that along an optimal run every example with non-zero weight has
the same contribution, equal to the global speed −dL_dsr/dt.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.distributed import gather_columns, shard_of
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task

__all__ = [
    "contributions",
    "contribution_trajectory",
    "run_contributions",
    "sim",
    "SimResult",
    "learning_speeds",
    "zero_weight_fraction",
    "learned_weight_ratios",
]


def contributions(
    task: Task, params: dict[str, Tensor] | None = None, split: str = "desired"
) -> Tensor:
    """CT_n = ∇L_dsr(θ)·∇l_n(θ) for every training example, shape ``(N,)``.

    All N at once by ONE Jacobian-vector product of the per-example loss vector in the direction
    ∇L_dsr (forward mode): memory O(N + P) plus one chunk's activations, never N×P.

    Args:
        task: the task.
        params: θ as a dict (default θ₀).
        split: whose mean gradient to project on: ``"desired"`` (default) or ``"test"``.

    Inside a ``torch.distributed`` group of R > 1 processes each rank computes its shard's
    N_r contributions (one all-reduce of the P-float split gradient) and every rank returns
    all N (one all-gather).
    """
    checks.check_choice(split, "split", ("desired", "test", "train"))
    params = task.params0 if params is None else params
    theta = task.spec.flatten(params).detach()
    with torch.no_grad():
        return gather_columns(kernels_for(task).contributions(theta, split), shard_of(task))


def contribution_trajectory(
    task: Task, trajectory: Tensor, split: str = "desired", block: int = 256
) -> Tensor:
    """CT_{t,n} at every θ_t of a flat ``(T', P)`` trajectory, shape ``(T', N)``."""
    checks.check_choice(split, "split", ("desired", "test", "train"))
    checks.check_int(block, "block", minimum=1)
    kernels = kernels_for(task)
    with torch.no_grad():
        local = torch.cat(
            [
                kernels.contributions_batch(trajectory[s : s + block], split)
                for s in range(0, len(trajectory), block)
            ]
        )
    return gather_columns(local, shard_of(task))


def run_contributions(task: Task, policy: Tensor, lr: float, split: str = "desired") -> Tensor:
    """CT_{t,n} at θ_0 … θ_{T−1} of the run ``train(task, policy, lr)``, computed during the run.

    The same numbers as ``contribution_trajectory(task, train(task, policy, lr,
    keep_params=True).trajectory[:-1], split)`` without the ``(T+1, P)`` trajectory: the run
    goes in blocks of ``B`` steps (the kernels' forward block, 8), the contributions of a
    block's B points are computed on the task's device and copied to the CPU once per block.
    Device memory: B·P floats of θ plus one chunk's activations of a contribution (a desired
    gradient and one Jacobian-vector product over the N examples); host memory: the ``(T, N)``
    result. At the paper's Transformer scale (T = 4000, N = 16,384, P = 1.68 M) that is
    262 MB on the CPU instead of a 26.9 GB trajectory. Cost: one training run plus T
    contributions (each about one more training step).

    Args:
        task: the task.
        policy: γ, shape ``(T, N)``, rows on the simplex.
        lr: η.
        split: the split whose mean gradient CT projects on (``"desired"`` or ``"test"``).

    Returns:
        CT, shape ``(T, N)``, on the CPU (row t pairs with γ_t, as :func:`sim` expects).
    """
    checks.check_lr(lr)
    checks.check_choice(split, "split", ("desired", "test", "train"))
    from learnlaw.core.training import prepare_policy

    lr = checks.check_lr(lr)
    policy = prepare_policy(task, policy)
    kernels, shard = kernels_for(task), shard_of(task)
    theta = task.spec.flatten(task.params0).detach()
    steps = len(policy)
    out = torch.empty(steps, task.n_train, dtype=task.dtype)
    with torch.no_grad():
        for s in range(0, steps, kernels.block):
            e = min(s + kernels.block, steps)
            thetas = kernels.forward_segment(theta, policy[s:e], lr)  # θ_{s+1} … θ_e
            points = torch.cat([theta[None], thetas[:-1]])  # θ_s … θ_{e−1}
            out[s:e] = gather_columns(kernels.contributions_batch(points, split), shard).cpu()
            theta = thetas[-1]
    return out


class SimResult(NamedTuple):
    """SIM_t for every step, and the run average SIM = mean_t SIM_t (over defined steps)."""

    per_step: Tensor
    mean: float


def sim(contributions: Tensor, weights: Tensor) -> SimResult:
    """Similarity of example contributions, paper Eq. 7.

    SIM_t = CT̄_t / s_t with CT̄_t = Σ_n γ_{t,n} CT_{t,n} (the γ-weighted mean) and s_t the
    unbiased standard deviation of CT_{t,n} around CT̄_t over the examples with γ_{t,n} ≠ 0:
    s_t² = Σ_n 1[γ_{t,n}≠0](CT_{t,n} − CT̄_t)² / (Σ_n 1[γ_{t,n}≠0] − 1).
    A step with fewer than two non-zero weights, or s_t = 0, has SIM_t = nan; the mean skips
    those steps. γ_t is paired with the contributions at θ_t (the weights used at that point).

    Args:
        contributions: CT, shape ``(T, N)`` or ``(N,)``.
        weights: γ, same shape, rows on the simplex.
    """
    ct = torch.as_tensor(contributions)
    w = torch.as_tensor(weights, dtype=ct.dtype, device=ct.device)
    if ct.shape != w.shape:
        raise ArgumentValueError(
            f"contributions {tuple(ct.shape)} and weights {tuple(w.shape)} differ"
        )
    squeeze = ct.ndim == 1
    ct, w = ct.reshape(-1, ct.shape[-1]), w.reshape(-1, w.shape[-1])
    validate_policy(w)
    support = w != 0
    count = support.sum(1).to(ct.dtype)
    mean = (w * ct).sum(1)
    var = (support * (ct - mean[:, None]) ** 2).sum(1) / (count - 1)
    per_step = mean / var.sqrt()
    per_step = torch.where((count >= 2) & (var > 0), per_step, torch.nan)
    ok = torch.isfinite(per_step)
    avg = float(per_step[ok].mean()) if bool(ok.any()) else float("nan")
    return SimResult(per_step[0] if squeeze else per_step, avg)


def learning_speeds(task: Task, policy: Tensor, lr: float) -> dict[str, Tensor]:
    """Global and local learning speeds along a run (keeps the whole trajectory: T·P floats).

    Returns a dict with
        ``global``: ``(T,)`` −ΔL_dsr = L_dsr(θ_t) − L_dsr(θ_{t+1}), the speed per step;
        ``local``: ``(T, N)`` CT_{t,n} at θ_t;
        ``predicted``: ``(T,)`` η Σ_n γ_{t,n} CT_{t,n}, the first-order prediction of the
            global speed from the local ones (the chain rule dL/dt = −Σ γ_n CT_n);
        ``desired_loss``: ``(T+1,)``.
    """
    checks.check_lr(lr)
    from learnlaw.core.training import train

    run = train(task, policy, lr, keep_params=True)
    local = contribution_trajectory(task, run.trajectory[:-1])
    gamma = policy.to(local)
    return {
        "global": run.desired_loss[:-1] - run.desired_loss[1:],
        "local": local,
        "predicted": lr * (gamma * local).sum(1),
        "desired_loss": run.desired_loss,
    }


def zero_weight_fraction(policy: Tensor, contributions: Tensor) -> float:
    """Property 4.1 diagnostic: the fraction of γ_{t,n} = 0 among pairs with CT_{t,n} ≤ 0."""
    ct = torch.as_tensor(contributions)
    w = torch.as_tensor(policy).to(ct)
    if ct.shape != w.shape:
        raise ArgumentValueError(
            f"contributions {tuple(ct.shape)} and policy {tuple(w.shape)} differ"
        )
    noncontrib = ct <= 0
    n = int(noncontrib.sum())
    if n == 0:
        return float("nan")
    return float(((w == 0) & noncontrib).sum()) / n


def learned_weight_ratios(policy: Tensor, losses: Tensor, threshold: float = 1e-6) -> Tensor:
    """Property 4.2 diagnostic: γ_{t,n} / max_m γ_{t,m} for all pairs with l_n(θ_t) < threshold.

    Args:
        policy: γ, ``(T, N)``.
        losses: per-example training losses l_n(θ_t), ``(T, N)``.
        threshold: "perfectly learned" means a loss below this (paper: 1e-6).

    Returns:
        A 1-D tensor of ratios in [0, 1] (empty if no example is that well learned).
    """
    checks.check_number(threshold, "threshold", minimum=0.0)
    w = torch.as_tensor(policy)
    lo = torch.as_tensor(losses).to(w)
    if lo.shape != w.shape:
        raise ArgumentValueError(f"losses {tuple(lo.shape)} and policy {tuple(w.shape)} differ")
    ratio = w / w.max(dim=1, keepdim=True).values
    return ratio[lo < threshold]
