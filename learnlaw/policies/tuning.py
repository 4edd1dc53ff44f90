"""Step-size control: pick η on a validation part of the desired set, for any training method.

A speed-up measured at a fixed η may be nothing but a larger effective step, so every method —
uniform training, an online rule, a searched or parameterised policy — gets its own η, chosen
the same way:

1. :func:`validation_task` splits the desired set into a *fit* part (the new desired split,
   which the method may use: contributions, policy search) and a *validation* part (the new
   test split). The task's real test split is never seen.
2. The method is run at every η of a grid on that task; the score of η is the validation
   curve's AUC Σ_{t=1}^T L_val(θ_t) (``criterion="auc"``, the paper's objective: fast *and*
   low) or its final loss L_val(θ_T) (``criterion="final"``). A run that diverges
   (:class:`~learnlaw.training.DivergenceError`, or a non-finite curve) scores +∞.
3. The η with the lowest score wins (ties: the smaller η, the safer step).

:func:`select_lr` does all three; :func:`tune_lr` is step 2–3 for a callable ``lr → run``
that the caller has already bound to a validation task.

Cost: one run of the method per grid point (plus whatever the method costs, e.g. a search).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.metrics import auc
from learnlaw.core.task import Task, holdout_split
from learnlaw.core.training import DivergenceError, Run, train

__all__ = ["CRITERIA", "LrChoice", "tune_lr", "select_lr", "validation_task", "run_of"]

CRITERIA = ("auc", "final")


@dataclass(frozen=True)
class LrChoice:
    """The outcome of a step-size search.

    Attributes:
        lr: the chosen η.
        score: its score (validation AUC or final loss, nats).
        criterion: ``"auc"`` or ``"final"``.
        split: the curve that was scored (``"test"`` of a validation task = the validation part).
        table: one dict per grid point, in grid order: ``lr``, ``score`` (+∞ if diverged),
            ``auc``, ``final`` (nan if diverged), ``diverged``, ``error`` (the divergence
            message or ``None``) and ``seconds``.
        result: what the method returned at the chosen η (a Run, an online result, ...).
        info: how the validation split was made (:func:`select_lr`), else empty.
    """

    lr: float
    score: float
    criterion: str
    split: str
    table: list[dict]
    result: Any = None
    info: dict = field(default_factory=dict)

    def scores(self) -> dict[float, float]:
        """``{η: score}`` over the grid."""
        return {row["lr"]: row["score"] for row in self.table}


def run_of(result: Any, task: Task | None = None, lr: float | None = None) -> Run:
    """The :class:`Run` behind a method's result.

    Accepts a :class:`Run` (or anything with ``desired_loss``/``test_loss`` curves), an object
    with a ``.run`` (e.g. :class:`~learnlaw.policies.OnlineResult`), or a ``(T, N)``
    policy tensor, which is trained with ``train(task, policy, lr)`` (needs ``task``).
    """
    if isinstance(result, Tensor):
        if task is None:
            raise ArgumentTypeError(
                "the method returned a policy tensor; pass task= (the validation task) so that "
                "it can be trained with learnlaw.train(task, policy, lr)"
            )
        return train(task, result, lr)
    if hasattr(result, "run") and hasattr(result.run, "test_loss"):
        return result.run
    if hasattr(result, "test_loss") and hasattr(result, "desired_loss"):
        return result
    raise ArgumentTypeError(
        f"the method returned a {type(result).__name__}; expected a learnlaw.Run, an object "
        "with .run (e.g. an OnlineResult) or a (T, N) policy tensor"
    )


def _check_grid(grid: Sequence[float]) -> list[float]:
    for v in grid if hasattr(grid, "__iter__") else ():
        if isinstance(v, torch.Tensor) and v.ndim >= 1 or isinstance(v, (list, tuple)):
            checks.check_lr(v, "grid entry")  # names the functions that take a schedule
    try:
        values = [float(v) for v in grid]
    except TypeError:
        raise ArgumentTypeError(
            f"grid must be a sequence of learning rates, got {grid!r}"
        ) from None
    if not values:
        raise ArgumentValueError(
            "the η grid is empty; pass learning rates, e.g. grid=(0.1, 0.3, 1, 3)"
        )
    bad = [v for v in values if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ArgumentValueError(f"every η of the grid must be a positive finite number, got {bad}")
    return values


def _score(curve: Tensor, criterion: str) -> tuple[float, float, float]:
    c = torch.as_tensor(curve, dtype=torch.float64)
    if not bool(torch.isfinite(c).all()):
        return math.inf, math.nan, math.nan
    a, final = auc(c), float(c[-1])
    return (a if criterion == "auc" else final), a, final


def tune_lr(
    fn: Callable[[float], Any],
    grid: Sequence[float],
    *,
    criterion: str = "auc",
    split: str = "test",
    task: Task | None = None,
) -> LrChoice:
    """Run ``fn(lr)`` for every η of ``grid`` and pick the η whose ``split`` curve scores best.

    ``fn`` must already train on a *validation task* (see :func:`validation_task`): with the
    default ``split="test"`` the scored curve is that task's test split, i.e. the validation
    part of the desired set. Never score the real test split; :func:`select_lr` makes the
    validation task for you.

    Args:
        fn: ``lr → result``: a :class:`Run`, an object with ``.run``, or a policy tensor
            (trained on ``task``).
        grid: the learning rates to try (non-empty, positive).
        criterion: ``"auc"`` (Σ_{t≥1} L(θ_t) of the curve) or ``"final"`` (L(θ_T)).
        split: which curve of the run to score, ``"test"`` or ``"desired"``.
        task: the task a returned policy tensor is trained on.

    Returns:
        An :class:`LrChoice` (the chosen η, its score, the whole table).

    Raises:
        ValueError: an empty grid, a bad η, an unknown criterion or split.
        DivergenceError: every η of the grid diverged.
    """
    checks.check_choice(criterion, "criterion", CRITERIA)
    checks.check_choice(split, "split", ("desired", "test"))
    values = _check_grid(grid)
    table, results = [], []
    for lr in values:
        start = time.perf_counter()
        try:
            result = fn(lr)
            run = run_of(result, task, lr)
            score, a, final = _score(
                run.test_loss if split == "test" else run.desired_loss, criterion
            )
            error = None if math.isfinite(score) else "non-finite loss curve"
        except DivergenceError as exc:
            result, score, a, final, error = None, math.inf, math.nan, math.nan, str(exc)
        table.append(
            dict(
                lr=lr,
                score=score,
                auc=a,
                final=final,
                diverged=error is not None,
                error=error,
                seconds=time.perf_counter() - start,
            )
        )
        results.append(result)
    best = min(range(len(values)), key=lambda i: (table[i]["score"], values[i]))
    if not math.isfinite(table[best]["score"]):
        raise DivergenceError(
            f"every η of the grid {values} diverged (first: {table[0]['error']}); try smaller "
            "learning rates"
        )
    return LrChoice(values[best], table[best]["score"], criterion, split, table, results[best])


def validation_task(task: Task, n_holdout: int | None = None, seed: int = 0) -> Task:
    """The task a method is tuned on: desired split = fit part, test split = validation part.

    A thin wrapper of :func:`learnlaw.core.task.holdout_split` with a default size:
    ``n_holdout = max(2, K // 4)`` of the K desired examples are held out for validation.
    """
    if n_holdout is None:
        n_holdout = max(2, task.n_desired // 4)
    return holdout_split(task, n_holdout, seed)  # checks n_holdout (2 … K − 2) and seed


def select_lr(
    task: Task,
    method: Callable[[Task, float], Any],
    grid: Sequence[float],
    *,
    n_holdout: int | None = None,
    holdout_seed: int = 0,
    criterion: str = "auc",
) -> LrChoice:
    """Choose η for ``method`` on a validation part of ``task``'s desired set.

    ``method(val_task, lr)`` is called for every η with the validation task (its desired split
    is the fit part, its test split the held-out validation part; ``task``'s own test split is
    never passed). It returns a :class:`Run`, an object with ``.run`` or a policy tensor (then
    trained on ``val_task``). The score is the validation curve's AUC or final loss.

    Examples:
        >>> choice = select_lr(task, lambda t, lr: train(t, uniform_policy(T, t.n_train), lr),
        ...                    grid=(0.1, 0.3, 1, 3))                    # doctest: +SKIP
        >>> choice = select_lr(task, lambda t, lr: online_policy(t, T, lr, "relu"),
        ...                    grid=(0.1, 0.3, 1))                        # doctest: +SKIP

    Args:
        task: the task (only its train and desired splits are used).
        method: ``(val_task, lr) → result``.
        grid: learning rates to try.
        n_holdout: validation examples taken from the desired set (default K // 4).
        holdout_seed: seeds which desired examples are held out.
        criterion: ``"auc"`` or ``"final"`` (see :func:`tune_lr`).

    Returns:
        An :class:`LrChoice`; ``info`` records the split (``n_holdout``, ``holdout_seed``,
        ``n_fit``). Retrain at the chosen η on ``task`` to report on its test split.
    """
    # n_holdout: holdout_split checks it; criterion: tune_lr, before any run
    checks.check_int(holdout_seed, "holdout_seed")
    val = validation_task(task, n_holdout, holdout_seed)
    choice = tune_lr(lambda lr: method(val, lr), grid, criterion=criterion, task=val)
    info = dict(n_holdout=val.n_test, holdout_seed=holdout_seed, n_fit=val.n_desired)
    return LrChoice(
        choice.lr, choice.score, choice.criterion, choice.split, choice.table, choice.result, info
    )
