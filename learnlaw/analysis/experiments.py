"""Reusable pieces of the experiments: policy regularisers, policy evaluation, Law diagnostics.

* regularisers for :func:`learnlaw.core.optimize.optimize_policy`'s ``penalty=`` hook:
  :func:`smoothness_penalty` (γ should change slowly over t) and :func:`entropy_penalty`
  (γ_t should stay spread over many examples);
* :func:`holdout_split`: a task whose "test" split is a held-out part of the desired set, for
  early stopping of a policy search on data the search never sees;
* :func:`evaluate_policy`: desired- and test-set acceleration and compression ratios of a policy;
* :func:`law_diagnostics`: along one run, SIM_t (paper Eq. 7), the Property 4.1 and 4.2
  fractions and the contributions needed for the paper's Figs. 6–10;
* :func:`fit_sim_cr`: the paper's Fig. 7 fit SIM = c·ln(a / (b − CR)), whose asymptote CR → b is
  the compression ratio of the optimal learning process;
* :func:`kind_weight_shares`: how much of each step's weight goes to each planted example kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from learnlaw.core.kernels import kernels_for
from learnlaw.core.law import (
    contribution_trajectory,
    learned_weight_ratios,
    sim,
    zero_weight_fraction,
)
from learnlaw.core.metrics import compression_ratio, empirical_acceleration
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import Run, train

__all__ = [
    "smoothness_penalty",
    "entropy_penalty",
    "holdout_split",
    "evaluate_policy",
    "LawDiagnostics",
    "law_diagnostics",
    "SimFit",
    "fit_sim_cr",
    "kind_weight_shares",
]

Penalty = Callable[[Tensor], tuple[float, Tensor]]


def _check_weight(weight: float) -> float:
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
        raise ValueError(f"a penalty weight must be a finite number ≥ 0, got {weight!r}")
    return float(weight)


def smoothness_penalty(weight: float) -> Penalty:
    """R(γ) = λ Σ_{t=0}^{T-2} ‖γ_{t+1} − γ_t‖², a penalty on how fast the policy changes over t.

    Its gradient is the discrete Laplacian along t, ∂R/∂γ_t = 2λ(2γ_t − γ_{t−1} − γ_{t+1}) in the
    interior and 2λ(γ_0 − γ_1), 2λ(γ_{T−1} − γ_{T−2}) at the ends. Every row of the gradient
    sums to 0 when the rows of γ sum to 1, so it moves weight between examples only.

    Args:
        weight: λ ≥ 0, in the units of J (nats summed over the steps).

    Returns:
        ``penalty(policy) -> (R, ∂R/∂γ)`` for ``optimize_policy(penalty=...)``, named
        ``smoothness_<λ>``.
    """
    lam = _check_weight(weight)

    def penalty(policy: Tensor) -> tuple[float, Tensor]:
        d = policy[1:] - policy[:-1]  # (T-1, N)
        grad = torch.zeros_like(policy)
        grad[:-1] -= 2 * lam * d
        grad[1:] += 2 * lam * d
        return lam * float((d * d).sum()), grad

    penalty.__name__ = f"smoothness_{lam:g}"
    return penalty


def entropy_penalty(weight: float, floor: float = 1e-12) -> Penalty:
    """R(γ) = λ Σ_t Σ_n γ_{t,n} ln γ_{t,n} (minus λ times the summed entropies of the rows).

    Minimising R raises the entropy of every row, i.e. keeps the weight spread over many
    examples. ∂R/∂γ_{t,n} = λ(ln γ_{t,n} + 1), with γ clamped below at ``floor`` so that a zero
    weight gets a large but finite push back into the support.

    Args:
        weight: λ ≥ 0 (nats of J per nat of entropy).
        floor: the smallest γ used inside the logarithm.
    """
    lam = _check_weight(weight)
    if not (0 < floor < 1):
        raise ValueError(f"floor must be in (0, 1), got {floor!r}")

    def penalty(policy: Tensor) -> tuple[float, Tensor]:
        log = policy.clamp_min(floor).log()
        return lam * float((policy * log).sum()), lam * (log + 1)

    penalty.__name__ = f"entropy_{lam:g}"
    return penalty


def holdout_split(task: Task, n_holdout: int, seed: int = 0) -> Task:
    """A copy of ``task`` whose desired split loses ``n_holdout`` random examples to its test split.

    The returned task's desired split (K − h examples) is what a policy search fits; its test
    split is the held-out h desired examples, so the ``ar_test``/``cr_test`` that
    :func:`~learnlaw.core.optimize.optimize_policy` records per epoch measure generalisation to data
    the search never saw, and can choose the epoch to stop at. The original test split is not
    touched (evaluate the chosen policy on ``task``).
    """
    k = task.n_desired
    if not (isinstance(n_holdout, int) and 2 <= n_holdout <= k - 2):
        raise ValueError(
            f"n_holdout must be an int in [2, K − 2] = [2, {k - 2}] (K = {k} desired examples), "
            f"got {n_holdout!r}"
        )
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(k, generator=g).to(task.device)
    x, y = task.desired
    keep, held = perm[: k - n_holdout], perm[k - n_holdout :]
    return task.with_(
        desired=(x[keep], y[keep]),
        test=(x[held], y[held]),
        name=f"{task.name}-holdout{n_holdout}",
        info={**task.info, "holdout": n_holdout, "holdout_seed": seed},
    )


def evaluate_policy(task: Task, policy: Tensor, lr: float, baseline: Run | None = None) -> dict:
    """Train under ``policy`` and summarise it against the uniform baseline run.

    Args:
        task: the task (its desired and test splits).
        policy: γ, ``(T, N)``.
        lr: η.
        baseline: the run of the uniform policy (trained here if ``None``).

    Returns:
        A flat dict: ``J`` (desired AUC, nats), ``test_auc``, ``cr_desired``, ``cr_test``,
        ``ar_desired`` and ``ar_test`` (empirical acceleration, paper Eq. 9, against the
        baseline on each split; nan if the baseline's final loss is never reached),
        ``final_desired``/``final_test`` (the losses at θ_T) and ``zero_fraction``.
    """
    from learnlaw.core.policy import uniform_policy

    run = train(task, policy, lr)
    if baseline is None:
        baseline = train(
            task, uniform_policy(*policy.shape, dtype=task.dtype, device=task.device), lr
        )
    if baseline.steps != run.steps:
        raise ValueError(f"baseline has T = {baseline.steps} steps but the policy {run.steps}")
    return dict(
        J=run.auc("desired"),
        test_auc=run.auc("test"),
        cr_desired=run.compression_ratio("desired"),
        cr_test=run.compression_ratio("test"),
        ar_desired=empirical_acceleration(baseline.desired_loss, run.desired_loss),
        ar_test=empirical_acceleration(baseline.test_loss, run.test_loss),
        final_desired=float(run.desired_loss[-1]),
        final_test=float(run.test_loss[-1]),
        zero_fraction=float((policy == 0).sum()) / policy.numel(),
    )


@dataclass(frozen=True)
class LawDiagnostics:
    """The Learning-Law measurements of one run (paper Sec. 4.4–4.5, Figs. 6–10).

    Attributes:
        desired_loss, test_loss: ``(T+1,)`` loss curves (nats).
        cr: compression ratio of the ``split`` curve.
        sim_per_step: ``(T,)`` SIM_t of Eq. 7 (γ_t with the contributions at θ_t).
        sim: mean of the defined SIM_t.
        zero_fraction_noncontrib: Property 4.1, the share of γ_{t,n} = 0 among the pairs with
            CT_{t,n} ≤ 0 (over t < ``before``).
        noncontrib_per_step: ``(T,)`` the number of examples with CT_{t,n} ≤ 0 at each step.
        zero_noncontrib_per_step: ``(T,)`` how many of those have γ_{t,n} = 0; the Property 4.1
            fraction over a window of steps is the ratio of the two sums over the window.
        learned_count: the number of pairs (t, n) with l_n(θ_t) < ``loss_threshold``.
        learned_below: share of those pairs with γ_{t,n} < 0.2·max_m γ_{t,m} (Property 4.2).
        learned_cdf: the empirical CDF of γ_{t,n}/max_m γ_{t,m} over those pairs at
            ``cdf_grid`` (nan if there are none).
        cdf_grid: ``(G,)`` points in [0, 1].
        head_contributions: ``(H, N)`` CT_{t,n} for t < H (for the Fig. 10 heat map).
    """

    desired_loss: Tensor
    test_loss: Tensor
    cr: float
    sim_per_step: Tensor
    sim: float
    zero_fraction_noncontrib: float
    noncontrib_per_step: Tensor
    zero_noncontrib_per_step: Tensor
    learned_count: int
    learned_below: float
    learned_cdf: Tensor
    cdf_grid: Tensor
    head_contributions: Tensor


def law_diagnostics(
    task: Task,
    policy: Tensor,
    lr: float,
    *,
    split: str = "desired",
    loss_threshold: float = 1e-6,
    before: int | None = None,
    head: int = 51,
    grid: int = 101,
) -> LawDiagnostics:
    """SIM, the zero-weight fractions and the learned-example weights along the run of ``policy``.

    Trains with the whole trajectory kept (T·P floats), computes CT_{t,n} = ∇L(θ_t)·∇l_n(θ_t)
    with L the mean loss of ``split``, and reduces everything to the summaries of
    :class:`LawDiagnostics`; the (T, N) intermediates are freed on return.

    Args:
        task: the task.
        policy: γ, ``(T, N)``.
        lr: η.
        split: whose gradient defines the contributions and the CR: ``"desired"`` (the set
            the policy was optimised for, where the Law is a statement about the optimum) or
            ``"test"`` (the paper reports its metrics on the test set).
        loss_threshold: "perfectly learned" for Property 4.2 (paper: 1e-6).
        before: only steps t < ``before`` enter the Property 4.1 fraction (the properties are
            stated "before convergence"); default all T.
        head: keep CT for the first ``head`` steps (Fig. 10 plots t ≤ 50).
        grid: number of points of the CDF grid.
    """
    if split not in ("desired", "test"):
        raise ValueError(f"split must be 'desired' or 'test', got {split!r}")
    validate_policy(policy, n=task.n_train)
    run = train(task, policy, lr, keep_params=True)
    thetas = run.trajectory[:-1]  # θ_0 … θ_{T-1}, paired with γ_0 … γ_{T-1}
    gamma = policy.to(dtype=task.dtype, device=task.device)
    ct = contribution_trajectory(task, thetas, split=split)
    sims = sim(ct, gamma)
    stop = len(gamma) if before is None else int(before)
    zf = zero_weight_fraction(gamma[:stop], ct[:stop])
    noncontrib = ct <= 0
    per_step = noncontrib.sum(1)
    zero_per_step = (noncontrib & (gamma == 0)).sum(1)
    head_ct = ct[:head].clone()
    del ct
    kernels = kernels_for(task)
    with torch.no_grad():
        losses = torch.cat(
            [kernels.losses_batch(thetas[s : s + 256], "train") for s in range(0, len(thetas), 256)]
        )
    ratios = learned_weight_ratios(gamma, losses, loss_threshold).double().cpu()
    del losses
    cdf_grid = torch.linspace(0, 1, grid, dtype=torch.float64)
    if len(ratios):
        sorted_r = ratios.sort().values
        cdf = torch.searchsorted(sorted_r, cdf_grid, right=True).double() / len(ratios)
        below = float((ratios < 0.2).double().mean())
    else:
        cdf = torch.full_like(cdf_grid, float("nan"))
        below = float("nan")
    curve = run.desired_loss if split == "desired" else run.test_loss
    return LawDiagnostics(
        desired_loss=run.desired_loss,
        test_loss=run.test_loss,
        cr=compression_ratio(curve, task.vocab_size),
        sim_per_step=sims.per_step,
        sim=sims.mean,
        zero_fraction_noncontrib=zf,
        noncontrib_per_step=per_step,
        zero_noncontrib_per_step=zero_per_step,
        learned_count=len(ratios),
        learned_below=below,
        learned_cdf=cdf,
        cdf_grid=cdf_grid,
        head_contributions=head_ct,
    )


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
    from scipy.optimize import minimize_scalar

    x = np.asarray(cr, dtype=float).ravel()
    y = np.asarray(sim_values, dtype=float).ravel()
    if x.shape != y.shape or len(x) < 3:
        raise ValueError(
            f"need matching 1-D CR and SIM arrays of length ≥ 3, got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("CR and SIM must be finite; drop runs whose SIM is undefined")
    span = float(x.max() - x.min())
    if span <= 0:
        raise ValueError("all CR values are equal; the asymptote cannot be fitted")
    hi = (x.max() + 10 * span) if b_max is None else float(b_max)
    if hi <= x.max():
        raise ValueError(f"b_max = {hi} must exceed the largest CR {x.max()}")

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


def kind_weight_shares(
    policy: Tensor, kinds: dict[str, Tensor], *, relative: bool = False
) -> dict[str, Tensor]:
    """The share of each step's weight that goes to each example kind, ``{kind: (T,)}``.

    share_k(t) = Σ_{n∈k} γ_{t,n} (rows sum to 1, so the shares of disjoint kinds covering all
    examples sum to 1). With ``relative=True`` the share is divided by the kind's share of the
    examples, |k|/N, so that the uniform policy gives 1 for every kind and 0 means switched off.

    Args:
        policy: γ, ``(T, N)``.
        kinds: ``{name: (N,) bool mask}`` (e.g. ``task.kinds``); empty kinds are skipped.
    """
    w = torch.as_tensor(policy)
    if w.ndim != 2:
        raise ValueError(f"policy must have shape (T, N), got {tuple(w.shape)}")
    out = {}
    for name, mask in kinds.items():
        m = torch.as_tensor(mask, device=w.device)
        if m.shape != (w.shape[1],) or m.dtype != torch.bool:
            raise ValueError(
                f"kind {name!r} must be a bool mask of shape ({w.shape[1]},), got "
                f"{m.dtype} {tuple(m.shape)}"
            )
        count = int(m.sum())
        if count == 0:
            continue
        share = w[:, m].sum(1)
        out[name] = share / (count / w.shape[1]) if relative else share
    return out
