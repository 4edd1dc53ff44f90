"""Fitting policies and step sizes through the unrolled run.

The full (T, N) policy search is :func:`learnlaw.optimize_policy` (top level); this namespace holds
its parametric families and the step-size tuner:

* :func:`fit_block_policy`, :func:`fit_feature_policy`: policies with few parameters (piecewise
  constant in time, or a function of per-example features), fitted by the adjoint
  → :class:`ParametricResult`;
* :func:`fit_schedule`, :func:`fit_joint`: a learned step-size schedule, alone or with the
  weights → :class:`ScheduleResult`; :func:`schedule_pullback` maps ∂J/∂η_t onto its blocks;
* :func:`tune_lr` picks η from a callable ``lr → run`` on validation (→ :class:`LrChoice`); :func:`validation_task`
  splits a validation part off the desired set (:func:`learnlaw.select_lr` does both and re-runs);
* :class:`Reweighted` (what :func:`learnlaw.reweight` returns) and its default grid
  :data:`DEFAULT_LRS`;
* :class:`SearchResult` (what :func:`learnlaw.optimize_policy` returns) and
  :class:`CheckpointError` (a resume file that does not match its search);
* :func:`fit_loop`, the one outer loop under every fit above (validation, patience, best
  epoch, divergence, checkpoint/resume, process groups, progress), and :class:`Family`, what a
  fit plugs into it (its start, its maps to γ and η, its pullback, its update) — write one to
  fit a policy family of your own; :class:`FitOutcome` is what the loop returns and
  :func:`rms_normalize` its scale-free outer step.
"""

from learnlaw.core.checkpoint import CheckpointError
from learnlaw.core.engine import Family, FitOutcome, fit_loop, rms_normalize
from learnlaw.core.optimize import SearchResult
from learnlaw.policies.parametric_fit import ParametricResult, fit_block_policy, fit_feature_policy
from learnlaw.policies.reweight import DEFAULT_LRS, Reweighted
from learnlaw.policies.schedule_fit import (
    ScheduleResult,
    fit_joint,
    fit_schedule,
    schedule_pullback,
)
from learnlaw.policies.tuning import LrChoice, tune_lr, validation_task

__all__ = [
    "CheckpointError",
    "DEFAULT_LRS",
    "Family",
    "FitOutcome",
    "LrChoice",
    "ParametricResult",
    "Reweighted",
    "ScheduleResult",
    "SearchResult",
    "fit_block_policy",
    "fit_feature_policy",
    "fit_joint",
    "fit_loop",
    "fit_schedule",
    "rms_normalize",
    "schedule_pullback",
    "tune_lr",
    "validation_task",
]
