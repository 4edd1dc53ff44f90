"""Step sizes for the online rules: a line search of the desired loss along the rule's step.

:func:`learnlaw.online_policy` with ``step="line_search"`` keeps the rule's row w_t (chosen from
the contributions CT_{t,n} at θ_t, as with a fixed step) and chooses the step's LENGTH η_t too:

    θ_{t+1} = θ_t − η_t d_t,        d_t = Σ_n w_{t,n} ∇l_n(θ_t)   (P,).

Why: the one-step reading of the step-size Law
------------------------------------------------
For the AUC J = Σ_{t=1}^T L_dsr(θ_t) of a run with per-step rates η_t, the adjoint
a_{t+1} = ∂J/∂θ_{t+1} (:mod:`learnlaw.core.adjoint`) gives

    ∂J/∂η_t = −d_t·a_{t+1},      a_{t+1} = ∇L_dsr(θ_{t+1}) + (I − η_{t+1} H_{w,t+1}) a_{t+2},

so the optimal schedule asks, at every step with an unconstrained η_t, that the step be
orthogonal to the adjoint: d_t·a_{t+1} = 0. The myopic (one-step) reading keeps the first term
of a_{t+1} only — exact for the last step, where a_T = ∇L_dsr(θ_T) — and the condition becomes

    ∇L_dsr(θ_t − η d_t)·d_t = 0  ⟺  (d/dη) L_dsr(θ_t − η d_t) = 0:

an exact line search of the DESIRED loss along the rule's direction (the same reading that turns
the Learning Law's KKT conditions into the rules themselves, with ∇L_dsr(θ_t) for a_{t+1}).
Its second-order model, with g_t = ∇L_dsr(θ_t) and H_dsr = ∇²L_dsr(θ_t) on the set the rule
reads CT from (``desired=`` or ``task.desired``),

    m(η) = L_dsr(θ_t) − η s_t + ½ η² q_t,      s_t = g_t·d_t = Σ_n w_{t,n} CT_{t,n},
                                                q_t = d_tᵀ H_dsr d_t,

has m'(η) = 0 at η = s_t / q_t: the linearised condition (g_t − η H_dsr d_t)·d_t = 0. The slope
s_t is already known from the contributions (no extra pass); q_t is one Hessian-vector product
of the desired loss along d_t.

The rule (exact)
----------------
With the reference step η_{−1} = ``lr``, the growth factor ρ = ``trust`` (≥ 1; default 2) and
the cap ``max_lr`` (``None``: no cap), the bound of step t is

    b_t = min(max_lr, ρ η_{t−1}),

and

    η_t = min(s_t / q_t, b_t)    if s_t > 0 and q_t > 0   (the model's minimiser, clipped);
    η_t = b_t                    if s_t > 0 and q_t ≤ 0   (m decreases without end: the bound);
    η_t = min(lr, b_t)           if s_t ≤ 0               (no descent direction for L_dsr).

So every η_t is in (0, b_t] (for s_t > 0 and q_t > 0 it is the minimiser of m over (0, b_t]:
m is convex there and decreasing up to s_t/q_t), and η_t ≤ max_lr, η_t ≤ ρ η_{t−1} hold at every
step. The trust region bounds GROWTH only: a step may shrink at once (the model's minimiser may
be small), then recovers at most a factor ρ per step. The case s_t ≤ 0 arises when no example
contributes (every CT_{t,n} ≤ 0: the relu and power rules fall back to the uniform row): the
myopic answer would be η = 0, but then θ_{t+1} = θ_t, the same row comes back, and the run
stalls for ever; the rule takes the reference step instead (within the bound), as the
fixed-step rule would. A zero direction (d_t = 0: s_t = q_t = 0) falls in that case and leaves
θ where it is whatever η_t is.

For the ``"quadratic"`` rule the row itself depends on η (its model is m(γ) with the step η
Gᵀγ): it is chosen with η_{t−1}, then η_t by the line search along its d_t — one round of
alternating minimisation of the joint model over (γ, η).

Cost and device
---------------
Per step one more Hessian-vector product of L_dsr along d_t over the K desired examples: for
autodiff kernels one forward-over-reverse pass (``jvp`` of ``grad``) over K, about two or three
desired gradients; for the perceptron one matrix-vector product X_dsr d_t (K×P; H_dsr =
X_dsrᵀ diag(σ'(u)) X_dsr / K with σ' shared with ∇L_dsr) and O(K) more. The weighted gradient
d_t is formed as in a fixed step. η_t is computed on the device, branch-free (``torch.where``,
``clamp``): no host sync per step (the ``"quadratic"`` rule reads η_{t−1} in the transfer that
its per-step checks already make).

Measured on the paper's perceptron (D = 128, N = 4096, K = 512, float32, T = 2000, η_{−1} = 0.1,
one thread, a shared 2-core CPU, best of 5): 0.196 ms per step against 0.156 ms with the fixed
step for ``"relu"`` (1.25×), 0.196 against 0.163 ms for ``"power"`` with p = 2 (1.2×); a plain
run takes 0.075 ms per step. What the myopic step drops shows there: it chose η_t with median
0.03 (range 0.005–0.29) and its AUC was 244 nats against 185 with the fixed η = 0.1 (relu; 296
against 185 for p = 2): the one-step optimum along d_t is shorter than the steps that pay
over the horizon, which is what the dropped term (I − η_{t+1} H) a_{t+2} of a_{t+1} carries.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import grad, jvp

from learnlaw.core import checks
from learnlaw.core.task import Task

__all__ = ["STEP_MODES", "DEFAULT_TRUST", "LineSearch", "check_step"]

STEP_MODES = ("fixed", "line_search")
"""How :func:`learnlaw.online_policy` chooses η_t: ``lr`` at every step, or the line search."""

DEFAULT_TRUST = 2.0
"""ρ of ``trust=None``: the step may at most double from one step to the next."""


def check_step(step, max_lr, trust, control) -> dict:
    """The step mode's parameters (``{}`` for ``"fixed"``), checked.

    Raises:
        ArgumentTypeError / ArgumentValueError: an unknown mode, ``max_lr`` ≤ 0, ``trust`` < 1,
            ``max_lr``/``trust`` given with ``step="fixed"``, or a control with the line search.
    """
    checks.check_choice(step, "step", STEP_MODES)
    max_lr = checks.check_number(
        max_lr,
        "max_lr",
        minimum=0.0,
        strict=True,
        expected="None or a positive finite number (the largest step η_t)",
        allow_none=True,
    )
    trust = checks.check_number(
        trust,
        "trust",
        minimum=1.0,
        expected="None or a finite number ≥ 1 (η_t ≤ trust·η_{t−1})",
        allow_none=True,
    )
    if step == "fixed":
        given = [f"{k}={v!r}" for k, v in (("max_lr", max_lr), ("trust", trust)) if v is not None]
        if given:
            raise checks.ArgumentValueError(
                f"{' and '.join(given)} given with step='fixed'; max_lr and trust bound the "
                "steps of step='line_search' only: pass step='line_search' or drop them"
            )
        return {}
    if control is not None:
        raise checks.ArgumentValueError(
            f"control={control!r} cannot be combined with step='line_search': a control "
            "norm-matches steps of the fixed η, the line search chooses η_t itself; "
            "pass one of them"
        )
    return {"max_lr": max_lr, "trust": DEFAULT_TRUST if trust is None else trust}


class LineSearch:
    """η_t of the desired-set line search (module docstring), on the device.

    Args:
        ct_task: the task whose desired split CT is read from (its H_dsr is used).
        closed_form: the perceptron's closed form (factored kernels on both tasks): then
            :meth:`desired_grad` gives ∇L_dsr and keeps σ'(u) for the curvature.
        lr: η_{−1}, the reference step.
        max_lr, trust: the cap (``None``: none) and the growth factor ρ.
        like: a tensor with the run's dtype and device.
    """

    def __init__(self, ct_task: Task, closed_form: bool, lr: float, max_lr, trust, like: Tensor):
        self.task, self.closed_form = ct_task, closed_form
        self.lr, self.max_lr, self.trust = lr, max_lr, trust
        self.prev = torch.full((), lr, dtype=like.dtype, device=like.device)  # η_{t−1}
        self.k = ct_task.n_desired
        if closed_form:
            x, y = ct_task.desired
            self.xd, self.yd = x, y.to(like.dtype)
            self._at = None  # the θ of the kept σ'(u)
        else:
            spec = ct_task.spec

            def summed(theta, x, y):
                return ct_task.per_example_loss(spec.unflatten(theta), x, y).sum()

            self._dgrad = grad(summed)

    def desired_grad(self, theta: Tensor) -> Tensor:
        """∇L_dsr(θ) of the perceptron, ``(P,)``; keeps σ'(X_dsr θ) for :meth:`curvature`."""
        o = torch.sigmoid(self.xd @ theta)
        self._at, self._s = theta, o * (1 - o)
        return self.xd.T @ (o - self.yd) / self.k

    def curvature(self, theta: Tensor, d: Tensor) -> Tensor:
        """q = dᵀ H_dsr(θ) d, a 0-dim tensor (one Hessian-vector product over K)."""
        if self.closed_form:
            if theta is not self._at:
                self.desired_grad(theta)
            xd = torch.mv(self.xd, d)
            return torch.dot(self._s * xd, xd) / self.k
        total = torch.zeros((), dtype=d.dtype, device=d.device)
        for _, x, y in self.task.chunks("desired"):
            total = total + torch.dot(d, jvp(lambda th: self._dgrad(th, x, y), (theta,), (d,))[1])
        return total / self.k

    def step(self, theta: Tensor, d: Tensor, slope: Tensor) -> tuple[Tensor, Tensor]:
        """η_t for the step −η d at θ, given s = g·d; returns ``(η_t, [s, q])``. No host sync."""
        q = self.curvature(theta, d)
        bound = self.prev * self.trust
        if self.max_lr is not None:
            bound = bound.clamp(max=self.max_lr)
        convex = q > 0
        newton = torch.minimum(slope / torch.where(convex, q, 1.0), bound)
        eta = torch.where(slope > 0, torch.where(convex, newton, bound), bound.clamp(max=self.lr))
        self.prev = eta
        return eta, torch.stack((slope, q))

    def explain(self, error: Exception, lrs: Tensor, t: int) -> str:
        """The message of a diverged line-search run: the steps chosen up to step t."""
        done = lrs[: t + 1]
        done = done[~torch.isnan(done)].cpu()  # η_t is not set when step t failed first
        chosen = (
            f"the steps η_0…η_{len(done) - 1} ranged over [{float(done.min()):g}, "
            f"{float(done.max()):g}], the last {float(done[-1]):g}"
            if len(done)
            else "no step was taken"
        )
        return (
            f"{error} (with step='line_search' lr={self.lr:g} is only the reference step "
            f"η_{{−1}}: {chosen}; lower max_lr or trust)"
        )
