"""One error base: every exception class learnlaw defines is a ``learnlaw.LearnlawError``."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

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
        "MissingFileError": FileNotFoundError,
        "UnsupportedError": NotImplementedError,
        "MeasurementError": RuntimeError,
        "MissingDependencyError": ImportError,
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


# Built-in exceptions learnlaw may still raise, each for a reason a LearnlawError would not serve.
ALLOWED_BUILTIN_RAISES = {
    # a chapter's assert that it reproduces its committed snapshot: an assertion, for nbval
    ("learnlaw/data/__init__.py", "AssertionError"),
}


def test_learnlaw_raises_no_bare_builtin_exception():
    """Every ``raise SomeBuiltinError(...)`` in the package is a LearnlawError subclass instead,
    so that ``except learnlaw.LearnlawError`` catches every refusal (re-raises are fine)."""
    root = Path(learnlaw.__file__).parent
    builtin_errors = {
        n for n, v in vars(builtins).items() if inspect.isclass(v) and issubclass(v, Exception)
    }
    found = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id in builtin_errors:
                    rel = path.relative_to(root.parent).as_posix()
                    found.add((rel, func.id, node.lineno))
    bad = sorted(f for f in found if f[:2] not in ALLOWED_BUILTIN_RAISES)
    assert not bad, f"raise a learnlaw error (core.checks / core.errors) instead: {bad}"
    assert {f[:2] for f in found} <= ALLOWED_BUILTIN_RAISES
