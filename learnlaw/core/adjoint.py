"""The exact gradient of the AUC with respect to the policy, by a reverse (adjoint) sweep.

Training is a T-layer residual network θ_{t+1} = θ_t − η ∇L_{γ_t}(θ_t) whose "weights" are the
policy rows γ_t, and J(γ) = Σ_{t=1}^{T} L_dsr(θ_t). With the adjoint a_t = ∂J/∂θ_t:

    a_T = ∇L_dsr(θ_T)
    ∂J/∂γ_{t,n} = −η ∇l_n(θ_t) · a_{t+1}
    a_t = ∇L_dsr(θ_t)·[t ≥ 1] + (I − η H_t(θ_t)) a_{t+1},     H_t = ∇² L_{γ_t}

With a per-step schedule η_t (θ_{t+1} = θ_t − η_t ∇L_{γ_t}(θ_t)) the same sweep gives

    ∂J/∂γ_{t,n} = −η_t ∇l_n(θ_t) · a_{t+1},      a_t = ∇L_dsr(θ_t)·[t ≥ 1] + (I − η_t H_t) a_{t+1},
    ∂J/∂η_t = −Σ_n γ_{t,n} ∇l_n(θ_t) · a_{t+1} = (γ_t · ∂J/∂γ_t) / η_t

at no extra cost (:func:`schedule_gradient`). At an interior optimum of J over η_t,
∂J/∂η_t = 0: the weighted gradient Σ_n γ_{t,n} ∇l_n(θ_t) is orthogonal to the adjoint a_{t+1} —
the step-size counterpart of the Learning Law (which asks every used example's ∇l_n·a_{t+1} to
be equal). Its one-step reading (a_{t+1} ≈ ∇L_dsr(θ_{t+1})) is an exact line search of the
desired loss along the weighted gradient (``online_policy(step="line_search")``).

Each reverse step is one kernel call that returns both H_t a_{t+1} and all N dot products
∇l_n·a_{t+1} (one forward-over-reverse pass, see :mod:`learnlaw.core.kernels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.distributed import all_reduce, gather_columns, shard_of
from learnlaw.core.precision import check_tf32, matmul_precision
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import Task
from learnlaw.core.training import (
    DIVERGENCE_FACTOR,
    check_factor,
    forward_sweep,
    prepare_lr,
    prepare_policy,
)

__all__ = [
    "policy_gradient",
    "schedule_gradient",
    "adjoint_sweep",
    "Sweep",
    "resolve_checkpointing",
]


@dataclass(frozen=True)
class Sweep:
    """What one forward + reverse sweep computes.

    Attributes:
        J: Σ_{t=1}^{T} L_dsr(θ_t) (a Python float).
        grad: ∂J/∂γ, shape ``(T, N)``.
        desired_loss, test_loss: ``(T+1,)`` curves of the forward sweep.
        checkpoint_every: k, the spacing of stored θ's.
        stored_floats: the largest number of trajectory floats held at once
            ((T/k + 1)·P checkpoints plus a k·P segment).
        lr_grad: ∂J/∂η_t = (γ_t · ∂J/∂γ_t)/η_t, shape ``(T,)`` (summed over every rank's
            columns inside a process group).
    """

    J: float
    grad: Tensor
    desired_loss: Tensor
    test_loss: Tensor
    checkpoint_every: int
    stored_floats: int
    lr_grad: Tensor | None = None


def resolve_checkpointing(checkpoint_every: int | str | None, steps: int) -> int:
    """k from the user's setting: ``None`` → 1 (store every θ_t), ``"auto"`` → ⌈√T⌉."""
    checks.check_steps(steps)
    if checkpoint_every is None:
        return 1
    if checkpoint_every == "auto":
        return max(1, math.ceil(math.sqrt(steps)))
    checks.check_checkpoint_every(checkpoint_every)
    return min(checkpoint_every, steps)


def adjoint_sweep(
    task: Task,
    policy: Tensor,
    lr: float | Tensor,
    *,
    checkpoint_every: int | str | None = None,
    track_test: bool = True,
    progress: bool = False,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
) -> Sweep:
    """Forward training sweep, then the reverse sweep that accumulates ∂J/∂γ.

    Cost: one training run (T weighted gradients) forward; T forward-over-reverse steps plus T
    desired-set gradients in reverse; with checkpointing, one more training run to recompute
    the segments. Memory: T·P trajectory floats without checkpointing; about (T/k + k)·P with
    ``checkpoint_every=k`` (≈ 2√T·P for ``"auto"``), plus O(N + P) working memory.

    Inside a ``torch.distributed`` group of R > 1 processes (:mod:`learnlaw.core.distributed`)
    every rank sweeps its shard of the examples, with one all-reduce of P floats per forward
    and per reverse step. ``policy`` may be the full ``(T, N)`` policy — then ``grad`` is the
    full ``(T, N)`` gradient, assembled by one all-gather — or this rank's ``(T, N_r)``
    columns — then ``grad`` is this rank's ``(T, N_r)`` block (what
    :func:`~learnlaw.optimize_policy` uses, no gather). The memory of the
    trajectory is per rank (θ is replicated); the policy and gradient blocks are T·N_r.

    Args:
        task: the task.
        policy: γ, shape ``(T, N)``.
        lr: η of the inner gradient descent, or a ``(T,)`` schedule η_t (see
            :func:`~learnlaw.train`).
        checkpoint_every: ``None`` (store θ_0…θ_T), ``"auto"`` (k = ⌈√T⌉) or an int k.
        track_test: also record the test-loss curve in the forward sweep.
        progress: show a tqdm bar over the 2T (or 3T) steps.
        divergence_factor: the divergence criterion of the forward sweep (see
            :data:`learnlaw.training.DIVERGENCE_FACTOR`).
        tf32: run the float32 matmuls of both sweeps (Hessian-vector products included) in
            TF32 on an NVIDIA Ampere+ GPU (:func:`~learnlaw.profile.matmul_precision`):
            faster, with a relative rounding of 2⁻¹¹ per matmul input; no effect on the CPU or
            in float64. ``False`` (default) forces exact float32 for the call.

    Returns:
        A :class:`Sweep`; ``grad`` and the curves are on the task's device, ``J`` a float.
    """
    checks.check_checkpoint_every(checkpoint_every)
    checks.check_bool(track_test, "track_test")
    checks.check_bool(progress, "progress")
    divergence_factor = check_factor(divergence_factor)
    tf32 = check_tf32(tf32)
    shard = shard_of(task)
    full_width = isinstance(policy, torch.Tensor) and policy.ndim == 2
    full_width = full_width and policy.shape[1] == task.n_train
    policy = prepare_policy(task, policy)
    lr = prepare_lr(task, lr, len(policy))
    sched = isinstance(lr, torch.Tensor)
    k = resolve_checkpointing(checkpoint_every, len(policy))
    kernels = kernels_for(task)
    steps, n = policy.shape
    p = task.n_params
    theta = task.spec.flatten(task.params0).detach()
    n_extra = steps - steps // k if k > 1 else 0  # steps recomputed in reverse
    with (
        matmul_precision(tf32),
        progress_bar(
            progress, total=2 * steps + n_extra, desc="policy gradient", leave=False
        ) as bar,
        torch.no_grad(),
    ):
        ckpt, desired, test, theta = forward_sweep(
            kernels,
            theta,
            policy,
            lr,
            store_every=k,
            track_test=track_test,
            bar=bar,
            divergence_factor=divergence_factor,
        )
        grad = torch.empty(steps, n, dtype=task.dtype, device=task.device)
        a = kernels.desired_grad(theta)
        seg = k if k > 1 else kernels.block
        for start in reversed(range(0, steps, seg)):
            stop = min(start + seg, steps)
            if k == 1:
                thetas = ckpt[start:stop]
            else:  # recompute θ_{start+1} … θ_{stop-1} from the checkpoint θ_start
                first = ckpt[start // k]
                seg_lr = lr[start : stop - 1] if sched else lr
                rest = kernels.forward_segment(first, policy[start : stop - 1], seg_lr)
                thetas = torch.cat([first[None], rest])
                bar.update(stop - 1 - start)
            seg_lr = lr[start:stop] if sched else lr
            a, grad[start:stop] = kernels.reverse_segment(
                thetas, policy[start:stop], a, seg_lr, start
            )
            bar.update(stop - start)
    stored = len(ckpt) * p + (k * p if k > 1 else 0)
    lr_grad = (policy * grad).sum(1) / lr  # this rank's columns: Σ_n γ_{t,n} ∂J/∂γ_{t,n} / η_t
    if shard is not None:
        lr_grad = all_reduce(lr_grad.contiguous())
    if shard is not None and full_width:
        grad = gather_columns(grad, shard)
    return Sweep(
        J=float(desired[1:].sum()),
        grad=grad,
        desired_loss=desired,
        test_loss=test,
        checkpoint_every=k,
        stored_floats=stored,
        lr_grad=lr_grad,
    )


def _gradient_sweep(task, policy, lr, checkpoint_every, divergence_factor, tf32) -> Sweep:
    """The sweep behind :func:`policy_gradient` and :func:`schedule_gradient` (no test curve)."""
    checks.check_checkpoint_every(checkpoint_every)
    return adjoint_sweep(
        task,
        policy,
        lr,
        checkpoint_every=checkpoint_every,
        track_test=False,
        divergence_factor=divergence_factor,
        tf32=tf32,
    )


def policy_gradient(
    task: Task,
    policy: Tensor,
    lr: float | Tensor,
    checkpoint_every: int | str | None = None,
    *,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
) -> tuple[float, Tensor]:
    """The AUC J(γ) = Σ_{t=1}^{T} L_dsr(θ_t) and its exact gradient ∂J/∂γ, shape ``(T, N)``.

    See :func:`adjoint_sweep` for the recursion, its cost, the memory of ``checkpoint_every``,
    ``tf32`` (TF32 matmuls on an NVIDIA Ampere+ GPU; no effect on the CPU or in float64) and
    what happens inside a ``torch.distributed`` group. The gradient is on the task's device.
    """
    sweep = _gradient_sweep(task, policy, lr, checkpoint_every, divergence_factor, tf32)
    return sweep.J, sweep.grad


def schedule_gradient(
    task: Task,
    policy: Tensor,
    lr: float | Tensor,
    checkpoint_every: int | str | None = None,
    *,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
) -> tuple[float, Tensor]:
    """The AUC J and its exact gradient with respect to the step sizes, ∂J/∂η, shape ``(T,)``.

    Training is θ_{t+1} = θ_t − η_t Σ_n γ_{t,n} ∇l_n(θ_t); with the adjoint a_{t+1} = dJ/dθ_{t+1},

        ∂J/∂η_t = −Σ_n γ_{t,n} ∇l_n(θ_t) · a_{t+1} = (γ_t · ∂J/∂γ_t) / η_t,

    read off the same sweep as :func:`policy_gradient` (one forward and one reverse sweep; see
    :func:`adjoint_sweep` for its cost, ``checkpoint_every``, ``tf32`` and process groups —
    inside a group of R > 1 every rank sums its own columns and one all-reduce of T floats
    gives every rank the full gradient). ∂J/∂η_t = 0 at an interior optimum: the step-size
    Learning Law, the weighted gradient orthogonal to the adjoint.

    Args:
        task: the task.
        policy: γ, ``(T, N)``.
        lr: a float η (the gradient is then taken at the constant schedule η_t = η) or a
            ``(T,)`` schedule of positive finite steps.
        checkpoint_every: θ checkpointing, as in :func:`policy_gradient`.
        divergence_factor: the divergence criterion of the forward sweep.
        tf32: TF32 matmuls on an NVIDIA Ampere+ GPU (no effect on the CPU or in float64).

    Returns:
        ``(J, dJ_dlr)``: J a float, dJ_dlr of shape ``(T,)`` on the task's device.
    """
    sweep = _gradient_sweep(task, policy, lr, checkpoint_every, divergence_factor, tf32)
    return sweep.J, sweep.lr_grad
