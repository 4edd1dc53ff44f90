"""What sits under :func:`learnlaw.train` and the adjoint.

* the divergence criterion: :data:`DIVERGENCE_FACTOR`, :func:`check_divergence`,
  :class:`DivergenceError` (a run whose loss left the criterion);
* :func:`adjoint_sweep`: one forward run and one backward (adjoint) sweep, returning the run, ∂J/∂γ
  and ∂J/∂η together (:func:`learnlaw.policy_gradient` and :func:`learnlaw.schedule_gradient` each
  return one of them); :func:`resolve_checkpointing` is how it chooses the segment length that
  trades memory for recomputation;
* :func:`kernels_for`: the per-step kernels a task trains with (fused closed forms for the
  logistic perceptron, ``torch.func`` autodiff for any other model).
"""

from learnlaw.core.adjoint import adjoint_sweep, resolve_checkpointing
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.training import DIVERGENCE_FACTOR, DivergenceError, check_divergence

__all__ = [
    "DIVERGENCE_FACTOR",
    "DivergenceError",
    "adjoint_sweep",
    "check_divergence",
    "kernels_for",
    "resolve_checkpointing",
]
