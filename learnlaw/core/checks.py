"""Checks of the scalar arguments of learnlaw's public functions, with messages that help.

Every public function validates its scalar arguments (``steps``, ``lr``, ``epochs``, ...) with
these helpers before any work, so that a wrong argument fails at once with a message that
names the argument, what it got and what it expected, not later with a riddle from inside
torch. A tensor passed where an int is expected is named as such, with the likely mix-up when
the caller gives one (e.g. a policy passed as ``steps``).

A wrong type raises :class:`ArgumentTypeError`, a value out of range :class:`ArgumentValueError`.
Both are ``ValueError`` subclasses (so code that caught ``ValueError`` before still does);
:class:`ArgumentTypeError` is also a ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Sequence

import torch

from learnlaw.core.errors import LearnlawError

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "MissingFileError",
    "UnsupportedError",
    "describe",
    "check_int",
    "check_number",
    "check_bool",
    "check_choice",
    "check_lr",
    "check_schedule",
    "SCHEDULE_SUPPORTED",
    "check_steps",
    "check_checkpoint_every",
    "check_path",
]


class ArgumentValueError(LearnlawError, ValueError):
    """A public function's argument has the right type but is out of range."""


class ArgumentTypeError(LearnlawError, TypeError, ValueError):
    """A public function's argument has the wrong type (also a ``ValueError``)."""


class MissingFileError(LearnlawError, FileNotFoundError):
    """A file a function was pointed at (or needs) does not exist."""


class UnsupportedError(LearnlawError, NotImplementedError):
    """A valid call in a setting the function does not support (e.g. a process group)."""


def describe(value: Any) -> str:
    """A short description of what a caller passed: ``a tensor of shape (30, 256)``, ``'abc'``."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, (int, float, str)) or value is None:
        return repr(value)
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} of type {type(value).__name__}"


def _fail(
    name: str, expected: str, value: Any, hint: str | None, type_error: bool
) -> ArgumentTypeError | ArgumentValueError:
    msg = f"{name} must be {expected}, got {describe(value)}"
    if hint:
        msg += f": {hint}"
    return (ArgumentTypeError if type_error else ArgumentValueError)(msg)


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    expected: str | None = None,
    hint: str | None = None,
    tensor_hint: str | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as an int in ``[minimum, maximum]``; a bool or a float is refused.

    Args:
        value: what the caller passed.
        name: the argument's name, as the message shows it.
        minimum, maximum: the inclusive range (``None``: unbounded).
        expected: how the message describes a valid value (default: from the range).
        hint: added to every failure message.
        tensor_hint: added instead when a tensor was passed (the likely mix-up).
        allow_none: accept ``None`` (returned as is).

    Raises:
        ArgumentTypeError: not an int.
        ArgumentValueError: out of range.
    """
    if value is None and allow_none:
        return None
    if expected is None:
        if minimum is not None and maximum is not None:
            expected = f"an int in [{minimum}, {maximum}]"
        elif minimum is not None:
            expected = {0: "a non-negative int", 1: "a positive int"}.get(
                minimum, f"an int ≥ {minimum}"
            )
        else:
            expected = "an int"
        if allow_none:
            expected += " or None"
    ok_type = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok_type:
        tensor = isinstance(value, torch.Tensor)
        raise _fail(name, expected, value, tensor_hint if tensor else hint, True)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, expected, value, hint, False)
    return int(value)


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    finite: bool = True,
    expected: str | None = None,
    hint: str | None = None,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a float (an int or float, not a bool or a tensor) in range.

    Args:
        value: what the caller passed.
        name: the argument's name.
        minimum, maximum: the range (``None``: unbounded); ``strict``: exclude ``minimum``.
        finite: refuse inf and nan.
        expected: how the message describes a valid value (default: from the range).
        hint: added to the failure message.
        allow_none: accept ``None`` (returned as is).

    Raises:
        ArgumentTypeError: not a real number.
        ArgumentValueError: out of range or not finite.
    """
    if value is None and allow_none:
        return None
    if expected is None:
        parts = ["a finite number" if finite else "a number"]
        if minimum is not None:
            parts.append(f"{'>' if strict else '≥'} {minimum:g}")
        if maximum is not None:
            parts.append(f"≤ {maximum:g}")
        expected = " ".join(parts) + (" or None" if allow_none else "")
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        raise _fail(name, expected, value, hint, True)
    v = float(value)
    bad = (finite and not math.isfinite(v)) or math.isnan(v)
    if minimum is not None:
        bad = bad or (v <= minimum if strict else v < minimum)
    if maximum is not None:
        bad = bad or v > maximum
    if bad:
        raise _fail(name, expected, value, hint, False)
    return v


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value, None, True)
    return value


KERNEL_NAMES = ("auto", "autodiff", "autodiff_rr", "logistic")
"""What ``Task(kernels=...)`` may name (:mod:`learnlaw.core.kernels` implements all but ``"auto"``)."""


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==`` on non-tensors only)."""
    if not any(type(value) is type(c) for c in choices):
        raise _fail(name, f"one of {tuple(choices)}", value, None, True)
    if value not in choices:
        raise ArgumentValueError(f"unknown {name} {value!r}; expected one of {tuple(choices)}")
    return value


SCHEDULE_SUPPORTED = "train, adjoint_sweep, policy_gradient and schedule_gradient"
"""The public functions that accept a per-step schedule η_t as ``lr``."""


def _is_sequence(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim >= 1
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict))


def check_lr(lr: Any, name: str = "lr") -> float:
    """A learning rate: a positive finite number (the message says "the learning rate").

    A schedule (a tensor, list or array of steps) is refused with the names of the functions
    that take one (:data:`SCHEDULE_SUPPORTED`).
    """
    hint = None
    if _is_sequence(lr):
        hint = (
            f"a (T,) schedule is only supported by {SCHEDULE_SUPPORTED}; pass a float here "
            "(e.g. its peak, or run the schedule with learnlaw.train)"
        )
    return check_number(
        lr,
        name,
        minimum=0.0,
        strict=True,
        expected="a positive finite number (the learning rate)",
        hint=hint,
    )


def check_schedule(lr: Any, steps: int, name: str = "lr") -> float | torch.Tensor:
    """A learning rate or a per-step schedule: a positive finite float, or T positive finite steps.

    Args:
        lr: a number, or a 1-D tensor / list / tuple / numpy array of T numbers.
        steps: T, the number of policy rows the schedule must match.
        name: the argument's name in messages.

    Returns:
        The float, or the schedule as a float64 tensor of shape ``(T,)`` — on ``lr``'s own
        device for a tensor (checked there: one host synchronisation, no copy), on the CPU for
        a list, tuple or array.

    Raises:
        ArgumentTypeError: neither a number nor a 1-D sequence of numbers.
        ArgumentValueError: a wrong length, or a step that is not positive and finite (the
            first bad index and its value are named).
    """
    if not _is_sequence(lr):
        return check_lr(lr, name)
    try:
        sched = lr.detach() if isinstance(lr, torch.Tensor) else torch.as_tensor(lr)
    except (TypeError, ValueError, RuntimeError):
        raise _fail(name, "a float or a 1-D sequence of T numbers", lr, None, True) from None
    if sched.ndim != 1:
        raise ArgumentValueError(
            f"{name} must be a float or a (T,) schedule with T = {steps}, got "
            f"{describe(lr)}: pass one step size per policy row"
        )
    if sched.dtype == torch.bool or sched.dtype.is_complex:
        raise _fail(name, "a float or a 1-D sequence of T real numbers", lr, None, True)
    if not isinstance(lr, torch.Tensor) and sched.dtype != torch.float64:
        sched = torch.as_tensor(lr, dtype=torch.float64)  # Python floats: not via float32
    sched = sched.to(torch.float64)
    if len(sched) != steps:
        raise ArgumentValueError(
            f"{name} has {len(sched)} steps but the policy has T = {steps} rows: pass one step "
            "size η_t per row (a (T,) schedule), or a float for a constant step"
        )
    bad = ~(torch.isfinite(sched) & (sched > 0))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ArgumentValueError(
            f"{name}[{i}] = {float(sched[i])!r}: every step of a schedule must be a positive "
            "finite number (e.g. learnlaw.policies.classic_schedule decays to a small positive step, "
            "never to 0)"
        )
    return sched


def check_steps(steps: Any, name: str = "steps", *, policy_hint: bool = False) -> int:
    """T, a positive int; a tensor passed as ``steps`` is named as a probable policy."""
    hint = "to start from a policy, pass initial_policy=" if policy_hint else "pass T, an int ≥ 1"
    return check_int(
        steps,
        name,
        minimum=1,
        expected="an int T ≥ 1 (a positive int)",
        tensor_hint=hint,
    )


def check_path(value: Any, name: str, *, allow_none: bool = False) -> str | os.PathLike | None:
    """``value`` if it is a path (a ``str`` or ``os.PathLike``), or ``None`` if allowed."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)):
        expected = "a path (str or os.PathLike)" + (" or None" if allow_none else "")
        raise _fail(name, expected, value, None, True)
    return value


def check_checkpoint_every(value: Any, name: str = "checkpoint_every") -> int | str | None:
    """``None``, ``"auto"`` or a positive int (the spacing of stored θ's)."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    return check_int(value, name, minimum=1, expected="None, 'auto' or a positive int")
