r"""Learning the step-size schedule η_t by the exact adjoint — alone, or with the weights γ.

Training is θ_{t+1} = θ_t − η_t Σ_n γ_{t,n} ∇l_n(θ_t) and J = Σ_{t=1}^T L_dsr(θ_t). One
:func:`~learnlaw.training.adjoint_sweep` gives both ∂J/∂γ ``(T, N)`` and
∂J/∂η_t = −Σ_n γ_{t,n} ∇l_n(θ_t)·a_{t+1} = (γ_t·∂J/∂γ_t)/η_t ``(T,)``.

**The schedule's parameters.** η_t = exp(ρ_{c(t)}): positive by construction, with one log-step
ρ_c per block of consecutive steps, c(t) = ⌊t·C/T⌋ (:func:`~learnlaw.policies.parametric.
block_index`; C = T: one per step). Its pullback (:func:`schedule_pullback`) is

    ∂J/∂ρ_c = Σ_{t∈c} η_t ∂J/∂η_t = Σ_{t∈c} γ_t·∂J/∂γ_t,

the block sums of the Learning Law's multipliers λ_t = γ_t·∂J/∂γ_t (:func:`~learnlaw.analysis.
theory.kkt_report`): an interior optimum of the schedule has Σ_{t∈c} λ_t = 0
(:mod:`learnlaw.analysis.schedule_theory`).

**The update** is normalized gradient descent on ρ, ρ ← ρ − ε_η ĝ with ĝ = g/√(mean g²)
(:func:`~learnlaw.core.engine.rms_normalize`): ε_η is the root-mean-square change of log η
per block per epoch (0.1: about 10 % per epoch), whatever the scale of ∂J/∂ρ — which carries the
adjoint's growth Π|1 − η_t λ_max| and so spans orders of magnitude along a schedule search
(the case for ``outer_step="normalized"`` in :mod:`learnlaw.policies.parametric_fit`). Log
steps make ε_η scale-free in η itself (a schedule from 0.01 to 10 moves by the same factors);
stateless, it resumes trivially and does not carry momentum into the divergence boundary of
too large steps, where Adam's averaged moments would keep pushing η up for several epochs.

**Joint fits** (:func:`fit_joint`) learn the weights from the same sweep: block rows on the
simplex (``"block"``; ``"full"`` is Q = T, the full T×N search) updated by
Proj_Δ(φ − ε ĝ_φ), or a feature scorer γ_t = link(F φ_{b(t)}) updated by Adam (default) or GD
on ĝ_φ — both pullbacks those of :mod:`learnlaw.policies.parametric` — and each parameter block
normalized by its own RMS. The epoch loop is :func:`~learnlaw.core.engine.fit_loop`
(validation choice of the returned epoch, patience, the best-finite-epoch rule on divergence),
here with θ-free checkpoints: with ``checkpoint_dir`` the state is saved at the start of every
epoch and ``resume=True`` continues bit-identically, also to more epochs than first asked (the
outer steps do not depend on E).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.adjoint import Sweep
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.engine import Family, _run, check_loop_args
from learnlaw.core.policy import project_simplex, uniform_policy, validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import Run
from learnlaw.policies.parametric import (
    _check_link,
    block_index,
    block_policy,
    block_pullback,
    feature_policy,
    feature_pullback,
)
from learnlaw.policies.parametric_fit import adam_step, feature_setup

__all__ = [
    "FAMILIES",
    "LR_NORMS",
    "ScheduleResult",
    "block_schedule",
    "schedule_pullback",
    "fit_schedule",
    "fit_joint",
]

FAMILIES = ("block", "full", "feature")
LR_NORMS = ("rms", "max", "sign")


@dataclass
class ScheduleResult:
    """The outcome of :func:`fit_schedule` or :func:`fit_joint`.

    Attributes:
        lr: the chosen schedule η_t, ``(T,)`` CPU tensor (the task's dtype).
        rho: its log-steps ρ, ``(C,)`` CPU tensor.
        policy: ``None`` (uniform weights, :func:`fit_schedule`) or the chosen ``(T, N)`` policy
            on the task's device (:func:`fit_joint`).
        phi: ``None`` or the chosen weight parameters (``(Q, N)`` rows or ``(Q, D)`` scores).
        history: one dict per evaluated epoch 0, 1, …: ``epoch``, ``J`` (on the fitted desired
            part), ``seconds``, ``zero_fraction``; ``val_auc``, ``ar_val`` with validation;
            ``test_auc``, ``cr_test``, ``ar_test`` when the test curve is tracked (AR against
            the uniform learner at the constant ``lr``).
        best_epoch: the returned epoch (lowest validation AUC; lowest J without validation).
        stopped: ``None``, or why a divergence stopped the fit (the best finite epoch is kept).
        run: ``train`` of the task as given with the chosen policy and schedule.
        baseline: the uniform learner at the constant ``lr`` on the task as given.
        seconds: wall time of the fit.
        family: ``"schedule"`` or ``"schedule+<family>"``.
    """

    lr: Tensor
    rho: Tensor
    policy: Tensor | None
    phi: Tensor | None
    history: list[dict]
    best_epoch: int
    stopped: str | None
    run: Run
    baseline: Run
    seconds: float
    family: str

    def column(self, name: str) -> list[float]:
        """One history field over the epochs, e.g. ``result.column("val_auc")``."""
        return [h.get(name, math.nan) for h in self.history]


def block_schedule(rho: Tensor, steps: int) -> Tensor:
    """η_t = exp(ρ_{c(t)}), ``(C,) → (T,)``, c(t) = ⌊t·C/T⌋ (every step > 0 unless exp
    underflows)."""
    checks.check_steps(steps)
    if not (isinstance(rho, Tensor) and rho.ndim == 1 and rho.dtype.is_floating_point):
        raise ArgumentValueError(
            f"rho must be a floating-point (C,) tensor of log step sizes, got "
            f"{getattr(rho, 'shape', type(rho).__name__)}"
        )
    return rho.exp()[block_index(steps, len(rho), rho.device)]


def schedule_pullback(lr_grad: Tensor, lr: Tensor, blocks: int) -> Tensor:
    """∂J/∂ρ_c = Σ_{t∈c} η_t ∂J/∂η_t: ``(T,)`` ∂J/∂η and η → ``(C,)`` with C = ``blocks``."""
    idx = block_index(len(lr_grad), blocks, lr_grad.device)
    return lr_grad.new_zeros(blocks).index_add_(0, idx, lr.to(lr_grad) * lr_grad)


def _initial_rho(lr: float, initial, steps: int, blocks: int, opts: dict) -> Tensor:
    """ρ⁰: log(lr) per block, or the log of a given (C,) schedule, or the per-block mean of
    log η_t (the geometric mean) of a given (T,) one."""
    if initial is None:
        return torch.full((blocks,), math.log(lr), **opts)
    size = len(initial) if hasattr(initial, "__len__") else None
    if size not in (steps, blocks):
        raise ArgumentValueError(
            f"initial must be a (T,) schedule with T = {steps} steps or (C,) with C = {blocks} "
            f"blocks of positive step sizes, got {checks.describe(initial)}"
        )
    log = checks.check_schedule(initial, size, "initial").log()
    if size == blocks:
        return log.to(**opts)
    idx = block_index(steps, blocks)
    sums = torch.zeros(blocks, dtype=log.dtype).index_add_(0, idx, log)
    return (sums / torch.bincount(idx, minlength=blocks).to(log)).to(**opts)


def _check_fit_args(
    task, steps, lr, epochs, lr_blocks, blocks_name, validation_seed, patience, track_test,
    checkpoint_every, checkpoint_dir, resume, progress, tf32,
) -> tuple[float, int]:  # fmt: skip
    steps, lr = check_loop_args(
        task, steps, lr, epochs, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
        resume=resume, progress=progress, tf32=tf32,
    )  # fmt: skip
    lr_blocks = checks.check_int(
        lr_blocks, blocks_name, minimum=1, maximum=steps, allow_none=True,
        hint="one log step per block of consecutive steps; None: one per step",
    )  # fmt: skip
    return lr, steps if lr_blocks is None else lr_blocks


def _check_lr_norm(lr_norm) -> None:
    if lr_norm not in LR_NORMS:
        raise ArgumentValueError(
            f"lr_norm must be one of {LR_NORMS} (how ∂J/∂ρ is normalised: by its RMS, by its "
            f"largest entry, or to its sign), got {lr_norm!r}"
        )


def _validation_key(validation):
    if isinstance(validation, tuple) and len(validation) == 2:
        return ("pair", len(validation[0]))
    return validation


def _fit_schedule_and(
    task: Task,
    steps: int,
    lr: float,
    epochs: int,
    rho: Tensor,
    lr_outer_lr: float,
    lr_norm: str,
    family: str,
    weights: dict[str, Tensor],
    to_policy: Callable[[dict[str, Tensor]], Tensor],
    pullback: Callable[[dict[str, Tensor], Sweep], dict[str, Tensor]],
    update: Callable[[dict[str, Tensor], dict[str, Tensor], int], dict[str, Tensor]],
    config: dict,
    *,
    validation,
    validation_seed: int,
    checkpoint_dir,
    **loop,
) -> ScheduleResult:
    """The schedule block ρ added to the weight blocks, then the shared epoch loop."""
    lr_blocks = len(rho)

    def pull(p: dict, sweep: Sweep) -> dict:
        eta = block_schedule(p["rho"], steps)
        return {**pullback(p, sweep), "rho": schedule_pullback(sweep.lr_grad, eta, lr_blocks)}

    def step(p: dict, g: dict, epoch: int) -> dict:
        d = g["rho"]  # already divided by its RMS
        if lr_norm == "max":  # no log step moves by more than ε_η
            d = d / d.abs().max().clamp_min(torch.finfo(d.dtype).tiny)
        elif lr_norm == "sign":  # every log step moves by ε_η (or 0 where ∂J/∂ρ_c = 0)
            d = d.sign()
        return {**update(p, g, epoch), "rho": p["rho"] - lr_outer_lr * d}

    config = dict(
        config, fit=family, task=task.name, n_train=task.n_train, n_params=task.n_params,
        steps=steps, lr=lr, lr_blocks=lr_blocks, lr_outer_lr=lr_outer_lr, lr_norm=lr_norm,
        validation=_validation_key(validation), validation_seed=validation_seed,
        track_test=loop["track_test"], checkpoint_every=loop["checkpoint_every"],
    )  # fmt: skip
    fam = Family(
        family, {**weights, "rho": rho}, to_policy, pull, step,
        to_lr=lambda p: block_schedule(p["rho"], steps), opt_state=loop.pop("opt_state", {}),
    )  # fmt: skip
    out = _run(
        task, steps, lr, fam, epochs=epochs, validation=validation,
        validation_seed=validation_seed, outer_step="normalized", checkpoint_dir=checkpoint_dir,
        config=config, **loop,
    )  # fmt: skip
    rho = out.params["rho"]
    phi = out.params.get("phi")
    return ScheduleResult(
        lr=block_schedule(rho, steps).cpu(),
        rho=rho.cpu(),
        policy=None if phi is None else to_policy(out.params),
        phi=phi,
        history=out.history,
        best_epoch=out.best_epoch,
        stopped=out.stopped,
        run=out.run,
        baseline=out.baseline,
        seconds=out.seconds,
        family=family,
    )


def fit_schedule(
    task: Task,
    steps: int,
    lr: float,
    epochs: int,
    *,
    blocks: int | None = None,
    outer_lr: float = 0.1,
    lr_norm: str = "rms",
    initial: Tensor | None = None,
    validation: int | tuple[Tensor, Tensor] | None = None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callable[[dict], None] | None = None,
    progress: bool = True,
    tf32: bool = False,
) -> ScheduleResult:
    """Learn the step sizes η_t = exp(ρ_{c(t)}) of the uniform learner by the exact ∂J/∂η.

    Each epoch: one adjoint sweep at (uniform γ, η), ∂J/∂ρ_c = Σ_{t∈c} η_t ∂J/∂η_t, then
    ρ ← ρ − ε ĝ with ĝ = ∂J/∂ρ / RMS(∂J/∂ρ) (see the module note). Cost per epoch: one sweep
    (≈ 2–3 training runs), plus one run for the test curve with a validation part.

    Args:
        task: the task; J uses its desired split (minus the validation part).
        steps: T.
        lr: η of the start (ρ⁰ = log lr) and of the uniform baseline, > 0.
        epochs: the number of updates E.
        blocks: C, the number of log-steps ρ_c shared over blocks of consecutive steps,
            1 ≤ C ≤ T (``None``: C = T, one per step; 1: the best constant η).
        outer_lr: ε, the RMS change of log η per block per epoch (0.1 ≈ 10 %).
        lr_norm: how ∂J/∂ρ is normalised: ``"rms"`` (ĝ = g/RMS(g), the default) or ``"max"``
            (ĝ = g/max|g|: no block's log-step moves by more than ε per epoch). With one log-step
            per training step (C = T) the gradient can concentrate on a few steps, and an
            RMS-normalised entry can reach √C: ε = 0.1 may multiply one η_t by e^{0.1·√C}
            (≈ 90 at C = 2000) in one epoch — on the paper's perceptron started at η = 30, the
            first step's η went to 2540 and the next epoch diverged; ``"max"`` bounds that
            factor by e^ε, but the steps with a small gradient then hardly move. ``"sign"``
            (ĝ = sign(g), as in signSGD/Rprop) moves every log-step by exactly ε per epoch.
        initial: the start schedule instead of ``lr``: ``(T,)`` (ρ⁰_c the mean of log η_t
            over block c) or ``(C,)``, positive.
        validation, validation_seed, patience, track_test, checkpoint_every, tf32: as in
            :func:`~learnlaw.fit.fit_block_policy` (the validation AUC
            chooses the returned epoch and drives ``patience``).
        checkpoint_dir: if given, the fit's state (ρ, epoch, history, best) is saved there
            (``state.pt``, atomically) at the start of every epoch.
        resume: continue from ``checkpoint_dir``; equals the uninterrupted fit, also when
            ``epochs`` is raised.
        callback: called with each history entry once recorded; an exception it raises stops
            the fit (``resume=True`` then continues).
        progress: a tqdm bar over epochs.

    Returns:
        A :class:`ScheduleResult` (``policy`` None). Too large an η (or ε) makes an epoch
        diverge: the fit stops there and returns the best finite epoch, ``stopped`` says why.

    Raises:
        DivergenceError: epoch 0 (the start schedule) diverges.
    """
    lr, blocks = _check_fit_args(
        task, steps, lr, epochs, blocks, "blocks", validation_seed, patience, track_test,
        checkpoint_every, checkpoint_dir, resume, progress, tf32,
    )  # fmt: skip
    checks.check_lr(outer_lr, "outer_lr")
    _check_lr_norm(lr_norm)
    rho = _initial_rho(lr, initial, steps, blocks, dict(dtype=task.dtype, device=task.device))
    uniform = uniform_policy(steps, task.n_train, dtype=task.dtype, device=task.device)
    return _fit_schedule_and(
        task, steps, lr, epochs, rho, outer_lr, lr_norm, "schedule", {}, lambda p: uniform,
        lambda p, sweep: {}, lambda p, g, e: {}, {},
        validation=validation, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
        resume=resume, callback=callback, progress=progress, tf32=tf32,
    )  # fmt: skip


def fit_joint(
    task: Task,
    steps: int,
    lr: float,
    epochs: int,
    *,
    family: str = "block",
    blocks: int = 10,
    lr_blocks: int | None = None,
    outer_lr: float | None = None,
    lr_outer_lr: float = 0.1,
    lr_norm: str = "rms",
    features: Tensor | None = None,
    feature_names: list[str] | None = None,
    link: str = "softmax",
    temperature: float = 1.0,
    optimizer: str = "adam",
    initial: Tensor | None = None,
    initial_lr: Tensor | None = None,
    validation: int | tuple[Tensor, Tensor] | None = None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callable[[dict], None] | None = None,
    progress: bool = True,
    tf32: bool = False,
) -> ScheduleResult:
    """Learn the weights γ(φ) and the schedule η_t = exp(ρ_{c(t)}) together, from one sweep.

    Each epoch one adjoint sweep at (γ(φ), η(ρ)) gives ∂J/∂γ and ∂J/∂η; ∂J/∂φ is the pullback
    of the family (:mod:`learnlaw.policies.parametric`), ∂J/∂ρ that of :func:`fit_schedule`;
    each is divided by its own RMS, then φ ← Proj_Δ(φ − ε ĝ_φ) (``"block"``, ``"full"``) or
    one Adam / GD step on ĝ_φ (``"feature"``), and ρ ← ρ − ε_η ĝ_ρ.

    Args:
        task, steps, lr, epochs: as in :func:`fit_schedule`.
        family: ``"block"`` (Q simplex rows over blocks of steps), ``"full"`` (Q = T, the
            full T×N search; ``blocks`` ignored) or ``"feature"`` (a scorer over features).
        blocks: Q, the weight blocks, 1 ≤ Q ≤ T.
        lr_blocks: C, the schedule's blocks (``None``: one per step).
        outer_lr: ε of the weights: the RMS step per entry of φ (``None``: 0.1/N for
            ``"block"``/``"full"``, about a tenth of a uniform weight; 0.05 for ``"feature"``).
        lr_outer_lr: ε_η, the RMS change of log η per block per epoch.
        lr_norm: the schedule's normalisation, as in :func:`fit_schedule`.
        features, feature_names, link, temperature, optimizer: the scorer of ``"feature"``, as
            in :func:`~learnlaw.fit.fit_feature_policy` (``"adam"`` or
            ``"gd"``; Adam's moments are part of the checkpoint).
        initial: the start φ (``(Q, N)`` rows on the simplex, or ``(Q, D)``; default uniform).
        initial_lr: the start schedule, as ``initial`` of :func:`fit_schedule`.
        validation, validation_seed, patience, track_test, checkpoint_every, checkpoint_dir,
            resume, callback, progress, tf32: as in :func:`fit_schedule`.

    Returns:
        A :class:`ScheduleResult` with the chosen ``policy`` and ``phi``.

    Raises:
        DivergenceError: epoch 0 diverges.
    """
    lr, lr_blocks = _check_fit_args(
        task, steps, lr, epochs, lr_blocks, "lr_blocks", validation_seed, patience, track_test,
        checkpoint_every, checkpoint_dir, resume, progress, tf32,
    )  # fmt: skip
    checks.check_choice(family, "family", FAMILIES)
    checks.check_lr(lr_outer_lr, "lr_outer_lr")
    _check_lr_norm(lr_norm)
    checks.check_number(outer_lr, "outer_lr", minimum=0.0, strict=True, allow_none=True)
    blocks = steps if family == "full" else blocks
    checks.check_int(blocks, "blocks", minimum=1, maximum=steps)
    _check_link(link, temperature)
    checks.check_choice(optimizer, "optimizer", ("adam", "gd"))
    n = task.n_train
    opts = dict(dtype=task.dtype, device=task.device)
    rho = _initial_rho(lr, initial_lr, steps, lr_blocks, opts)
    config = dict(blocks=blocks)
    opt_state: dict[str, Tensor] = {}
    if family != "feature":
        eps = 0.1 / n if outer_lr is None else outer_lr
        phi = torch.full((blocks, n), 1.0 / n, **opts)
        if initial is not None:
            phi = validate_policy(initial, steps=blocks, n=n).to(**opts).clone()

        def to_policy(p: dict) -> Tensor:
            return block_policy(p["phi"], steps)

        def pullback(p: dict, sweep: Sweep) -> dict:
            return {"phi": block_pullback(sweep.grad, blocks)}

        def update(p: dict, g: dict, epoch: int) -> dict:
            return {"phi": project_simplex(p["phi"] - eps * g["phi"])}

    else:
        eps = 0.05 if outer_lr is None else outer_lr
        features, feature_names, phi = feature_setup(
            task, features, feature_names, blocks, initial, validation, validation_seed
        )
        kw = dict(link=link, temperature=temperature)
        config.update(
            kw, optimizer=optimizer, features=(tuple(features.shape), float(features.sum()))
        )
        if optimizer == "adam":
            opt_state = {"m": torch.zeros_like(phi), "v": torch.zeros_like(phi)}

        def to_policy(p: dict) -> Tensor:
            return feature_policy(p["phi"], features, steps, **kw)

        def pullback(p: dict, sweep: Sweep) -> dict:
            return {"phi": feature_pullback(p["phi"], features, sweep.grad, **kw)}

        def update(p: dict, g: dict, epoch: int) -> dict:
            if optimizer == "gd":
                return {"phi": p["phi"] - eps * g["phi"]}
            m, v = opt_state["m"], opt_state["v"]
            return {"phi": adam_step(p["phi"], g["phi"], m, v, eps, epoch + 1)}

    config.update(family=family, outer_lr=eps)
    return _fit_schedule_and(
        task, steps, lr, epochs, rho, lr_outer_lr, lr_norm, f"schedule+{family}", {"phi": phi},
        to_policy, pullback, update, config,
        validation=validation, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
        resume=resume, callback=callback, progress=progress, tf32=tf32, opt_state=opt_state,
    )  # fmt: skip
