"""A small non-linear task: a multi-layer perceptron student of a random teacher network.

Used by the tests (the adjoint gradient on a model with a non-trivial Hessian), the benchmark
(the "small multi-layer model" case) and the chapters that need a model beyond the perceptron.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnlaw.core import checks
from learnlaw.core.task import Task

__all__ = ["MLP", "mlp_task", "cross_entropy_loss"]


class MLP(nn.Module):
    """``dim → hidden (tanh) → … → classes`` logits; tanh keeps every Hessian smooth."""

    def __init__(self, dim: int, hidden: int, classes: int, layers: int = 2):
        super().__init__()
        widths = [dim] + [hidden] * (layers - 1) + [classes]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = torch.tanh(x)
        return x


def cross_entropy_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-example cross-entropy in nats, ``(B, C)`` logits vs ``(B,)`` class ids."""
    return F.cross_entropy(logits, targets, reduction="none")


def mlp_task(
    dim: int = 16,
    hidden: int = 32,
    classes: int = 4,
    layers: int = 2,
    n_train: int = 512,
    n_desired: int = 128,
    n_test: int = 128,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    chunk_size: int | None = None,
    kernels: str = "auto",
) -> Task:
    """A teacher–student MLP classification task with the perceptron's distribution shift.

    Training inputs ~ N(0, 3I), desired and test inputs ~ N(0.5·1, I); labels are the argmax of
    a random teacher MLP of the same shape. The student starts from PyTorch's default init.
    ``kernels`` names the step kernels (default ``"auto"``: the faster exact autodiff kernels for
    the device, see :func:`learnlaw.core.kernels.resolve_kernels`).
    """
    for name, value, low in (
        ("dim", dim, 1),
        ("hidden", hidden, 1),
        ("classes", classes, 2),
        ("layers", layers, 1),
        ("n_train", n_train, 1),
        ("n_desired", n_desired, 0),
        ("n_test", n_test, 0),
    ):
        checks.check_int(value, name, minimum=low)
    checks.check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = MLP(dim, hidden, classes, layers).double()
        student = MLP(dim, hidden, classes, layers)
    z_trn = torch.randn(n_train, dim, generator=g, dtype=torch.float64) * 3**0.5
    z_dsr = torch.randn(n_desired, dim, generator=g, dtype=torch.float64) + 0.5
    z_tst = torch.randn(n_test, dim, generator=g, dtype=torch.float64) + 0.5
    with torch.no_grad():
        label = lambda z: (teacher(z) * 3).argmax(1)  # noqa: E731
        y_trn, y_dsr, y_tst = label(z_trn), label(z_dsr), label(z_tst)
    student = student.to(device=device, dtype=dtype)
    put = lambda z: z.to(device=device, dtype=dtype)  # noqa: E731
    dev = lambda y: y.to(device)  # noqa: E731
    return Task(
        model=student,
        params0={k: v.detach().clone() for k, v in student.named_parameters()},
        train=(put(z_trn), dev(y_trn)),
        desired=(put(z_dsr), dev(y_dsr)),
        test=(put(z_tst), dev(y_tst)),
        loss_fn=cross_entropy_loss,
        vocab_size=classes,
        name="mlp",
        chunk_size=chunk_size,
        kernels=kernels,
        info=dict(
            dim=dim,
            hidden=hidden,
            classes=classes,
            layers=layers,
            n_train=n_train,
            n_desired=n_desired,
            n_test=n_test,
            seed=seed,
        ),
    )
