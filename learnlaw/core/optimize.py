"""Near-optimal learning policies by projected ("proximal") gradient descent on γ (paper Eq. 6).

    γ_t ← Proj_Δ[γ_t − ε_e ∂J/∂γ_t],   t = t_u, …, T−1,

starting from the uniform policy, where ∂J/∂γ comes from the adjoint sweep
(:func:`learnlaw.core.adjoint.adjoint_sweep`) and Proj_Δ is the Euclidean projection onto the simplex
(:func:`learnlaw.core.policy.project_simplex`). ε_e is constant or decays linearly to 0 over the
epochs; the first ``uniform_steps`` rows (t < t_u) can be left uniform.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from learnlaw.core.adjoint import adjoint_sweep
from learnlaw.core.metrics import compression_ratio, empirical_acceleration
from learnlaw.core.policy import project_simplex, uniform_policy, validate_policy
from learnlaw.core.task import Task
from learnlaw.core.training import Run, check_lr, train

__all__ = ["optimize_policy", "SearchResult", "SearchConfig"]


@dataclass(frozen=True)
class SearchConfig:
    """Everything that determines a search; a resumed search must match it exactly."""

    task: str
    n_train: int
    n_params: int
    steps: int
    lr: float
    outer_lr: float
    epochs: int
    schedule: str
    uniform_steps: int
    checkpoint_every: int | str | None
    penalty: str | None = None


@dataclass
class SearchResult:
    """The outcome of :func:`optimize_policy`.

    Attributes:
        policy: the final γ, ``(T, N)``.
        history: one dict per evaluated policy, epochs 0…E (entry E is the final policy):
            ``epoch``, ``J`` (desired AUC Σ_{t≥1} L_dsr), ``test_auc``, ``cr_test``,
            ``ar_test`` (empirical acceleration on the test set against the uniform policy),
            ``zero_fraction`` (share of γ_{t,n} = 0), ``outer_lr`` (the step used after it).
        kept: policies kept along the way, ``{epoch: (T, N) tensor}``.
        baseline: the run of the uniform policy.
        final: the run of the final policy.
        config: the search's settings.
    """

    policy: Tensor
    history: list[dict]
    kept: dict[int, Tensor]
    baseline: Run
    final: Run
    config: SearchConfig

    def column(self, name: str) -> list[float]:
        """One history field over the epochs, e.g. ``result.column("J")``."""
        return [h[name] for h in self.history]


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _step_size(outer_lr: float, schedule: str, epoch: int, epochs: int) -> float:
    if schedule == "constant":
        return outer_lr
    return outer_lr * (1 - epoch / epochs)  # "linear": decays to 0 at the last epoch


def optimize_policy(
    task: Task,
    steps: int,
    lr: float,
    outer_lr: float,
    epochs: int,
    *,
    schedule: str = "constant",
    uniform_steps: int = 0,
    keep: tuple[int, ...] | list[int] = (),
    checkpoint_every: int | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    initial_policy: Tensor | None = None,
    penalty: Callable[[Tensor], tuple[float, Tensor]] | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search a near-optimal policy by projected gradient descent on J(γ) = Σ_{t=1}^T L_dsr(θ_t).

    Each epoch costs one :func:`~learnlaw.core.adjoint.adjoint_sweep` (about 2–3 training runs) plus
    one projection of the (T, N) policy; memory is that of the sweep plus two (T, N) tensors.

    Args:
        task: the task; J uses its desired split, every reported metric its test split.
        steps: T.
        lr: η of the inner gradient descent.
        outer_lr: ε, the policy step size (on J as a sum over t, in nats).
        epochs: the number of policy updates E.
        schedule: ``"constant"`` or ``"linear"`` (ε_e = ε (1 − e/E)).
        uniform_steps: leave the first rows γ_0…γ_{t_u−1} uniform (never updated).
        keep: epochs whose policy (before that epoch's update; E for the final one) is kept.
        checkpoint_every: θ checkpointing of the sweep (see :func:`adjoint_sweep`).
        checkpoint_dir: if given, the state is saved there atomically after every epoch
            (``state.pt``) and each kept policy once (``policy_<epoch>.pt``).
        resume: continue from ``checkpoint_dir/state.pt`` if it exists; the result equals that
            of an uninterrupted search.
        initial_policy: start here instead of the uniform policy.
        penalty: a regulariser R(γ) minimised together with J: ``penalty(policy)`` returns
            ``(R, ∂R/∂γ)``; the step then uses ∂J/∂γ + ∂R/∂γ and the history records ``R``.
        progress: a tqdm bar over epochs showing the current J.
    """
    lr = check_lr(lr)
    check_lr(outer_lr)
    if not (isinstance(epochs, int) and epochs >= 0):
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if schedule not in ("constant", "linear"):
        raise ValueError(f"schedule must be 'constant' or 'linear', got {schedule!r}")
    if not (isinstance(uniform_steps, int) and 0 <= uniform_steps <= steps):
        raise ValueError(f"uniform_steps must be an int in [0, {steps}], got {uniform_steps!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir, where the interrupted search saved")
    config = SearchConfig(
        task.name,
        task.n_train,
        task.n_params,
        steps,
        lr,
        float(outer_lr),
        epochs,
        schedule,
        uniform_steps,
        checkpoint_every,
        None if penalty is None else getattr(penalty, "__name__", type(penalty).__name__),
    )
    opts = dict(dtype=task.dtype, device=task.device)
    uniform = uniform_policy(steps, task.n_train, **opts)
    baseline = train(task, uniform, lr)
    if initial_policy is not None:
        policy = validate_policy(initial_policy, steps=steps, n=task.n_train).to(**opts).clone()
    else:
        policy = uniform.clone()
    history: list[dict] = []
    kept: dict[int, Tensor] = {}
    start = 0
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
        state_path = ckdir / "state.pt"
        if resume and state_path.exists():
            state = torch.load(state_path, map_location=task.device, weights_only=False)
            if state["config"] != asdict(config):
                diff = {
                    k: (v, asdict(config)[k])
                    for k, v in state["config"].items()
                    if asdict(config).get(k) != v
                }
                raise ValueError(
                    f"cannot resume from {state_path}: it was saved by a different search "
                    f"(saved vs now: {diff}); use another checkpoint_dir or resume=False"
                )
            policy, history, start = state["policy"].to(**opts), state["history"], state["epoch"]
            for e in state["kept"]:
                kept[e] = torch.load(ckdir / f"policy_{e}.pt", map_location=task.device)

    def record(epoch: int, desired: Tensor, test: Tensor, eps: float) -> dict:
        entry = dict(
            epoch=epoch,
            J=float(desired[1:].sum()),
            test_auc=float(test[1:].sum()),
            cr_test=compression_ratio(test, task.vocab_size),
            ar_test=empirical_acceleration(baseline.test_loss, test),
            zero_fraction=float((policy == 0).sum()) / policy.numel(),
            outer_lr=eps,
        )
        history.append(entry)
        return entry

    def keep_now(epoch: int) -> None:
        if epoch in keep and epoch not in kept:
            kept[epoch] = policy.clone()
            if ckdir is not None:
                _atomic_save(kept[epoch], ckdir / f"policy_{epoch}.pt")

    bar = tqdm(
        range(start, epochs),
        desc="policy search",
        disable=not progress,
        initial=start,
        total=epochs,
    )
    for epoch in bar:
        sweep = adjoint_sweep(task, policy, lr, checkpoint_every=checkpoint_every)
        eps = _step_size(outer_lr, schedule, epoch, epochs)
        entry = record(epoch, sweep.desired_loss, sweep.test_loss, eps)
        grad = sweep.grad
        if penalty is not None:
            value, pgrad = penalty(policy)
            entry["penalty"] = float(value)
            grad = grad + pgrad
        keep_now(epoch)
        bar.set_postfix(J=f"{entry['J']:.4f}", AR=f"{entry['ar_test']:.2f}")
        step = project_simplex(policy[uniform_steps:] - eps * grad[uniform_steps:])
        policy[uniform_steps:] = step
        if ckdir is not None:
            _atomic_save(
                dict(
                    config=asdict(config),
                    policy=policy,
                    history=history,
                    epoch=epoch + 1,
                    kept=sorted(kept),
                ),
                ckdir / "state.pt",
            )
    bar.close()
    final = train(task, policy, lr)
    if not history or history[-1]["epoch"] != epochs:
        record(epochs, final.desired_loss, final.test_loss, math.nan)
    keep_now(epochs)
    return SearchResult(
        policy=policy, history=history, kept=kept, baseline=baseline, final=final, config=config
    )
