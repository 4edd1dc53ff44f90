"""Controls that separate what a policy does from how far it steps, and a control for SIM.

A policy row γ_t changes two things about the step θ_{t+1} = θ_t − η Σ_n γ_{t,n} ∇l_n(θ_t): its
DIRECTION and its LENGTH. Against the uniform row u (u_n = 1/N), write at the current θ_t

    d_rule = Σ_n γ_{t,n} ∇l_n(θ_t),        d_uni = Σ_n u_n ∇l_n(θ_t),        both (P,).

The two norm-matched controls take the step θ_{t+1} = θ_t − η s_t with

* ``"direction"``: s_t = d_rule · ‖d_uni‖/‖d_rule‖ — the policy's direction at the uniform
  step's length (what the policy gains by *where* it points);
* ``"length"``:    s_t = d_uni · ‖d_rule‖/‖d_uni‖ — the uniform direction at the policy's step
  length (what it gains by *how far* it steps: a per-step learning-rate schedule).

Both are computed at the controlled run's own θ_t at every step. If a policy's speed-up is a
step-size effect, the ``"length"`` run keeps it and the ``"direction"`` run loses it.

Degenerate steps: when the norm that is divided by is 0 (‖d_rule‖ = 0 for ``"direction"``,
‖d_uni‖ = 0 for ``"length"``) the direction is undefined and the step is **zero** (θ stays; the
scale is recorded as 0). When the norm that is multiplied by is 0 the step is zero anyway (a
zero length). So s_t = 0 whenever either norm is 0; nothing falls back to another direction.

:func:`replay_policy` replays a FITTED policy (a ``(T, N)`` γ from a search) under a control;
:func:`learnlaw.online_policy` takes the same ``control=`` for its online rules (the rows are
then chosen by the rule at the controlled θ_t). :func:`random_sparse_policy` is the control for
SIM (:func:`learnlaw.sim`): a policy with the same number of non-zero weights per row, placed
on random examples, so that the SIM of a policy can be compared with that of sparsity alone.

Cost of a controlled step: both d_rule and d_uni. For the perceptron (closed-form kernels) they
share the residuals σ(Xθ) − y: one more matrix-vector product with Xᵀ than a plain step. For
autodiff kernels they are two weighted gradients (two backward passes; one more than a plain
step). The norms and the scale are reduced on the device and branch-free
(``torch.where``): no host sync per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import UnsupportedError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.distributed import shard_of
from learnlaw.core.policy import validate_policy
from learnlaw.core.precision import check_tf32, matmul_precision
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import Task
from learnlaw.core.training import (
    DIVERGENCE_FACTOR,
    Run,
    check_factor,
    forward_sweep,
    prepare_policy,
    train,
)

__all__ = ["CONTROLS", "ReplayResult", "replay_policy", "random_sparse_policy"]

CONTROLS = ("direction", "length")
"""The norm-matched controls (``control=None``: the policy's own step)."""


def check_control(control) -> str | None:
    """``control`` if it is ``None`` or one of :data:`CONTROLS`."""
    if control is None:
        return None
    if not isinstance(control, str):
        raise checks.ArgumentTypeError(
            f"control must be None or one of {CONTROLS}, got {checks.describe(control)}"
        )
    if control not in CONTROLS:
        raise checks.ArgumentValueError(
            f"unknown control {control!r}; expected None (the policy's own step) or one of "
            f"{CONTROLS}"
        )
    return control


def step_pair(kernels, theta: Tensor, gamma: Tensor, uniform: Tensor, resid=None) -> Tensor:
    """[d_rule, d_uni] = [Σ γ_n ∇l_n(θ), Σ u_n ∇l_n(θ)] as the columns of a ``(P, 2)`` tensor.

    Args:
        kernels: the task's step kernels.
        theta: θ, ``(P,)``.
        gamma: the policy row γ, ``(N,)``.
        uniform: the uniform row u, ``(N,)``.
        resid: for factored kernels (the perceptron's), r = σ(Xθ) − y if already computed
            (not modified).
    """
    if kernels.factored:  # ∇l_n = r_n x_n: one residual for both
        if resid is None:
            resid = kernels.residual(theta)
        xt = kernels.xt  # two products (P, N)·(N,): 7× faster on a CPU than one with (N, 2)
        return torch.stack((torch.mv(xt, resid * gamma), torch.mv(xt, resid * uniform)), 1)
    return torch.stack((kernels.train_grad(theta, gamma), kernels.train_grad(theta, uniform)), 1)


def controlled_step(pair: Tensor, control: str) -> tuple[Tensor, Tensor, Tensor]:
    """The controlled step s from ``pair = [d_rule, d_uni]`` (see the module docstring).

    Returns:
        ``(s, norms, scale)``: s ``(P,)``; norms = [‖d_rule‖, ‖d_uni‖] ``(2,)``; the scale
        applied to the kept direction, ``()`` (0 when the step is degenerate). No host sync.
    """
    norms = torch.linalg.vector_norm(pair, dim=0)
    keep, other = (0, 1) if control == "direction" else (1, 0)
    den = norms[keep]
    ok = den > 0
    scale = torch.where(ok, norms[other] / torch.where(ok, den, 1.0), 0.0)
    return pair[:, keep] * scale, norms, scale


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay_policy` returns.

    Attributes:
        run: the controlled run (``train(task, policy, lr)`` for ``control=None``).
        control: ``None``, ``"direction"`` or ``"length"``.
        step_norms: ``(T, 2)`` [‖d_rule‖, ‖d_uni‖] at the run's θ_t (``None`` without control).
        step_scale: ``(T,)`` the factor applied to the kept direction: ‖d_uni‖/‖d_rule‖ for
            ``"direction"``, ‖d_rule‖/‖d_uni‖ for ``"length"``, 0 for a degenerate step.
    """

    run: Run
    control: str | None
    step_norms: Tensor | None = None
    step_scale: Tensor | None = None


class _Controlled:
    """Kernels whose forward segment takes controlled steps (for :func:`forward_sweep`)."""

    def __init__(self, kernels, control: str, uniform: Tensor, steps: int):
        self.kernels, self.control, self.uniform = kernels, control, uniform
        self.block = kernels.block
        self.norms = uniform.new_empty(steps, 2)
        self.scale = uniform.new_empty(steps)
        self.t = 0

    def forward_segment(self, theta: Tensor, gammas: Tensor, lr: float) -> Tensor:
        out = theta.new_empty(len(gammas), theta.numel())
        for i in range(len(gammas)):
            pair = step_pair(self.kernels, theta, gammas[i], self.uniform)
            s, self.norms[self.t], self.scale[self.t] = controlled_step(pair, self.control)
            theta = theta - lr * s
            out[i] = theta
            self.t += 1
        return out

    def split_losses(self, thetas: Tensor, split: str) -> Tensor:
        return self.kernels.split_losses(thetas, split)


def replay_policy(
    task: Task,
    policy: Tensor,
    lr: float,
    control: str | None = None,
    *,
    keep_params: bool = False,
    progress: bool = False,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
) -> ReplayResult:
    """Train ``task`` with the rows of a fitted ``policy`` under a norm-matched control.

    At every step t the row γ_t of ``policy`` gives d_rule = Σ_n γ_{t,n} ∇l_n(θ_t) at the run's
    own θ_t, and the step is θ_{t+1} = θ_t − η s_t with s_t of ``control`` (module docstring).
    ``control=None`` is :func:`learnlaw.train` itself. A controlled run under the rows of
    ``online_policy(..., control=c).policy`` reproduces that online run.

    Cost: T steps of two weighted gradients each (for the perceptron, two matrix-vector
    products sharing σ(Xθ) − y) plus the loss curves, as :func:`learnlaw.train`; one host sync per block of
    steps (the divergence test), none per step. Memory: O(P), or T·P with ``keep_params``.

    Args:
        task: the task (one process: inside a ``torch.distributed`` group only
            ``control=None`` runs).
        policy: γ, ``(T, N)``, rows on the simplex.
        lr: η.
        control: ``None``, ``"direction"`` or ``"length"`` (:data:`CONTROLS`).
        keep_params, progress, divergence_factor, tf32: as for :func:`learnlaw.train`.

    Returns:
        A :class:`ReplayResult` (the run and, under a control, the per-step norms and scale).

    Raises:
        ValueError: an unknown control (the message lists the valid ones), a policy that is
            not ``(T, N)`` simplex rows.
        DivergenceError: as :func:`learnlaw.train`.
    """
    lr = checks.check_lr(lr)
    control = check_control(control)
    checks.check_bool(keep_params, "keep_params")
    checks.check_bool(progress, "progress")
    factor = check_factor(divergence_factor)
    tf32 = check_tf32(tf32)
    if control is None:
        run = train(
            task,
            policy,
            lr,
            keep_params=keep_params,
            progress=progress,
            divergence_factor=factor,
            tf32=tf32,
        )
        return ReplayResult(run, None)
    if shard_of(task) is not None:
        raise UnsupportedError(
            "replay_policy with a control runs in one process; inside a torch.distributed "
            "group call it on rank 0 only (or outside the group)"
        )
    policy = prepare_policy(task, policy)
    spec = task.spec
    theta = spec.flatten(task.params0).detach()
    n = task.n_train
    ops = _Controlled(kernels_for(task), control, theta.new_full((n,), 1.0 / n), len(policy))
    with (
        matmul_precision(tf32),
        progress_bar(progress, total=len(policy), desc=f"replay {control}") as bar,
    ):
        stored, desired, test, theta = forward_sweep(
            ops,
            theta,
            policy,
            lr,
            store_every=1 if keep_params else None,
            bar=bar,
            divergence_factor=factor,
        )
    run = Run(
        desired_loss=desired,
        test_loss=test,
        lr=lr,
        vocab_size=task.vocab_size,
        final_params={k: v.clone() for k, v in spec.unflatten(theta).items()},
        trajectory=stored if keep_params else None,
        spec=spec,
    )
    return ReplayResult(run, control, ops.norms, ops.scale)


def random_sparse_policy(policy: Tensor, seed: int) -> Tensor:
    """A policy with the same number of non-zero weights per row as ``policy``, on random examples.

    Row t keeps k_t = #{n : γ_{t,n} ≠ 0} non-zeros, placed on a uniformly random k_t-subset of
    the N examples (drawn independently per row, without replacement) and weighted 1/k_t each,
    so every row is on the simplex. The control for SIM (:func:`learnlaw.sim`): whether any
    sparsification of the same size, not the policy's choice of examples, raises SIM.

    Args:
        policy: γ, ``(T, N)``, rows on the simplex.
        seed: the seed of the ``torch.Generator`` (on the CPU) that draws the subsets.

    Returns:
        ``(T, N)`` on ``policy``'s dtype and device; the same ``seed`` gives the same policy.
    """
    checks.check_int(seed, "seed", minimum=0)
    validate_policy(policy)
    k = (policy != 0).sum(1).cpu()  # (T,): one host read for the whole policy
    steps, n = policy.shape
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(steps, n, generator=gen).argsort(1)  # a random permutation per row
    first_k = torch.arange(n)[None, :] < k[:, None]  # (T, N): positions 0 … k_t − 1
    mask = torch.zeros(steps, n, dtype=torch.bool).scatter_(1, order, first_k)
    out = mask.to(torch.float64) / k[:, None].to(torch.float64)
    return out.to(dtype=policy.dtype, device=policy.device)
