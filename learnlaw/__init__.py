"""learnlaw: optimal learning policies for language models, as an executable book.

The public API, by concept:

* tasks: :class:`Task`, :func:`perceptron_task`, :func:`transformer_task` (with
  :class:`Transformer`, :func:`generate_stories`, :func:`train_tokenizer`, :func:`perturb`);
  your own Hugging Face causal LM: :func:`causal_lm_task` (``pip install "learnlaw[hf]"``)
* policies: :func:`uniform_policy`, :func:`validate_policy`, :func:`project_simplex`
  (controls: :func:`replay_policy`, :func:`random_sparse_policy`; ``online_policy(control=)``)
* step-size schedules (constant, linear, cosine, with warm-up): :func:`classic_schedule`
* training: :func:`train` → :class:`Run`
* the AUC and its gradient: :func:`auc`, :func:`compression_ratio`, :func:`policy_gradient`;
  step sizes: :func:`train` takes a ``(T,)`` schedule, :func:`schedule_gradient` gives ∂J/∂η_t,
  :func:`classic_schedule` builds constant / linear / cosine ones
* policy search: :func:`optimize_policy`; from the command line, on one process or under
  ``torchrun`` (data parallelism, :mod:`learnlaw.core.distributed`): ``python -m learnlaw.search``
* training: the divergence criterion :data:`DIVERGENCE_FACTOR` and :func:`check_divergence`
* parametric policies fitted by the adjoint: :func:`fit_block_policy`, :func:`fit_feature_policy`;
  learned step-size schedules, alone or with the weights: :func:`fit_schedule`, :func:`fit_joint`
  (their optimality conditions: :func:`schedule_kkt_residual`, :func:`total_free_residual`)
* scaling laws: :func:`fit_scaling_law`, :func:`acceleration_ratio`; sweeps:
  ``python -m learnlaw.sweep`` (:func:`learnlaw.sweep.run_sweep`)
* learning as compression: :func:`compress`, :func:`decompress`, :func:`encode`
* the Learning Law: :func:`contributions`, :func:`run_contributions`, :func:`sim`,
  :func:`learning_speeds`, ...
* devices and costs: :func:`matmul_precision` (TF32; also ``tf32=`` on training and search),
  :class:`DeviceAudit` (mixed-device ops and host synchronisations), :func:`count_flops`,
  :func:`meta_peak_bytes`, :func:`transformer_costs`, :func:`task_costs`,
  :func:`project_seconds` (counted FLOPs and meta-device peak memory); the presets
  :data:`CPU_SCALE`, :data:`COLAB_SCALE`, :data:`PAPER_SCALE`
"""

from learnlaw.analysis.compress import (
    CoderConfig,
    CompressionError,
    Encoded,
    compress,
    compressed_bits_bound,
    decompress,
    encode,
    prequential_code_length,
)
from learnlaw.analysis.cost import (
    count_flops,
    meta_peak_bytes,
    meta_transformer_task,
    project_seconds,
    task_costs,
    transformer_costs,
)
from learnlaw.analysis.device_audit import DeviceAudit
from learnlaw.analysis.scaling import (
    ScalingFit,
    acceleration_ratio,
    acceleration_ratio_closed_form,
    empirical_acceleration_ratio,
    fit_scaling_law,
    fit_scaling_laws,
)
from learnlaw.analysis.schedule_theory import (
    FreeTotalKKT,
    schedule_kkt_residual,
    total_free_gradient,
    total_free_residual,
)
from learnlaw.analysis.sharpness import sharpness
from learnlaw.analysis.theory import (
    KKTReport,
    ProjectionKKT,
    fd_directional_derivative,
    future_contributions,
    kkt_report,
    projection_kkt,
)
from learnlaw.core.adjoint import adjoint_sweep, policy_gradient, schedule_gradient
from learnlaw.core.checkpoint import CheckpointError
from learnlaw.core.errors import LearnlawError
from learnlaw.core.law import (
    contribution_trajectory,
    contributions,
    learned_weight_ratios,
    learning_speeds,
    run_contributions,
    sim,
    zero_weight_fraction,
)
from learnlaw.core.metrics import auc, compression_ratio, empirical_acceleration, reach_step
from learnlaw.core.optimize import SearchResult, optimize_policy
from learnlaw.core.policy import PolicyError, project_simplex, uniform_policy, validate_policy
from learnlaw.core.precision import matmul_precision
from learnlaw.core.task import ParamSpec, Task
from learnlaw.core.training import DIVERGENCE_FACTOR, DivergenceError, Run, check_divergence, train
from learnlaw.policies.baselines import (
    desired_only_task,
    effective_sample_size,
    importance_policy,
    importance_weights,
    uniform_baseline,
    union_task,
)
from learnlaw.policies.controls import (
    CONTROLS,
    ReplayResult,
    random_sparse_policy,
    replay_policy,
)
from learnlaw.policies.online import ONLINE_RULES, OnlineResult, online_policy
from learnlaw.policies.parametric import block_policy, feature_policy
from learnlaw.policies.parametric_features import example_features, trajectory_features
from learnlaw.policies.parametric_fit import ParametricResult, fit_block_policy, fit_feature_policy
from learnlaw.policies.schedule_fit import ScheduleResult, fit_joint, fit_schedule
from learnlaw.policies.schedules import classic_schedule
from learnlaw.policies.tuning import LrChoice, select_lr, tune_lr, validation_task
from learnlaw.tasks.hf import causal_lm_task
from learnlaw.tasks.lm_task import COLAB_SCALE, CPU_SCALE, PAPER_SCALE, PRESETS, transformer_task
from learnlaw.tasks.perceptron import perceptron_task
from learnlaw.tasks.stories import generate_stories
from learnlaw.tasks.text import (
    decode_sequences,
    encode_sequences,
    load_tinystories,
    perturb,
    perturb_fraction,
    train_tokenizer,
)
from learnlaw.tasks.transformer import Transformer, TransformerConfig, count_params, sequence_loss

__version__ = "0.1.0"

__all__ = [
    "LearnlawError",
    "transformer_task",
    "causal_lm_task",
    "PRESETS",
    "PAPER_SCALE",
    "CPU_SCALE",
    "COLAB_SCALE",
    "Transformer",
    "TransformerConfig",
    "sequence_loss",
    "count_params",
    "generate_stories",
    "train_tokenizer",
    "encode_sequences",
    "decode_sequences",
    "perturb",
    "perturb_fraction",
    "load_tinystories",
    "KKTReport",
    "ProjectionKKT",
    "fd_directional_derivative",
    "future_contributions",
    "kkt_report",
    "projection_kkt",
    "ScalingFit",
    "acceleration_ratio",
    "acceleration_ratio_closed_form",
    "empirical_acceleration_ratio",
    "fit_scaling_law",
    "fit_scaling_laws",
    "CoderConfig",
    "CompressionError",
    "Encoded",
    "compress",
    "compressed_bits_bound",
    "decompress",
    "encode",
    "prequential_code_length",
    "DivergenceError",
    "DIVERGENCE_FACTOR",
    "check_divergence",
    "CheckpointError",
    "ParamSpec",
    "PolicyError",
    "Run",
    "SearchResult",
    "Task",
    "__version__",
    "adjoint_sweep",
    "auc",
    "compression_ratio",
    "contribution_trajectory",
    "contributions",
    "empirical_acceleration",
    "learned_weight_ratios",
    "learning_speeds",
    "optimize_policy",
    "perceptron_task",
    "policy_gradient",
    "schedule_gradient",
    "project_simplex",
    "reach_step",
    "sim",
    "train",
    "uniform_policy",
    "validate_policy",
    "zero_weight_fraction",
    "ParametricResult",
    "block_policy",
    "example_features",
    "feature_policy",
    "fit_block_policy",
    "fit_feature_policy",
    "trajectory_features",
    "ONLINE_RULES",
    "OnlineResult",
    "online_policy",
    "CONTROLS",
    "ReplayResult",
    "replay_policy",
    "random_sparse_policy",
    "classic_schedule",
    "ScheduleResult",
    "fit_schedule",
    "fit_joint",
    "FreeTotalKKT",
    "schedule_kkt_residual",
    "total_free_gradient",
    "total_free_residual",
    "LrChoice",
    "select_lr",
    "sharpness",
    "tune_lr",
    "validation_task",
    "desired_only_task",
    "effective_sample_size",
    "importance_policy",
    "importance_weights",
    "uniform_baseline",
    "union_task",
    "run_contributions",
    "matmul_precision",
    "DeviceAudit",
    "count_flops",
    "meta_peak_bytes",
    "meta_transformer_task",
    "project_seconds",
    "task_costs",
    "transformer_costs",
]
