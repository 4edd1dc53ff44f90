"""Helpers shared by the tests: ``from helpers import random_policy, central_difference``.

Plain functions rather than fixtures (``tiny_transformer`` too: its tests need it at different
sizes, devices and dtypes), so that module-level helpers of a test file and the
processes a test spawns (``tests/test_distributed.py``) use them too. pytest puts ``tests/`` on
``sys.path`` (its default ``prepend`` import mode: ``tests/`` has no ``__init__.py``).
"""

from __future__ import annotations

import warnings
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


def sparse_random_policy(steps: int, n: int, seed: int = 0, spread: float = 2.0) -> torch.Tensor:
    """A random policy with zeros, shape ``(steps, n)``, float64: ``Proj_Δ(spread · U / n)``.

    U is uniform on [0, 1) from ``seed``; the projection onto the simplex sets the smallest
    entries of a row to zero where the row sums to more than 1 (measured over 200 rows of 6 to 50
    entries: about 2% of the entries zero for ``spread`` 2, 11–18% for 3), so the policy
    exercises the code paths of examples that are switched off.
    """
    from learnlaw import project_simplex

    g = torch.Generator().manual_seed(seed)
    return project_simplex(torch.rand(steps, n, generator=g, dtype=F64) * spread / n)


def central_difference(f: Callable, x, direction, h: float):
    """(f(x + h·d) − f(x − h·d)) / (2h): the derivative of f at x along d, error O(h²).

    ``f`` may return a float or a tensor (then the difference is a tensor).
    """
    return (f(x + h * direction) - f(x - h * direction)) / (2 * h)


TINY_TRANSFORMER = dict(
    n_train=6, n_desired=3, n_test=3, max_len=8, vocab_size=260, d_model=8, n_heads=2, n_layers=1
)


def tiny_transformer(**overrides):
    """The tests' tiny Transformer task: ``TINY_TRANSFORMER`` sizes, float64, with ``overrides``.

    One layer, two heads, width 8, sequences of 8 tokens from a 260-token vocabulary, 6 training,
    3 desired and 3 test sequences; any keyword of :func:`learnlaw.transformer_task` overrides
    (e.g. ``device=``, ``dtype=``, ``chunk_size=``, ``seed=``). The tokenizer's warning that a
    corpus this small gives fewer tokens than asked is silenced.
    """
    import learnlaw as ll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ll.transformer_task(**{**TINY_TRANSFORMER, "dtype": F64, **overrides})
