"""Full-batch gradient descent under a learning policy (paper Eq. 1).

θ_{t+1} = θ_t − η ∇ Σ_n γ_{t,n} l_n(θ_t),  t = 0, …, T−1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.errors import LearnlawError
from learnlaw.core.policy import validate_policy
from learnlaw.core.precision import check_tf32, matmul_precision
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import ParamSpec, Task

__all__ = ["Run", "train", "DivergenceError", "DIVERGENCE_FACTOR", "check_divergence"]

DIVERGENCE_FACTOR = 100.0
"""The default divergence criterion: a run has diverged at step t when a tracked mean loss
L(θ_t) (desired, and test when it is tracked) is not finite or exceeds ``DIVERGENCE_FACTOR``
times its initial value L(θ_0) (when L(θ_0) > 0). Pass ``divergence_factor=`` to
:func:`train`, :func:`~learnlaw.training.adjoint_sweep`,
:func:`~learnlaw.policy_gradient` or :func:`~learnlaw.optimize_policy`
to change it, or ``None`` to keep only the non-finite check. The book's runs stay far below it:
measured with the uniform policy, the paper's perceptron (T = 2000, η = 0.1, 1, 3) and the
Transformer at ``CPU_SCALE`` (T = 200, η = 0.5, 1, 1.5) never rise above their initial desired
or test loss (max L_t / L_0 = 1.0; the perceptron case is in tests/test_divergence.py), while a
finite blow-up (the small perceptron at η = 1e307, the MLP at η = 1e30) exceeds it by hundreds
of orders of magnitude."""


class DivergenceError(LearnlawError, FloatingPointError):
    """Training diverged: a loss that is not finite or exceeds the divergence criterion."""


def check_factor(factor: float | None) -> float | None:
    """The divergence factor: a finite number > 1, or ``None`` (no factor check)."""
    return checks.check_number(
        factor,
        "divergence_factor",
        minimum=1.0,
        strict=True,
        expected="a finite number > 1 or None (no factor check)",
        allow_none=True,
    )


def check_divergence(
    loss: float | Tensor,
    step: int,
    lr: float,
    initial: float | Tensor,
    factor: float | None = DIVERGENCE_FACTOR,
    what: str = "loss",
) -> None:
    """Raise :class:`DivergenceError` if ``loss`` at ``step`` meets the divergence criterion.

    The criterion (see :data:`DIVERGENCE_FACTOR`): ``loss`` is not finite, or ``factor`` is not
    ``None``, ``initial > 0`` and ``loss > factor · initial``. Training loops outside this
    module (e.g. online policies) call it once per step with the loss they track.

    Args:
        loss: the mean loss at ``step`` (a float or a 0-d tensor).
        step: t, named in the message.
        lr: the learning rate, named in the message.
        initial: the loss at step 0.
        factor: the factor, or ``None`` for the non-finite check only.
        what: the loss's name in the message (e.g. ``"desired loss"``).
    """
    checks.check_int(step, "step", minimum=0)
    checks.check_lr(lr)
    check_factor(factor)
    value, start = float(loss), float(initial)
    if not math.isfinite(value):
        reason = f"is {value}"
    elif factor is not None and start > 0 and value > factor * start:
        reason = f"is {value:.4g}, more than {factor:g} times its initial value {start:.4g}"
    else:
        return
    raise DivergenceError(
        f"training diverged: the {what} at step {step} {reason} with learning rate lr={lr:g}; "
        "lower the learning rate (or check the policy and the data), or change the criterion "
        f"with divergence_factor= (now {factor}; a factor > 1, or None to stop only on a "
        "non-finite loss)"
    )


@dataclass(frozen=True)
class Run:
    """The record of one training run of T steps.

    Attributes:
        desired_loss: ``(T+1,)`` mean desired loss L_dsr(θ_t) for t = 0…T, in nats.
        test_loss: ``(T+1,)`` mean test loss at θ_0…θ_T, in nats.
        lr: the learning rate η (a float), or the schedule η_t given to :func:`train` (a
            ``(T,)`` CPU tensor).
        vocab_size: |V| of the task (for the compression ratio).
        final_params: θ_T as a dict.
        trajectory: ``(T+1, P)`` flat θ_0…θ_T when ``keep_params=True``, else ``None``.
        spec: how a flat θ maps to the parameter dict.
    """

    desired_loss: Tensor
    test_loss: Tensor
    lr: float | Tensor
    vocab_size: int
    final_params: dict[str, Tensor]
    trajectory: Tensor | None
    spec: ParamSpec

    @property
    def steps(self) -> int:
        """T."""
        return len(self.desired_loss) - 1

    def params_at(self, t: int) -> dict[str, Tensor]:
        """θ_t as a dict (needs ``keep_params=True``)."""
        if self.trajectory is None:
            raise ArgumentValueError(
                "this run kept no parameters; call train(..., keep_params=True)"
            )
        return self.spec.unflatten(self.trajectory[t])

    def auc(self, split: str = "desired") -> float:
        """J = Σ_{t=1}^{T} L(θ_t) of ``split`` (see :func:`learnlaw.auc`)."""
        from learnlaw.core.metrics import auc

        return auc(self._curve(split))

    def compression_ratio(self, split: str = "test") -> float:
        """CR = T log₂|V| / Σ_{t=1}^T L(θ_t) (see :func:`learnlaw.compression_ratio`)."""
        from learnlaw.core.metrics import compression_ratio

        return compression_ratio(self._curve(split), self.vocab_size)

    def _curve(self, split: str) -> Tensor:
        if split not in ("desired", "test"):
            raise ArgumentValueError(f"split must be 'desired' or 'test', got {split!r}")
        return self.desired_loss if split == "desired" else self.test_loss


def prepare_policy(task: Task, policy: Tensor) -> Tensor:
    """Validate γ against the task and move it to the task's dtype and device.

    Inside a process group of R > 1 (:mod:`learnlaw.core.distributed`), ``policy`` is either
    the full ``(T, N)`` policy (the same on every rank) or this rank's ``(T, N_r)`` columns; the
    result is this rank's columns.
    """
    from learnlaw.core.distributed import check_local_policy, shard_of

    shard = shard_of(task)
    if shard is not None and isinstance(policy, Tensor) and policy.ndim == 2:
        if policy.shape[1] == shard.size() and shard.size() != task.n_train:
            policy = policy.to(dtype=task.dtype, device=task.device)
            return check_local_policy(policy, shard)
    validate_policy(policy, n=task.n_train)
    policy = policy.to(dtype=task.dtype, device=task.device)
    return policy if shard is None else policy[:, shard.slice()]


def _bad_mask(
    losses: Tensor, start: int, stop: int, initial: float, factor: float | None
) -> Tensor:
    """Which entries of ``losses[start:stop]`` meet the divergence criterion (no host sync)."""
    window = losses[start:stop]
    bad = ~torch.isfinite(window)
    if factor is not None and initial > 0:
        bad |= window > factor * initial
    return bad


def raise_if_diverged(
    losses: Tensor,
    start: int,
    stop: int,
    lr: float | Tensor,
    factor: float | None,
    what: str,
    initial: float | None = None,
) -> None:
    """Apply :func:`check_divergence` to ``losses[start:stop]`` (``losses[0]`` is L(θ_0)).

    ``lr`` is η or the whole ``(T,)`` schedule: the message names η_{t−1}, the step that made
    the diverged θ_t (read as a float on this error path only).

    One host synchronisation per call (the test of the window), two when ``initial`` (the float
    L(θ_0)) is not given.
    """
    initial = float(losses[0]) if initial is None else initial
    bad = _bad_mask(losses, start, stop, initial, factor)
    if bool(bad.any()):
        t = start + int(bad.nonzero()[0])
        check_divergence(losses[t], t, lr_of_step(lr, t - 1), initial, factor, what)


def lr_of_step(lr: float | Tensor, t: int) -> float:
    """η_t as a float (a host read of one entry of a schedule: for messages only)."""
    if isinstance(lr, Tensor):
        return float(lr[max(t, 0)])
    return lr


def prepare_lr(task: Task, lr, steps: int) -> float | Tensor:
    """η as a float, or a ``(T,)`` schedule η_t on the task's device and dtype.

    Raises the errors of :func:`learnlaw.core.checks.check_schedule` (wrong length, a step
    that is not positive and finite).
    """
    lr = checks.check_schedule(lr, steps)
    if isinstance(lr, Tensor):
        return lr.to(dtype=task.dtype, device=task.device)
    return lr


def forward_sweep(
    kernels,
    theta: Tensor,
    policy: Tensor,
    lr: float | Tensor,
    *,
    store_every: int | None,
    track_test: bool = True,
    bar=None,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run len(policy) GD steps from the flat θ₀ in blocks of ``kernels.block`` steps.

    ``lr`` is η (a float) or the schedule η_t, a ``(T,)`` tensor on θ's device.

    Returns ``(stored, desired, test, theta_T)``: ``stored`` holds θ_j for every j that is a
    multiple of ``store_every`` (all of them for 1, only θ₀ for ``None``), shape
    ``(T // store_every + 1, P)``; the loss curves have T+1 entries (test is nan when not
    tracked). Raises :class:`DivergenceError` (criterion: :data:`DIVERGENCE_FACTOR`).
    """
    steps = len(policy)
    opts = dict(dtype=theta.dtype, device=theta.device)
    every = store_every or steps + 1
    stored = torch.empty(steps // every + 1, theta.numel(), **opts)
    stored[0] = theta
    desired = torch.empty(steps + 1, **opts)
    test = torch.full((steps + 1,), float("nan"), **opts)
    desired[0] = kernels.split_losses(theta[None], "desired")[0]
    if track_test:
        test[0] = kernels.split_losses(theta[None], "test")[0]
    # L(θ_0) as floats once; then one host synchronisation per block of steps (the divergence
    # test of the block), none per step
    init_d = float(desired[0])
    init_t = float(test[0]) if track_test else math.nan
    with torch.no_grad():
        for s in range(0, steps, kernels.block):
            e = min(s + kernels.block, steps)
            seg_lr = lr[s:e] if isinstance(lr, Tensor) else lr
            thetas = kernels.forward_segment(theta, policy[s:e], seg_lr)  # θ_{s+1} … θ_e
            desired[s + 1 : e + 1] = kernels.split_losses(thetas, "desired")
            if track_test:
                test[s + 1 : e + 1] = kernels.split_losses(thetas, "test")
            bad = _bad_mask(desired, s + 1, e + 1, init_d, divergence_factor).any()
            if track_test:
                bad |= _bad_mask(test, s + 1, e + 1, init_t, divergence_factor).any()
            if bool(bad):  # the block's one host synchronisation
                factor = divergence_factor
                raise_if_diverged(desired, s + 1, e + 1, lr, factor, "desired loss", init_d)
                if track_test:
                    raise_if_diverged(test, s + 1, e + 1, lr, factor, "test loss", init_t)
            theta = thetas[-1]
            first = -(-(s + 1) // every) * every  # first multiple of `every` in s+1 … e
            for j in range(first, e + 1, every):
                stored[j // every] = thetas[j - s - 1]
            if bar is not None:
                bar.update(e - s)
    return stored, desired, test, theta


def train(
    task: Task,
    policy: Tensor,
    lr: float | Tensor,
    *,
    keep_params: bool = False,
    progress: bool = False,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
) -> Run:
    """Train ``task`` for T = ``len(policy)`` full-batch GD steps under ``policy``.

    θ_{t+1} = θ_t − η_t Σ_n γ_{t,n} ∇l_n(θ_t), with η_t = η for a float ``lr``, or the t-th entry
    of a ``(T,)`` schedule.

    Cost: T weighted full-batch gradients over N plus 2T mean losses over K examples.
    Memory: O(P), or O(T·P) with ``keep_params``.

    Inside a ``torch.distributed`` group of R > 1 processes every rank computes its shard of
    the examples and one all-reduce of P floats per step makes the gradient global
    (:mod:`learnlaw.core.distributed`); ``policy`` may then be the full ``(T, N)`` policy or
    this rank's ``(T, N_r)`` columns, and every rank returns the same :class:`Run`.

    Args:
        task: the task (model, loss, splits, θ₀).
        policy: γ of shape ``(T, N)``, each row on the simplex.
        lr: η, a positive float; or a schedule η_0…η_{T−1}: a 1-D tensor, list or array of T
            positive finite steps (e.g. :func:`learnlaw.policies.classic_schedule`), moved to the task's
            dtype and device.
        keep_params: also return the whole trajectory θ_0…θ_T (T·P floats).
        progress: show a tqdm bar.
        divergence_factor: the divergence criterion's factor (:data:`DIVERGENCE_FACTOR`);
            ``None`` keeps only the non-finite check.
        tf32: run float32 matmuls in TF32 on an NVIDIA Ampere+ GPU
            (:func:`~learnlaw.profile.matmul_precision`; faster, relative rounding
            2⁻¹¹ per matmul input instead of 2⁻²⁴). No effect on the CPU or in float64. The
            default ``False`` forces exact float32 for the call whatever the process-wide
            ``torch.backends`` flags say (they are restored afterwards).

    Returns:
        A :class:`Run` with the desired and test loss curves of length T+1, on the task's
        device (as are ``final_params`` and ``trajectory``).

    Raises:
        DivergenceError: naming the first step whose loss is not finite or exceeds
            ``divergence_factor`` times its initial value, and the learning rate.
    """
    checks.check_bool(keep_params, "keep_params")
    checks.check_bool(progress, "progress")
    divergence_factor = check_factor(divergence_factor)
    tf32 = check_tf32(tf32)
    policy = prepare_policy(task, policy)
    lr = prepare_lr(task, lr, len(policy))
    kernels = kernels_for(task)
    spec = task.spec
    theta = spec.flatten(task.params0).detach()
    with (
        matmul_precision(tf32),
        progress_bar(progress, total=len(policy), desc="train", leave=False) as bar,
    ):
        stored, desired, test, theta = forward_sweep(
            kernels,
            theta,
            policy,
            lr,
            store_every=1 if keep_params else None,
            bar=bar,
            divergence_factor=divergence_factor,
        )
    return Run(
        desired_loss=desired,
        test_loss=test,
        lr=lr.detach().cpu() if isinstance(lr, Tensor) else lr,
        vocab_size=task.vocab_size,
        final_params={k: v.clone() for k, v in spec.unflatten(theta).items()},
        trajectory=stored if keep_params else None,
        spec=spec,
    )
