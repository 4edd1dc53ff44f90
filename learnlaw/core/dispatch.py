"""Which kernels a task runs with: :func:`kernels_for`.

The kernels themselves (:mod:`learnlaw.core.kernels`) know nothing of process groups, and the
sharded wrapper (:mod:`learnlaw.core.distributed`) builds on them; this module sits above both and
picks: the kernels named by the task, or, inside a ``torch.distributed`` group, this rank's
kernels on its shard wrapped with the reductions. (It keeps the dependency one-way:
kernels ← distributed ← dispatch.)
"""

from __future__ import annotations

from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.distributed import ShardedKernels, shard_of
from learnlaw.core.kernels import _KERNELS, resolve_kernels
from learnlaw.core.task import Task

__all__ = ["kernels_for"]


def kernels_for(task: Task):
    """The kernels named by ``task.kernels`` (``"auto"``: see :func:`resolve_kernels`).

    Inside a ``torch.distributed`` group of R > 1 processes they are this rank's kernels on its
    shard of the examples, with the reductions (:class:`learnlaw.core.distributed.ShardedKernels`).
    """
    name = resolve_kernels(task.kernels, task.device)
    if name not in _KERNELS:
        raise ArgumentValueError(
            f"unknown kernels {task.kernels!r}; expected one of {sorted(_KERNELS) + ['auto']}"
        )
    shard = shard_of(task)
    if shard is None:
        return _KERNELS[name](task)
    return ShardedKernels(_KERNELS[name](shard.local_task(task)), shard)
