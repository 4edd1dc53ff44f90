"""The baseline that a reader writes instead of the adjoint: autograd through the unrolled loop.

One graph through the whole training run,

    θ_{t+1} = θ_t − η ∇_θ Σ_n γ_{t,n} l_n(θ_t)      (``create_graph=True``)
    J = Σ_{t=1}^{T} L_dsr(θ_t),

and ``J.backward()`` once: what ``higher`` or ``torchopt``'s explicit mode do. It computes the
same ∂J/∂γ as :func:`learnlaw.policy_gradient`, but holds every step's forward *and* backward
graph until the end, so its memory grows as O(T · per-step graph), where the adjoint with
checkpointing holds (⌊T/k⌋ + 1 + k)·P floats plus one step's graph. It is here only to be
measured against (``python -m learnlaw.bench --vs-autograd``), not exported by ``learnlaw``.

The memory helpers read Linux's ``/proc/self`` (resident set size now and its high-water mark,
which writing ``5`` to ``/proc/self/clear_refs`` resets); elsewhere they fall back to
:func:`resource.getrusage` (peak only, never reset) and the budget check is skipped.
"""

from __future__ import annotations

import os
import resource

import torch
from torch import Tensor

from learnlaw.core.checks import ArgumentValueError, check_lr
from learnlaw.core.errors import LearnlawError
from learnlaw.core.task import Task
from learnlaw.core.training import prepare_policy

__all__ = [
    "MemoryBudgetError",
    "unrolled_policy_gradient",
    "rss_bytes",
    "peak_rss_bytes",
    "reset_peak_rss",
]

GB = 1e9


class MemoryBudgetError(LearnlawError, MemoryError):
    """The unrolled baseline stopped because its memory passed the budget.

    Attributes:
        steps_done: the number of unrolled steps whose graph was held when it stopped.
        used_bytes: the memory growth measured then (RSS on a CPU, allocated bytes on CUDA).
        budget_bytes: the budget.
    """

    def __init__(self, steps_done: int, steps: int, used_bytes: int, budget_bytes: float):
        self.steps_done, self.steps = steps_done, steps
        self.used_bytes, self.budget_bytes = used_bytes, budget_bytes
        super().__init__(
            f"unrolled autograd stopped after {steps_done} of T = {steps} steps: its graph holds "
            f"{used_bytes / GB:.4g} GB, past the memory budget of {budget_bytes / GB:.4g} GB. "
            "Its memory grows with T (every step's graph is kept until backward()); raise the "
            "budget (memory_budget_gb, or --memory-budget in GB), lower T, or use "
            "learnlaw.policy_gradient(..., checkpoint_every='auto'), whose memory is about "
            "2√T·P floats"
        )


def rss_bytes() -> int | None:
    """The process's resident set size now, in bytes (``None`` without ``/proc``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """The process's peak resident set size in bytes (VmHWM; else ``getrusage``'s maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux ≥ 4.0); ``False`` where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_now(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    return rss_bytes() if device.type == "cpu" else None


def unrolled_policy_gradient(
    task: Task,
    policy: Tensor,
    lr: float,
    *,
    memory_budget_gb: float | None = 8.0,
) -> tuple[float, Tensor]:
    """J(γ) = Σ_{t=1}^{T} L_dsr(θ_t) and ∂J/∂γ, shape ``(T, N)``, by one graph through the loop.

    Full-batch gradient descent θ_{t+1} = θ_t − η Σ_n γ_{t,n} ∇l_n(θ_t) is unrolled with
    ``torch.autograd.grad(..., create_graph=True)`` and differentiated by one ``backward()``.
    Memory: every step's graph (its forward activations and the backward that makes ∇L_{γ_t})
    is held until the end, O(T · per-step graph); time: about one forward, one backward and one
    double backward per step. After every step the memory held since the call started is
    compared with the budget: the larger of the growth of the RSS on a CPU
    (``torch.cuda.memory_allocated`` on CUDA) and the bytes of the tensors the graph saved for
    the backward (counted by ``torch.autograd.graph.saved_tensors_hooks``; the RSS alone misses
    what malloc serves from memory a long-running process already holds).

    Args:
        task: the task (its model, ``params0`` and splits; ``chunk_size`` is ignored: one batch).
        policy: γ, shape ``(T, N)``.
        lr: η.
        memory_budget_gb: stop past this growth in GB (10⁹ bytes); ``None``: no check.

    Returns:
        ``(J, grad)``: a float and ``(T, N)`` on the task's device.

    Raises:
        MemoryBudgetError: the growth passed the budget (it says after how many steps).
        ValueError: a bad ``lr``, ``policy`` or budget.
    """
    lr = check_lr(lr)
    if memory_budget_gb is not None and not memory_budget_gb > 0:
        raise ArgumentValueError(
            f"memory_budget_gb must be positive or None, got {memory_budget_gb!r}"
        )
    gamma = prepare_policy(task, policy).detach().clone().requires_grad_(True)
    steps = len(gamma)
    device = task.device
    start = _memory_now(device)
    budget = None if memory_budget_gb is None or start is None else memory_budget_gb * GB
    x, y = task.train
    xd, yd = task.desired
    names = list(task.params0)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in task.params0.items()}
    J = torch.zeros((), dtype=task.dtype, device=device)
    saved: dict[int, int] = {}  # storage address → bytes, of every tensor the graph saved
    held = {t.untyped_storage().data_ptr() for t in (x, y, xd, yd, gamma, *params.values())}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in held:  # the data, γ and θ₀ are there before the loop
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        for t in range(steps):
            loss = (gamma[t] * task.per_example_loss(params, x, y)).sum()
            grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=True)
            params = {k: params[k] - lr * g for k, g in zip(names, grads)}
            J = J + task.per_example_loss(params, xd, yd).mean()
            if budget is not None:
                # RSS alone can miss growth that malloc serves from memory already resident
                used = max(_memory_now(device) - start, sum(saved.values()))
                if used > budget:
                    raise MemoryBudgetError(t + 1, steps, used, budget)
    J.backward()
    return float(J.detach()), gamma.grad
