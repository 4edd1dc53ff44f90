"""Paired comparison of a method with its baseline over seeds: ratios, times to targets, "beats".

Every seed gives one method run and one baseline run (the validation-tuned uniform learner) on
the same data, so the comparison is *paired*: the seed-to-seed variation of the data cancels in
the per-seed ratio r_i = m_i / b_i (S seeds, i = 1 … S), and the statistics are over the r_i.

* :func:`paired_ratio`: the mean ratio and a Student-t interval over seeds, computed on
  ln r_i and back-transformed (e.g. the held-out compression ratio, method CR ÷ tuned uniform CR,
  or the final held-out loss ratio);
* :func:`time_to_target`, :func:`targets_from_baseline`, :func:`target_speedups`: how many steps
  a curve needs to reach losses that the baseline reaches at T/64, T/8 and T, a measure that a
  plateau at the end of training cannot improve;
* :func:`beats`: the fixed rule by which a method "beats" its baseline.

Pure functions of numbers and arrays (nothing trains here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.optional import require

__all__ = [
    "PairedRatio",
    "paired_ratio",
    "time_to_target",
    "targets_from_baseline",
    "TargetSpeedups",
    "target_speedups",
    "beats",
]

DEFAULT_FRACTIONS = (1 / 64, 1 / 8, 1.0)


def _array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def _positive_values(values, name: str) -> np.ndarray:
    v = _array(values)
    if v.ndim != 1 or len(v) == 0:
        raise ArgumentValueError(
            f"{name} must be a non-empty 1-D sequence of per-seed values, got shape {v.shape}"
        )
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ArgumentValueError(
            f"{name} must be finite and > 0 in every seed (a ratio of such values is taken), "
            f"got {float(v[i])!r} at seed index {i}; drop or fix the seeds whose runs diverged"
        )
    return v


@dataclass(frozen=True)
class PairedRatio:
    """Per-seed ratios r_i = m_i / b_i and their summary over the S seeds.

    Attributes:
        ratios: ``(S,)`` the per-seed ratios r_i.
        n: S, the number of seeds.
        mean: the arithmetic mean (1/S) Σ r_i.
        geometric_mean: exp(μ) with μ = (1/S) Σ ln r_i, the centre of the interval.
        low, high: the back-transformed Student-t interval exp(μ ∓ q·s/√S) (nan when S = 1).
        confidence: its two-sided level.
    """

    ratios: np.ndarray
    n: int
    mean: float
    geometric_mean: float
    low: float
    high: float
    confidence: float


def paired_ratio(method_values, baseline_values, *, confidence: float = 0.95) -> PairedRatio:
    """The paired ratio of a method's per-seed values to its baseline's, with a t interval.

    With r_i = m_i / b_i and d_i = ln r_i (i = 1 … S), μ = (1/S) Σ d_i and
    s² = Σ (d_i − μ)² / (S − 1), the interval is

        [exp(μ − q·s/√S), exp(μ + q·s/√S)],   q = t_{S−1}^{-1}((1 + confidence)/2)

    (scipy.stats.t quantile). It is the Student-t interval of the mean log-ratio, mapped back by
    exp: a ratio lives on (0, ∞) and is skewed (r and 1/r are equally far from 1), the log makes
    it symmetric and closer to normal, the back-transformed interval never leaves (0, ∞), and the
    method's interval for m/b is exactly the reciprocal of the one for b/m. It brackets the
    geometric mean exp(μ), which is ≤ the arithmetic mean of the r_i (also returned).

    Args:
        method_values: ``(S,)`` per-seed values of the method (e.g. held-out CR), all > 0.
        baseline_values: ``(S,)`` the baseline's values in the same seed order, all > 0.
        confidence: the two-sided level, in (0, 1).

    Returns:
        A :class:`PairedRatio`. With S = 1 there is no spread to estimate (S − 1 = 0 degrees of
        freedom): ``low`` and ``high`` are nan, the means are the single ratio.

    Raises:
        ValueError: lengths differ, a sequence is empty or not 1-D, a value is ≤ 0 or not
            finite, or ``confidence`` is outside (0, 1).
    """
    conf = checks.check_number(confidence, "confidence", expected="a number in (0, 1)")
    if not 0 < conf < 1:
        raise checks.ArgumentValueError(
            f"confidence must be a number in (0, 1), got {confidence!r} (e.g. 0.95)"
        )
    m = _positive_values(method_values, "method_values")
    b = _positive_values(baseline_values, "baseline_values")
    if m.shape != b.shape:
        raise ArgumentValueError(
            f"method_values has {len(m)} seeds but baseline_values {len(b)}; pass one value "
            "per seed for both, in the same seed order"
        )
    ratios = m / b
    logs = np.log(ratios)
    n = len(logs)
    mu = float(logs.mean())
    low = high = math.nan
    if n > 1:
        student_t = require("scipy.stats", "a Student-t interval").t
        half = float(student_t.ppf((1 + conf) / 2, n - 1)) * float(logs.std(ddof=1)) / math.sqrt(n)
        low, high = math.exp(mu - half), math.exp(mu + half)
    return PairedRatio(
        ratios=ratios,
        n=n,
        mean=float(ratios.mean()),
        geometric_mean=math.exp(mu),
        low=low,
        high=high,
        confidence=conf,
    )


def _loss_curve(curve, name: str) -> np.ndarray:
    c = _array(curve)
    if c.ndim != 1 or len(c) < 2:
        raise ArgumentValueError(
            f"{name} must be a loss curve of shape (T+1,) with T ≥ 1 (losses at θ_0…θ_T), "
            f"got shape {c.shape}"
        )
    return c


def time_to_target(curve, target: float) -> int | None:
    """The first step t ≥ 1 with ``curve[t] ≤ target``; ``None`` if the curve never gets there.

    t counts training steps: ``curve[t]`` is the loss at θ_t, t = 0 … T. θ_0 is left out (every
    policy starts there), so the answer is in 1 … T. A nan or +∞ entry (a diverged run) never
    counts as reaching the target.

    Args:
        curve: ``(T+1,)`` losses (a tensor, array or sequence).
        target: the loss level (a finite number).
    """
    level = checks.check_number(target, "target")
    c = _loss_curve(curve, "curve")
    with np.errstate(invalid="ignore"):
        hit = np.flatnonzero(c[1:] <= level)
    return int(hit[0]) + 1 if len(hit) else None


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    if isinstance(fractions, (str, torch.Tensor)) or not hasattr(fractions, "__iter__"):
        raise checks.ArgumentTypeError(
            f"fractions must be a sequence of fractions of T in (0, 1], got "
            f"{checks.describe(fractions)}"
        )
    out = tuple(
        checks.check_number(
            f, "fractions", minimum=0.0, strict=True, maximum=1.0, expected="in (0, 1]"
        )
        for f in fractions
    )
    if not out:
        raise ArgumentValueError(
            "fractions must hold at least one fraction of T, e.g. (1/64, 1/8, 1)"
        )
    return out


def _target_steps(steps: int, fractions: tuple[float, ...]) -> np.ndarray:
    return np.array([max(1, round(f * steps)) for f in fractions], dtype=np.int64)


def targets_from_baseline(baseline_curve, fractions: Sequence[float] = DEFAULT_FRACTIONS):
    """The losses the baseline has reached by steps T/64, T/8 and T (or other fractions of T).

    For each fraction f the step is s_f = max(1, round(f·T)) (Python's round, half to even) and
    the target is the baseline's running minimum over steps 1 … s_f,

        L_f = min_{1 ≤ t ≤ s_f} baseline[t],

    not its value at s_f: a curve that oscillates has reached L_f by then even if it sits
    above it at s_f. So ``time_to_target(baseline_curve, L_f) ≤ s_f`` always, and a method whose
    curve reaches L_f sooner is faster at that level. θ_0 (t = 0) is left out, as in
    :func:`time_to_target`.

    Args:
        baseline_curve: ``(T+1,)`` the baseline's losses at θ_0 … θ_T (finite).
        fractions: fractions of T in (0, 1].

    Returns:
        ``(F,)`` float64 array of the targets L_f, one per fraction.
    """
    c = _loss_curve(baseline_curve, "baseline_curve")
    if not np.isfinite(c).all():
        raise ArgumentValueError(
            "baseline_curve has non-finite entries; a diverged run sets no targets"
        )
    fr = _check_fractions(fractions)
    running = np.minimum.accumulate(c[1:])  # running[t - 1] = min_{1 ≤ u ≤ t} c[u]
    return running[_target_steps(len(c) - 1, fr) - 1]


@dataclass(frozen=True)
class TargetSpeedups:
    """Times to the baseline's targets and the speed-ups, one entry per fraction of T.

    Attributes:
        fractions: ``(F,)`` the fractions f.
        steps: ``(F,)`` s_f = max(1, round(f·T)), the steps whose running minimum is the target.
        targets: ``(F,)`` the losses L_f (:func:`targets_from_baseline`).
        baseline_time: ``(F,)`` the baseline's time to L_f (≤ s_f).
        method_time: ``(F,)`` the method's time to L_f (nan where never reached).
        speedup: ``(F,)`` baseline_time / method_time (nan where never reached); > 1 is faster.
    """

    fractions: np.ndarray
    steps: np.ndarray
    targets: np.ndarray
    baseline_time: np.ndarray
    method_time: np.ndarray
    speedup: np.ndarray


def target_speedups(
    baseline_curve, curve, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> TargetSpeedups:
    """How many times sooner than the baseline ``curve`` reaches each of the baseline's targets.

    speedup_f = τ_b(L_f) / τ_m(L_f), with τ the :func:`time_to_target` of the baseline and of the
    method and L_f the :func:`targets_from_baseline` levels. A late plateau of the method cannot
    raise it (only how early each level is reached counts), and the level at T/64 or T/8 shows
    whether a method is faster early on even when it ends at the same loss.

    Args:
        baseline_curve: ``(T+1,)`` the baseline's losses (finite).
        curve: ``(T+1,)`` the method's losses on the same split, same T.
        fractions: fractions of T in (0, 1].
    """
    base = _loss_curve(baseline_curve, "baseline_curve")
    c = _loss_curve(curve, "curve")
    if len(c) != len(base):
        raise ArgumentValueError(
            f"curve has T = {len(c) - 1} steps but baseline_curve T = {len(base) - 1}; compare "
            "runs of the same length"
        )
    fr = _check_fractions(fractions)
    targets = targets_from_baseline(base, fr)
    t_base = np.array([time_to_target(base, float(v)) for v in targets], dtype=np.float64)
    t_meth = np.array(
        [np.nan if (t := time_to_target(c, float(v))) is None else t for v in targets],
        dtype=np.float64,
    )
    return TargetSpeedups(
        fractions=np.array(fr, dtype=np.float64),
        steps=_target_steps(len(base) - 1, fr),
        targets=targets,
        baseline_time=t_base,
        method_time=t_meth,
        speedup=t_base / t_meth,
    )


def beats(ratio_interval, final_ratios, *, threshold: float = 1.0) -> bool:
    """The rule, fixed before the chapter's tables, by which a method beats its baseline.

    A method beats the validation-tuned uniform learner when both hold:

    1. the paired interval of its held-out compression-ratio ratio (method CR ÷ baseline CR,
       :func:`paired_ratio`) lies entirely above ``threshold``: low > threshold;
    2. its final held-out loss is lower than the baseline's in every seed: every
       final_ratio_i = final_method_i / final_baseline_i < 1.

    The first asks for a compression gain that the seeds' spread cannot explain; the second
    that the gain is not bought with a worse end point. With one seed the interval is undefined
    (nan) and the rule is not met.

    Args:
        ratio_interval: a :class:`PairedRatio`, or the pair ``(low, high)``.
        final_ratios: ``(S,)`` per-seed final held-out loss ratios, method ÷ baseline (> 0).
        threshold: the ratio the interval must clear, > 0 (default 1: no gain).

    Returns:
        ``True`` if both conditions hold.

    Raises:
        ValueError: ``final_ratios`` is empty, non-positive or not finite, its length differs
            from the interval's number of seeds, or the interval is not a (low, high) pair.
    """
    thr = checks.check_number(threshold, "threshold", minimum=0.0, strict=True)
    finals = _positive_values(final_ratios, "final_ratios")
    if isinstance(ratio_interval, PairedRatio):
        if ratio_interval.n != len(finals):
            raise ArgumentValueError(
                f"the CR interval is over {ratio_interval.n} seeds but final_ratios has "
                f"{len(finals)}; pass the same seeds to both"
            )
        low = ratio_interval.low
    else:
        pair = np.asarray(ratio_interval, dtype=np.float64)
        if pair.shape != (2,):
            raise ArgumentValueError(
                "ratio_interval must be a PairedRatio or a (low, high) pair, got shape "
                f"{pair.shape}"
            )
        low, high = float(pair[0]), float(pair[1])
        if low > high:
            raise ArgumentValueError(
                f"ratio_interval has low = {low} > high = {high}; pass (low, high)"
            )
    return bool(low > thr and (finals < 1).all())
