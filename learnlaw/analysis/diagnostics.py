"""The Learning-Law measurements along one run (paper Sec. 4.4–4.5, Figs. 6–10).

* :func:`law_diagnostics`: along one run, SIM_t (paper Eq. 7), the Property 4.1 and 4.2
  fractions and the contributions needed for the paper's Figs. 6–10 (:class:`LawDiagnostics`);
* :func:`kind_weight_shares`: how much of each step's weight goes to each planted example kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.law import (
    contribution_trajectory,
    learned_weight_ratios,
    sim,
    zero_weight_fraction,
)
from learnlaw.core.metrics import compression_ratio
from learnlaw.core.policy import validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import train

__all__ = ["LawDiagnostics", "law_diagnostics", "kind_weight_shares"]


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
    checks.check_choice(split, "split", ("desired", "test"))
    checks.check_number(loss_threshold, "loss_threshold", minimum=0.0)
    checks.check_int(before, "before", minimum=1, allow_none=True)
    checks.check_int(head, "head", minimum=1)
    checks.check_int(grid, "grid", minimum=2)
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
    checks.check_bool(relative, "relative")
    w = torch.as_tensor(policy)
    if w.ndim != 2:
        raise ArgumentValueError(f"policy must have shape (T, N), got {tuple(w.shape)}")
    out = {}
    for name, mask in kinds.items():
        m = torch.as_tensor(mask, device=w.device)
        if m.shape != (w.shape[1],) or m.dtype != torch.bool:
            raise ArgumentValueError(
                f"kind {name!r} must be a bool mask of shape ({w.shape[1]},), got "
                f"{m.dtype} {tuple(m.shape)}"
            )
        count = int(m.sum())
        if count == 0:
            continue
        share = w[:, m].sum(1)
        out[name] = share / (count / w.shape[1]) if relative else share
    return out
