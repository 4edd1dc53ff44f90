"""Near-optimal learning policies by projected ("proximal") gradient descent on γ (paper Eq. 6).

    γ_t ← Proj_Δ[γ_t − ε_e ∂J/∂γ_t],   t = t_u, …, T−1,

starting from the uniform policy, where ∂J/∂γ comes from the adjoint sweep
(:func:`learnlaw.training.adjoint_sweep`) and Proj_Δ is the Euclidean projection onto the simplex
(:func:`learnlaw.project_simplex`). ε_e is constant or decays linearly to 0 over the
epochs; the first ``uniform_steps`` rows (t < t_u) can be left uniform.

``outer_step="normalized"`` divides ∂J/∂γ (its updated rows, with a penalty's gradient added)
by its root mean square over all those entries before the step (:func:`~learnlaw.core.engine.rms_normalize`): the
step is then invariant to any positive rescaling of the gradient — the factor η in
∂J/∂γ_{t,n} = −η ∇l_n(θ_t)·a_{t+1} and the adjoint's growth at large η alike — and ε is a
step per entry in units of γ (entries ≈ 1/N: ε ≈ 0.1/N is a tenth of the uniform weight).
:mod:`learnlaw.policies.parametric_fit` gives the argument and the rejected alternative
(dividing by η). ``"plain"`` (the default) is the paper's step.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.distributed import (
    gather_columns,
    local_columns,
    project_simplex_sharded,
    shard_of,
)
from learnlaw.core.engine import Family, _run, check_loop_args
from learnlaw.core.policy import validate_policy
from learnlaw.core.precision import check_tf32
from learnlaw.core.task import Task
from learnlaw.core.training import DIVERGENCE_FACTOR, Run, check_factor

__all__ = ["optimize_policy", "SearchResult", "SearchConfig"]


@dataclass(frozen=True)
class SearchConfig:
    """Everything that determines a search; a resumed search must match it exactly."""

    task: str
    n_train: int
    n_params: int
    steps: int
    lr: float
    outer_lr: float
    epochs: int
    schedule: str
    uniform_steps: int
    checkpoint_every: int | str | None
    penalty: str | None = None
    outer_step: str = "plain"


@dataclass
class SearchResult:
    """The outcome of :func:`optimize_policy`.

    Where things are: ``policy``, ``baseline`` and ``final`` are on the task's device (the
    policy the search ends with, and two runs whose curves are T+1 floats); every ``kept``
    policy is on the CPU (at the paper's Transformer scale one (T, N) float32 policy is
    262 MB, so 16 kept ones would hold 4.2 GB of GPU memory); ``history`` holds Python floats.

    Attributes:
        policy: the final γ, ``(T, N)``, on the task's device.
        history: one dict per evaluated policy, epochs 0…E (entry E is the final policy):
            ``epoch``, ``J`` (desired AUC Σ_{t≥1} L_dsr), ``test_auc``, ``cr_test``,
            ``ar_test`` (empirical acceleration on the test set against the uniform policy),
            ``zero_fraction`` (share of γ_{t,n} = 0), ``outer_lr`` (the step used after it);
            all Python floats (and ints).
        kept: policies kept along the way, ``{epoch: (T, N) CPU tensor}``.
        baseline: the run of the uniform policy (on the task's device).
        final: the run of the final policy (on the task's device).
        config: the search's settings.
    """

    policy: Tensor
    history: list[dict]
    kept: dict[int, Tensor]
    baseline: Run
    final: Run
    config: SearchConfig

    def column(self, name: str) -> list[float]:
        """One history field over the epochs, e.g. ``result.column("J")``."""
        return [h[name] for h in self.history]


_BEST = (
    "fit_block_policy(task, steps, lr, blocks=steps, ...) runs the same search and returns "
    "its best finite epoch instead"
)


def _step_size(outer_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    if schedule == "constant":
        return outer_lr
    return outer_lr * (1 - epoch / epochs)  # "linear": decays to 0 at the last epoch


def optimize_policy(
    task: Task,
    steps: int,
    lr: float,
    outer_lr: float,
    epochs: int,
    *,
    schedule: str = "constant",
    uniform_steps: int = 0,
    keep: tuple[int, ...] | list[int] = (),
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    initial_policy: Tensor | None = None,
    penalty: Callable[[Tensor], tuple[float, Tensor]] | None = None,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    tf32: bool = False,
    outer_step: str = "plain",
) -> SearchResult:
    """Search a near-optimal policy by projected gradient descent on J(γ) = Σ_{t=1}^T L_dsr(θ_t).

    Each epoch costs one :func:`~learnlaw.training.adjoint_sweep` (about 2–3 training runs) plus
    one projection of the (T, N) policy; memory is that of the sweep plus two (T, N) tensors.
    The epochs run on :func:`learnlaw.fit.fit_loop` (the loop of every fit) with the family
    ``"full"`` (φ = γ itself), ``select="last"`` and ``on_divergence="raise"``.

    Args:
        task: the task; J uses its desired split, every reported metric its test split.
        steps: T.
        lr: η of the inner gradient descent.
        outer_lr: ε, the policy step size (on J as a sum over t, in nats).
        epochs: the number of policy updates E.
        schedule: ``"constant"`` or ``"linear"`` (ε_e = ε (1 − e/E)).
        uniform_steps: leave the first rows γ_0…γ_{t_u−1} uniform (never updated).
        keep: epochs whose policy (before that epoch's update; E for the final one) is kept,
            as a CPU copy (T·N floats of host memory each, one device-to-host copy).
        checkpoint_every: θ checkpointing of the sweep (see :func:`adjoint_sweep`).
        checkpoint_dir: if given, the state is saved there atomically after every epoch
            (``state.pt``) and each kept policy once (``policy_<epoch>.pt``).
        resume: continue from ``checkpoint_dir/state.pt`` if it exists; the result equals that
            of an uninterrupted search.
        initial_policy: start here instead of the uniform policy.
        penalty: a regulariser R(γ) minimised together with J: ``penalty(policy)`` returns
            ``(R, ∂R/∂γ)``; the step then uses ∂J/∂γ + ∂R/∂γ and the history records ``R``.
        progress: a tqdm bar over epochs showing the current J.
        callback: called with each new history entry as soon as it is recorded, before that
            epoch's update (the entry of epoch E, the final policy, comes last); an exception
            it raises stops the search, which ``resume=True`` then continues from the start of
            that epoch.
        divergence_factor: the divergence criterion of every training run and sweep (see
            :data:`learnlaw.training.DIVERGENCE_FACTOR`; ``None``: non-finite only).
        tf32: run every training run and sweep with TF32 float32 matmuls on an NVIDIA Ampere+
            GPU (:func:`~learnlaw.profile.matmul_precision`): faster, relative rounding
            2⁻¹¹ per matmul input; no effect on the CPU or in float64. It is not part of the
            saved search configuration: a search may be resumed with the other setting.
        outer_step: ``"plain"`` (γ_t ← Proj_Δ[γ_t − ε_e ∂J/∂γ_t], the paper's step) or
            ``"normalized"`` (the gradient divided by its root mean square over the updated
            rows first: invariant to its scale, ε a step per entry in units of γ; module note).
            Part of the saved configuration (states saved before it existed read as
            ``"plain"``). A diverging epoch still raises here (:class:`DivergenceError`, a
            sweep's or a non-finite ∂J/∂γ's, naming the epoch and lr); for the best-finite-epoch
            rule use :func:`~learnlaw.fit.fit_block_policy` with Q = T, the
            same search (keeping the best policy here would hold a second (T, N) copy and save
            it in every checkpoint, for resume to return the same result).

    Inside a ``torch.distributed`` group of R > 1 processes (:mod:`learnlaw.core.distributed`)
    every rank holds and updates only its ``(T, N_r)`` columns of γ: the sweep reduces
    P floats per step, the projection 2T floats per round of its threshold iteration
    (:func:`~learnlaw.core.distributed.project_simplex_sharded`), and the checkpoints are
    per rank (:mod:`learnlaw.core.checkpoint`; resuming needs the same R). The full policy is
    assembled once, at the end (one all-gather); so are kept policies. Every rank returns the
    same :class:`SearchResult`. ``penalty`` is not supported there.
    """
    steps, lr = check_loop_args(
        task, steps, lr, epochs, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
        resume=resume, progress=progress, outer_step=outer_step, tf32=tf32, schedule=schedule,
        policy_hint=True,
    )  # fmt: skip
    checks.check_lr(outer_lr, "outer_lr")
    checks.check_int(uniform_steps, "uniform_steps", minimum=0, maximum=steps)
    divergence_factor = check_factor(divergence_factor)
    tf32 = check_tf32(tf32)
    shard = shard_of(task)
    if shard is not None and penalty is not None:
        raise ArgumentValueError(
            "penalty= is not supported inside a torch.distributed group (a penalty sees the "
            "whole policy); run the penalised search in one process"
        )
    config = SearchConfig(
        task.name,
        task.n_train,
        task.n_params,
        steps,
        lr,
        float(outer_lr),
        epochs,
        schedule,
        uniform_steps,
        checkpoint_every,
        None if penalty is None else getattr(penalty, "__name__", type(penalty).__name__),
        outer_step,
    )
    opts = dict(dtype=task.dtype, device=task.device)
    if initial_policy is not None:
        policy = validate_policy(initial_policy, steps=steps, n=task.n_train).to(**opts)
        policy = local_columns(policy, shard).clone()
    else:
        n_local = task.n_train if shard is None else shard.size()
        policy = torch.full((steps, n_local), 1.0 / task.n_train, **opts)
    penalty_grad: list[Tensor] = []  # ∂R/∂γ of the current epoch, for the pullback

    def annotate(entry: dict, epoch: int, params: dict) -> None:
        entry["outer_lr"] = (
            _step_size(outer_lr, schedule, epoch, epochs) if epoch < epochs else math.nan
        )
        if penalty is not None and epoch < epochs:
            value, pgrad = penalty(params["policy"])
            entry["penalty"] = float(value)
            penalty_grad[:] = [pgrad]

    def pullback(params: dict, sweep) -> dict:
        grad = sweep.grad + penalty_grad[0] if penalty is not None else sweep.grad
        return {"policy": grad[uniform_steps:]}

    def update(params: dict, grads: dict, epoch: int) -> dict:
        eps = _step_size(outer_lr, schedule, epoch, epochs)
        p = params["policy"]
        p[uniform_steps:] = project_simplex_sharded(
            p[uniform_steps:] - eps * grads["policy"], shard
        )
        return params

    family = Family(
        "full", {"policy": policy}, lambda params: params["policy"], pullback, update,
        annotate=annotate, frozen_rows=uniform_steps, on_simplex=True, desc="policy search",
    )  # fmt: skip
    out = _run(
        task, steps, lr, family, epochs=epochs, checkpoint_every=checkpoint_every,
        checkpoint_dir=checkpoint_dir, resume=resume, config=asdict(config),
        config_defaults={"outer_step": "plain"}, progress=progress, callback=callback,
        tf32=tf32, outer_step=outer_step, select="last", on_divergence="raise",
        divergence_hint=f" ({_BEST})", divergence_factor=divergence_factor, keep=set(keep),
        shard=shard, timed=False, noun="search",
    )  # fmt: skip
    return SearchResult(
        policy=gather_columns(out.params["policy"], shard),
        history=out.history,
        kept=out.kept,
        baseline=out.baseline,
        final=out.run,
        config=config,
    )
