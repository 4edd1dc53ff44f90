"""Scaling laws of the loss and the acceleration ratio (paper Eq. 9).

* :func:`fit_scaling_law`, :func:`fit_scaling_laws` → :class:`ScalingFit`: L(t) = L₀ + (B/t)^β
  fitted to loss curves (several at once with a shared L₀);
* :func:`empirical_acceleration_ratio`: AR(T) = T / min{t : curve[t] ≤ reference[T]} from two
  loss curves; :func:`acceleration_ratio_closed_form`: the same from two fitted laws, at any T;
* :func:`hitting_ratio`: Eq. 9 against the reference's best loss rather than its last (the two
  agree when the reference's loss never rises), fair to an oscillating reference;
* :func:`reach_step`: the first step at which a curve reaches a level.
"""

from learnlaw.analysis.scaling import (
    ScalingFit,
    acceleration_ratio_closed_form,
    fit_scaling_law,
    fit_scaling_laws,
)
from learnlaw.core.metrics import empirical_acceleration_ratio, hitting_ratio, reach_step

__all__ = [
    "ScalingFit",
    "acceleration_ratio_closed_form",
    "empirical_acceleration_ratio",
    "fit_scaling_law",
    "fit_scaling_laws",
    "hitting_ratio",
    "reach_step",
]
