"""learnlaw: optimal learning policies for language models, as an executable book.

The top level holds the verbs of the book; everything else lives in a namespace, one concept each.

* a task and its run: :class:`Task`, :func:`perceptron_task`, :func:`transformer_task`;
  :func:`train` → :class:`Run`; :func:`auc`, :func:`compression_ratio`;
* policies γ, a ``(T, N)`` weight per step and example, each row on the simplex:
  :func:`uniform_policy`, :func:`project_simplex`, :func:`online_policy`;
* the exact gradient of the AUC through the whole run (the adjoint): :func:`policy_gradient`
  (∂J/∂γ), :func:`schedule_gradient` (∂J/∂η); the search that follows it:
  :func:`optimize_policy`; the step size chosen on validation: :func:`select_lr`;
* your own model and data in one call: :func:`reweight` (η chosen on validation for an online
  rule and for a uniform baseline; θ_T and a trust score per training example);
* the Learning Law: :func:`contributions`, :func:`sim`;
* :class:`LearnlawError`, the base of every error learnlaw raises.

Namespaces (each with its own ``__all__``):

* :mod:`learnlaw.tasks`: your own causal LM, the Transformer, its corpus, presets and noise;
* :mod:`learnlaw.policies`: validation, online rules and controls, baselines, parametrisations,
  classic step-size schedules;
* :mod:`learnlaw.fit`: parametric policy and schedule fits, the step-size tuner;
* :mod:`learnlaw.training`: the divergence criterion, the adjoint sweep, the per-step kernels;
* :mod:`learnlaw.law`: contributions along a run and what they say;
* :mod:`learnlaw.theory`: KKT conditions, finite differences, sharpness;
* :mod:`learnlaw.scaling`: scaling-law fits and the acceleration ratio;
* :mod:`learnlaw.compare`: paired comparisons over seeds;
* :mod:`learnlaw.compress`: learning as lossless compression;
* :mod:`learnlaw.profile`: precision, device audits, counted FLOPs and memory;
* :mod:`learnlaw.data`: committed results and their tolerances.

Command lines: ``python -m learnlaw.search`` (policy search, also under ``torchrun``),
``python -m learnlaw.sweep`` (sweeps), ``python -m learnlaw.bench`` (benchmarks).
"""

from learnlaw import (
    compare,
    compress,
    data,
    fit,
    law,
    policies,
    profile,
    scaling,
    tasks,
    theory,
    training,
)
from learnlaw.core.adjoint import policy_gradient, schedule_gradient
from learnlaw.core.errors import LearnlawError
from learnlaw.core.law import contributions, sim
from learnlaw.core.metrics import auc, compression_ratio
from learnlaw.core.optimize import optimize_policy
from learnlaw.core.policy import project_simplex, uniform_policy
from learnlaw.core.task import Task
from learnlaw.core.training import Run, train
from learnlaw.policies.online import online_policy
from learnlaw.policies.reweight import reweight
from learnlaw.policies.tuning import select_lr
from learnlaw.tasks.lm_task import transformer_task
from learnlaw.tasks.perceptron import perceptron_task

__version__ = "0.1.0"

__all__ = [
    "LearnlawError",
    "Run",
    "Task",
    "auc",
    "compression_ratio",
    "contributions",
    "online_policy",
    "optimize_policy",
    "perceptron_task",
    "policy_gradient",
    "project_simplex",
    "reweight",
    "schedule_gradient",
    "select_lr",
    "sim",
    "train",
    "transformer_task",
    "uniform_policy",
]

# The namespaces are attributes (``learnlaw.fit.fit_schedule``), not names to star-import.
_NAMESPACES = (
    compare,
    compress,
    data,
    fit,
    law,
    policies,
    profile,
    scaling,
    tasks,
    theory,
    training,
)
