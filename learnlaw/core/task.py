"""A learning task: a functional model, a per-example loss and three data splits.

Everything in learnlaw operates on a :class:`Task`. Shape letters used throughout:
``T`` training steps, ``N`` training examples, ``K`` desired (and test) examples,
``P`` parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError

__all__ = ["Task", "ParamSpec", "SPLITS", "holdout_split"]

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss_fn(logits, targets) -> (B,)``: one loss per example, in nats."""

SPLITS = ("train", "desired", "test")


@dataclass(frozen=True)
class ParamSpec:
    """How a ``dict[str, Tensor]`` of parameters maps to one flat ``(P,)`` vector.

    The maths of learnlaw (training steps, the adjoint sweep) works on flat vectors so that a
    whole trajectory is one ``(T+1, P)`` tensor; models are still called with a dict through
    :func:`torch.func.functional_call`.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, params: dict[str, Tensor]) -> "ParamSpec":
        return cls(tuple(params), tuple(p.shape for p in params.values()))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def size(self) -> int:
        """P, the number of scalar parameters."""
        return sum(self.numels)

    def flatten(self, params: dict[str, Tensor]) -> Tensor:
        """``dict -> (P,)`` (a copy)."""
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """``(P,) -> dict`` of views into ``flat`` (differentiable)."""
        parts = torch.split(flat, self.numels)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes)}


_STOCHASTIC = (nn.modules.dropout._DropoutNd, nn.RReLU)
"""Module types that draw random numbers in training mode."""

_CHECK_EXAMPLES = 4
"""How many training examples the determinism check evaluates (twice)."""


def _stateful_modules(model: nn.Module) -> list[str]:
    """``"name (Type)"`` of the modules that update running statistics in their forward pass."""
    return [
        f"{type(m).__name__} (module {name!r})" if name else f"{type(m).__name__} (the model)"
        for name, m in model.named_modules()
        if m.training and getattr(m, "track_running_stats", False)
    ]


def _stochastic_modules(model: nn.Module) -> list[str]:
    """``"name (Type)"`` of the modules that are random in their current (training) mode."""
    return [
        f"{type(m).__name__} (module {name!r})" if name else f"{type(m).__name__} (the model)"
        for name, m in model.named_modules()
        if m.training and isinstance(m, _STOCHASTIC) and getattr(m, "p", 1) != 0
    ]


def _check_deterministic(task: "Task", before: dict[str, Tensor]) -> None:
    """Refuse a model whose forward pass mutates its buffers or whose outputs are random.

    ``before`` holds the model's buffers before any forward pass of the Task's checks; this
    compares them with the buffers now, then evaluates the loss of up to ``_CHECK_EXAMPLES``
    training examples twice under ``torch.no_grad`` (the caller restores the buffers).
    """
    x, y = task.train
    b = min(_CHECK_EXAMPLES, len(x))
    changed = [n for n, t in task.model.named_buffers() if not torch.equal(t, before[n])]
    if not changed:
        with torch.no_grad():
            first = task.loss_fn(functional_call(task.model, task.params0, (x[:b],)), y[:b])
            second = task.loss_fn(functional_call(task.model, task.params0, (x[:b],)), y[:b])
    if changed:
        found = _stateful_modules(task.model) or [
            f"the module owning buffer {n!r}" for n in changed
        ]
        raise ArgumentValueError(
            f"the model's forward pass changes its buffers {changed}: {', '.join(found)} "
            "updates running statistics in place. learnlaw calls the model inside "
            "torch.func transforms and replays the forward pass, which needs a function of "
            "the parameters alone. Fix: call model.eval() before building the Task (BatchNorm "
            "then uses its running statistics as constants), or use a normalisation without "
            "running statistics (nn.LayerNorm, nn.GroupNorm)"
        )
    eps = torch.finfo(first.dtype).eps if first.dtype.is_floating_point else 0.0
    if not torch.allclose(first, second, rtol=100 * eps, atol=100 * eps, equal_nan=True):
        found = _stochastic_modules(task.model)
        what = (
            f"it holds {', '.join(found)} in training mode"
            if found
            else "no known stochastic module type was found (random augmentation or sampling "
            "in forward?)"
        )
        raise ArgumentValueError(
            f"the model is not deterministic: the losses of the same {b} training examples "
            "differ between two evaluations with the same parameters; "
            f"{what}. The adjoint replays the forward pass, so a random model gives silently "
            "wrong gradients. Fix: call model.eval() before building the Task (dropout is "
            "then the identity), or use a deterministic variant of the random layer"
        )


@dataclass(frozen=True, eq=False)
class Task:
    """A model, a per-example loss and the train / desired / test splits.

    Attributes:
        model: an ``nn.Module`` that maps a batch of inputs to logits (nothing else). It is only
            ever called through ``functional_call`` with explicit parameters.
        params0: the initial parameters θ₀, a ``dict[str, Tensor]``.
        train: ``(inputs, targets)`` of the N training examples (weighted by the policy).
        desired: ``(inputs, targets)`` of the K desired examples; the AUC that policy search
            minimises is computed on these.
        test: ``(inputs, targets)`` of K held-out examples from the desired distribution; every
            reported metric uses these.
        loss_fn: ``loss_fn(logits, targets) -> (B,)``, per-example loss in nats
            (``reduction="none"``).
        vocab_size: |V|, the size of the output alphabet, used by the compression ratio
            (2 for the perceptron's labels).
        name: a short name, used in messages and benchmarks.
        chunk_size: full-batch quantities over a split are accumulated in chunks of this many
            examples (``None``: one chunk). Memory of one chunk's activations, not of N.
        kinds: boolean masks of shape ``(N,)`` naming planted example kinds (e.g. ``"noisy"``).
        kernels: which step kernels compute gradients: ``"auto"`` (the default:
            ``"autodiff_rr"`` on every device, see :func:`learnlaw.core.kernels.resolve_kernels`),
            ``"autodiff"`` (torch.func, any model; the reverse step is a jvp of the gradient),
            ``"autodiff_rr"`` (any model; the reverse step is a double backward, faster on a
            CPU, see :mod:`learnlaw.core.kernels`) or a closed-form kernel that the task's
            builder guarantees is valid (``"logistic"`` for a bias-free linear model with a
            sigmoid/BCE loss).
        info: free-form description of how the task was built (sizes, seeds, ...).
        check_model: when ``True`` (the default), building the Task evaluates the loss on up to
            4 training examples twice and refuses a model whose outputs differ (a stochastic
            layer such as ``nn.Dropout`` in training mode) or whose forward pass changes its
            buffers (``nn.BatchNorm*`` in training mode updates its running statistics): the
            adjoint replays the forward pass and needs a deterministic, stateless function.
            ``False`` skips the check (it is always skipped on the ``meta`` device).
    """

    model: nn.Module
    params0: dict[str, Tensor]
    train: tuple[Tensor, Tensor]
    desired: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    loss_fn: LossFn
    vocab_size: int
    name: str = "task"
    chunk_size: int | None = None
    kinds: dict[str, Tensor] = field(default_factory=dict)
    kernels: str = "auto"
    info: dict = field(default_factory=dict)
    check_model: bool = True

    def __post_init__(self) -> None:
        if not self.params0:
            raise ArgumentValueError("Task.params0 is empty; pass the model's parameters as a dict")
        _check_params_cover_model(self.model, self.params0)
        for split in SPLITS:
            pair = getattr(self, split)
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ArgumentTypeError(
                    f"Task.{split} must be an (inputs, targets) pair, got {type(pair).__name__}"
                )
            _check_split_tensors(split, pair, self.dtype)
            if len(pair[0]) != len(pair[1]):
                raise ArgumentValueError(
                    f"Task.{split} has {len(pair[0])} inputs but {len(pair[1])} targets"
                )
        checks.check_int(self.chunk_size, "chunk_size", minimum=1, allow_none=True)
        checks.check_choice(self.kernels, "kernels", checks.KERNEL_NAMES)
        x, y = self.train
        for split in ("desired", "test"):
            xs, ys = getattr(self, split)
            if xs.shape[1:] != x.shape[1:] or ys.shape[1:] != y.shape[1:]:
                raise ArgumentValueError(
                    f"Task.{split} holds examples of input shape {tuple(xs.shape[1:])} and target "
                    f"shape {tuple(ys.shape[1:])}, but Task.train holds {tuple(x.shape[1:])} and "
                    f"{tuple(y.shape[1:])}: every split must hold examples of the same kind (the "
                    "same features and target format), since one model is evaluated on all three"
                )
        if not isinstance(self.check_model, bool):
            raise ArgumentTypeError(f"check_model must be True or False, got {self.check_model!r}")
        if len(x):  # one loss per example: a mean over the batch would silently train wrong
            check = self.check_model and x.device.type != "meta" and self.device.type != "meta"
            before = {n: t.clone() for n, t in self.model.named_buffers()} if check else {}
            try:
                b = min(2, len(x))
                with torch.no_grad():
                    out = self.loss_fn(functional_call(self.model, self.params0, (x[:b],)), y[:b])
                if not isinstance(out, Tensor) or out.shape != (b,):
                    got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise ArgumentValueError(
                        f"loss_fn returned {got} for a batch of {b} examples; expected shape "
                        f"({b},), one loss per example in nats. Use reduction='none' (e.g. "
                        "F.cross_entropy(logits, targets, reduction='none')) and reduce "
                        "nothing: learnlaw weighs each example's loss by the policy"
                    )
                if check:
                    _check_deterministic(self, before)
            finally:  # the checks leave the model's buffers as they found them
                with torch.no_grad():
                    for n, t in self.model.named_buffers():
                        if n in before:
                            t.copy_(before[n])

    # -- sizes -------------------------------------------------------------------------------
    @property
    def n_train(self) -> int:
        """N."""
        return len(self.train[0])

    @property
    def n_desired(self) -> int:
        """K."""
        return len(self.desired[0])

    @property
    def n_test(self) -> int:
        return len(self.test[0])

    @property
    def spec(self) -> ParamSpec:
        return ParamSpec.of(self.params0)

    @property
    def n_params(self) -> int:
        """P."""
        return self.spec.size

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.params0.values())).dtype

    @property
    def device(self) -> torch.device:
        return next(iter(self.params0.values())).device

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """The ``(inputs, targets)`` pair of ``"train"``, ``"desired"`` or ``"test"``."""
        if name not in SPLITS:
            raise ArgumentValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def chunks(self, name: str) -> Iterator[tuple[slice, Tensor, Tensor]]:
        """Yield ``(slice, inputs, targets)`` chunks of a split of at most ``chunk_size``."""
        x, y = self.split(name)
        n = len(x)
        c = n if self.chunk_size is None else self.chunk_size
        for start in range(0, n, c):
            sl = slice(start, min(start + c, n))
            yield sl, x[sl], y[sl]

    # -- functional evaluation -----------------------------------------------------------------
    def per_example_loss(
        self, params: dict[str, Tensor], inputs: Tensor, targets: Tensor
    ) -> Tensor:
        """``(B,)`` losses of one batch under ``params`` (differentiable, not chunked)."""
        return self.loss_fn(functional_call(self.model, params, (inputs,)), targets)

    @torch.no_grad()
    def losses(self, params: dict[str, Tensor] | None = None, split: str = "train") -> Tensor:
        """Per-example losses of a whole split, shape ``(N,)`` or ``(K,)``, chunked."""
        params = self.params0 if params is None else params
        return torch.cat([self.per_example_loss(params, x, y) for _, x, y in self.chunks(split)])

    def mean_loss(self, params: dict[str, Tensor] | None = None, split: str = "desired") -> float:
        """The mean loss of a split, e.g. L_dsr(θ) for ``split="desired"``."""
        return float(self.losses(params, split).mean())

    def with_(self, **changes) -> "Task":
        """A copy with some fields replaced (e.g. ``task.with_(kernels="autodiff")``)."""
        from dataclasses import replace

        return replace(self, **changes)


def _check_params_cover_model(model: nn.Module, params0: dict[str, Tensor]) -> None:
    """Refuse a ``params0`` that leaves out a parameter of the model, or names one it lacks.

    ``functional_call`` falls back to the module's own tensor for a name that ``params0`` does
    not hold, so a left-out layer would silently never train.
    """
    names = dict(model.named_parameters())
    missing = [n for n in names if n not in params0]
    unknown = [n for n in params0 if n not in names and n not in dict(model.named_buffers())]
    if missing:
        raise ArgumentValueError(
            f"Task.params0 has no entry for the model's parameters {missing}: they would never "
            "train (functional_call uses the module's own tensor for a missing name). Pass "
            "{k: v.detach().clone() for k, v in model.named_parameters()}; to keep a parameter "
            "fixed, register it as a buffer (module.register_buffer) instead"
        )
    if unknown:
        raise ArgumentValueError(
            f"Task.params0 names {unknown}, which the model does not have (its parameters: "
            f"{list(names)}); build params0 from model.named_parameters()"
        )


def _check_split_tensors(split: str, pair: tuple, dtype: torch.dtype) -> None:
    """Refuse inputs or targets that are not tensors, and float inputs of another dtype."""
    for what, value in zip(("inputs", "targets"), pair):
        if not isinstance(value, Tensor):
            kind = type(value).__module__.split(".")[0] + "." + type(value).__name__
            raise ArgumentTypeError(
                f"Task.{split} {what} is a {kind}, expected a torch.Tensor; convert it with "
                f"torch.as_tensor(...) (float inputs with dtype={dtype}, the parameters' dtype; "
                "class labels as torch.long)"
            )
    x = pair[0]
    if x.is_floating_point() and x.dtype != dtype:
        raise ArgumentTypeError(
            f"Task.{split} inputs are {x.dtype} but the parameters are {dtype}: the model "
            f"would fail inside torch. Convert the data with .to({dtype}) (or the model with "
            f".to({x.dtype}) before taking params0)"
        )


def check_task(task: object) -> Task:
    """``task`` itself if it is a :class:`Task`, else an error naming the type received."""
    if not isinstance(task, Task):
        raise ArgumentTypeError(f"task must be a learnlaw Task, got {type(task).__name__}")
    return task


def holdout_split(task: Task, n_holdout: int, seed: int = 0, *, name: str = "n_holdout") -> Task:
    """A copy of ``task`` whose desired split loses ``n_holdout`` random examples to its test split.

    The one held-out draw of learnlaw: h ∈ [2, K − 2] desired examples, the last h of
    ``torch.randperm(K)`` under ``seed`` (``name`` is the caller's argument, for the message).

    The returned task's desired split (K − h examples) is what a policy search fits; its test
    split is the held-out h desired examples, so the ``ar_test``/``cr_test`` that
    :func:`~learnlaw.optimize_policy` records per epoch measure generalisation to data
    the search never saw, and can choose the epoch to stop at. The original test split is not
    touched (evaluate the chosen policy on ``task``).
    """
    k = task.n_desired
    checks.check_int(
        n_holdout,
        name,
        minimum=2,
        maximum=k - 2,
        expected=f"an int in [2, K − 2] = [2, {k - 2}] (K = {k} desired examples)",
        hint="at least 2 to validate on and 2 left to fit",
    )
    checks.check_int(seed, "seed")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(k, generator=g).to(task.device)
    x, y = task.desired
    keep, held = perm[: k - n_holdout], perm[k - n_holdout :]
    return task.with_(
        desired=(x[keep], y[keep]),
        test=(x[held], y[held]),
        name=f"{task.name}-holdout{n_holdout}",
        info={**task.info, "holdout": n_holdout, "holdout_seed": seed},
    )
