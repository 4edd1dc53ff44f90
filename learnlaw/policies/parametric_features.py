"""Per-example features for feature-scorer policies, computed ONCE before the search.

A feature scorer (:func:`learnlaw.policies.feature_policy`) maps fixed features F to a
policy; because F does not depend on φ, γ(φ) is a fixed differentiable map and the pullback of
the adjoint's ∂J/∂γ to φ is exact. Two builders:

* :func:`example_features`: ``(N, D)`` at one θ (default θ₀), shared by every block;
* :func:`trajectory_features`: ``(Q, N, D)``, the same columns at the first step of every block
  along a reference run (default the uniform policy), so that a block's scorer sees what the
  examples contribute at that stage of training — a fitted, fixed counterpart of the online rules
  that read CT_n off θ_t.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.func import functional_call, grad, vmap

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.law import contributions
from learnlaw.core.policy import uniform_policy
from learnlaw.core.task import Task
from learnlaw.core.training import train
from learnlaw.policies.parametric import block_index

__all__ = ["example_features", "trajectory_features"]


def _grad_norms(task: Task, params: dict[str, Tensor]) -> Tensor:
    """‖∇l_n(θ)‖ for every training example, ``(N,)``; memory: one chunk × P floats."""
    names = list(params)

    def one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return task.loss_fn(functional_call(task.model, p, (x[None],)), y[None]).sum()

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    out = []
    for _, x, y in task.chunks("train"):
        g = per_example(params, x, y)
        out.append(torch.stack([g[k].reshape(len(x), -1).pow(2).sum(1) for k in names]).sum(0))
    return torch.cat(out).sqrt()


def _columns(task: Task, params, grad_norm: bool, use_kinds: bool) -> dict[str, Tensor]:
    params = {k: v.detach() for k, v in (task.params0 if params is None else params).items()}
    n = task.n_train
    cols: dict[str, Tensor] = {"bias": torch.ones(n, dtype=task.dtype, device=task.device)}
    cols["loss"] = task.losses(params, split="train")
    cols["ct"] = ct = contributions(task, params)
    if grad_norm:
        norms = _grad_norms(task, params)
        g_dsr = kernels_for(task).desired_grad(task.spec.flatten(params)).norm()
        cols["grad_norm"] = norms
        cols["cos"] = ct / (norms * g_dsr).clamp_min(torch.finfo(task.dtype).tiny)
    y = task.train[1]
    if y.ndim == 1 and y.dtype.is_floating_point:
        cols["label"] = y
    elif y.ndim == 1:
        classes = torch.unique(y)
        if len(classes) <= 16:
            for c in classes.tolist():
                cols[f"label={c}"] = y == c
    if use_kinds:
        for name, mask in task.kinds.items():
            cols[f"kind={name}"] = mask
    return {k: v.to(dtype=task.dtype, device=task.device).reshape(n) for k, v in cols.items()}


def _assemble(
    blocks: list[dict[str, Tensor]], standardize: bool, columns: Sequence[str] | None
) -> tuple[Tensor, list[str]]:
    """Stack column dicts into ``(Q, N, D)``; z-score per block; drop columns constant everywhere."""
    available = list(blocks[0])
    if columns is not None:
        unknown = [c for c in columns if c not in available]
        if unknown or not columns:
            raise ArgumentValueError(
                f"unknown feature columns {unknown} (or none asked for); this task has {available}"
            )
    names, planes = [], []
    for name in available if columns is None else columns:
        cols = torch.stack([b[name] for b in blocks])  # (Q, N)
        if name != "bias" and standardize:
            std = cols.std(dim=1, keepdim=True)
            scale = cols.abs().amax(dim=1, keepdim=True).clamp_min(1)
            varies = std > 1e-12 * scale
            if not bool(varies.any()):
                continue
            cols = torch.where(varies, (cols - cols.mean(1, keepdim=True)) / std, 0.0)
        names.append(name)
        planes.append(cols)
    feats = torch.stack(planes, -1)
    if not bool(torch.isfinite(feats).all()):
        bad = [nm for nm, c in zip(names, planes) if not bool(torch.isfinite(c).all())]
        raise ArgumentValueError(f"features {bad} are not finite; check the task's loss and data")
    return feats, names


def example_features(
    task: Task,
    params: dict[str, Tensor] | None = None,
    *,
    grad_norm: bool = True,
    use_kinds: bool = False,
    standardize: bool = True,
    columns: Sequence[str] | None = None,
) -> tuple[Tensor, list[str]]:
    """Default per-example features F ``(N, D)`` at θ (default θ₀).

    Columns: ``bias`` (1), ``loss`` l_n(θ), ``ct`` = CT_n(θ) = ∇L_dsr·∇l_n (the contribution, on
    ``task``'s desired split — pass the fitting part only, never the test split), and with
    ``grad_norm`` ``grad_norm`` ‖∇l_n(θ)‖ and ``cos`` = CT_n/(‖∇l_n‖‖∇L_dsr‖) (the alignment);
    then the label (``label`` for one 0/1 or real target, ``label=c`` one-hot columns for up to
    16 integer classes; sequence targets add none); with ``use_kinds``, one indicator per entry
    of ``task.kinds`` (``kind=noisy``, ...). Planted kinds are ground truth a real learner does not
    have (an oracle), hence off by default.

    ``ct`` and ``cos`` carry the desired split's gradient, i.e. N numbers of information about the
    desired *sample*: a scorer fitted on them can fit that sample's noise however few parameters
    it has. ``columns=("bias", "loss", "grad_norm")`` leaves the desired set's influence to φ.

    Cost: one pass over the training set for the losses and one JVP for CT; ``grad_norm`` adds
    per-example gradients by ``vmap`` (memory: one chunk × P floats).

    Args:
        task: the task.
        params: θ as a dict (default θ₀).
        grad_norm: include ``grad_norm`` and ``cos``.
        use_kinds: include the planted-kind indicators.
        standardize: z-score every column but the bias over the N examples; constant columns
            are dropped (they duplicate the bias).
        columns: keep only these columns, in this order (default: all of the above).

    Returns:
        ``(F, names)``: F in the task's dtype and device, and one name per column.
    """
    checks.check_bool(grad_norm, "grad_norm")
    checks.check_bool(use_kinds, "use_kinds")
    checks.check_bool(standardize, "standardize")
    if not isinstance(task, Task):
        raise ArgumentTypeError(
            f"example_features needs a learnlaw Task, got {type(task).__name__}"
        )
    cols = _columns(task, params, grad_norm, use_kinds)
    feats, names = _assemble([cols], standardize, columns)
    return feats[0], names


def trajectory_features(
    task: Task,
    steps: int,
    lr: float,
    blocks: int,
    *,
    policy: Tensor | None = None,
    grad_norm: bool = True,
    use_kinds: bool = False,
    standardize: bool = True,
    columns: Sequence[str] | None = None,
) -> tuple[Tensor, list[str]]:
    """The columns of :func:`example_features` at the first step of each block of a reference run.

    Block b's features are measured at θ_{t_b}, t_b = min{t : b(t) = b}, of ``train(task,
    policy, lr)`` (default the uniform policy), and standardised within the block. The other
    arguments are those of :func:`example_features`.

    Cost: one training run keeping its trajectory (T·P floats) plus Q feature evaluations.

    Returns:
        ``(F, names)`` with F of shape ``(Q, N, D)``.
    """
    checks.check_steps(steps)
    checks.check_lr(lr)
    checks.check_int(blocks, "blocks", minimum=1, expected="an int ≥ 1")
    checks.check_bool(grad_norm, "grad_norm")
    checks.check_bool(use_kinds, "use_kinds")
    checks.check_bool(standardize, "standardize")
    if not isinstance(task, Task):
        raise ArgumentTypeError(
            f"trajectory_features needs a learnlaw Task, got {type(task).__name__}"
        )
    idx = block_index(steps, blocks)
    if policy is None:
        policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=task.device)
    run = train(task, policy, lr, keep_params=True)
    starts = [int((idx == b).nonzero()[0]) for b in range(blocks)]
    cols = [_columns(task, run.params_at(t), grad_norm, use_kinds) for t in starts]
    return _assemble(cols, standardize, columns)
