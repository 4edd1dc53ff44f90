"""Helpers shared by the tests: ``from helpers import random_policy, central_difference``.

Plain functions rather than fixtures, so that module-level helpers of a test file and the
processes a test spawns (``tests/test_distributed.py``) use them too. pytest puts ``tests/`` on
``sys.path`` (its default ``prepend`` import mode: ``tests/`` has no ``__init__.py``).
"""

from __future__ import annotations

from typing import Callable

import torch

F64 = torch.float64


def random_policy(steps: int, n: int, seed: int = 0, scale: float = 0.5) -> torch.Tensor:
    """A strictly positive random policy, shape ``(steps, n)``, float64, rows on the simplex.

    Row t is ``softmax(scale · z_t)`` with z_t ~ N(0, I) from ``seed``: every weight is > 0, so
    a finite-difference step ±h·d with a small zero-sum direction d stays feasible.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(steps, n, generator=g, dtype=F64), dim=1)


def central_difference(f: Callable, x, direction, h: float):
    """(f(x + h·d) − f(x − h·d)) / (2h): the derivative of f at x along d, error O(h²).

    ``f`` may return a float or a tensor (then the difference is a tensor).
    """
    return (f(x + h * direction) - f(x - h * direction)) / (2 * h)
