"""Learning policies γ (and step-size schedules η) beyond the uniform one.

:func:`learnlaw.uniform_policy`, :func:`learnlaw.project_simplex` and
:func:`learnlaw.online_policy` are at the top level; this namespace holds the rest:

* :func:`validate_policy`, :class:`PolicyError`: a ``(T, N)`` policy checked row by row;
* online rules that read γ_t off the contributions at θ_t (:data:`ONLINE_RULES`,
  :class:`OnlineResult`) and their controls (:data:`CONTROLS`): :func:`replay_policy` →
  :class:`ReplayResult`, :func:`random_sparse_policy`;
* baselines: :func:`importance_policy`, :func:`importance_weights`,
  :func:`effective_sample_size`, :func:`desired_only_task`, :func:`union_task`;
* parametrisations fitted by :mod:`learnlaw.fit`: :func:`block_policy`, :func:`feature_policy`
  (with :func:`example_features`, :func:`trajectory_features`) and :func:`block_schedule`;
* :func:`classic_schedule`: constant, linear and cosine step sizes, with warm-up.
"""

from learnlaw.core.policy import PolicyError, validate_policy
from learnlaw.policies.baselines import (
    desired_only_task,
    effective_sample_size,
    importance_policy,
    importance_weights,
    union_task,
)
from learnlaw.policies.controls import CONTROLS, ReplayResult, random_sparse_policy, replay_policy
from learnlaw.policies.online import ONLINE_RULES, OnlineResult
from learnlaw.policies.parametric import block_policy, feature_policy
from learnlaw.policies.parametric_features import example_features, trajectory_features
from learnlaw.policies.schedule_fit import block_schedule
from learnlaw.policies.schedules import classic_schedule

__all__ = [
    "CONTROLS",
    "ONLINE_RULES",
    "OnlineResult",
    "PolicyError",
    "ReplayResult",
    "block_policy",
    "block_schedule",
    "classic_schedule",
    "desired_only_task",
    "effective_sample_size",
    "example_features",
    "feature_policy",
    "importance_policy",
    "importance_weights",
    "random_sparse_policy",
    "replay_policy",
    "trajectory_features",
    "union_task",
    "validate_policy",
]
