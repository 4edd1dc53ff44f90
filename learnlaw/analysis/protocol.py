"""A referee's protocol for comparing learning policies: tuned on validation, reported on test.

Every method (uniform training, a baseline that changes the training set, an online Learning-Law
rule, a parameterised or fully searched policy) is a callable ``method(val_task, lr, **params)``
run on a *validation task*: its desired split is the fit part of the desired set (what the
method may look at: contributions, policy search) and its test split the held-out validation
part (:func:`learnlaw.fit.validation_task`). The real test split is never passed to
a method. For every point of a grid of hyperparameters × learning rates the protocol

1. runs the method and scores it by the validation AUC Σ_{t=1}^T L_val(θ_t) (+∞ if it diverged),
2. replays the method's policy on the *report task* (train split as the method used it,
   desired = the fit part, test = the task's test split) and keeps the test curve.

:func:`select` then picks, per method, the grid point with the lowest validation AUC, either at a
fixed η (regime (a), the paper's η) or over all η (regime (b), every method at its own tuned η),
and :func:`compare` reports every selected method against the regime's baseline (uniform
training at the fixed η, or at its own tuned η): held-out acceleration ratio (paper Eq. 9),
compression ratio, final held-out loss, and cost in plain runs.

Cost: one method run plus one plain replay per grid point.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.metrics import auc, compression_ratio, reach_step
from learnlaw.core.policy import uniform_policy
from learnlaw.core.task import Task
from learnlaw.core.training import DivergenceError, Run, train

__all__ = [
    "Candidate",
    "Trial",
    "run_trials",
    "select",
    "compare",
    "summarize",
    "format_summary",
    "hitting_ratio",
    "uniform_method",
]


@dataclass(frozen=True)
class Candidate:
    """What a method may return (a bare ``(T, N)`` policy or an object with ``.policy`` works too).

    Attributes:
        policy: γ, ``(T, N')`` over the training examples the method trains on.
        train: the training split ``(inputs, targets)`` with N' examples if the method replaces
            the task's (e.g. training on the desired set alone), else ``None``.
        run: the method's run on the validation task, if it trained one (saves a replay).
    """

    policy: Tensor
    train: tuple[Tensor, Tensor] | None = None
    run: Run | None = None


@dataclass
class Trial:
    """One grid point of one method.

    Attributes:
        method, params, lr: what ran (``params``: the method's hyperparameters).
        seconds: wall time of the method's call (its own training run(s) included).
        val_auc, val_final: the validation curve's AUC and final loss (+∞ / nan if diverged).
        error: the divergence message, or ``None``.
        test: ``(T+1,)`` held-out loss curve of the replay on the report task (``None`` if
            diverged); ``desired``: the same run's fit-part curve.
        zero_fraction: share of the policy's entries that are exactly 0.
        info: what ``inspect(policy)`` returned (``run_trials``), else empty.
        policy: γ, kept only with ``keep_policies=True``.
    """

    method: str
    params: dict
    lr: float
    seconds: float
    val_auc: float
    val_final: float
    error: str | None = None
    test: np.ndarray | None = None
    desired: np.ndarray | None = None
    zero_fraction: float = math.nan
    info: dict = field(default_factory=dict)
    policy: Tensor | None = field(default=None, repr=False)

    @property
    def diverged(self) -> bool:
        return self.error is not None


def _candidate(result: Any) -> Candidate:
    if isinstance(result, Candidate):
        return result
    if isinstance(result, Tensor):
        return Candidate(result)
    if hasattr(result, "policy"):
        run = getattr(result, "run", None)
        return Candidate(result.policy, getattr(result, "train", None), run)
    raise ArgumentTypeError(
        f"a method returned a {type(result).__name__}; expected a (T, N) policy tensor, a "
        "learnlaw.analysis.protocol.Candidate or an object with .policy (e.g. an OnlineResult)"
    )


def _with_train(task: Task, train_split: tuple[Tensor, Tensor] | None) -> Task:
    if train_split is None:
        return task
    return task.with_(train=train_split, kinds={})


def hitting_ratio(reference, curve) -> float:
    """t_ref / t_curve for the level L = min_t reference[t]: the paper's acceleration ratio (Eq. 9),
    made fair to a reference whose loss does not fall monotonically.

    t_x = min{t : x[t] ≤ L}. For a reference whose loss never rises (the paper's case) L is its
    final loss, t_ref = T, and this is :func:`~learnlaw.scaling.empirical_acceleration_ratio`. A
    large step size makes the loss oscillate; its final value can then sit above losses it
    reached long before, and Eq. 9 against that final value rewards the oscillation (the
    reference compared with itself gives T / t_ref > 1). Against the reference's best loss the
    reference gives 1 and a method is credited for reaching what the reference reached, as early
    as it did. ``nan`` when ``curve`` never gets there (or the reference never improves).
    """
    ref = torch.as_tensor(reference, dtype=torch.float64)
    level = float(ref.min())
    t_ref, t_cur = reach_step(ref, level), reach_step(curve, level)
    if t_cur is None or t_ref == 0:
        return math.nan
    if t_cur == 0:
        return math.inf
    return t_ref / t_cur


def run_trials(
    val_task: Task,
    report_task: Task,
    methods: Mapping[str, tuple[Callable[..., Any], Iterable[dict]]],
    lrs: Iterable[float] | Mapping[str, Iterable[float]],
    *,
    keep_policies: bool = False,
    inspect: Callable[[Tensor], dict] | None = None,
    progress: bool = False,
) -> list[Trial]:
    """Run every method at every (hyperparameters, η) point of its grid.

    Args:
        val_task: desired = fit part, test = validation part (never the real test split).
        report_task: the same training split, desired = the fit part, test = the held-out test
            split that the results are reported on.
        methods: ``{name: (fn, grid)}`` with ``fn(val_task, lr, **params)`` returning a policy,
            a :class:`Candidate` or an object with ``.policy`` (and ``.run``), and ``grid`` an
            iterable of ``params`` dicts (``[{}]`` for none).
        lrs: the η grid, or ``{name: grid}`` per method.
        keep_policies: keep every γ in the trials (T·N floats each).
        inspect: called with every policy trained on the task's own training split; what it
            returns is kept as ``Trial.info`` (e.g. the weight of planted example kinds).
        progress: a tqdm bar over the grid points.

    Returns:
        The :class:`Trial` of every grid point.
    """
    if val_task.n_test == 0 or report_task.n_test == 0:
        raise ArgumentValueError("both the validation task and the report task need a test split")
    jobs = []
    for name, (fn, grid) in methods.items():
        lr_grid = lrs[name] if isinstance(lrs, Mapping) else lrs
        lr_grid = [float(v) for v in lr_grid]
        if not lr_grid:
            raise ArgumentValueError(f"the η grid of method {name!r} is empty")
        jobs += [(name, fn, dict(p), lr) for p in list(grid) for lr in lr_grid]
    trials = []
    for name, fn, params, lr in tqdm(jobs, disable=not progress, desc="trials"):
        start = time.perf_counter()
        try:
            cand = _candidate(fn(val_task, lr, **params))
            seconds = time.perf_counter() - start
            run = cand.run or train(_with_train(val_task, cand.train), cand.policy, lr)
            val = run.test_loss
            if not bool(torch.isfinite(val).all()):
                raise DivergenceError(f"non-finite validation loss at lr = {lr:g}")
            report = train(_with_train(report_task, cand.train), cand.policy, lr)
        except DivergenceError as exc:
            trials.append(
                Trial(name, params, lr, time.perf_counter() - start, math.inf, math.nan, str(exc))
            )
            continue
        trials.append(
            Trial(
                name,
                params,
                lr,
                seconds,
                auc(val),
                float(val[-1]),
                test=report.test_loss.double().cpu().numpy(),
                desired=report.desired_loss.double().cpu().numpy(),
                zero_fraction=float((cand.policy == 0).double().mean()),
                info=inspect(cand.policy) if inspect and cand.train is None else {},
                policy=cand.policy if keep_policies else None,
            )
        )
    return trials


def select(trials: list[Trial], method: str, lr: float | None = None) -> Trial:
    """The trial of ``method`` with the lowest validation AUC (at η = ``lr`` if given).

    Ties go to the smaller η. Raises ``LookupError`` when no trial fits or all diverged.
    """
    pool = [t for t in trials if t.method == method and (lr is None or math.isclose(t.lr, lr))]
    if not pool:
        raise LookupError(f"no trial of method {method!r}" + ("" if lr is None else f" at η={lr}"))
    best = min(pool, key=lambda t: (t.val_auc, t.lr))
    if best.diverged:
        raise LookupError(f"every trial of method {method!r} diverged: {best.error}")
    return best


def compare(
    trials: list[Trial],
    *,
    vocab_size: int,
    baseline: str = "uniform",
    fixed_lr: float | None = None,
    plain_seconds: float | None = None,
) -> list[dict]:
    """One row per method: its validation-selected trial against the regime's baseline.

    Args:
        trials: from :func:`run_trials`.
        vocab_size: |V| of the compression ratio.
        baseline: the method every other is compared with (selected the same way).
        fixed_lr: regime (a): every method at this η (its other hyperparameters still chosen on
            validation); ``None``: regime (b), every method at its own validation-tuned η.
        plain_seconds: the time of one plain training run, the unit of ``cost`` (default: the
            baseline's trial time).

    Returns:
        Dicts with ``method``, ``lr``, ``params``, ``cost`` (the method's seconds / one plain
        run), ``tuning_cost`` (all of the method's grid points, in plain runs), ``val_auc``,
        ``ar_test`` (:func:`hitting_ratio` on the test curves: how many times sooner than the
        baseline the method reaches the baseline's best test loss; nan if never reached), ``cr_test``, ``final_test``, ``ar_desired``, and
        ``zero_fraction``, ``info`` (the trial's) and ``curve`` (its test curve, an array);
        methods whose trials all diverged get ``error``.
    """
    base = select(trials, baseline, fixed_lr)
    unit = plain_seconds if plain_seconds is not None else base.seconds
    rows = []
    for name in dict.fromkeys(t.method for t in trials):
        grid_seconds = sum(t.seconds for t in trials if t.method == name)
        try:
            t = select(trials, name, fixed_lr)
        except LookupError as exc:
            rows.append(dict(method=name, error=str(exc), tuning_cost=grid_seconds / unit))
            continue
        rows.append(
            dict(
                method=name,
                lr=t.lr,
                params=t.params,
                cost=t.seconds / unit,
                tuning_cost=grid_seconds / unit,
                val_auc=t.val_auc,
                ar_test=hitting_ratio(base.test, t.test),
                cr_test=compression_ratio(t.test, vocab_size),
                final_test=float(t.test[-1]),
                ar_desired=hitting_ratio(base.desired, t.desired),
                zero_fraction=t.zero_fraction,
                info=t.info,
                curve=t.test,
            )
        )
    return rows


def summarize(
    per_seed: list[list[dict]], keys=("ar_test", "cr_test", "final_test", "cost")
) -> dict:
    """Mean, standard deviation, min and max over seeds of each method's row values.

    A missing or nan acceleration ratio (the baseline's final loss never reached) counts as
    nan; ``reached`` says in how many seeds it was reached.
    """
    out: dict[str, dict] = {}
    names = dict.fromkeys(r["method"] for rows in per_seed for r in rows)
    for name in names:
        rows = [r for rows in per_seed for r in rows if r["method"] == name]
        entry = dict(seeds=len(rows), lrs=[r.get("lr") for r in rows])
        for k in keys:
            v = np.array([r.get(k, math.nan) for r in rows], dtype=float)
            ok = v[np.isfinite(v)]
            entry[k] = dict(
                mean=float(v.mean()) if len(v) else math.nan,
                std=float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                min=float(ok.min()) if len(ok) else math.nan,
                max=float(ok.max()) if len(ok) else math.nan,
                reached=int(len(ok)),
            )
        out[name] = entry
    return out


def uniform_method(task: Task, lr: float, steps: int) -> Candidate:
    """Conventional learning as a method: the uniform policy γ_{t,n} = 1/N, trained on ``task``."""
    policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=task.device)
    return Candidate(policy, run=train(task, policy, lr))


def _fmt(stat: dict, seeds: int, digits: int = 3) -> str:
    if stat["reached"] == 0:
        return "never"
    if stat["reached"] < seeds:  # some seeds never reach: show those that do
        span = f"{stat['min']:.{digits}g}" + (
            "" if stat["min"] == stat["max"] else f"–{stat['max']:.{digits}g}"
        )
        return f"{span} ({stat['reached']} of {seeds} seeds)"
    if math.isnan(stat["std"]):
        return f"{stat['mean']:.{digits}g}"
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.{digits - 1}g}"


def format_summary(summary: dict, keys=("ar_test", "cr_test", "final_test", "cost")) -> str:
    """A plain-text table of :func:`summarize`'s output: mean ± standard deviation over seeds.

    An acceleration ratio that some seeds never reach shows the range over the seeds that do;
    ``never`` means no seed reached the baseline's final loss.
    """
    head = ["method", "η (per seed)", *keys]
    lines = []
    for name, entry in summary.items():
        lrs = ", ".join("—" if v is None else f"{v:g}" for v in entry["lrs"])
        lines.append([name, lrs, *(_fmt(entry[k], entry["seeds"]) for k in keys)])
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
    fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])
