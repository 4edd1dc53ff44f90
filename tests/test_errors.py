"""One error base: every exception class learnlaw defines is a ``learnlaw.LearnlawError``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import learnlaw
from learnlaw import LearnlawError


def _learnlaw_modules():
    for info in pkgutil.walk_packages(learnlaw.__path__, "learnlaw."):
        try:
            yield importlib.import_module(info.name)
        except ImportError as err:  # an optional dependency (an extra) is missing
            pytest.skip(f"{info.name} needs an optional dependency: {err}")


def test_every_learnlaw_exception_is_a_learnlaw_error_and_keeps_its_builtin_base():
    found = {}
    for module in _learnlaw_modules():
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.startswith("learnlaw")
            ):
                found[f"{obj.__module__}.{name}"] = obj
    assert len(found) >= 9, sorted(found)  # the eight public errors and the sweep's internal one
    bad = [name for name, cls in found.items() if not issubclass(cls, LearnlawError)]
    assert not bad, f"not a LearnlawError: {bad}"
    builtin = {
        "PolicyError": ValueError,
        "CheckpointError": ValueError,
        "DivergenceError": FloatingPointError,
        "CompressionError": ValueError,
        "MemoryBudgetError": MemoryError,
        "SweepError": ValueError,
        "ArgumentValueError": ValueError,
        "ArgumentTypeError": TypeError,
    }
    by_name = {cls.__name__: cls for cls in found.values()}
    for name, base in builtin.items():
        assert issubclass(by_name[name], base), (name, base)


def test_a_bad_argument_is_caught_by_the_base():
    with pytest.raises(LearnlawError, match="lr"):
        learnlaw.train(
            learnlaw.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4),
            learnlaw.uniform_policy(3, 8),
            lr=-1.0,
        )
