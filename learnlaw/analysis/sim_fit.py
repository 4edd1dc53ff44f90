"""The paper's Fig. 7 fit SIM = c·ln(a / (b − CR)) over a set of runs.

Its asymptote CR → b is the compression ratio of the optimal learning process
(:func:`fit_sim_cr`, returning a callable :class:`SimFit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.optional import require

__all__ = ["SimFit", "fit_sim_cr"]


@dataclass(frozen=True)
class SimFit:
    """The fit SIM = c·ln(a / (b − CR)) (paper Fig. 7), valid for CR < b.

    Attributes:
        a, b, c: the parameters; b is the asymptote (SIM → +∞ as CR → b⁻).
        r2: coefficient of determination of the fit.
    """

    a: float
    b: float
    c: float
    r2: float

    def __call__(self, cr) -> np.ndarray:
        cr = np.asarray(cr, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cr < self.b, self.c * np.log(self.a / (self.b - cr)), np.nan)


def fit_sim_cr(cr, sim_values, *, b_max: float | None = None) -> SimFit:
    """Least-squares fit of SIM = c·ln(a / (b − CR)) to points (CR_i, SIM_i).

    The paper writes the law as "SIM = log(a/(b − CR))^c"; reading the exponent on the ratio
    gives c·ln(a/(b−CR)) (reading it as ln(a/(b−CR)^c) is the same family with a ↦ a^c).
    For a fixed asymptote b the model is linear, SIM = α + c·u with u = −ln(b − CR) and
    α = c·ln a, so α and c come from ordinary least squares; b is found by a bounded
    one-dimensional search over ln(b − max CR), minimising the residual sum of squares.

    Args:
        cr, sim_values: 1-D arrays of equal length ≥ 3 (finite values).
        b_max: the largest asymptote searched (default: max CR + 10 × the CR range).

    Returns:
        A :class:`SimFit`; call it on CR values to evaluate the fitted curve.
    """
    minimize_scalar = require("scipy.optimize", "the fit of SIM against CR").minimize_scalar
    checks.check_number(b_max, "b_max", minimum=0.0, strict=True, allow_none=True)

    x = np.asarray(cr, dtype=float).ravel()
    y = np.asarray(sim_values, dtype=float).ravel()
    if x.shape != y.shape or len(x) < 3:
        raise ArgumentValueError(
            f"need matching 1-D CR and SIM arrays of length ≥ 3, got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ArgumentValueError("CR and SIM must be finite; drop runs whose SIM is undefined")
    span = float(x.max() - x.min())
    if span <= 0:
        raise ArgumentValueError("all CR values are equal; the asymptote cannot be fitted")
    hi = (x.max() + 10 * span) if b_max is None else float(b_max)
    if hi <= x.max():
        raise ArgumentValueError(f"b_max = {hi} must exceed the largest CR {x.max()}")

    def solve(log_gap: float):
        b = x.max() + math.exp(log_gap)
        u = -np.log(b - x)
        design = np.stack([np.ones_like(u), u], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(((design @ coef - y) ** 2).sum())
        return rss, b, coef

    lo_gap, hi_gap = math.log(span * 1e-6), math.log(hi - x.max())
    res = minimize_scalar(
        lambda s: solve(s)[0], bounds=(lo_gap, hi_gap), method="bounded", options=dict(xatol=1e-10)
    )
    rss, b, (alpha, c) = solve(float(res.x))
    tss = float(((y - y.mean()) ** 2).sum())
    a = math.exp(alpha / c) if c != 0 else float("nan")
    return SimFit(a=a, b=float(b), c=float(c), r2=1 - rss / tss if tss > 0 else float("nan"))
