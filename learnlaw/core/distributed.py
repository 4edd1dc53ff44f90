"""Data parallelism over the training examples with ``torch.distributed``.

When a default process group is initialised (e.g. by ``torchrun``, or
``torch.distributed.init_process_group``) with R > 1 processes, :func:`train`,
:func:`adjoint_sweep` / :func:`policy_gradient`, :func:`optimize_policy` and
:func:`contributions` split the work over the ranks; without a process group (or with R = 1)
nothing changes. Rank r holds

* a contiguous shard ``[N·r/R, N·(r+1)/R)`` of the N training examples and the matching
  columns of γ (a ``(T, N_r)`` block);
* likewise a contiguous shard of the K desired and of the test examples;
* the whole parameter vector θ (P floats), replicated.

Every quantity the sweeps need is a sum over examples, so each rank sums its shard and one
``all_reduce`` (SUM) makes it global. Per step, that is

* forward: ONE reduction of P floats (the weighted gradient Σ_n γ_{t,n} ∇l_n), plus one of B
  floats per block of B steps and split (the mean desired / test losses, which feed the
  divergence check and J);
* reverse: ONE reduction of P floats — the Hessian-vector product and the desired-set gradient
  are added locally first (−η H_t a + ∇L_dsr, both sums over examples), so one all-reduce
  carries both; the N_r dot products ∇l_n·a that make ∂J/∂γ stay on their rank;
* the projection onto the simplex: 2T floats per round of the threshold iteration
  (:func:`project_simplex_sharded`), a handful of rounds per epoch.

The desired and test sets are sharded rather than replicated, so no rank repeats another's
work; the cost is those small extra reductions of B floats. Results equal the single-process
ones up to the order of floating-point summation (relative differences of order 1e-15 in
float64; the tests require ≤ 1e-10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.kernels import _SegmentOps, step_at
from learnlaw.core.task import SPLITS, Task

__all__ = [
    "Shard",
    "world_size",
    "rank",
    "shard_of",
    "all_reduce",
    "gather_columns",
    "local_columns",
    "ShardedKernels",
    "project_simplex_sharded",
    "spawn",
]


def world_size() -> int:
    """R, the number of processes in the default group (1 when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def rank() -> int:
    """This process's rank (0 when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def _bounds(n: int, r: int, world: int) -> tuple[int, int]:
    return n * r // world, n * (r + 1) // world


@dataclass(frozen=True)
class Shard:
    """Which contiguous examples of each split this rank holds.

    Attributes:
        rank, world: r and R.
        bounds: ``{split: (start, stop)}`` of this rank's examples.
        counts: ``{split: n}`` the global sizes N, K, K'.
    """

    rank: int
    world: int
    bounds: dict[str, tuple[int, int]]
    counts: dict[str, int]

    def slice(self, split: str = "train") -> slice:
        return slice(*self.bounds[split])

    def size(self, split: str = "train") -> int:
        start, stop = self.bounds[split]
        return stop - start

    def all_bounds(self, split: str = "train") -> list[tuple[int, int]]:
        """The ``(start, stop)`` of every rank's shard of ``split``."""
        return [_bounds(self.counts[split], r, self.world) for r in range(self.world)]

    def local_task(self, task: Task) -> Task:
        """The task restricted to this rank's examples (views, no copy)."""
        changes = {}
        for split in SPLITS:
            x, y = task.split(split)
            sl = self.slice(split)
            changes[split] = (x[sl], y[sl])
        changes["kinds"] = {k: v[self.slice()] for k, v in task.kinds.items()}
        return task.with_(**changes)


def shard_of(task: Task) -> Shard | None:
    """This rank's :class:`Shard` of ``task``, or ``None`` without a group of R > 1 processes.

    Raises:
        ValueError: if a split has fewer examples than there are processes.
    """
    world = world_size()
    if world == 1:
        return None
    r = rank()
    counts = {s: len(task.split(s)[0]) for s in SPLITS}
    for split, n in counts.items():
        if n < world:
            raise ArgumentValueError(
                f"the {split} split has {n} examples but there are {world} processes: every "
                "process needs at least one example of each split; use fewer processes"
            )
    return Shard(r, world, {s: _bounds(n, r, world) for s, n in counts.items()}, counts)


def all_reduce(t: Tensor, op=None) -> Tensor:
    """Sum (or ``op``) ``t`` over all processes in place and return it; a no-op for R = 1."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op is None else op)
    return t


def gather_columns(local: Tensor, shard: Shard | None, split: str = "train") -> Tensor:
    """Assemble the full ``(..., N)`` tensor from every rank's ``(..., N_r)`` column block.

    Every rank receives the whole tensor (one ``all_gather`` of R·max N_r columns).
    """
    if shard is None:
        return local
    width = max(b - a for a, b in shard.all_bounds(split))
    pad = local.new_zeros(*local.shape[:-1], width)
    pad[..., : local.shape[-1]] = local
    parts = [torch.empty_like(pad) for _ in range(shard.world)]
    dist.all_gather(parts, pad.contiguous())
    cols = [p[..., : b - a] for p, (a, b) in zip(parts, shard.all_bounds(split))]
    return torch.cat(cols, dim=-1)


def local_columns(policy: Tensor, shard: Shard | None) -> Tensor:
    """This rank's columns of a full-width ``(T, N)`` policy (the policy itself for R = 1)."""
    return policy if shard is None else policy[:, shard.slice()]


def check_local_policy(policy: Tensor, shard: Shard, steps: int | None = None) -> Tensor:
    """Validate a ``(T, N_r)`` block of a policy: finite, non-negative, rows summing to 1."""
    from learnlaw.core.policy import PolicyError, _row_tolerance

    if not isinstance(policy, Tensor) or policy.ndim != 2 or not policy.dtype.is_floating_point:
        raise PolicyError(f"a policy block must be a 2-D float tensor, got {policy!r:.60}")
    if steps is not None and policy.shape[0] != steps:
        raise PolicyError(f"policy has {policy.shape[0]} rows but {steps} steps were asked for")
    n = shard.counts["train"]
    bad = (~torch.isfinite(policy)).any() | (policy < 0).any()
    flag = all_reduce(bad.to(torch.float64).reshape(1), dist.ReduceOp.MAX)
    sums = all_reduce(policy.sum(1))
    tol = _row_tolerance(policy.dtype, n)
    if bool(flag[0] > 0) or bool(((sums - 1).abs() > tol).any()):
        raise PolicyError(
            "the policy is not a stack of probability rows across the processes (a negative "
            "or non-finite weight, or a row whose sum over all shards is not 1); project it "
            "with learnlaw.project_simplex"
        )
    return policy


class ShardedKernels(_SegmentOps):
    """Step kernels of one rank: the local kernels of its shard plus the reductions.

    ``forward_segment`` and ``contributions_batch`` are the shared ones of
    :class:`~learnlaw.core.kernels._SegmentOps`, over the reducing ``train_grad`` and
    ``contributions`` below.

    Wraps the kernels of :meth:`Shard.local_task` (any of
    :mod:`learnlaw.core.kernels`); policy rows passed in are this rank's ``(N_r,)`` columns.
    """

    def __init__(self, inner, shard: Shard):
        self.inner = inner
        self.shard = shard
        self.block = inner.block
        self.factored = False  # a shard's kernels offer the reductions, not r_n x_n
        self.task = inner.task

    def _fraction(self, split: str) -> float:
        return self.shard.size(split) / self.shard.counts[split]

    def train_grad(self, theta: Tensor, gamma: Tensor) -> Tensor:
        return all_reduce(self.inner.train_grad(theta, gamma))

    def split_loss(self, theta: Tensor, split: str) -> Tensor:
        return self.split_losses(theta[None], split)[0]

    def split_losses(self, thetas: Tensor, split: str) -> Tensor:
        local = self.inner.split_losses(thetas, split) * self._fraction(split)
        return all_reduce(local.contiguous())

    def desired_grad(self, theta: Tensor, split: str = "desired") -> Tensor:
        return all_reduce(self.inner.desired_grad(theta, split) * self._fraction(split))

    def reverse_segment(
        self, thetas: Tensor, gammas: Tensor, a: Tensor, lr: float | Tensor, start: int
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`learnlaw.core.kernels._SegmentOps.reverse_segment`, one reduction a step."""
        grads = gammas.new_empty(gammas.shape)
        frac = self._fraction("desired")
        for i in reversed(range(len(gammas))):
            hv, dots = self.inner.reverse(thetas[i], gammas[i], a)
            eta = step_at(lr, i)
            grads[i] = dots.mul_(-eta)
            step = hv.mul_(-eta)  # −η_t H a (local part)
            if start + i >= 1:
                step.add_(self.inner.desired_grad(thetas[i]), alpha=frac)
            a = a + all_reduce(step)
        return a, grads

    def contributions(self, theta: Tensor, split: str = "desired") -> Tensor:
        """This rank's CT_n = ∇L_split·∇l_n, ``(N_r,)``."""
        return self.inner.directional(theta, self.desired_grad(theta, split))


def project_simplex_sharded(v: Tensor, shard: Shard | None, *, max_iter: int | None = None):
    """Project every row of a column-sharded ``(T, N)`` matrix onto the simplex, exactly.

    Each rank passes its ``(T, N_r)`` block and gets its block of the projection
    max(v − τ, 0). The row thresholds τ come from the same Newton (Michelot) iteration as
    :func:`learnlaw.project_simplex`, with the two row sums it needs (the excess
    Σ max(v − τ, 0) − 1 and the active count) all-reduced: 2T floats per round, no row ever
    gathered. τ only increases and the active sets only shrink, so the iteration ends exactly
    after at most N rounds (a handful in practice). Without a group it is
    :func:`~learnlaw.project_simplex`.
    """
    from learnlaw.core.policy import project_simplex

    if shard is None:
        return project_simplex(v)
    if not bool(all_reduce((~torch.isfinite(v)).any().double().reshape(1))[0] == 0):
        raise ArgumentValueError(
            "project_simplex got non-finite values; the gradient step diverged"
        )
    n = shard.counts["train"]
    shift = all_reduce(v.max(dim=1, keepdim=True).values.contiguous(), dist.ReduceOp.MAX)
    x = v - shift
    stats = torch.cat([x.sum(1, keepdim=True), x.new_full((len(x), 1), x.shape[1])], 1)
    all_reduce(stats)
    tau = (stats[:, :1] - 1) / n
    count = stats[:, 1:]
    buf = torch.empty_like(x)
    for _ in range(n + 1 if max_iter is None else max_iter):
        torch.sub(x, tau, out=buf).clamp_min_(0)
        stats = torch.cat([buf.sum(1, keepdim=True), buf.sign_().sum(1, keepdim=True)], 1)
        all_reduce(stats)
        excess, new_count = stats[:, :1] - 1, stats[:, 1:]
        tau = tau + excess / new_count
        if bool((new_count == count).all()):
            break
        count = new_count
    return (x - tau).clamp_min(0)


def _spawned(r: int, fn, world: int, store: str, threads: int | None, args: tuple) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=world)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def spawn(fn, world: int, *args, threads: int | None = 1) -> None:
    """Run ``fn(*args)`` in ``world`` new CPU processes joined in a gloo group (for tests and
    benchmarks on one machine; ``torchrun`` is the launcher for real runs).

    ``fn`` must be importable (a module-level function). Each process uses ``threads`` torch
    threads. Raises if any process fails.
    """
    import tempfile

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:  # a file store: no network port to collide
        store = f"{tmp}/store"
        mp.spawn(_spawned, args=(fn, world, store, threads, args), nprocs=world, join=True)
