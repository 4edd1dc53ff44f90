"""The one outer loop of every policy fit: sweep, record, pull back, step — epoch after epoch.

A fit searches parameters φ (named tensor blocks) of a policy γ(φ) and, optionally, of a step
schedule η(φ), by first-order steps on J(γ, η) = Σ_{t=1}^T L_dsr(θ_t). Each epoch runs one
:func:`~learnlaw.core.adjoint.adjoint_sweep` at (γ(φ), η(φ)), records the epoch, pulls the
exact gradient back, ∂J/∂φ = (∂γ/∂φ)ᵀ ∂J/∂γ + (∂η/∂φ)ᵀ ∂J/∂η, and updates φ. What differs
between fits is a :class:`Family` — its start, its maps to γ and η, its pullback and its update
(projected gradient descent on simplex rows, Adam, …), the way optax composes a gradient
transformation; everything else is :func:`fit_loop`'s:

* **validation**: a part of the desired set that is never fitted (:func:`split_validation`);
  its AUC is recorded every epoch and, with ``select="best"``, chooses the returned epoch;
* **patience**: stop when that score has not improved for so many epochs;
* **the outer step**: ``"plain"`` or ``"normalized"`` (each block divided by its root mean
  square, :func:`rms_normalize`: invariant to the scale of ∂J/∂γ);
* **divergence**: a diverging sweep, a non-finite gradient or non-finite parameters either
  stop the fit at the best finite epoch so far (``on_divergence="stop"``) or raise
  :class:`~learnlaw.core.training.DivergenceError` naming the epoch (``"raise"``); a diverging
  epoch 0 always raises;
* **checkpoint and resume**: the state is saved atomically at the start of every epoch and a
  resumed fit equals an uninterrupted one bit for bit (:mod:`learnlaw.core.checkpoint`);
* **process groups**: inside ``torch.distributed`` a family holds this rank's columns; the
  counts, finiteness checks and normalisations here reduce one float over the ranks;
* a progress bar, a per-epoch ``callback`` and policies kept along the way (``keep``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.adjoint import Sweep, adjoint_sweep
from learnlaw.core.checkpoint import atomic_save, load_file, load_state, save_state
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.distributed import Shard, all_reduce, gather_columns
from learnlaw.core.metrics import compression_ratio, empirical_acceleration_ratio
from learnlaw.core.policy import validate_policy
from learnlaw.core.precision import check_tf32, matmul_precision
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import Task, check_task, holdout_split
from learnlaw.core.training import DIVERGENCE_FACTOR, DivergenceError, Run, check_factor, train

__all__ = [
    "check_loop_args",
    "Family",
    "FitOutcome",
    "OUTER_STEPS",
    "describe_lr",
    "fit_loop",
    "rms_normalize",
    "split_validation",
]

OUTER_STEPS = ("plain", "normalized")


def rms_normalize(g: Tensor, shard: Shard | None = None) -> Tensor:
    """g / √(mean g²) over all entries (the ``"normalized"`` outer step); 0 for g = 0.

    ĝ(c·g) = ĝ(g) for every c > 0. Computed as (g/m)/√(mean (g/m)²) with m = max|g|, so that
    squaring cannot overflow (float32 gradients of 1e20) or underflow. Inside a
    ``torch.distributed`` group (``shard`` given) the max and the mean run over every rank's
    columns (two all-reduces of one float).

    Args:
        g: a finite gradient of any shape (``(T, N)`` or a rank's ``(T, N_r)`` block, ``(Q, D)``).
        shard: this rank's :class:`~learnlaw.core.distributed.Shard`, or ``None``.

    Returns:
        ĝ, the shape, dtype and device of ``g``, root mean square 1 (or all zeros).
    """
    m = (g.abs().amax() if g.numel() else g.new_zeros(())).reshape(1)
    count = g.numel()
    if shard is not None:
        import torch.distributed as dist

        all_reduce(m, op=dist.ReduceOp.MAX)
        count = int(all_reduce(torch.tensor([count], dtype=torch.int64, device=g.device))[0])
    if not bool(m[0] > 0):
        return torch.zeros_like(g)
    s = g / m[0]
    ss = s.square().sum().reshape(1)
    if shard is not None:
        all_reduce(ss)
    return s / (ss[0] / count).sqrt()


def split_validation(task: Task, validation, seed: int = 0) -> tuple[Task, tuple | None]:
    """The task a fit fits and its validation ``(inputs, targets)`` (or ``None``).

    ``validation`` is ``None``, an int h ∈ [2, K − 2] (h desired examples drawn at random with
    ``seed`` are moved out of the desired split: :func:`~learnlaw.core.task.holdout_split`, the
    draw :func:`~learnlaw.select_lr` makes) or an extra ``(inputs, targets)`` desired part.
    """
    if validation is None:
        return task, None
    if isinstance(validation, int) and not isinstance(validation, bool):
        held = holdout_split(task, validation, seed, name="validation (desired examples held out)")
        return task.with_(desired=held.desired), held.test
    if isinstance(validation, tuple) and len(validation) == 2 and len(validation[0]) >= 1:
        if len(validation[0]) != len(validation[1]):
            raise ArgumentValueError("validation inputs and targets differ in length")
        return task, validation
    raise ArgumentValueError(
        "validation must be None, an int (desired examples to hold out at random) or an "
        f"(inputs, targets) pair of extra desired examples, got {type(validation).__name__}"
    )


def check_loop_args(
    task: Task,
    steps: int,
    lr: float,
    epochs: int,
    *,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every=None,
    checkpoint_dir=None,
    resume: bool = False,
    progress: bool = True,
    outer_step: str = "plain",
    tf32: bool = False,
    schedule: str = "constant",
    policy_hint: bool = False,
) -> tuple[int, float]:
    """Check what every fit entry point hands to :func:`fit_loop`, once, at the entry point.

    Returns:
        ``(steps, lr)`` as checked (``lr`` a float). Raises a
        :class:`~learnlaw.core.checks.ArgumentValueError` (or ``ArgumentTypeError``) naming the
        argument, what it got and what it needs.
    """
    check_task(task)
    steps = checks.check_steps(steps, policy_hint=policy_hint)
    lr = checks.check_lr(lr)
    checks.check_int(epochs, "epochs", minimum=0)
    checks.check_int(validation_seed, "validation_seed")
    checks.check_int(patience, "patience", minimum=1, allow_none=True)
    checks.check_bool(track_test, "track_test")
    checks.check_checkpoint_every(checkpoint_every)
    checks.check_path(checkpoint_dir, "checkpoint_dir", allow_none=True)
    checks.check_bool(resume, "resume")
    checks.check_bool(progress, "progress")
    checks.check_choice(outer_step, "outer_step", OUTER_STEPS)
    check_tf32(tf32)
    checks.check_choice(schedule, "schedule", ("constant", "linear"))
    if resume and checkpoint_dir is None:
        raise ArgumentValueError(
            "resume=True needs checkpoint_dir, where the interrupted fit saved its state"
        )
    return steps, lr


def describe_lr(lr: float | Tensor) -> str:
    """``"lr = 0.1"``, or the range of a ``(T,)`` schedule, for messages."""
    if isinstance(lr, Tensor):
        return f"lr = a schedule with η_t in [{float(lr.min()):.3g}, {float(lr.max()):.3g}]"
    return f"lr = {lr:g}"


@dataclass
class Family:
    """What one kind of fit contributes to :func:`fit_loop`.

    Attributes:
        name: a label for messages and the progress bar (``"block"``, ``"feature"``, …).
        params: the start φ, named blocks, e.g. ``{"phi": φ}`` or ``{"phi": φ, "rho": ρ}``.
        to_policy: φ ↦ γ(φ), ``(T, N)`` (this rank's ``(T, N_r)`` columns in a process group).
        pullback: (φ, sweep) ↦ ∂J/∂φ per block, from ``sweep.grad`` = ∂J/∂γ and
            ``sweep.lr_grad`` = ∂J/∂η.
        update: (φ, ∂J/∂φ, epoch) ↦ the next φ (the normalised gradient with
            ``outer_step="normalized"``); it may update ``opt_state`` in place.
        to_lr: φ ↦ the ``(T,)`` schedule of the sweeps and of the fit's run; ``None``: the
            loop's constant ``lr``.
        opt_state: tensors that ``update`` mutates (Adam's moments), saved with the state.
        annotate: ``(entry, epoch, φ)`` adds the family's own fields to a history entry
            before it is kept (e.g. the outer step size used after it).
        frozen_rows: ∂J/∂γ rows t < frozen_rows are not fitted (and not checked for finiteness).
        on_simplex: ``update`` keeps every row of γ(φ) on the simplex by construction (a
            projection, a softmax): the loop then checks γ at its first epoch only, not every
            epoch (at T = 2000, N = 4096 a check costs about 6% of a perceptron epoch).
        desc: the progress bar's label (default ``"<name> policy fit"``).
    """

    name: str
    params: dict[str, Tensor]
    to_policy: Callable[[dict[str, Tensor]], Tensor]
    pullback: Callable[[dict[str, Tensor], Sweep], dict[str, Tensor]]
    update: Callable[[dict[str, Tensor], dict[str, Tensor], int], dict[str, Tensor]]
    to_lr: Callable[[dict[str, Tensor]], Tensor] | None = None
    opt_state: dict[str, Tensor] = field(default_factory=dict)
    annotate: Callable[[dict, int, dict[str, Tensor]], None] | None = None
    frozen_rows: int = 0
    on_simplex: bool = False
    desc: str | None = None


@dataclass
class FitOutcome:
    """What :func:`fit_loop` returns: the chosen φ and everything measured on the way.

    Attributes:
        params: φ of ``best_epoch`` (the last epoch with ``select="last"``).
        history: one dict per evaluated φ, epochs 0, 1, …: ``epoch``, ``J``, ``zero_fraction``,
            ``test_auc``/``cr_test``/``ar_test`` (tracked test curve), ``val_auc``/``ar_val``
            (validation), what the family's ``annotate`` adds, ``seconds`` (when timed);
            ``stopped`` on the entry where a divergence stopped the fit.
        best_epoch: the epoch of ``params``.
        run: ``train`` of the task as given at γ(params), η(params).
        baseline: the uniform policy's run on the task as given at the constant ``lr``.
        seconds: wall time of the whole loop.
        stopped: why a divergence stopped the fit early, or ``None``.
        kept: ``{epoch: γ}`` CPU copies of the policies of the ``keep`` epochs.
    """

    params: dict[str, Tensor]
    history: list[dict]
    best_epoch: int
    run: Run
    baseline: Run
    seconds: float
    stopped: str | None
    kept: dict[int, Tensor]


def _finite(params: dict[str, Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in params.values())


def _count(x: Tensor, shard: Shard | None) -> float:
    """The sum of a boolean tensor, over every rank's columns in a process group."""
    if shard is None:
        return float(x.sum())
    return float(all_reduce(x.sum().to(torch.float64).reshape(1))[0])


def _resume(ckdir: Path, shard, device, config: dict, config_defaults: dict, epochs: int, what):
    """The saved state of ``ckdir`` in this loop's layout, or ``None``; checks its config.

    A state saved by :func:`~learnlaw.optimize_policy` before it ran on this loop (keys
    ``policy``, ``history``, ``epoch``, ``kept``) reads as ``params = {"policy": γ}``.
    """
    state = load_state(ckdir, shard, device)
    if state is None:
        return None
    saved = {**config_defaults, **state["config"]}
    if saved != config:
        diff = {k: (saved.get(k), v) for k, v in config.items()}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        raise ArgumentValueError(
            f"cannot resume from {ckdir}: it was saved by a different {what} (saved vs now: "
            f"{diff}); use another checkpoint_dir or resume=False"
        )
    if state["epoch"] > epochs:
        raise ArgumentValueError(
            f"cannot resume from {ckdir}: it is at epoch {state['epoch']} but epochs = "
            f"{epochs}; pass epochs ≥ {state['epoch']}"
        )
    if "params" not in state:  # the layout optimize_policy saved before this loop
        state = dict(state, params={"policy": state["policy"]}, best=None, opt_state={})
    return state


def _run(
    task: Task,
    steps: int,
    lr: float,
    family: Family,
    *,
    epochs: int,
    validation=None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    config: dict | None = None,
    config_defaults: dict | None = None,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    tf32: bool = False,
    outer_step: str = "plain",
    select: str = "best",
    on_divergence: str = "stop",
    divergence_hint: str = "",
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    keep: tuple[int, ...] | list[int] | set[int] = (),
    shard: Shard | None = None,
    timed: bool = True,
    noun: str = "fit",
) -> FitOutcome:
    """:func:`fit_loop` without its argument checks (its callers have made them)."""
    start = time.perf_counter()
    label = family.desc or f"{family.name} policy fit"
    fit_task, val = split_validation(task, validation, validation_seed)
    sweep_task = fit_task if val is None else fit_task.with_(test=val)
    n_local = task.n_train if shard is None else shard.size()
    opts = dict(dtype=task.dtype, device=task.device)
    uniform = torch.full((steps, n_local), 1.0 / task.n_train, **opts)
    runs = dict(divergence_factor=divergence_factor, tf32=tf32)
    base_sweep = train(sweep_task, uniform, lr, **runs)
    base_test = (
        train(fit_task, uniform, lr, **runs) if val is not None and track_test else base_sweep
    )
    lr_of = (lambda p: lr) if family.to_lr is None else family.to_lr
    params, opt_state = family.params, family.opt_state
    track_best = select == "best"
    history: list[dict] = []
    best = (math.inf, 0, {k: v.clone() for k, v in params.items()} if track_best else None)
    kept: dict[int, Tensor] = {}
    stopped: str | None = None
    first = 0
    ckdir = None if checkpoint_dir is None else Path(checkpoint_dir)
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
        state = None
        if resume:
            state = _resume(ckdir, shard, task.device, config, config_defaults or {}, epochs, noun)
        if state is not None:
            params, history, first = state["params"], state["history"], state["epoch"]
            if track_best:
                best = tuple(state["best"])
            for k, v in opt_state.items():
                v.copy_(state["opt_state"][k])
            for e in state.get("kept", ()):
                kept[e] = load_file(ckdir / f"policy_{e}.pt", "cpu")

    def stop(epoch: int, why: str, entry: dict | None = None) -> str:
        """Record why the fit stops at ``epoch`` (a new NaN entry unless one is given)."""
        if entry is None:
            entry = dict(epoch=epoch, J=math.nan, seconds=time.perf_counter() - start)
            history.append(entry)
        entry["stopped"] = why
        return why

    def diverged(epoch: int, why: str, entry: dict | None = None) -> str:
        if epoch == 0 or on_divergence == "raise":
            raise DivergenceError(f"{why}{divergence_hint}") from None
        return stop(epoch, f"diverged at epoch {epoch}: {why}", entry)

    run = None
    bar = progress_bar(progress, total=epochs, initial=first, desc=label)
    with matmul_precision(tf32):
        for epoch in range(first, epochs + 1):
            if ckdir is not None:
                state = dict(config=config, params=params, opt_state=opt_state, best=best)
                save_state(
                    ckdir, dict(state, history=history, epoch=epoch, kept=sorted(kept)), shard
                )
            policy = family.to_policy(params)
            if shard is None and (epoch == first or not family.on_simplex):
                policy = validate_policy(policy, steps=steps, n=task.n_train)
            step_lr = lr_of(params)
            try:
                if epoch < epochs:
                    sweep = adjoint_sweep(
                        sweep_task, policy, step_lr, checkpoint_every=checkpoint_every, **runs
                    )
                    desired, other = sweep.desired_loss, sweep.test_loss
                else:
                    run = train(sweep_task, policy, step_lr, **runs)
                    desired, other = run.desired_loss, run.test_loss
                test = None
                if val is not None and track_test:
                    test = train(fit_task, policy, step_lr, **runs).test_loss
            except DivergenceError as err:
                if epoch == 0 and on_divergence == "raise":
                    raise
                if epoch == 0:
                    why = (
                        f"{err} (at epoch 0 of the {label}: the initial policy diverges at this "
                        "lr; use a smaller lr)"
                    )
                elif on_divergence == "raise":
                    why = f"{err} (at epoch {epoch} of the {label})"
                else:
                    why = str(err)
                stopped = diverged(epoch, why)
                break
            if val is None:
                test = other if track_test else None
            entry = dict(epoch=epoch, J=float(desired[1:].sum()))
            if test is not None:
                entry.update(
                    test_auc=float(test[1:].sum()),
                    cr_test=compression_ratio(test, task.vocab_size),
                    ar_test=empirical_acceleration_ratio(base_test.test_loss, test),
                )
            if val is not None:
                entry.update(
                    val_auc=float(other[1:].sum()),
                    ar_val=empirical_acceleration_ratio(base_sweep.test_loss, other),
                )
            entry["zero_fraction"] = _count(policy == 0, shard) / (steps * task.n_train)
            if family.annotate is not None:
                family.annotate(entry, epoch, params)
            if timed:
                entry["seconds"] = time.perf_counter() - start
            history.append(entry)
            if epoch in keep and epoch not in kept:
                kept[epoch] = gather_columns(policy, shard).to("cpu", copy=True)
                if ckdir is not None and (shard is None or shard.rank == 0):
                    atomic_save(kept[epoch], ckdir / f"policy_{epoch}.pt")
            score = entry["val_auc"] if val is not None else entry["J"]
            if track_best and score < best[0]:
                best = (score, epoch, {k: v.clone() for k, v in params.items()})
            if callback is not None:
                callback(entry)
            show = {"J": f"{entry['J']:.4f}"}
            if val is not None:
                show["AR_val"] = f"{entry['ar_val']:.2f}"
            if test is not None:
                show["AR_test"] = f"{entry['ar_test']:.2f}"
            bar.set_postfix(show)
            if epoch == epochs or (patience is not None and epoch - best[1] >= patience):
                break
            if _count(~torch.isfinite(sweep.grad[family.frozen_rows :]), shard) > 0:
                why = (
                    f"∂J/∂γ is not finite at epoch {epoch} of the {label} "
                    f"({describe_lr(step_lr)}): the adjoint sweep overflowed through the T steps"
                )
                if epoch == 0 or on_divergence == "raise":
                    why += "; use a smaller lr" + (
                        " or outer_lr" if on_divergence == "raise" else ""
                    )
                stopped = diverged(epoch, why, entry)
                break
            grad = family.pullback(params, sweep)
            if outer_step == "normalized":
                grad = {k: rms_normalize(g, shard) for k, g in grad.items()}
            params_next = family.update(params, grad, epoch)
            lr_next = None if family.to_lr is None else family.to_lr(params_next)
            if not _finite(params_next) or (lr_next is not None and not bool((lr_next > 0).all())):
                what_bad = "parameters" if not _finite(params_next) else "step sizes exp(ρ)"
                why = (
                    f"the {family.name} policy {what_bad} became non-finite after the update of "
                    f"epoch {epoch} ({describe_lr(step_lr)}); lower outer_lr"
                )
                stopped = diverged(epoch + 1, why)
                break
            params = params_next
            bar.update(1)
        bar.close()
        best_epoch, chosen = (best[1], best[2]) if track_best else (epochs, params)
        if run is not None and val is None and best_epoch == epochs:
            final = run  # epoch E's run, on the task as given, is the fit's run
        else:
            final = train(task, family.to_policy(chosen), lr_of(chosen), **runs)
    if val is None:
        baseline = base_sweep
    elif fit_task is task and track_test:
        baseline = base_test
    else:
        baseline = train(task, uniform, lr, **runs)
    return FitOutcome(
        chosen, history, best_epoch, final, baseline, time.perf_counter() - start, stopped, kept
    )


def fit_loop(
    task: Task,
    steps: int,
    lr: float,
    family: Family,
    *,
    epochs: int,
    validation=None,
    validation_seed: int = 0,
    patience: int | None = None,
    track_test: bool = True,
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    config: dict | None = None,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    tf32: bool = False,
    outer_step: str = "plain",
    select: str = "best",
    on_divergence: str = "stop",
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    keep: tuple[int, ...] | list[int] = (),
    timed: bool = True,
) -> FitOutcome:
    """Run ``epochs`` updates of a :class:`Family` and return the chosen epoch's φ.

    Cost per epoch: one adjoint sweep (≈ 2–3 training runs), one more run for the test curve
    when a validation part is used (``track_test``), plus the family's map, pullback and update;
    the last epoch (E) is a training run only. Memory: the sweep's, the family's blocks, a copy
    of the best φ (``select="best"``) and the ``keep`` policies on the CPU.

    Args:
        task: the task; J uses its desired split (minus the validation part).
        steps: T. lr: the constant η of the uniform baselines (and of the sweeps unless the
            family has ``to_lr``).
        family: the :class:`Family` to fit.
        epochs: E, the number of updates (epoch E is evaluated, not updated).
        validation: ``None``, a count of desired examples held out at random, or an extra
            ``(inputs, targets)`` desired part (:func:`split_validation`); validation_seed
            seeds the draw.
        patience: stop when the score (validation AUC, else J) has not improved for this many
            epochs.
        track_test: record the test curve every epoch (with validation it costs a run).
        checkpoint_every: θ checkpointing of each sweep (:func:`~learnlaw.training.adjoint_sweep`).
        checkpoint_dir, resume, config: the state is saved in ``checkpoint_dir`` at the start of
            every epoch with ``config`` (a dict of plain values, which must match on resume);
            ``resume=True`` continues from it bit-identically.
        progress: a tqdm bar over epochs. callback: sees each history entry once it is
            recorded (an exception it raises interrupts the fit; ``resume=True`` recomputes
            that epoch).
        tf32: TF32 float32 matmuls on an NVIDIA Ampere+ GPU for every run and sweep.
        outer_step: ``"plain"`` or ``"normalized"`` (each gradient block divided by its RMS).
        select: ``"best"`` (lowest validation AUC; lowest J without validation) or ``"last"``
            (epoch E; only with ``on_divergence="raise"`` and no ``patience``).
        on_divergence: ``"stop"`` (return the best finite epoch so far, ``stopped`` saying why)
            or ``"raise"`` (:class:`~learnlaw.training.DivergenceError` naming the epoch).
        divergence_factor: the divergence criterion of every run (``None``: non-finite only).
        keep: epochs whose policy is kept (CPU copies, ``FitOutcome.kept``).
        timed: add ``seconds`` (since the start) to every history entry.

    Returns:
        A :class:`FitOutcome`. Runs in one process (the full search's sharded form is
        :func:`~learnlaw.optimize_policy`'s).
    """
    steps, lr = check_loop_args(
        task, steps, lr, epochs, validation_seed=validation_seed, patience=patience,
        track_test=track_test, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
        resume=resume, progress=progress, outer_step=outer_step, tf32=tf32,
    )  # fmt: skip
    if not isinstance(family, Family):
        raise ArgumentTypeError(
            f"family must be a learnlaw.fit.Family, got {type(family).__name__}; build one "
            "with Family(name, params, to_policy, pullback, update)"
        )
    checks.check_choice(select, "select", ("best", "last"))
    checks.check_choice(on_divergence, "on_divergence", ("stop", "raise"))
    if select == "last" and (on_divergence == "stop" or patience is not None):
        raise ArgumentValueError(
            f'select="last" returns the φ of epoch E, which a fit stopped early never reaches; '
            f'got on_divergence={on_divergence!r}, patience={patience!r}: with select="last" '
            'pass on_divergence="raise" and no patience, or use select="best" (the best '
            "finite epoch)"
        )
    divergence_factor = check_factor(divergence_factor)
    checks.check_bool(timed, "timed")
    keep = {checks.check_int(e, "keep (an epoch)", minimum=0, maximum=epochs) for e in keep}
    return _run(
        task, steps, lr, family, epochs=epochs, validation=validation,
        validation_seed=validation_seed, patience=patience, track_test=track_test,
        checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir, resume=resume,
        config=config, progress=progress, callback=callback, tf32=tf32, outer_step=outer_step,
        select=select, on_divergence=on_divergence, divergence_factor=divergence_factor,
        keep=keep, timed=timed,
    )  # fmt: skip
