"""Float32 matmul precision: opt-in TF32 on NVIDIA GPUs, exact IEEE float32 by default.

On NVIDIA GPUs from Ampere on (A100, H100, H200, …) cuBLAS and cuDNN can compute float32
matrix products and convolutions in TF32: the inputs are rounded to a 10-bit mantissa (unit
roundoff 2⁻¹¹ ≈ 4.9·10⁻⁴ against float32's 2⁻²⁴ ≈ 6·10⁻⁸) and accumulated in float32, several
times faster on tensor cores. PyTorch's switches for it are the process-wide flags
``torch.backends.cuda.matmul.allow_tf32`` (off by default) and ``torch.backends.cudnn.allow_tf32``
(on by default). The library's entry points (:func:`~learnlaw.train`,
:func:`~learnlaw.training.adjoint_sweep`, :func:`~learnlaw.policy_gradient`,
:func:`~learnlaw.optimize_policy`, the parametric fits) take ``tf32: bool = False``
and run inside :func:`matmul_precision`, so that a result is exact float32 unless TF32 is asked
for, whatever the process-wide setting.

TF32 changes nothing on the CPU, in float64, on other accelerators, or on NVIDIA GPUs older than
Ampere: there the flags are ignored and the results are bit-identical to ``tf32=False``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from learnlaw.core.checks import ArgumentTypeError

__all__ = ["matmul_precision"]


def _flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _set_flags(matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def _new_api_state() -> dict[str, str] | None:
    """The ``fp32_precision`` settings of PyTorch ≥ 2.9 (``None`` on an older PyTorch)."""
    b = torch.backends
    try:
        return {
            "global": b.fp32_precision,
            "matmul": b.cuda.matmul.fp32_precision,
            "cudnn": b.cudnn.fp32_precision,
            "conv": b.cudnn.conv.fp32_precision,
            "rnn": b.cudnn.rnn.fp32_precision,
        }
    except AttributeError:
        return None


def _restore_new_api(state: dict[str, str]) -> None:
    b = torch.backends
    b.fp32_precision = state["global"]
    b.cuda.matmul.fp32_precision = state["matmul"]
    b.cudnn.fp32_precision = state["cudnn"]
    b.cudnn.conv.fp32_precision = state["conv"]
    b.cudnn.rnn.fp32_precision = state["rnn"]


def check_tf32(tf32: object) -> bool:
    """``tf32`` if it is a bool, else a ``TypeError`` naming what was received."""
    if not isinstance(tf32, bool):
        raise ArgumentTypeError(
            f"tf32 must be True (TF32 float32 matmuls on NVIDIA Ampere+ GPUs) or False (exact "
            f"IEEE float32), got {tf32!r} of type {type(tf32).__name__}"
        )
    return tf32


@contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """Run a block with TF32 float32 matmuls and convolutions on (``True``) or off (``False``).

    Sets ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32`` to
    ``tf32`` and restores their previous values on exit, an exception included.

    What TF32 does: on NVIDIA GPUs from Ampere on, float32 matrix products (``mm``, ``bmm``,
    ``addmm``, ``matmul``, linear layers, their backward passes) and cuDNN convolutions round
    their inputs to a 10-bit mantissa (relative rounding error ≤ 2⁻¹¹ ≈ 4.9·10⁻⁴ per input,
    against 2⁻²⁴ ≈ 6·10⁻⁸ in float32) and accumulate in float32, several times faster on tensor
    cores. It does NOT affect the CPU, float64 (or float16/bfloat16) tensors, elementwise
    operations or reductions, other accelerators, or pre-Ampere GPUs: there the result is the
    same bit for bit. Cost: none (two flag writes each way).

    The flags are process-wide: another thread running CUDA matmuls meanwhile sees them too.
    Nested blocks work (the inner one restores the outer one's setting) and the innermost one
    wins: the library's entry points open their own block with their ``tf32=`` argument
    (default ``False``), so call ``train(task, policy, lr, tf32=True)`` rather than wrapping
    ``train`` in ``matmul_precision(True)``, which it would override. Use this context for
    code of your own (e.g. an evaluation of the model outside the library's functions).

    Args:
        tf32: allow TF32 inside the block (``True``) or force exact float32 (``False``).

    Raises:
        TypeError: ``tf32`` is not a bool.

    Example:
        >>> with matmul_precision(True):
        ...     logits = model(inputs)  # doctest: +SKIP
    """
    tf32 = check_tf32(tf32)
    try:
        previous = _flags()
        restore = None
    except RuntimeError:
        # the legacy flags cannot be read when the process mixed them with PyTorch's newer
        # fp32_precision settings inconsistently: restore those settings instead
        previous, restore = None, _new_api_state()
    _set_flags(tf32, tf32)
    try:
        yield
    finally:
        if previous is not None:
            _set_flags(*previous)
        elif restore is not None:
            _restore_new_api(restore)
