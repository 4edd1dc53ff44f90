"""Online Learning-Law policies: γ_t read off the contributions at θ_t, in one training run.

At every step t the rule looks at the contributions CT_{t,n} = ∇L_dsr(θ_t)·∇l_n(θ_t) of the N
training examples (their local learning speeds, :func:`learnlaw.contributions`), picks the row
γ_t ∈ Δ^{N−1} from them and takes the step θ_{t+1} = θ_t − η Σ_n γ_{t,n} ∇l_n(θ_t). No policy
search, no adjoint sweep: the policy is built while training, and ``train(task, policy, lr)``
replays the same run.

With ``control="direction"`` or ``"length"`` the rule still picks γ_t at θ_t, but the step is
norm-matched to the uniform row's (:mod:`learnlaw.policies.controls`): the rule's direction at
the uniform step's length, or the uniform direction at the rule's length. That separates the
DIRECTION of a rule's update from its LENGTH; ``train`` then no longer replays the run
(``replay_policy(task, policy, lr, control)`` does), and ``step_norms`` records
[‖d_rule‖, ‖d_uni‖] per step.

With ``step="line_search"`` the rule keeps its row and chooses the step's length η_t too, by a
second-order model of L_dsr along its weighted gradient (a desired-set line search with a trust
region and a cap; the one-step reading of the step-size Law ∂J/∂η_t = 0; the rule, its maths
and its cost in :mod:`learnlaw.policies.online_step`); ``lrs`` records η_t.

What the optimal policy satisfies, and what each rule keeps of it
------------------------------------------------------------------
For the AUC J = Σ_{t=1}^T L_dsr(θ_t), the adjoint gives ∂J/∂γ_{t,n} = −η ∇l_n(θ_t)·a_{t+1} with
a_{t+1} = ∂J/∂θ_{t+1} (:mod:`learnlaw.core.adjoint`). The KKT conditions of min J over the
simplex rows are, with one multiplier μ_t per step,

    ∇l_n(θ_t)·a_{t+1} = μ_t   where γ_{t,n} > 0,        ∇l_n(θ_t)·a_{t+1} ≤ μ_t   where γ_{t,n} = 0.

The Learning Law reads them with the instantaneous direction ∇L_dsr(θ_t) in place of a_{t+1}:
every example with non-zero weight makes the *same* contribution CT_{t,n}, the others contribute
less (Property 4.1: those with CT ≤ 0 get no weight). The rules here are greedy (one step ahead)
readings of these conditions:

* ``"relu"``: γ_{t,n} ∝ max(CT_{t,n}, 0), and uniform if no CT is positive. Keeps the zero set of
  Property 4.1 with the threshold 0 instead of the common value μ_t (it keeps every example that
  contributes at all), and the first-order direction ∇L_dsr(θ_t) (drops the future: a_{t+1} sums
  the desired gradients of all later steps). Drops the equality on the support: weights grow with
  CT instead of equalising it. It is the direction of steepest first-order decrease of L_dsr
  restricted to the positive part, γ ∝ ∂(−ΔL_dsr)/∂γ clipped at 0.
* ``"power"`` with ``power=p > 0``: γ_{t,n} ∝ max(CT_{t,n}, 0)^p, uniform if no CT is positive;
  ``p = 1`` is ``"relu"``. Same zero set and same first-order direction; p → 0⁺ gives equal
  weights on {CT > 0} (the Law's "equal weight" reading of the support), p → ∞ puts all the
  weight on argmax CT (the minimiser of the first-order model −η γ·CT over the simplex, a vertex).
* ``"quadratic"``: γ_t minimises the second-order model of the desired loss after the step,

      m(γ) = L_dsr(θ_t) − η γ·CT_t + ½ η² γᵀ G H_dsr Gᵀ γ  ≈  L_dsr(θ_t − η Gᵀγ),

  over the trust region C = {γ ∈ Δ : γ_n ≤ ρ/N} (``cap=ρ``; ``None``: the whole simplex), with
  G the (N, P) per-example gradients at θ_t (never formed) and H_dsr the Hessian of L_dsr at θ_t.
  Its KKT conditions are *exactly* the Law's, for a one-step horizon and with the contribution
  measured after the step: writing ĈT_n = CT_n − η (G H_dsr Gᵀγ)_n ≈ ∇L_dsr(θ_{t+1})·∇l_n(θ_t),

      ĈT_n = μ_t  where 0 < γ_n < ρ/N,    ĈT_n ≤ μ_t  where γ_n = 0,    ĈT_n ≥ μ_t  where γ_n = ρ/N.

  Keeps: equal contribution on the support and zero weight below the common value (not below
  0), with the curvature of L_dsr that makes concentrating on a few examples costly. Drops: the
  horizon beyond t+1 (a_{t+1} ≈ ∇L_dsr(θ_{t+1}) instead of the sum over all later steps) and
  terms of third order in η. The cap is the trust region: it bounds how far γ_t moves from the
  uniform row (and so the step) where the quadratic model may be wrong; it adds the third case.
  Solved by ``iters`` projected-gradient iterations with exact line search on the quadratic
  (warm-started at γ_{t−1}); each iteration costs one Gᵀv, one H_dsr v and one Gv — about one
  more plain training step. Needs Hessian-vector products of L_dsr (closed form for the
  perceptron, forward-over-reverse autodiff otherwise).

CT always comes from the desired split (or the part of it the caller passes as ``desired=``),
never from the test split.

Cost, per step, in plain training steps: ``"relu"`` and ``"power"`` add one ∇L_dsr (a pass over
the K desired examples) and one jvp over the N training examples (no N×P matrix; for the
perceptron one extra matrix-vector product, the residuals σ(Xθ) − y are shared with the step).
Measured with ``python -m learnlaw.bench`` on a shared 2-core CPU, one thread: 1.5–2.5× a plain
run for the perceptron (D = 128, N = 4096, T = 2000), about 2× for the benchmark's MLP.
``"quadratic"`` adds ``iters`` + 1 products with G, Gᵀ and H_dsr and as many projections:
about 18× a plain perceptron run with the defaults.

Host syncs (what an accelerator waits for; counted by
:class:`learnlaw.profile.DeviceAudit`): ``"relu"`` and ``"power"`` read nothing
back per step — the weights are branch-free and the checks (non-finite CT, non-finite θ, the
divergence criterion of both loss curves) are reduced on the device and read once per block of
``kernels.block`` steps (8 for autodiff kernels, 256 for the perceptron's), as
:func:`learnlaw.train` does. ``"quadratic"`` keeps data-dependent control in its line search
and projections: one read per step for the checks, one for the line search's start, then per
iteration one for its stopping test and one for the curvature, plus one per projection and one
per Newton round of the projection (about 7 per step on the meta device, where every read
returns a fixed fake value; 15.5 before these reads were batched).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.func import grad, jvp

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError, UnsupportedError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.distributed import shard_of
from learnlaw.core.policy import project_simplex
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import Task
from learnlaw.core.training import (
    DIVERGENCE_FACTOR,
    DivergenceError,
    Run,
    check_factor,
    raise_if_diverged,
)
from learnlaw.policies.controls import check_control, controlled_step, step_pair
from learnlaw.policies.online_step import LineSearch, check_step

__all__ = ["ONLINE_RULES", "OnlineResult", "online_policy", "project_capped_simplex"]

ONLINE_RULES = ("relu", "power", "quadratic")
_RULE_PARAMS = {"relu": (), "power": ("power",), "quadratic": ("cap", "iters", "tol")}


@dataclass(frozen=True)
class OnlineResult:
    """What :func:`online_policy` returns.

    Attributes:
        policy: γ, ``(T, N)``, the rows the rule chose (γ_t from the contributions at θ_t).
        run: the training run. Without a control, the same curves as
            ``train(task, policy, lr)``; under a control it is the controlled run, which
            ``train`` does NOT reproduce (``replay_policy(task, policy, lr, control)`` does).
        rule: the rule's name.
        rule_params: its parameters, defaults filled in.
        contributions: ``(T, N)`` CT_{t,n} at θ_t, if ``keep_contributions=True``, else ``None``.
        inner_iters: ``(T,)`` projected-gradient iterations used per step (``"quadratic"`` only).
        control: ``None``, ``"direction"`` or ``"length"``
            (:mod:`learnlaw.policies.controls`).
        step_norms: ``(T, 2)`` [‖d_rule‖, ‖d_uni‖] at the run's θ_t, d_rule = Σ_n γ_{t,n}
            ∇l_n(θ_t) and d_uni the uniform row's; ``None`` without a control.
        step_scale: ``(T,)`` the factor applied to the kept direction (‖d_uni‖/‖d_rule‖ for
            ``"direction"``, ‖d_rule‖/‖d_uni‖ for ``"length"``, 0 for a degenerate step);
            ``None`` without a control.
        step: ``"fixed"`` or ``"line_search"`` (:mod:`learnlaw.policies.online_step`).
        step_params: ``{"max_lr", "trust"}`` of the line search (defaults filled in), ``{}``.
        lrs: ``(T,)`` on the CPU, η_t of every step (``lr`` throughout for ``"fixed"``);
            without a control ``train(task, policy, lrs)`` replays the run.
        step_model: ``(T, 2)`` [s_t, q_t] = [g_t·d_t, d_tᵀH_dsr d_t] of the line search's
            model, on the task's device; ``None`` for ``"fixed"``.
    """

    policy: Tensor
    run: Run
    rule: str
    rule_params: dict = field(default_factory=dict)
    contributions: Tensor | None = None
    inner_iters: Tensor | None = None
    control: str | None = None
    step_norms: Tensor | None = None
    step_scale: Tensor | None = None
    step: str = "fixed"
    step_params: dict = field(default_factory=dict)
    lrs: Tensor | None = None
    step_model: Tensor | None = None


# -- rule parameters ---------------------------------------------------------------------------
def _rule_params(rule: str, params: dict) -> dict:
    if rule not in ONLINE_RULES:
        raise ArgumentValueError(
            f"unknown online rule {rule!r}; the known rules are {ONLINE_RULES}"
        )
    extra = sorted(set(params) - set(_RULE_PARAMS[rule]))
    if extra:
        raise ArgumentTypeError(
            f"rule {rule!r} takes the parameters {_RULE_PARAMS[rule] or '(none)'}, got {extra}"
        )
    if rule == "power":
        if "power" not in params:
            raise ArgumentTypeError(
                "rule 'power' needs power=p > 0 (e.g. online_policy(..., power=2))"
            )
        p = checks.check_number(
            params["power"], "power", minimum=0.0, strict=True, expected="a finite number > 0"
        )
        return {"power": float(p)}
    if rule == "quadratic":
        out = {"cap": params.get("cap", 8.0), "iters": params.get("iters", 5)}
        out["tol"] = params.get("tol", 1e-9)
        cap, iters, tol = out["cap"], out["iters"], out["tol"]
        checks.check_number(
            cap, "cap", minimum=1.0, expected="None or a number ≥ 1 (γ_n ≤ cap/N)", allow_none=True
        )
        checks.check_int(iters, "iters", minimum=1)
        checks.check_number(tol, "tol", minimum=0.0, expected="a number ≥ 0")
        return out
    return {}


# -- the simple rules --------------------------------------------------------------------------
def _power_weights(ct: Tensor, p: float) -> Tensor:
    """γ ∝ max(CT, 0)^p (uniform if no CT is positive), from CT / max CT (no overflow).

    Branch-free (``torch.where``), so it reads nothing back to the host: no host sync on an
    accelerator.
    """
    pos = ct.clamp_min(0)
    top = pos.max()
    positive = top > 0
    w = pos / torch.where(positive, top, 1.0)
    if p != 1:
        w = w.pow(p)
    # Relative weights below tiny/eps change no float of the step; zeroing them keeps the
    # arithmetic out of subnormal numbers (which made p = 4 runs 1.5× slower on a CPU).
    fi = torch.finfo(w.dtype)
    w = torch.where(w < fi.tiny / fi.eps, 0.0, w)
    return torch.where(positive, w / w.sum(), 1.0 / len(ct))


def _to_host(*values: Tensor) -> list[float]:
    """Several 0-dim tensors as Python floats in ONE device→host transfer (one host sync).

    The values go through float64, so each is exactly what ``float(value)`` would give.
    """
    return torch.stack([v.to(torch.float64) for v in values]).tolist()


# -- the quadratic rule ------------------------------------------------------------------------
def project_capped_simplex(v: Tensor, cap: float, max_iter: int = 200) -> Tensor:
    """Euclidean projection of a vector onto {x : Σx = 1, 0 ≤ x ≤ cap} (needs cap·N ≥ 1).

    The KKT conditions give x = clip(v − τ, 0, cap) with τ the root of the non-increasing,
    piecewise-linear f(τ) = Σ clip(v − τ, 0, cap) − 1 (slope −|F(τ)|, F the free set
    {0 < v − τ < cap}). Safeguarded Newton: τ ← τ + f(τ)/|F(τ)|, which is exact as soon as F(τ)
    is the free set of the root, kept inside a bracket [lo, hi] with f(lo) ≥ 0 > f(hi) and
    replaced by bisection when it leaves it. A handful of O(N) rounds in practice.
    """
    n = v.numel()
    if cap * n < 1 - 1e-12:
        raise ArgumentValueError(
            f"cap·N = {cap * n:g} < 1: no point of the simplex is under the cap"
        )
    v_min, v_max, v_sum = _to_host(v.min(), v.max(), v.sum())  # one host sync
    lo, hi = v_min - cap, v_max  # f(lo) = N·cap − 1 ≥ 0, f(hi) = −1
    tau = (v_sum - 1) / n  # the uncapped simplex's threshold if no cap binds
    eps = torch.finfo(v.dtype).eps
    for _ in range(max_iter):
        z = v - tau
        free = ((z > 0) & (z < cap)).sum().to(v.dtype)  # exact below 2^24 (float32)
        total, n_free = _to_host(z.clamp(0, cap).sum(), free)  # one host sync per round
        fval, n_free = total - 1, int(n_free)
        if fval >= 0:
            lo = tau
        else:
            hi = tau
        if abs(fval) <= 4 * eps * n**0.5 or hi - lo <= eps * max(abs(lo), abs(hi), 1.0):
            break
        step = tau + fval / n_free if n_free else 0.5 * (lo + hi)
        tau = step if lo < step < hi else 0.5 * (lo + hi)
    return (v - tau).clamp(0, cap)


class _Curvature:
    """Matrix-free products with G (per-example gradients) and H_dsr at one θ."""

    def __init__(self, kernels, ct_task: Task):
        self.kernels = kernels
        self.ct_task = ct_task
        self.logistic = kernels.factored
        if self.logistic:
            x, y = ct_task.desired
            self.xd, self.yd = x, y.to(ct_task.dtype)
        else:
            spec = ct_task.spec

            def summed(theta, x, y):
                return ct_task.per_example_loss(spec.unflatten(theta), x, y).sum()

            self._dgrad = grad(summed)

    def at(self, theta: Tensor, resid: Tensor | None = None) -> None:
        """Move to θ (``resid``: σ(Xθ) − y of the perceptron, if already computed)."""
        self.theta = theta
        if self.logistic:
            x, y = self.kernels.data["train"]
            # ∇l_n = r_n x_n (a copy: the caller may overwrite resid)
            self.r = torch.sigmoid(x @ theta) - y if resid is None else resid.clone()
            o = torch.sigmoid(self.xd @ theta)
            self.s = o * (1 - o) / len(self.yd)  # H_dsr = Xdᵀ diag(s) Xd

    def gt(self, gamma: Tensor) -> Tensor:
        """Gᵀγ = Σ_n γ_n ∇l_n, ``(P,)``."""
        if self.logistic:
            return self.kernels.xt @ (gamma * self.r)
        return self.kernels.train_grad(self.theta, gamma)

    def g(self, v: Tensor) -> Tensor:
        """G v = [∇l_n·v]_n, ``(N,)``."""
        if self.logistic:
            return self.r * torch.mv(self.kernels.xt.T, v)
        return self.kernels.directional(self.theta, v, "train")

    def h(self, v: Tensor) -> Tensor:
        """H_dsr v, ``(P,)``."""
        if self.logistic:
            return self.xd.T @ (self.s * (self.xd @ v))
        total = torch.zeros_like(v)
        for _, x, y in self.ct_task.chunks("desired"):
            total += jvp(lambda th: self._dgrad(th, x, y), (self.theta,), (v,))[1]
        return total / self.ct_task.n_desired


def _quadratic_weights(
    ct: Tensor,
    lr: float | Tensor,
    ops: _Curvature,
    start: Tensor,
    cap: float | None,
    iters: int,
    tol,
) -> tuple[Tensor, int]:
    """Minimise m(γ) = −η γ·CT + ½η² ‖Gᵀγ‖²_{H_dsr} over C by projected gradient + line search.

    ``lr``: η, a float or a 0-dim tensor on the device (read with the first host transfer).
    """
    n = len(ct)

    def proj(v: Tensor) -> Tensor:
        return project_simplex(v) if cap is None else project_capped_simplex(v, cap / n)

    gamma = proj(start)
    d = ops.gt(gamma)
    hd = ops.h(d)
    grad_m = -lr * ct + lr**2 * ops.g(hd)
    eta = [lr] if isinstance(lr, Tensor) else []
    dhd, gg, ct_max, *eta = _to_host(d @ hd, gamma @ gamma, ct.abs().max(), *eta)  # one sync
    lr = eta[0] if eta else lr
    curv0 = lr**2 * dhd
    step = gg / curv0 if curv0 > 0 else 1.0 / (lr * ct_max + 1e-300)
    used = 0
    for used in range(1, iters + 1):
        delta = proj(gamma - step * grad_m) - gamma
        slope, size = _to_host(grad_m @ delta, delta.abs().sum())  # one host sync
        if slope >= 0 or size <= tol:
            break
        u = ops.gt(delta)
        hu = ops.h(u)
        curv = lr**2 * float(u @ hu)
        alpha = 1.0 if curv <= 0 else min(1.0, -slope / curv)
        gamma = gamma + alpha * delta
        grad_m = grad_m + alpha * lr**2 * ops.g(hu)
        if curv > 0:
            step = float(delta @ delta) / curv  # inverse curvature along the last direction
    # tidy rounding: exact zeros stay zero, and the row sums to 1
    gamma = gamma.clamp_min(0)
    return gamma / gamma.sum(), used


# -- the online run ----------------------------------------------------------------------------
def _ct_task(task: Task, desired) -> Task:
    """The task whose desired split the contributions are measured on."""
    if desired is not None:
        if not (isinstance(desired, tuple) and len(desired) == 2):
            raise ArgumentTypeError(
                f"desired must be an (inputs, targets) pair (e.g. part of task.desired), got "
                f"{type(desired).__name__}"
            )
        x, y = desired
        if len(x) != len(y):
            raise ArgumentValueError(f"desired has {len(x)} inputs but {len(y)} targets")
        x = x.to(task.device, task.dtype) if x.dtype.is_floating_point else x.to(task.device)
        task = task.with_(desired=(x, y.to(task.device)))
    if task.n_desired == 0:
        raise ArgumentValueError(
            "the desired split is empty (K = 0): the contributions CT_n = ∇L_dsr·∇l_n need at "
            "least one desired example; give the task a desired split or pass desired=(x, y)"
        )
    return task


def _diverged(losses: Tensor, start: int, stop: int, factor: float | None) -> Tensor:
    """Whether :func:`raise_if_diverged` would raise on ``losses[start:stop]``, as a 0-dim
    boolean tensor on the device (no host sync).

    The same criterion and the same arithmetic: the threshold ``factor · L(θ_0)`` is formed in
    float64 and rounded to the losses' dtype, as a Python float compared with a tensor is.
    """
    window = losses[start:stop]
    bad = ~torch.isfinite(window)
    if factor is not None:
        initial = losses[0]
        threshold = (initial.to(torch.float64) * factor).to(losses.dtype)
        bad |= (window > threshold) & (initial > 0)
    return bad.any()


def online_policy(
    task: Task,
    steps: int,
    lr: float,
    rule: str = "relu",
    *,
    desired: tuple[Tensor, Tensor] | None = None,
    control: str | None = None,
    step: str = "fixed",
    max_lr: float | None = None,
    trust: float | None = None,
    keep_params: bool = False,
    keep_contributions: bool = False,
    progress: bool = False,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    **rule_params,
) -> OnlineResult:
    """Train ``task`` for T steps, choosing each γ_t by an online rule from CT at θ_t.

    Rules (see the module docstring for what each keeps of the Learning Law's optimality
    conditions): ``"relu"`` γ_t ∝ max(CT_t, 0); ``"power"`` (``power=p > 0``)
    γ_t ∝ max(CT_t, 0)^p — both uniform when no CT_{t,n} is positive; ``"quadratic"``
    (``cap=8.0``, ``iters=5``, ``tol=1e-9``) the minimiser of the second-order model of
    L_dsr(θ_{t+1}) over {γ ∈ Δ : γ_n ≤ cap/N}. Every rule steps θ_{t+1} = θ_t − η_t d_t
    with d_t = Σ_n γ_{t,n} ∇l_n(θ_t) and η_t = ``lr`` (``step="fixed"``) or the desired-set
    line search (``step="line_search"``): with s_t = Σ_n γ_{t,n} CT_{t,n} = g_t·d_t,
    q_t = d_tᵀ H_dsr(θ_t) d_t and b_t = min(max_lr, trust·η_{t−1}) (η_{−1} = ``lr``),
    η_t = min(s_t/q_t, b_t) if s_t > 0 and q_t > 0, b_t if s_t > 0 ≥ q_t, min(lr, b_t) if
    s_t ≤ 0 (:mod:`learnlaw.policies.online_step`).

    Cost: T training steps plus, per step, one contribution pass (a ∇L_dsr over K and one jvp
    over N): about 2× a plain run. ``"quadratic"`` adds ``iters`` + 1 products with G, Gᵀ and
    H_dsr and projections per step (about 18× a plain perceptron run). The line search adds
    one Hessian-vector product of L_dsr over K per step (for the perceptron one more
    matrix-vector product with X_dsr) and no host sync. Memory: O(N + P),
    plus T·N for the returned policy, T·N with ``keep_contributions`` and T·P with
    ``keep_params``.

    Args:
        task: the task; its test split is only recorded in ``run.test_loss``, never used.
        steps: T.
        lr: η (``step="fixed"``), or the reference step η_{−1} of the line search.
        rule: one of :data:`ONLINE_RULES`.
        desired: ``(inputs, targets)`` to measure CT on instead of ``task.desired`` (e.g. the
            fit part of a validation split). The run's curves still use the task's splits.
        control: ``None`` (the rule's own step θ_{t+1} = θ_t − η d_rule), ``"direction"``
            (step d_rule·‖d_uni‖/‖d_rule‖: the rule's direction at the uniform step's length)
            or ``"length"`` (step d_uni·‖d_rule‖/‖d_uni‖: the uniform direction at the rule's
            length), with d_rule = Σ_n γ_{t,n} ∇l_n(θ_t), d_uni = (1/N) Σ_n ∇l_n(θ_t) at the
            controlled run's own θ_t; a zero norm gives a zero step
            (:mod:`learnlaw.policies.controls`). Works with every rule; the rows are still
            the rule's choice at θ_t, the run is the controlled one, and the norms are
            recorded in ``step_norms``. Cost: one more weighted gradient per step (autodiff
            kernels; one more matrix-vector product with Xᵀ for the perceptron); no host
            sync. Not with ``step="line_search"``.
        step: ``"fixed"`` (η_t = ``lr``) or ``"line_search"`` (η_t from the second-order
            model of L_dsr along d_t, on the set CT is read from; the ``"quadratic"`` rule
            picks γ_t with η_{t−1}).
        max_lr: the line search's cap on η_t (``None``: no cap; the trust region bounds it).
        trust: the line search's growth bound ρ ≥ 1, η_t ≤ ρ η_{t−1} (``None``: 2).
        keep_params: keep θ_0…θ_T in ``run.trajectory``.
        keep_contributions: return the ``(T, N)`` contributions CT_{t,n} at θ_t.
        progress: show a tqdm bar.
        divergence_factor: the divergence criterion of :func:`learnlaw.train` (a loss above
            this many times its initial value, or not finite); ``None``: non-finite only.
        **rule_params: the rule's parameters (``power``; ``cap``, ``iters``, ``tol``).

    Returns:
        An :class:`OnlineResult`; without a control ``result.run`` has the same curves as
        ``train(task, result.policy, lr)`` (``result.lrs`` for the line search); under a
        control ``train`` no longer reproduces it, ``replay_policy(task, result.policy, lr,
        control)`` does.

    Raises:
        ValueError: an unknown rule or control (the message lists the known ones), a
            power ≤ 0, an empty desired split, non-finite contributions at a finite θ_t; an
            unknown step mode, max_lr ≤ 0, trust < 1, max_lr or trust with ``step="fixed"``,
            a control with the line search.
        TypeError: parameters the rule does not take, or a missing ``power``.
        DivergenceError: a loss that is not finite or above ``divergence_factor`` times its
            initial value, naming the step and the learning rate (as :func:`learnlaw.train`).
    """
    steps = checks.check_steps(steps)
    if not isinstance(rule, str):  # the value is checked with the rule's parameters
        raise checks.ArgumentTypeError(
            f"rule must be one of {ONLINE_RULES}, got {checks.describe(rule)}"
        )
    control = check_control(control)
    step_params = check_step(step, max_lr, trust, control)
    checks.check_bool(keep_params, "keep_params")
    checks.check_bool(keep_contributions, "keep_contributions")
    checks.check_bool(progress, "progress")
    lr = checks.check_lr(lr)
    factor = check_factor(divergence_factor)
    params = _rule_params(rule, rule_params)
    if shard_of(task) is not None:
        raise UnsupportedError(
            "online_policy runs in one process; inside a torch.distributed group call it on "
            "rank 0 only (or outside the group)"
        )
    ct_task = _ct_task(task, desired)
    kernels = kernels_for(task)
    ct_kernels = kernels_for(ct_task) if ct_task is not task else kernels
    curvature = _Curvature(ct_kernels, ct_task) if rule == "quadratic" else None
    power = params.get("power", 1.0)
    fused = kernels.factored and ct_kernels.factored
    search = None
    if step == "line_search":
        like = torch.empty(0, dtype=task.dtype, device=task.device)
        search = LineSearch(ct_task, fused, lr, like=like, **step_params)
    desired_grad = search.desired_grad if search is not None and fused else None

    spec = task.spec
    theta = spec.flatten(task.params0).detach()
    opts = dict(dtype=theta.dtype, device=theta.device)
    n, p_size, block = task.n_train, theta.numel(), kernels.block
    policy = torch.empty(steps, n, **opts)
    cts = torch.empty(steps, n, **opts) if keep_contributions else None
    traj = torch.empty(steps + 1, p_size, **opts) if keep_params else None
    inner = torch.zeros(steps, dtype=torch.long) if rule == "quadratic" else None
    step_norms = torch.empty(steps, 2, **opts) if control is not None else None
    step_scale = torch.empty(steps, **opts) if control is not None else None
    uniform = torch.full((n,), 1.0 / n, **opts) if control is not None else None
    lrs = torch.full((steps,), torch.nan, **opts) if search is not None else None
    step_model = torch.empty(steps, 2, **opts) if search is not None else None
    desired_curve = torch.empty(steps + 1, **opts)
    test_curve = torch.empty(steps + 1, **opts)
    buf = theta.new_empty(min(block, steps), p_size)  # θ_{s+1} … θ_{s+B} of the block
    ct_bad = torch.zeros(len(buf), dtype=torch.bool, device=theta.device)  # CT(θ_t) not finite
    theta_bad = torch.zeros_like(ct_bad)  # θ_{t+1} not finite
    if traj is not None:
        traj[0] = theta
    gamma = None
    block_start = theta  # θ_s, the first θ of the block

    def contributions_at(theta: Tensor) -> tuple[Tensor, Tensor | None]:
        """CT at θ (and, for the perceptron, the residuals σ(Xθ) − y shared with the step)."""
        if fused:  # perceptron: σ(Xθ) − y once for CT and the step (as forward_segment)
            resid = kernels.residual(theta)
            g = (desired_grad or ct_kernels.desired_grad)(theta)
            return resid * torch.mv(kernels.xt.T, g), resid
        return ct_kernels.contributions(theta, "desired"), None

    def record_losses(s: int, stop: int) -> None:
        """The loss curves at θ_{s+1} … θ_stop (from the block's buffer)."""
        if stop > s:
            desired_curve[s + 1 : stop + 1] = kernels.split_losses(buf[: stop - s], "desired")
            test_curve[s + 1 : stop + 1] = kernels.split_losses(buf[: stop - s], "test")

    def check_losses(s: int, stop: int) -> None:
        """:func:`raise_if_diverged` on the losses at θ_{s+1} … θ_stop."""
        raise_if_diverged(desired_curve, s + 1, stop + 1, lr, factor, "desired loss")
        raise_if_diverged(test_curve, s + 1, stop + 1, lr, factor, "test loss")

    def fail(i: int, s: int) -> None:
        """Raise the error of step i, the first flagged one of the block starting at s.

        The order of the checks is that of a run that checked every step: the losses up to
        the first non-finite quantity, then CT at θ_i (ValueError while θ_i is finite), then
        θ_{i+1} (DivergenceError).
        """
        theta_i = block_start if i == s else buf[i - s - 1]
        if not bool(torch.isfinite(theta_i).all()):  # only where CT is checked every step
            record_losses(s, i)
            check_losses(s, i)
            raise DivergenceError(
                f"training diverged: θ at step {i} is not finite with learning rate "
                f"lr={lr:g}; lower the learning rate"
            )
        ct, _ = contributions_at(theta_i)
        bad = ~torch.isfinite(ct)
        if bool(bad.any()):
            record_losses(s, i)
            check_losses(s, i)  # a diverged θ_i raises DivergenceError here
            raise ArgumentValueError(
                f"{int(bad.sum())} of the {n} contributions at step {i} are not finite "
                f"(e.g. CT[{int(bad.nonzero()[0])}] = {ct[bad][0].item()}) while θ_{i} is "
                "finite; check the desired split (non-finite inputs or targets) and the loss"
            )
        record_losses(s, i + 1)
        check_losses(s, i + 1)
        raise DivergenceError(
            f"training diverged: θ at step {i + 1} is not finite with learning rate "
            f"lr={lr:g}; lower the learning rate"
        )

    def flush(t: int) -> None:
        """Losses at θ_{s+1} … θ_{t+1} (the buffered block), then every check of the block.

        One host sync for the whole block: the flags of non-finite CT and θ and the divergence
        criterion of both loss curves are reduced on the device to one boolean.
        """
        j = t % block
        s = t - j
        record_losses(s, t + 1)
        flagged = ct_bad[: j + 1] | theta_bad[: j + 1]
        window = _diverged(desired_curve, s + 1, t + 2, factor)
        window |= _diverged(test_curve, s + 1, t + 2, factor)
        if bool(flagged.any() | window):
            if bool(flagged.any()):
                fail(s + int(flagged.nonzero()[0]), s)
            check_losses(s, t + 1)

    t = 0
    try:
        with torch.no_grad(), progress_bar(progress, total=steps, desc=f"online {rule}") as bar:
            desired_curve[0] = kernels.split_losses(theta[None], "desired")[0]
            test_curve[0] = kernels.split_losses(theta[None], "test")[0]
            for t in range(steps):
                j = t % block
                if j == 0:
                    block_start = theta
                    ct_bad.zero_()
                    theta_bad.zero_()
                ct, resid = contributions_at(theta)
                ct_bad[j] = ~torch.isfinite(ct).all()  # checked once per block, in flush
                if cts is not None:
                    cts[t] = ct
                if rule == "quadratic":
                    # its line search reads values on the host anyway: check θ_t and CT at θ_t
                    # at every step (one host sync) before the projections use them
                    if bool(ct_bad[j] | ~torch.isfinite(theta).all()):
                        fail(t, t - j)
                    curvature.at(theta, resid)
                    start = _power_weights(ct, 1.0) if gamma is None else gamma
                    eta = lr if search is None else search.prev  # the line search: η_{t−1}
                    gamma, used = _quadratic_weights(
                        ct, eta, curvature, start, params["cap"], params["iters"], params["tol"]
                    )
                    inner[t] = used
                else:
                    gamma = _power_weights(ct, power)
                policy[t] = gamma
                if control is not None:  # d_rule, d_uni at θ_t and the norm-matched step
                    pair = step_pair(kernels, theta, gamma, uniform, resid if fused else None)
                    s_t, step_norms[t], step_scale[t] = controlled_step(pair, control)
                    theta = theta - lr * s_t
                elif search is not None:  # the desired-set line search along d_t
                    d = torch.mv(kernels.xt, resid * gamma) if fused else None
                    d = kernels.train_grad(theta, gamma) if d is None else d
                    lrs[t], step_model[t] = search.step(theta, d, torch.dot(gamma, ct))
                    theta = theta - lrs[t] * d
                elif fused:
                    theta = torch.addmv(theta, kernels.xt, resid.mul_(gamma), alpha=-lr)
                else:
                    theta = kernels.forward_segment(theta, policy[t : t + 1], lr)[0]
                buf[j] = theta
                if traj is not None:
                    traj[t + 1] = theta
                theta_bad[j] = ~torch.isfinite(theta).all()
                if j == block - 1 or t == steps - 1:
                    flush(t)
                bar.update(1)
    except DivergenceError as err:  # name the steps the line search chose
        if search is None:
            raise
        raise DivergenceError(search.explain(err, lrs, t)) from err
    run = Run(
        desired_loss=desired_curve,
        test_loss=test_curve,
        lr=lr,
        vocab_size=task.vocab_size,
        final_params={k: v.clone() for k, v in spec.unflatten(theta).items()},
        trajectory=traj,
        spec=spec,
    )
    return OnlineResult(
        policy,
        run,
        rule,
        params,
        cts,
        inner,
        control,
        step_norms,
        step_scale,
        step=step,
        step_params=step_params,
        lrs=torch.full((steps,), lr, dtype=task.dtype) if lrs is None else lrs.cpu(),
        step_model=step_model,
    )
