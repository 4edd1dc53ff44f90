"""Checks of the theory: the optimality (KKT) conditions, finite differences and curvature.

* :func:`kkt_report` → :class:`KKTReport`, :func:`projection_kkt` → :class:`ProjectionKKT`: how
  far a policy is from the KKT conditions of the simplex-constrained problem;
  :func:`future_contributions`: the contributions weighted by the rest of the run;
* :func:`schedule_kkt_residual`, :func:`total_free_gradient`, :func:`total_free_residual` →
  :class:`FreeTotalKKT`: the same conditions for a learned step-size schedule;
* :func:`fd_directional_derivative`: a central finite difference of J along a direction (the
  independent check of the adjoint);
* :func:`sharpness`: the top Hessian eigenvalue along a run (edge of stability).
"""

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

__all__ = [
    "FreeTotalKKT",
    "KKTReport",
    "ProjectionKKT",
    "fd_directional_derivative",
    "future_contributions",
    "kkt_report",
    "projection_kkt",
    "schedule_kkt_residual",
    "sharpness",
    "total_free_gradient",
    "total_free_residual",
]
