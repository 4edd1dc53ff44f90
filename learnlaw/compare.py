"""Comparing methods fairly: paired ratios over seeds with intervals, and per-target speed-ups.

* :func:`paired_ratio` → :class:`PairedRatio`: the geometric mean of per-seed ratios of a method
  to its baseline, with a t interval on the log scale; :func:`beats`: whether an interval and the
  per-seed ratios clear a threshold;
* :func:`targets_from_baseline`, :func:`target_speedups` → :class:`TargetSpeedups`: how many
  times fewer steps a method needs to reach the losses its baseline reaches at given fractions
  of the run;
* :func:`evaluate_policy`: a policy's run against the conventional one (AR, CR on every split).
"""

from learnlaw.analysis.evaluation import evaluate_policy
from learnlaw.analysis.paired import (
    PairedRatio,
    TargetSpeedups,
    beats,
    paired_ratio,
    target_speedups,
    targets_from_baseline,
)

__all__ = [
    "PairedRatio",
    "TargetSpeedups",
    "beats",
    "evaluate_policy",
    "paired_ratio",
    "target_speedups",
    "targets_from_baseline",
]
