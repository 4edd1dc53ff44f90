"""Step kernels: the few differential quantities that training and the adjoint sweep need.

Every function here works on the flat parameter vector θ ∈ R^P (see :class:`ParamSpec`).
For a policy row γ ∈ Δ^{N-1} write L_γ(θ) = Σ_n γ_n l_n(θ) (the weighted training loss) and
L_dsr(θ) = (1/K) Σ_k l(x_k^dsr, θ). The kernels provide

* ``train_grad(θ, γ)``           → ∇L_γ(θ)                                   (P,)
* ``split_loss(θ, split)``        → mean loss of a split                      ()
* ``desired_grad(θ)``             → ∇L_dsr(θ)                                 (P,)
* ``reverse(θ, γ, v)``           → (H_γ(θ) v, [∇l_n(θ)·v]_n)                 (P,), (N,)
* ``contributions(θ)``            → CT_n = ∇L_dsr(θ)·∇l_n(θ)                  (N,)

and three segment-level operations built on them, which a kernel may batch over the steps of a
segment: ``forward_segment`` (B gradient-descent steps), ``split_losses`` (the mean loss at B
points) and ``reverse_segment`` (B steps of the adjoint recursion of :mod:`learnlaw.core.adjoint`).

:class:`AutodiffKernels` computes them for any model with torch.func: ``reverse`` is ONE
forward-over-reverse pass — ``jvp`` of ``grad`` of L_γ, with the per-example loss vector as the
auxiliary output, so that the tangent of the gradient is the Hessian-vector product and the
tangent of the loss vector is exactly the N directional derivatives ∇l_n·v. No per-example
gradient (N×P memory) is ever formed. Quantities over a split are accumulated chunk by chunk
(``task.chunk_size``), so memory is that of one chunk's activations.

:class:`ReverseOverReverseKernels` (``task.kernels = "autodiff_rr"``) gets the same pair from
one double backward instead: with γ itself a differentiable input, G(θ, γ) = ∇_θ L_γ(θ) =
Σ_n γ_n ∇l_n(θ) and one vector-Jacobian product of G with v gives ∂(G·v)/∂θ = H_γ v and
∂(G·v)/∂γ_n = ∇l_n·v. Memory of one chunk's activations (kept for the second backward), no
per-example gradients; on a CPU it measured about 1.6× faster per reverse step than the jvp
(``python -m learnlaw.bench``). Counted on PyTorch's meta device at the paper's Transformer
shapes (V = 5000, L = 64, d = 128, a 512-sequence chunk; ``torch.utils.flop_counter``) both
reverse steps cost the same FLOPs, and the double backward peaks lower: 6.1 GB per chunk
against 7.6 GB for the jvp. ``task.kernels = "auto"`` (the default) therefore means
``"autodiff_rr"`` on every device (:func:`resolve_kernels`); no GPU timing was made, so
``python -m learnlaw.bench --device cuda`` times both on yours.

:class:`LogisticKernels` computes the same quantities in closed form for a bias-free linear
model with the sigmoid/BCE loss (the paper's perceptron): with u = Xθ, o = σ(u),
∇l_n = (o_n − y_n) x_n and H_γ = Xᵀ diag(γ ⊙ o ⊙ (1−o)) X. It is a fast path only; the tests
check it against the autodiff kernels.

Every kernel class satisfies :class:`Kernels` (a typed protocol). Code above the kernels never
asks which class it holds: a kernel whose per-example gradients factor as ∇l_n(θ) = r_n(θ) x_n
says so with ``factored = True`` and then offers ``xt`` = Xᵀ ``(P, N)``, ``data`` (each
split's inputs and targets) and :meth:`LogisticKernels.residual`, with which the online rules
and the norm-matched controls fuse their products (one residual for the contributions and the
step).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import grad, jvp

from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.task import Task

__all__ = [
    "Kernels",
    "AutodiffKernels",
    "LogisticKernels",
    "ReverseOverReverseKernels",
    "resolve_kernels",
    "step_at",
]


def step_at(lr: float | Tensor, i: int) -> float | Tensor:
    """η of step ``i`` of a segment: ``lr`` itself (a float) or ``lr[i]`` (a 0-d tensor of a
    ``(B,)`` schedule slice, on the device: no host synchronisation)."""
    return lr if not isinstance(lr, Tensor) else lr[i]


@runtime_checkable
class Kernels(Protocol):
    """What every kernel offers (shapes: θ ``(P,)``, γ ``(N,)``, B rows per segment).

    ``factored`` is ``True`` for kernels whose per-example gradients factor as
    ∇l_n = r_n x_n; those also offer ``xt`` (Xᵀ, ``(P, N)``), ``data`` and ``residual(θ)``.
    """

    task: Task
    block: int
    factored: bool

    def train_grad(self, theta: Tensor, gamma: Tensor) -> Tensor: ...
    def split_loss(self, theta: Tensor, split: str) -> Tensor: ...
    def desired_grad(self, theta: Tensor, split: str = "desired") -> Tensor: ...
    def reverse(self, theta: Tensor, gamma: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
    def directional(self, theta: Tensor, v: Tensor, split: str = "train") -> Tensor: ...
    def contributions(self, theta: Tensor, split: str = "desired") -> Tensor: ...
    def forward_segment(self, theta: Tensor, gammas: Tensor, lr: float | Tensor) -> Tensor: ...
    def split_losses(self, thetas: Tensor, split: str) -> Tensor: ...
    def contributions_batch(self, thetas: Tensor, split: str = "desired") -> Tensor: ...
    def losses_batch(self, thetas: Tensor, split: str = "train") -> Tensor: ...
    def reverse_segment(
        self, thetas: Tensor, gammas: Tensor, a: Tensor, lr: float | Tensor, start: int
    ) -> tuple[Tensor, Tensor]: ...


class _SegmentOps:
    """Segment operations written once in terms of the per-step kernels.

    ``lr`` is η (a float) or the segment's ``(B,)`` slice of a schedule η_t (a tensor on the
    task's device); :func:`step_at` gives step i's.
    """

    block = 8  # steps per forward block when every θ_t is stored (memory: block·P floats)
    factored = False  # per-example gradients r_n x_n (see Kernels)

    def forward_segment(self, theta: Tensor, gammas: Tensor, lr: float | Tensor) -> Tensor:
        """θ_{s+1}, …, θ_{s+B} from θ_s and B policy rows, shape ``(B, P)``."""
        out = theta.new_empty(len(gammas), theta.numel())
        for i in range(len(gammas)):
            theta = theta - step_at(lr, i) * self.train_grad(theta, gammas[i])
            out[i] = theta
        return out

    def split_losses(self, thetas: Tensor, split: str) -> Tensor:
        """Mean loss of ``split`` at each row of ``thetas``, shape ``(B,)``."""
        return torch.stack([self.split_loss(theta, split) for theta in thetas])

    def contributions_batch(self, thetas: Tensor, split: str = "desired") -> Tensor:
        """CT_{t,n} at each row of ``thetas``, ``(B, N)``."""
        return torch.stack([self.contributions(theta, split) for theta in thetas])

    def losses_batch(self, thetas: Tensor, split: str = "train") -> Tensor:
        """Per-example losses at each row of ``thetas``, ``(B, N)``."""
        spec = self.task.spec
        return torch.stack([self.task.losses(spec.unflatten(th), split) for th in thetas])

    def reverse_segment(
        self, thetas: Tensor, gammas: Tensor, a: Tensor, lr: float | Tensor, start: int
    ) -> tuple[Tensor, Tensor]:
        """Adjoint recursion over steps start+B−1 … start.

        Args:
            thetas: θ_start … θ_{start+B−1}, ``(B, P)``.
            gammas: γ_start … γ_{start+B−1}, ``(B, N)``.
            a: a_{start+B} = ∂J/∂θ_{start+B}, ``(P,)``.

        Returns:
            a_start and the rows ∂J/∂γ_t of the segment, ``(B, N)``.
        """
        grads = gammas.new_empty(gammas.shape)
        for i in reversed(range(len(gammas))):
            hv, dots = self.reverse(thetas[i], gammas[i], a)
            eta = step_at(lr, i)
            grads[i] = dots.mul_(-eta)
            a = a - eta * hv
            if start + i >= 1:
                a = a + self.desired_grad(thetas[i])
        return a, grads


class AutodiffKernels(_SegmentOps):
    """Kernels for any task, by torch.func (forward-over-reverse for the reverse step)."""

    def __init__(self, task: Task):
        self.task = task
        self.spec = task.spec
        self._wgrad = grad(self._weighted_loss, has_aux=True)
        self._sgrad = grad(self._summed_loss)

    # pure functions of the flat parameters -------------------------------------------------
    def _losses(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return self.task.per_example_loss(self.spec.unflatten(theta), x, y)

    def _weighted_loss(self, theta: Tensor, gamma: Tensor, x: Tensor, y: Tensor):
        losses = self._losses(theta, x, y)
        return (gamma * losses).sum(), losses

    def _summed_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return self._losses(theta, x, y).sum()

    # kernels -----------------------------------------------------------------------------
    def train_grad(self, theta: Tensor, gamma: Tensor) -> Tensor:
        total = torch.zeros_like(theta)
        for sl, x, y in self.task.chunks("train"):
            g, _ = self._wgrad(theta, gamma[sl], x, y)
            total += g
        return total

    def split_loss(self, theta: Tensor, split: str) -> Tensor:
        with torch.no_grad():
            total = sum(self._losses(theta, x, y).sum() for _, x, y in self.task.chunks(split))
        return total / len(self.task.split(split)[0])

    def desired_grad(self, theta: Tensor, split: str = "desired") -> Tensor:
        total = torch.zeros_like(theta)
        for _, x, y in self.task.chunks(split):
            total += self._sgrad(theta, x, y)
        return total / len(self.task.split(split)[0])

    def reverse(self, theta: Tensor, gamma: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        hv = torch.zeros_like(theta)
        dots = []
        for sl, x, y in self.task.chunks("train"):
            g_sl = gamma[sl]
            _, (hv_c, dots_c) = jvp(lambda th: self._wgrad(th, g_sl, x, y), (theta,), (v,))
            hv += hv_c
            dots.append(dots_c)
        return hv, torch.cat(dots)

    def directional(self, theta: Tensor, v: Tensor, split: str = "train") -> Tensor:
        """[∇l_n(θ)·v]_n over a split, by forward-mode only (one jvp of the loss vector)."""
        out = []
        for _, x, y in self.task.chunks(split):
            _, d = jvp(lambda th: self._losses(th, x, y), (theta,), (v,))
            out.append(d)
        return torch.cat(out)

    def contributions(self, theta: Tensor, split: str = "desired") -> Tensor:
        return self.directional(theta, self.desired_grad(theta, split))


class ReverseOverReverseKernels(AutodiffKernels):
    """Autodiff kernels whose reverse step is a double backward (reverse-over-reverse)."""

    def reverse(self, theta: Tensor, gamma: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        hv = torch.zeros_like(theta)
        dots = []
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            for sl, x, y in self.task.chunks("train"):
                g_sl = gamma[sl].detach().requires_grad_(True)
                weighted = (g_sl * self._losses(th, x, y)).sum()
                (g,) = torch.autograd.grad(weighted, th, create_graph=True)
                hv_c, dots_c = torch.autograd.grad(g, (th, g_sl), v, allow_unused=True)
                if hv_c is not None:  # None: the loss is linear in θ (zero Hessian)
                    hv += hv_c
                dots.append(dots_c)
        return hv, torch.cat(dots)


class LogisticKernels(_SegmentOps):
    """Closed-form kernels for a bias-free linear model with sigmoid/BCE loss (the perceptron).

    The segment operations are batched: the B products X θ_t of a segment are one matrix
    product, leaving two matrix-vector products per step in each direction.
    """

    block = 256
    factored = True  # ∇l_n = (σ(x_n·θ) − y_n) x_n

    def __init__(self, task: Task):
        self.task = task
        self.spec = task.spec
        if self.spec.size != task.train[0].shape[1]:
            raise ArgumentValueError(
                "LogisticKernels need a bias-free linear model with P = input dimension; got "
                f"P = {self.spec.size} and inputs of width {task.train[0].shape[1]}. Use "
                'task.with_(kernels="autodiff") for other models.'
            )
        self.data = {
            s: (task.split(s)[0], task.split(s)[1].to(task.dtype))
            for s in ("train", "desired", "test")
        }
        # Xᵀ stored contiguously: both X v (as (Xᵀ)ᵀ v) and Xᵀ g are faster from it on CPU.
        self.xt = task.train[0].T.contiguous()

    def residual(self, theta: Tensor) -> Tensor:
        """r = σ(Xθ) − y on the training split, ``(N,)``, so that ∇l_n = r_n x_n (as the
        forward segment computes it: Xθ from ``xt``, in place)."""
        return torch.mv(self.xt.T, theta).sigmoid_().sub_(self.data["train"][1])

    def train_grad(self, theta: Tensor, gamma: Tensor) -> Tensor:
        x, y = self.data["train"]
        r = torch.sigmoid(x @ theta) - y
        return x.T @ (gamma * r)

    def split_loss(self, theta: Tensor, split: str) -> Tensor:
        x, y = self.data[split]
        u = x @ theta
        return (F.softplus(u) - y * u).mean()

    def desired_grad(self, theta: Tensor, split: str = "desired") -> Tensor:
        x, y = self.data[split]
        return x.T @ (torch.sigmoid(x @ theta) - y) / len(y)

    def reverse(self, theta: Tensor, gamma: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.data["train"]
        o = torch.sigmoid(x @ theta)
        xv = x @ v
        hv = x.T @ (gamma * o * (1 - o) * xv)
        return hv, (o - y) * xv

    def directional(self, theta: Tensor, v: Tensor, split: str = "train") -> Tensor:
        x, y = self.data[split]
        return (torch.sigmoid(x @ theta) - y) * (x @ v)

    def contributions(self, theta: Tensor, split: str = "desired") -> Tensor:
        return self.directional(theta, self.desired_grad(theta, split))

    def contributions_batch(self, thetas: Tensor, split: str = "desired") -> Tensor:
        x, y = self.data["train"]
        xs, ys = self.data[split]
        g = (torch.sigmoid(thetas @ xs.T) - ys) @ xs / len(ys)  # (B, P) split gradients
        return (torch.sigmoid(thetas @ self.xt) - y) * (g @ self.xt)

    def losses_batch(self, thetas: Tensor, split: str = "train") -> Tensor:
        x, y = self.data[split]
        u = thetas @ x.T
        return F.softplus(u) - y * u

    # batched segment operations ------------------------------------------------------------
    def forward_segment(self, theta: Tensor, gammas: Tensor, lr: float | Tensor) -> Tensor:
        xt, y = self.xt, self.data["train"][1]
        out = theta.new_empty(len(gammas), theta.numel())
        if isinstance(lr, Tensor):  # a schedule: −η_t folded into the rows once (no host sync)
            scaled = gammas * (-lr)[:, None]
            for i in range(len(gammas)):
                r = torch.mv(xt.T, theta).sigmoid_().sub_(y).mul_(scaled[i])
                theta = torch.addmv(theta, xt, r)
                out[i] = theta
            return out
        for i in range(len(gammas)):
            r = torch.mv(xt.T, theta).sigmoid_().sub_(y).mul_(gammas[i])
            theta = torch.addmv(theta, xt, r, alpha=-lr)
            out[i] = theta
        return out

    def split_losses(self, thetas: Tensor, split: str) -> Tensor:
        x, y = self.data[split]
        u = thetas @ x.T
        return (F.softplus(u) - y * u).mean(1)

    def reverse_segment(
        self, thetas: Tensor, gammas: Tensor, a: Tensor, lr: float | Tensor, start: int
    ) -> tuple[Tensor, Tensor]:
        x, y = self.data["train"]
        xd, yd = self.data["desired"]
        xt = self.xt
        o = torch.sigmoid(thetas @ xt)  # (B, N)
        w = gammas * o * (1 - o)  # diagonal of the weighted Hessian's middle factor
        sched = isinstance(lr, Tensor)
        neg = -lr[:, None] if sched else -lr
        r = (o - y).mul_(neg)  # −η_t (o − y): ∂J/∂γ_{t,n} = r_{t,n} (x_n · a_{t+1})
        if sched:  # a schedule: −η_t folded into the Hessian's middle factor once
            w = w.mul_(neg)
        g_dsr = (torch.sigmoid(thetas @ xd.T) - yd) @ xd / len(yd)  # (B, P)
        if start == 0:
            g_dsr[0] = 0  # J starts at t = 1
        grads = torch.empty_like(gammas)
        for i in reversed(range(len(gammas))):
            xa = torch.mv(xt.T, a)
            torch.mul(r[i], xa, out=grads[i])
            if sched:
                a = torch.addmv(a, xt, w[i] * xa).add_(g_dsr[i])
            else:
                a = torch.addmv(a, xt, w[i] * xa, alpha=-lr).add_(g_dsr[i])
        return a, grads


_KERNELS = {
    "autodiff": AutodiffKernels,
    "autodiff_rr": ReverseOverReverseKernels,
    "logistic": LogisticKernels,
}


def resolve_kernels(name: str, device: torch.device | str) -> str:
    """The kernels that ``name`` means on ``device``.

    ``"auto"`` means ``"autodiff_rr"`` (the double-backward reverse step) on every device, for
    every task whose ``kernels`` is ``"auto"``; a task built with a closed-form kernel (the
    perceptron's ``"logistic"``, the default of :func:`~learnlaw.perceptron_task`)
    names it explicitly and keeps it. Other names are returned unchanged (``device`` is then
    not used).

    Why the double backward everywhere: on a CPU it measured faster (``python -m
    learnlaw.bench``: one policy epoch of the MLP cost 2.67 training runs against 4.27 with the
    jvp); on a GPU it was not timed, but counted on PyTorch's meta device at the paper's
    Transformer shapes (V = 5000, L = 64, d = 128, one 512-sequence chunk of a reverse step)
    the jvp (``"autodiff"``) and the double backward have the same FLOPs while the jvp's peak
    memory is higher, 7.6 GB against 6.1 GB per chunk. With no measured speed-up for the jvp,
    the kernel with the lower counted peak is the default. To compare on your GPU, run
    ``python -m learnlaw.bench --device cuda`` (it times both on the MLP) and pass the faster
    name as ``task.with_(kernels=...)``.

    Args:
        name: ``"auto"`` or a kernel name (``"autodiff"``, ``"autodiff_rr"``, ``"logistic"``).
        device: the task's device (kept in the signature for a device-dependent rule).

    Returns:
        The kernel name.
    """
    if name != "auto":
        return name
    torch.device(device)  # a malformed device is an error here as before
    return "autodiff_rr"
