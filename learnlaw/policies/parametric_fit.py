"""Fitting parameterised policies γ(φ) by the exact adjoint: ∂J/∂φ = (∂γ/∂φ)ᵀ ∂J/∂γ.

Each epoch runs one :func:`~learnlaw.training.adjoint_sweep` at γ(φ) for J(γ) = Σ_{t≥1}
L_dsr(θ_t) and ∂J/∂γ, pulls the gradient back to φ (:mod:`learnlaw.policies.parametric`) and
updates φ:

* block policies (:func:`fit_block_policy`): projected gradient descent on the simplex rows,
  φ_b ← Proj_Δ(φ_b − ε_e ∂J/∂φ_b) — with Q = T exactly the step of
  :func:`~learnlaw.optimize_policy`. ∂J/∂φ_b sums |b| ≈ T/Q rows of ∂J/∂γ, so a
  step as large per row as the full search's ε needs about ε·Q/T.
* feature scorers (:func:`fit_feature_policy`): Adam (β = 0.9, 0.999; default) or plain gradient
  descent on the unconstrained φ; Adam's steps are about ε per coordinate whatever the scale of
  ∂J/∂φ, which suits standardised features.

A ``validation`` part of the desired set (a count of desired examples held out at random, or an
``(inputs, targets)`` pair of extra desired examples) is never fitted: its loss curve is recorded
every epoch, selects the returned epoch (lowest validation AUC) and drives early stopping.

**The outer step** (``outer_step``). ∂J/∂γ_{t,n} = −η ∇l_n(θ_t)·a_{t+1} carries the factor η
and the adjoint a, which grows wherever η·λ_max(H_t) > 2 (:mod:`learnlaw.analysis.sharpness`).
With ``outer_step="plain"`` (the default, the stored numerics of the book) φ moves by ε·∂J/∂φ,
so one ε cannot serve a whole η grid: what is a small step at η = 0.1 overshoots at η = 10.
``outer_step="normalized"`` divides the pulled-back gradient g = ∂J/∂φ by its root mean square
over all its entries, ĝ = g / √(mean g²) (:func:`~learnlaw.core.engine.rms_normalize`;
g = 0 gives ĝ = 0), before the optimizer sees it. ĝ is unchanged by any positive rescaling g → c·g, so the update is invariant
to the scale of ∂J/∂γ — the explicit factor η and the adjoint's growth alike — and ε becomes a
step in units of φ per entry (root mean square): for block policies, rows on the simplex with
entries ≈ 1/N, ε ≈ 0.1/N moves each entry by about a tenth of its uniform value (before the
projection); for feature scorers with ``optimizer="gd"`` ε is the step per score weight. With
Adam (already nearly invariant to a constant rescaling, through m/√v) the normalised gradient
is what Adam averages: each epoch then weighs equally in its moments, however the gradient's
scale changes between epochs. What is invariant is the step's dependence on the *scale* of the
gradient, not the fit's dependence on η: η still shapes the trajectory θ_t, hence the direction
of ∂J/∂γ and the loss J itself.

The alternative, dividing ∂J/∂γ by η, removes the explicit factor only: at large η the adjoint
a_t = (I − ηH_t) a_{t+1} + ∇L_dsr(θ_t) grows like Π|1 − ηλ| along the run, by orders of
magnitude that depend on the trajectory, so a 1/η-scaled step still overshoots where it matters
(and is too small where the adjoint is tame). The RMS normalisation is invariant to both, at
the cost of ignoring the gradient's magnitude — the step size is then ε's job (and the
schedule's, and patience's).

**Divergence** (``ParametricResult.stopped``). A fit whose sweep or training run diverges
(:class:`~learnlaw.training.DivergenceError`), whose ∂J/∂γ is not finite, or whose φ
becomes non-finite after some epoch's update stops there and returns the best finite epoch so
far (lowest validation AUC; lowest J without validation); ``stopped`` and the last history
entry (key ``"stopped"``) say what stopped it. Only a diverging epoch 0 raises — its sweep, or a
non-finite ∂J/∂γ of the initial policy: the initial policy is not trainable at that η.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.adjoint import Sweep
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.engine import Family, _run, check_loop_args, split_validation
from learnlaw.core.policy import project_simplex, validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import Run
from learnlaw.policies.parametric import (
    _check_link,
    block_policy,
    block_pullback,
    feature_policy,
    feature_pullback,
)
from learnlaw.policies.parametric_features import example_features

__all__ = [
    "ParametricResult",
    "fit_block_policy",
    "fit_feature_policy",
]


@dataclass
class ParametricResult:
    """The outcome of :func:`fit_block_policy` or :func:`fit_feature_policy`.

    Attributes:
        policy: the chosen γ(φ), ``(T, N)``.
        phi: the chosen φ (``(Q, N)`` block rows or ``(Q, D)`` score weights).
        history: one dict per evaluated φ, epochs 0, 1, …: ``epoch``, ``J`` (AUC on the fitted
            desired part), ``seconds`` (since the start), ``zero_fraction``; ``test_auc``,
            ``cr_test``, ``ar_test`` (against the uniform policy on the test split) when the test
            curve is tracked; ``val_auc``, ``ar_val`` with a validation part.
        run: ``train(task, policy, lr)`` on the task as given (its full desired and test splits).
        baseline: the uniform policy's run on the task as given.
        best_epoch: the epoch of ``policy`` (lowest validation AUC; lowest J without validation).
        seconds: wall time of the whole fit.
        family: ``"block"`` or ``"feature"``.
        features, feature_names: the scorer's F and column names (``None`` for blocks).
        stopped: ``None`` when the fit ran all its epochs or stopped by ``patience``; otherwise
            why it stopped early on a divergence, e.g. ``"diverged at epoch 5: <message>"``
            (the last history entry then carries the same text under ``"stopped"``).
    """

    policy: Tensor
    phi: Tensor
    history: list[dict]
    run: Run
    baseline: Run
    best_epoch: int
    seconds: float
    family: str
    features: Tensor | None = None
    feature_names: list[str] | None = field(default=None)
    stopped: str | None = None

    def column(self, name: str) -> list[float]:
        """One history field over the epochs, e.g. ``result.column("ar_test")``."""
        return [h.get(name, math.nan) for h in self.history]


def feature_setup(
    task: Task,
    features: Tensor | None,
    feature_names: list[str] | None,
    blocks: int,
    initial: Tensor | None,
    validation,
    validation_seed: int,
) -> tuple[Tensor, list[str] | None, Tensor]:
    """A feature scorer's F (default: :func:`example_features` of the fitted part), its names,
    and the start φ ``(Q, D)`` (zeros: the uniform policy), checked against N and Q."""
    opts = dict(dtype=task.dtype, device=task.device)
    if features is None:
        fit_task, _ = split_validation(task, validation, validation_seed)
        features, feature_names = example_features(fit_task)
    features = features.to(**opts) if isinstance(features, Tensor) else features
    n = task.n_train
    shared = isinstance(features, Tensor) and features.ndim == 2 and len(features) == n
    per_block = isinstance(features, Tensor) and features.shape[:-1] == (blocks, n)
    if not (shared or per_block):
        raise ArgumentValueError(
            f"features must be an (N, D) tensor with N = {n} rows or (Q, N, D) with Q = {blocks}"
            f" blocks, got {getattr(features, 'shape', type(features).__name__)}"
        )
    d = features.shape[-1]
    phi = torch.zeros(blocks, d, **opts) if initial is None else initial.to(**opts).clone()
    if phi.shape != (blocks, d):
        raise ArgumentValueError(
            f"initial must have shape (Q, D) = ({blocks}, {d}), got {phi.shape}"
        )
    return features, feature_names, phi


def adam_step(phi: Tensor, g: Tensor, m: Tensor, v: Tensor, step: float, k: int) -> Tensor:
    """One Adam step (β = 0.9, 0.999, ε = 1e-12) of update number k ≥ 1; updates the moments
    ``m`` and ``v`` in place and returns φ − step·m̂/(√v̂ + ε)."""
    b1, b2, eps = 0.9, 0.999, 1e-12
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    return phi - step * (m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + eps)


def _schedule(outer_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    return outer_lr if schedule == "constant" else outer_lr * (1 - epoch / epochs)


def fit_block_policy(
    task: Task,
    steps: int,
    lr: float,
    blocks: int,
    outer_lr: float,
    epochs: int,
    *,
    schedule: str = "constant",
    initial: Tensor | None = None,
    validation: int | tuple[Tensor, Tensor] | None = None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    progress: bool = True,
    tf32: bool = False,
    outer_step: str = "plain",
) -> ParametricResult:
    """Fit a block policy (Q rows shared over blocks of consecutive steps) by projected GD.

    Cost per epoch: one adjoint sweep (≈ 2–3 training runs), plus one training run for the test
    curve when a validation part is used; memory: that of the sweep plus Q·N floats.

    Args:
        task: the task; J uses its desired split (minus the validation part).
        steps: T.
        lr: η of the inner gradient descent.
        blocks: Q, 1 ≤ Q ≤ T (Q = T: the full T×N search; Q = 1: one static reweighting).
        outer_lr: ε (on J in nats; see the module note on scaling with T/Q).
        epochs: the number of updates E.
        schedule: ``"constant"`` or ``"linear"`` (ε_e = ε(1 − e/E)).
        initial: ``(Q, N)`` start (default uniform); see
            :func:`~learnlaw.policies.parametric.coarsen_policy` to start from a full policy.
        validation: a count of desired examples held out at random, or an extra
            ``(inputs, targets)`` desired part; chooses the returned epoch.
        validation_seed: seeds the held-out draw.
        patience: stop when the validation AUC (J without validation) has not improved for
            this many epochs.
        track_test: record the test curve every epoch (with validation it costs a run).
        checkpoint_every: θ checkpointing of the sweep (see :func:`adjoint_sweep`).
        progress: a tqdm bar over epochs.
        tf32: run every sweep and training run with TF32 float32 matmuls on an NVIDIA Ampere+
            GPU (:func:`~learnlaw.profile.matmul_precision`): faster, relative rounding
            2⁻¹¹ per matmul input; no effect on the CPU or in float64.
        outer_step: ``"plain"`` (φ_b ← Proj_Δ(φ_b − ε_e ∂J/∂φ_b)) or ``"normalized"``
            (∂J/∂φ divided by its root mean square over all Q·N entries first: invariant to
            the gradient's scale, ε a step per entry in units of φ, e.g. ≈ 0.1/N; see the
            module note).

    Returns:
        A :class:`ParametricResult`; its tensors (policy, φ, runs) are on the task's device,
        its history Python floats. No policy is kept along the way: only the best φ
        (Q·N floats) is held. A divergence after epoch 0 stops the fit and returns the best
        finite epoch so far, with ``stopped`` saying why.

    Raises:
        DivergenceError: the uniform baseline run diverges, or epoch 0 does (the initial
            policy's sweep, or its ∂J/∂γ is not finite): the message names the step and lr.
    """
    steps, lr = check_loop_args(
        task, steps, lr, epochs, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, progress=progress,
        outer_step=outer_step, tf32=tf32, schedule=schedule,
    )  # fmt: skip
    blocks = checks.check_int(blocks, "blocks", minimum=1, maximum=steps)
    checks.check_lr(outer_lr, "outer_lr")
    n = task.n_train
    opts = dict(dtype=task.dtype, device=task.device)
    if initial is None:
        phi = torch.full((blocks, n), 1.0 / n, **opts)
    else:
        validate_policy(initial, steps=blocks, n=n)
        phi = initial.to(**opts).clone()

    def update(p: dict, g: dict, epoch: int) -> dict:
        return {
            "phi": project_simplex(
                p["phi"] - _schedule(outer_lr, schedule, epoch, epochs) * g["phi"]
            )
        }

    family = Family(
        "block", {"phi": phi}, lambda p: block_policy(p["phi"], steps),
        lambda p, sweep: {"phi": block_pullback(sweep.grad, blocks)}, update,
    )  # fmt: skip
    out = _run(
        task, steps, lr, family, epochs=epochs, validation=validation,
        validation_seed=validation_seed, patience=patience, track_test=track_test,
        checkpoint_every=checkpoint_every, progress=progress, tf32=tf32,
        outer_step=outer_step,
    )  # fmt: skip
    phi = out.params["phi"]
    return ParametricResult(
        block_policy(phi, steps), phi, out.history, out.run, out.baseline, out.best_epoch,
        out.seconds, "block", stopped=out.stopped,
    )  # fmt: skip


def fit_feature_policy(
    task: Task,
    steps: int,
    lr: float,
    *,
    features: Tensor | None = None,
    feature_names: list[str] | None = None,
    blocks: int = 1,
    link: str = "softmax",
    temperature: float = 1.0,
    outer_lr: float = 0.05,
    epochs: int = 50,
    optimizer: str = "adam",
    schedule: str = "constant",
    initial: Tensor | None = None,
    validation: int | tuple[Tensor, Tensor] | None = None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    progress: bool = True,
    tf32: bool = False,
    outer_step: str = "plain",
) -> ParametricResult:
    """Fit a feature scorer γ_t = link(F φ_{b(t)}) by Adam (or GD) on the exact ∂J/∂φ.

    Cost per epoch: as :func:`fit_block_policy`, plus O(Q·N·D) for the map and its pullback.

    Args:
        task: the task.
        steps: T.
        lr: η of the inner gradient descent.
        features: F ``(N, D)`` shared by the blocks, or ``(Q, N, D)`` per block (e.g.
            :func:`~learnlaw.policies.trajectory_features`); default
            :func:`~learnlaw.policies.example_features` of the fitted part
            (θ₀, no oracle kinds, standardised).
        feature_names: names of the columns of a given F (kept in the result).
        blocks: Q, score weights per block of steps (1: one static scorer).
        link: ``"softmax"`` or ``"sparsemax"``; temperature: τ (see the parametric module).
        outer_lr: ε, Adam's step (≈ the change of each φ entry per epoch) or GD's step size.
        epochs: the number of updates E.
        optimizer: ``"adam"`` or ``"gd"``.
        schedule: ``"constant"`` or ``"linear"``.
        initial: ``(Q, D)`` start (default zeros: the uniform policy).
        validation, validation_seed, patience, track_test, checkpoint_every, progress, tf32:
            as in :func:`fit_block_policy`.
        outer_step: ``"plain"`` or ``"normalized"``: ∂J/∂φ divided by its root mean square
            over all Q·D weights *before* the optimizer (GD: ε is then the step per weight;
            Adam: its moments average unit-scale gradients, every epoch weighing alike).

    Returns:
        A :class:`ParametricResult` (with ``stopped`` on a divergence after epoch 0).

    Raises:
        DivergenceError: epoch 0 diverges, as in :func:`fit_block_policy`.
    """
    steps, lr = check_loop_args(
        task, steps, lr, epochs, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, progress=progress,
        outer_step=outer_step, tf32=tf32, schedule=schedule,
    )  # fmt: skip
    blocks = checks.check_int(blocks, "blocks", minimum=1, maximum=steps)
    checks.check_lr(outer_lr, "outer_lr")
    _check_link(link, temperature)
    checks.check_choice(optimizer, "optimizer", ("adam", "gd"))
    features, feature_names, phi = feature_setup(
        task, features, feature_names, blocks, initial, validation, validation_seed
    )
    m, v = torch.zeros_like(phi), torch.zeros_like(phi)

    def update(p: dict, g: dict, epoch: int) -> dict:
        step = _schedule(outer_lr, schedule, epoch, epochs)
        if optimizer == "gd":
            return {"phi": p["phi"] - step * g["phi"]}
        return {"phi": adam_step(p["phi"], g["phi"], m, v, step, epoch + 1)}

    def to_policy(p: Tensor) -> Tensor:
        return feature_policy(p, features, steps, link=link, temperature=temperature)

    def pullback(p: dict, sweep: Sweep) -> dict:
        g = feature_pullback(p["phi"], features, sweep.grad, link=link, temperature=temperature)
        return {"phi": g}

    family = Family(
        "feature", {"phi": phi}, lambda p: to_policy(p["phi"]), pullback, update,
        opt_state={"m": m, "v": v},
    )  # fmt: skip
    out = _run(
        task, steps, lr, family, epochs=epochs, validation=validation,
        validation_seed=validation_seed, patience=patience, track_test=track_test,
        checkpoint_every=checkpoint_every, progress=progress, tf32=tf32,
        outer_step=outer_step,
    )  # fmt: skip
    phi = out.params["phi"]
    return ParametricResult(
        to_policy(phi), phi, out.history, out.run, out.baseline, out.best_epoch, out.seconds,
        "feature", features, feature_names, out.stopped,
    )  # fmt: skip
