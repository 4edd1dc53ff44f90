"""Scaling laws of a loss curve in the number of steps, and the acceleration ratio (paper Eq. 8-9).

After a warm-up t₀ a loss curve follows L(t) = L₀ + (B/t)^β (Eq. 8). Footnote 5 fits it by linear
regression of ln(L − L₀) = −β ln t + β ln B on the points t > t₀, with t₀ and L₀ searched to
maximise r². L₀ is assumed independent of the learning policy, so two policies are compared with
one shared L₀; then policy 2 reaches policy 1's loss at T after t = B₂ (T/B₁)^{β₁/β₂} steps, and
the acceleration ratio is AR(T) = T / t = T^{1−β₁/β₂} B₁^{β₁/β₂} / B₂ (Eq. 9).

Curves are 1-D arrays or tensors: losses ``(n,)`` at strictly increasing ``steps`` ``(n,)``, e.g.
``(T+1,)`` losses at 0…T (step 0 is never in a fit: t > t₀ ≥ 0).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.metrics import finite_vector as _vector
from learnlaw.core.optional import require

__all__ = [
    "ScalingFit",
    "fit_scaling_law",
    "fit_scaling_laws",
    "acceleration_ratio_closed_form",
]

MIN_POINTS = 5  # points t > t₀ a fit needs (3 parameters + 2 degrees of freedom)
_N_T0, _N_L0 = 24, 160  # default grid sizes
_MAX_T0_FRACTION = 0.25  # default t₀ grid stops at t_max / 4: the fit spans ≥ ln 4 in ln t


@dataclass(frozen=True)
class ScalingFit:
    """L(t) = L₀ + (B/t)^β for t > t₀ (paper Eq. 8), with fit diagnostics.

    Attributes:
        B, beta: the scaling-law coefficients (B in steps, β > 0).
        L0: the asymptotic loss L₀.
        t0: the fit used the points with t > t₀.
        r2: the paper's criterion: squared correlation of ln t and ln(L − L₀) over the fit range.
        B_se, beta_se, L0_se: standard errors (nan: not estimated, e.g. L₀ fixed or searched
            without refinement). From the regression (conditional on t₀, L₀) or from the
            least-squares Jacobian. They assume independent residuals; on a deterministic
            gradient-descent curve they measure the misfit of the law, not sampling noise.
        n: the number of points in the fit.
        rmse: root-mean-square of L − L̂ over the fit range, in loss units.
        method: ``"regression"`` (footnote 5 only), ``"lsq"`` or ``"lsq-log"`` (refined by
            non-linear least squares on L or on ln L), ``"given"`` (built by hand).
    """

    B: float
    beta: float
    L0: float = 0.0
    t0: float = 0.0
    r2: float = math.nan
    B_se: float = math.nan
    beta_se: float = math.nan
    L0_se: float = math.nan
    n: int = 0
    rmse: float = math.nan
    method: str = "given"

    def __post_init__(self):
        if not (
            math.isfinite(self.B) and self.B > 0 and math.isfinite(self.beta) and self.beta > 0
        ):
            raise ArgumentValueError(
                f"B and beta must be finite and > 0, got B={self.B!r}, beta={self.beta!r}"
            )

    def predict(self, t):
        """L̂(t) = L₀ + (B/t)^β for a float, array or tensor t > 0 (same type back)."""
        t = np.asarray(t, dtype=np.float64) if isinstance(t, (list, tuple)) else t
        return self.L0 + (self.B / t) ** self.beta

    def steps_to_reach(self, loss):
        """The t with L̂(t) = loss, i.e. B (loss − L₀)^{−1/β}; nan where loss ≤ L₀."""
        gap = np.asarray(loss, dtype=np.float64) - self.L0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(gap > 0, self.B * np.abs(gap) ** (-1.0 / self.beta), np.nan)
        return float(t) if t.ndim == 0 else t

    def __str__(self) -> str:
        law = f"L = {self.L0:.4g} + ({self.B:.3g}/t)^{self.beta:.3g}"
        return f"{law}  (t > {self.t0:g}, r² = {self.r2:.4f})"


# -- inputs ---------------------------------------------------------------------------------------
def _steps(steps, n: int) -> np.ndarray:
    t = _vector("steps", steps)
    if len(t) != n:
        raise ArgumentValueError(f"steps has {len(t)} entries but the loss curve has {n}")
    if (t < 0).any() or (np.diff(t) <= 0).any():
        raise ArgumentValueError("steps must be non-negative and strictly increasing (e.g. 0…T)")
    return t


def _t0_candidates(t: np.ndarray, t0, t0_grid) -> tuple[np.ndarray, np.ndarray]:
    """The t₀ values to try and, for each, the index of the first point with t > t₀."""
    if t0 is not None:
        cands = np.array([float(t0)])
    elif t0_grid is not None:
        cands = np.unique(_vector("t0_grid", t0_grid))
    else:
        pos = t[t > 0]
        if len(pos) == 0:
            raise ArgumentValueError("steps has no positive entry: nothing to fit")
        hi = max(pos[0], pos[-1] * _MAX_T0_FRACTION)
        cands = np.unique(np.concatenate([[0.0], np.geomspace(pos[0], hi, _N_T0)]))
    if not np.isfinite(cands).all() or (cands < 0).any():
        raise ArgumentValueError(f"t0 must be finite and ≥ 0 (the fit uses t > t0), got {cands}")
    starts = np.searchsorted(t, cands, side="right")
    keep = len(t) - starts >= MIN_POINTS
    if not keep.any():
        raise ArgumentValueError(
            f"a fit needs at least {MIN_POINTS} points with t > t0; with t0={cands.min():g} there "
            f"are {len(t) - starts.min()} (steps run from {t[0]:g} to {t[-1]:g}): lower t0 or "
            "pass a longer curve"
        )
    return cands[keep], starts[keep]


# -- the regression -------------------------------------------------------------------------------
def _r2_table(x: np.ndarray, L: np.ndarray, starts: np.ndarray, L0s: np.ndarray) -> np.ndarray:
    """r² of ln(L − L₀) on x = ln t over each suffix ``starts[i]:`` for each L₀, ``(S, M)``.

    −inf where some L ≤ L₀ in the suffix or the slope is not negative (β ≤ 0).
    """
    s0 = int(starts.min())
    x, L = x[s0:], L[s0:]
    rel = starts - s0
    count = (len(x) - rel)[:, None]
    suffix_min = np.minimum.accumulate(L[::-1])[::-1][rel]
    xc = x - x.mean()

    def suffix(a):  # Σ_{i ≥ k} a_i for the suffixes in `rel`
        return np.cumsum(a[..., ::-1], axis=-1)[..., ::-1][..., rel]

    sx, sxx = suffix(xc)[:, None], suffix(xc * xc)[:, None]
    out = np.empty((len(starts), len(L0s)))
    block = max(1, 2_000_000 // len(x))
    for b in range(0, len(L0s), block):
        l0 = L0s[b : b + block, None]
        d = L[None, :] - l0
        y = np.log(np.where(d > 0, d, 1.0))
        y -= y.mean(axis=1, keepdims=True)
        sy, syy, sxy = suffix(y).T, suffix(y * y).T, suffix(y * xc).T
        cxx = sxx - sx * sx / count
        cyy = syy - sy * sy / count
        cxy = sxy - sx * sy / count
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = cxy * cxy / (cxx * cyy)
        ok = (suffix_min[:, None] > l0.T) & (cxy < 0) & (cyy > 0)
        out[:, b : b + block] = np.where(ok, r2, -np.inf)
    return out


def _regression(x: np.ndarray, y: np.ndarray) -> dict:
    """OLS of y on x: β = −slope, ln B = intercept/β, r², and their standard errors."""
    n = len(x)
    xm, ym = x.mean(), y.mean()
    sxx, syy = ((x - xm) ** 2).sum(), ((y - ym) ** 2).sum()
    slope = ((x - xm) * (y - ym)).sum() / sxx
    icpt = ym - slope * xm
    sse = max(((y - icpt - slope * x) ** 2).sum(), 0.0)
    var = sse / (n - 2)
    cov = var * np.array([[1 / n + xm * xm / sxx, -xm / sxx], [-xm / sxx, 1 / sxx]])  # (c, s)
    grad = np.array([-1 / slope, icpt / slope**2])  # ∂ln B/∂(c, s), ln B = −c/s
    return dict(
        beta=-slope,
        log_B=-icpt / slope,
        r2=1 - sse / syy if syy > 0 else 0.0,
        beta_se=math.sqrt(cov[1, 1]),
        log_B_se=math.sqrt(max(grad @ cov @ grad, 0.0)),
    )


# -- non-linear least squares ---------------------------------------------------------------------
def _refine(xs, Ls, L0, fixed_L0, lower, upper, inits, space):
    """Joint least squares over (L₀, ln B_c, β_c) of every curve c; L₀ is shared."""
    k = 0 if fixed_L0 else 1
    p0 = ([] if fixed_L0 else [L0]) + [v for b in inits for v in (b["log_B"], b["beta"])]
    lo = ([] if fixed_L0 else [lower]) + [-np.inf, 1e-12] * len(xs)
    hi = ([] if fixed_L0 else [upper]) + [np.inf, np.inf] * len(xs)
    p0 = np.clip(p0, lo, hi)
    if not fixed_L0 and p0[0] >= upper:
        p0[0] = upper - 1e-3 * (upper - lower)

    def unpack(p):
        return (L0 if fixed_L0 else p[0]), p[k:].reshape(-1, 2)

    def fun(p):
        l0, cb = unpack(p)
        res = []
        for x, L, (lb, b) in zip(xs, Ls, cb):
            m = l0 + np.exp(b * (lb - x))
            res.append(np.log(m) - np.log(L) if space == "log" else m - L)
        return np.concatenate(res)

    def jac(p):
        l0, cb = unpack(p)
        col = k
        J = np.zeros((sum(len(x) for x in xs), len(p)))
        row = 0
        for x, _, (lb, b) in zip(xs, Ls, cb):
            pw = np.exp(b * (lb - x))
            scale = 1 / (l0 + pw) if space == "log" else 1.0
            sl = slice(row, row + len(x))
            if not fixed_L0:
                J[sl, 0] = scale
            J[sl, col] = b * pw * scale
            J[sl, col + 1] = (lb - x) * pw * scale
            row, col = row + len(x), col + 2
        return J

    with np.errstate(over="ignore", invalid="ignore"):
        least_squares = require("scipy.optimize", "a scaling-law fit").least_squares

        sol = least_squares(fun, p0, jac=jac, bounds=(lo, hi), x_scale="jac", method="trf")
    if not sol.success or not np.isfinite(sol.x).all():
        return None
    dof = max(len(sol.fun) - len(sol.x), 1)
    cov = (sol.fun @ sol.fun / dof) * np.linalg.pinv(sol.jac.T @ sol.jac)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    l0, cb = unpack(sol.x)
    l0_se = math.nan if fixed_L0 else float(se[0])
    out = []
    for c, (lb, b) in enumerate(cb):
        out.append(
            dict(log_B=lb, beta=b, log_B_se=se[k + 2 * c], beta_se=se[k + 2 * c + 1], L0_se=l0_se)
        )
    return float(l0), out


# -- the public fits ------------------------------------------------------------------------------
def fit_scaling_law(
    steps,
    losses,
    *,
    t0: float | None = None,
    L0: float | None = None,
    t0_grid=None,
    L0_grid=None,
    refine: bool | str = True,
) -> ScalingFit:
    """Fit L(t) = L₀ + (B/t)^β on t > t₀ to one loss curve (paper Eq. 8, footnote 5).

    1. For every (t₀, L₀) of a grid, regress ln(L_t − L₀) on ln t over the points t > t₀
       (slope −β, intercept β ln B) and keep the pair with the largest r²; L₀ is then polished
       by a bounded 1-D search around the best grid value.
    2. If ``refine``, start non-linear least squares (scipy ``least_squares``) from there, over
       (B, β, L₀) with t₀ fixed: residuals L̂ − L (``True``/``"loss"``) or ln L̂ − ln L
       (``"log"``, for multiplicative noise). L₀ stays below the smallest loss of the fit range.

    Default grids: t₀ ∈ {0} ∪ 24 geometric values from the first positive step to t_max/4 (r²
    prefers dropping the curved warm-up; the cap keeps at least a factor 4 in t in the fit);
    L₀ = m − g for 160 gaps g geometric from m − lo down to 10⁻⁶·span, with m the smallest loss
    of the widest fit range, lo = 0 for positive losses (a loss is ≥ 0) and m − span otherwise.
    On gradient-descent curves r² usually keeps rising with t₀ (the local exponent drifts), so
    the search often stops at the cap: report t₀ with the fit, or fix it (``t0=``).

    Args:
        steps: ``(n,)`` strictly increasing steps ≥ 0, or ``None`` for 0…n−1 (a ``(T+1,)`` curve).
        losses: ``(n,)`` finite losses (array or tensor).
        t0: fix t₀ (e.g. the paper's 400) instead of searching it.
        L0: fix L₀ (e.g. 0.051); it must be below every loss with t > t₀.
        t0_grid, L0_grid: the values to search instead of the defaults (no polishing of a given
            L0_grid).
        refine: ``True``/``"loss"``, ``"log"`` or ``False`` (the paper's regression only).

    Returns:
        A :class:`ScalingFit`.

    Raises:
        ValueError: bad shapes, non-finite values, steps not increasing, fewer than
            ``MIN_POINTS`` points with t > t₀, L₀ not below the losses, no decreasing fit range.
    """
    checks.check_number(t0, "t0", minimum=0.0, expected="finite and ≥ 0 (or None)", allow_none=True)
    checks.check_number(L0, "L0", allow_none=True)
    losses = _vector("losses", losses)
    return fit_scaling_laws(
        steps, [losses], t0=t0, L0=L0, t0_grid=t0_grid, L0_grid=L0_grid, refine=refine
    )[0]


def fit_scaling_laws(
    steps,
    curves,
    *,
    shared_L0: bool = True,
    t0: float | None = None,
    L0: float | None = None,
    t0_grid=None,
    L0_grid=None,
    refine: bool | str = True,
    criterion: str = "mean",
) -> list[ScalingFit]:
    """Fit Eq. 8 to C loss curves at the same steps, by default with one shared t₀ and L₀.

    The paper assumes L₀ does not depend on the learning policy and fits both curves with the
    same t₀ and L₀ (Fig. 11); the closed-form acceleration ratio needs that. With
    ``shared_L0=True`` the (t₀, L₀) search maximises the mean (``criterion="mean"``) or the
    smallest (``"min"``) r² of the C regressions, and the refinement is one joint least-squares
    problem in (L₀, B₁, β₁, …, B_C, β_C). With ``shared_L0=False`` each curve is fitted on its own
    by :func:`fit_scaling_law`. Other arguments as in :func:`fit_scaling_law`.

    Args:
        steps: ``(n,)`` steps shared by all curves, or ``None`` for 0…n−1.
        curves: a sequence of ``(n,)`` curves or a ``(C, n)`` array / tensor.

    Returns:
        One :class:`ScalingFit` per curve, in order.
    """
    checks.check_bool(shared_L0, "shared_L0")
    checks.check_number(t0, "t0", minimum=0.0, expected="finite and ≥ 0 (or None)", allow_none=True)
    checks.check_number(L0, "L0", allow_none=True)
    if isinstance(curves, (str, bytes)) or not hasattr(curves, "__len__") or len(curves) == 0:
        raise ArgumentValueError(
            "curves must be a non-empty sequence of 1-D loss curves or a (C, n) array"
        )
    Ls = [_vector(f"curves[{i}]", c) for i, c in enumerate(curves)]
    if len({len(L) for L in Ls}) > 1:
        raise ArgumentValueError(f"the curves have different lengths {[len(L) for L in Ls]}")
    if criterion not in ("mean", "min"):
        raise ArgumentValueError(f"criterion must be 'mean' or 'min', got {criterion!r}")
    space = _refine_space(refine)
    if not shared_L0:
        kw = dict(t0=t0, L0=L0, t0_grid=t0_grid, L0_grid=L0_grid, refine=refine)
        return [fit_scaling_law(steps, L, **kw) for L in Ls]

    n = len(Ls[0])
    t = np.arange(n, dtype=np.float64) if steps is None else _steps(steps, n)
    cands, starts = _t0_candidates(t, t0, t0_grid)
    x = np.log(np.where(t > 0, t, 1.0))  # t = 0 is never in a fit range (t > t₀ ≥ 0)

    wide = [L[starts.min() :] for L in Ls]
    m = min(float(w.min()) for w in wide)
    span = max(float(w.max()) for w in wide) - m
    if span <= 0:
        raise ArgumentValueError(
            "the loss curve is constant over the fit range: no power law to fit"
        )
    lower = 0.0 if m > 0 else m - span
    if L0 is not None:
        if not math.isfinite(float(L0)):
            raise ArgumentValueError(f"L0 must be finite, got {L0!r}")
        L0s = np.array([float(L0)])
    elif L0_grid is not None:
        L0s = np.unique(_vector("L0_grid", L0_grid))
        lower = min(lower, float(L0s[0]))
    else:
        L0s = m - np.geomspace(m - lower, 1e-6 * max(span, m - lower), _N_L0)

    combine = np.mean if criterion == "mean" else np.min
    score = combine(np.stack([_r2_table(x, L, starts, L0s) for L in Ls]), axis=0)
    if not np.isfinite(score).any():
        floor = min(float(L[starts.max() :].min()) for L in Ls)  # the highest fit-range minimum
        if L0 is not None and L0 >= floor:
            raise ArgumentValueError(
                f"L0={L0!r} must be below every loss in the fit range (the smallest loss with "
                f"t > t0 is {floor:.6g} or less); lower L0 or raise t0"
            )
        raise ArgumentValueError(
            "no (t0, L0) gives a decreasing curve: ln(L − L0) must fall with ln t over t > t0 "
            "(is this a loss curve? is it increasing?)"
        )
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    t0_best, start, L0_best, best = float(cands[i]), int(starts[i]), float(L0s[j]), score[i, j]
    upper = min(float(L[start:].min()) for L in Ls)

    if L0 is None and L0_grid is None:  # polish L₀ between the neighbouring grid values
        gap = upper - L0_best
        g_hi = upper - L0s[j - 1] if j > 0 else gap
        g_lo = upper - L0s[j + 1] if j + 1 < len(L0s) and L0s[j + 1] < upper else gap * 1e-3

        def neg_score(u):
            l0 = np.array([upper - math.exp(u)])
            return -combine([_r2_table(x, L, starts[i : i + 1], l0)[0, 0] for L in Ls])

        if g_hi > g_lo:
            minimize = require("scipy.optimize", "a scaling-law fit").minimize_scalar
            res = minimize(neg_score, bounds=(math.log(g_lo), math.log(g_hi)), method="bounded")
            if np.isfinite(res.fun) and -res.fun > best:
                L0_best = upper - math.exp(res.x)

    xs, Lfit = [x[start:]] * len(Ls), [L[start:] for L in Ls]
    regs = [_regression(xs[0], np.log(L - L0_best)) for L in Lfit]
    method, L0_fin, l0_se = "regression", L0_best, math.nan
    if space is not None:
        if space == "log" and min(float(L.min()) for L in Lfit) <= 0:
            raise ArgumentValueError(
                "refine='log' needs positive losses in the fit range; use refine=True"
            )
        out = _refine(xs, Lfit, L0_best, L0 is not None, lower, upper - 1e-9 * span, regs, space)
        if out is None:
            warnings.warn(
                "the least-squares refinement failed; returning the regression fit",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            L0_fin, regs = out
            method = "lsq-log" if space == "log" else "lsq"
            l0_se = regs[0]["L0_se"]

    fits = []
    for L, r in zip(Lfit, regs):
        B = math.exp(r["log_B"])
        fit = ScalingFit(
            B=B,
            beta=float(r["beta"]),
            L0=float(L0_fin),
            t0=t0_best,
            r2=_regression(xs[0], np.log(L - L0_fin))["r2"],
            B_se=float(B * r["log_B_se"]),
            beta_se=float(r["beta_se"]),
            L0_se=float(l0_se),
            n=len(L),
            method=method,
        )
        rmse = math.sqrt(float(np.mean((fit.predict(np.exp(xs[0])) - L) ** 2)))
        fits.append(replace(fit, rmse=rmse))
    return fits


def _refine_space(refine) -> str | None:
    if refine is False or refine is None:
        return None
    if refine is True or refine == "loss":
        return "loss"
    if refine == "log":
        return "log"
    raise ArgumentValueError(f"refine must be True, False, 'loss' or 'log', got {refine!r}")


# -- the acceleration ratio (Eq. 9) ---------------------------------------------------------------
def acceleration_ratio_closed_form(fit_ref: ScalingFit, fit_new: ScalingFit, T):
    """AR(T) = T^{1−β₁/β₂} B₁^{β₁/β₂} / B₂ (Eq. 9, right-hand side), vectorised over T.

    From L₀ + (B₂/t)^{β₂} = L₀ + (B₁/T)^{β₁}: policy 2 (``fit_new``) reaches policy 1's
    (``fit_ref``) loss at T after t = B₂ (T/B₁)^{β₁/β₂} steps. It needs one L₀ for both fits
    (:func:`fit_scaling_laws` with ``shared_L0=True``) and extrapolates the laws to any T > 0,
    e.g. T = 10⁷. Computed in logs (no overflow).

    Returns:
        A float, or an array like T.
    """
    for name, f in (("fit_ref", fit_ref), ("fit_new", fit_new)):
        if not isinstance(f, ScalingFit):
            raise ArgumentTypeError(f"{name} must be a ScalingFit, got {type(f).__name__}")
    if not math.isclose(fit_ref.L0, fit_new.L0, rel_tol=1e-9, abs_tol=1e-12):
        raise ArgumentValueError(
            f"the closed form needs a shared L0, got {fit_ref.L0!r} and {fit_new.L0!r}: fit both "
            "curves with fit_scaling_laws(steps, [ref, new], shared_L0=True)"
        )
    Ts = np.asarray(T, dtype=np.float64)
    if not np.isfinite(Ts).all() or (Ts <= 0).any():
        raise ArgumentValueError(f"T must be positive and finite, got {T!r}")
    r = fit_ref.beta / fit_new.beta
    ar = np.exp((1 - r) * np.log(Ts) + r * math.log(fit_ref.B) - math.log(fit_new.B))
    return float(ar) if ar.ndim == 0 else ar
