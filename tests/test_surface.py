"""The public surface: a short top level, one namespace per concept, one name per object.

The public names are ``learnlaw.__all__`` and each namespace's ``__all__`` (``learnlaw.tasks``,
``.policies``, ``.fit``, ...). These tests keep that surface small and free of aliases, check that
every namespace says what it is for and imports without optional dependencies, and that the
migration table of CHANGELOG.md gives every name that left the top level its new spelling.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types

import pytest

import learnlaw
from learnlaw.core.errors import LearnlawError

NAMESPACES = {m.__name__.split(".")[1]: m for m in learnlaw._NAMESPACES}
OPTIONAL = ("scipy", "tokenizers", "matplotlib", "transformers", "constriction", "papermill")


def _exports():
    for mod in (learnlaw, *learnlaw._NAMESPACES):
        for name in mod.__all__:
            yield mod.__name__, name, getattr(mod, name)


def test_the_top_level_is_short_and_names_the_namespaces():
    assert len(learnlaw.__all__) <= 25, learnlaw.__all__
    assert len(set(learnlaw.__all__)) == len(learnlaw.__all__)
    for name in NAMESPACES:
        assert f":mod:`learnlaw.{name}`" in learnlaw.__doc__, f"learnlaw's docstring omits {name}"


@pytest.mark.parametrize("name", sorted(NAMESPACES))
def test_each_namespace_has_all_and_a_docstring(name):
    mod = NAMESPACES[name]
    assert isinstance(mod, types.ModuleType)
    assert mod.__doc__ and len(mod.__doc__.strip()) > 80, f"learnlaw.{name} needs a docstring"
    assert mod.__all__ and len(set(mod.__all__)) == len(mod.__all__)
    for n in mod.__all__:
        assert hasattr(mod, n), f"learnlaw.{name}.__all__ names {n}, which it lacks"
        assert f"{n}`" in mod.__doc__, f"learnlaw.{name}'s docstring does not mention {n}"


def test_no_two_public_names_refer_to_one_object():
    seen: dict[int, str] = {}
    clashes = []
    for mod, name, obj in _exports():
        if not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue  # constants (presets, tuples of names) may be equal without being aliases
        here = f"{mod}.{name}"
        if id(obj) in seen:
            clashes.append(f"{seen[id(obj)]} and {here}")
        seen[id(obj)] = here
    assert not clashes, clashes


def test_no_two_namespaces_export_one_name():
    where: dict[str, str] = {}
    for mod, name, _ in _exports():
        assert name not in where, f"{name} is exported by {where[name]} and by {mod}"
        where[name] = mod


def test_every_public_exception_is_a_learnlaw_error():
    errors = [
        (mod, name, obj)
        for mod, name, obj in _exports()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    ]
    assert len(errors) >= 5
    for mod, name, obj in errors:
        assert issubclass(obj, LearnlawError), f"{mod}.{name} is not a LearnlawError"


@pytest.mark.parametrize("name", sorted(NAMESPACES))
def test_each_namespace_imports_without_optional_dependencies(name):
    code = (
        f"import sys; import learnlaw.{name}; "
        f"print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import learnlaw.{name} pulled in {out.stdout.strip()}"


def _migration_table(repo_root):
    text = (repo_root / "CHANGELOG.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `learnlaw\.(\w+)` \| (.+?) \|$", text, re.M)
    return dict(rows)


def test_the_migration_table_resolves(repo_root):
    table = _migration_table(repo_root)
    assert len(table) >= 90, f"only {len(table)} rows in CHANGELOG.md's migration table"
    for old, new in table.items():
        assert old not in learnlaw.__all__, f"learnlaw.{old} is still at the top level"
        spellings = re.findall(r"`(learnlaw(?:\.\w+)+)`", new)
        assert spellings, f"the row for learnlaw.{old} names no new spelling: {new}"
        for spelling in spellings:
            parts = spelling.split(".")
            obj = learnlaw
            for p in parts[1:]:
                assert hasattr(obj, p), f"{spelling} (the row for learnlaw.{old}) does not exist"
                obj = getattr(obj, p)
