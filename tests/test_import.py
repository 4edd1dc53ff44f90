"""A light core: ``pip install learnlaw`` brings torch, numpy and tqdm; everything else is an extra.

Optional packages are imported where they are used, through :func:`learnlaw.core.optional.require`,
which refuses a missing one with a :class:`MissingDependencyError` naming the install line. These
tests check the three sides of that contract: the package metadata (core dependencies, extras),
the code (no optional import outside ``require``), and the behaviour (every module imports with
the extras blocked; each use site names its extra).
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from learnlaw.core.optional import EXTRAS, MissingDependencyError, require

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "learnlaw"
CORE = {"torch", "numpy", "tqdm"}
HEAVY = tuple(EXTRAS)  # scipy, matplotlib, constriction, tokenizers, transformers, papermill, ...
BLOCK = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in HEAVY)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower()


def _extra_closure(extras: dict, name: str) -> set[str]:
    """Every requirement an extra installs, its learnlaw[...] self-references followed."""
    out = set()
    for req in extras[name]:
        m = re.fullmatch(r"learnlaw\[([a-z,]+)\]", req)
        if m:
            for sub in m[1].split(","):
                out |= _extra_closure(extras, sub)
        else:
            out.add(_name(req))
    return out


def test_the_core_install_is_torch_numpy_and_tqdm():
    deps = {_name(r) for r in _pyproject()["project"]["dependencies"]}
    assert deps == CORE


def test_every_optional_package_has_its_extra_and_the_chapters_and_tests_get_them():
    extras = _pyproject()["project"]["optional-dependencies"]
    for module, (requirement, extra) in EXTRAS.items():
        if extra is not None:
            assert _name(requirement) in _extra_closure(extras, extra), (module, extra)
    chapters = _extra_closure(extras, "chapters")
    assert {"scipy", "matplotlib", "constriction", "tokenizers"} <= chapters
    assert chapters <= _extra_closure(extras, "book")
    assert chapters | {"papermill"} <= _extra_closure(extras, "test")


def _third_party_imports(path: Path):
    """(line, top-level module) of every import of a non-stdlib, non-learnlaw module in ``path``,
    inside functions too, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "learnlaw":
                yield node.lineno, top


def test_learnlaw_imports_nothing_but_the_core_except_through_require():
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, top in _third_party_imports(path)
        if top not in CORE
    ]
    assert not bad, "import optional packages with learnlaw.core.optional.require: " + str(bad)


def test_every_module_of_learnlaw_imports_with_every_extra_missing():
    code = BLOCK + (
        "import importlib, pkgutil, learnlaw\n"
        "mods = [m.name for m in pkgutil.walk_packages(learnlaw.__path__, 'learnlaw.')]\n"
        "for m in mods:\n    importlib.import_module(m)\n"
        "print(len(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 50  # the walk found the package's modules


def test_import_learnlaw_loads_none_of_the_heavy_or_optional_dependencies():
    code = (
        "import sys, learnlaw, learnlaw.bench, learnlaw.search; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import learnlaw imported {out.stdout.strip()}"


def test_require_returns_the_module_or_names_the_extra(monkeypatch):
    for module, (requirement, extra) in EXTRAS.items():
        monkeypatch.setitem(sys.modules, module, None)  # import then raises ImportError
        with pytest.raises(MissingDependencyError) as info:
            require(module, "the thing")
        msg = str(info.value)
        assert msg.startswith(f"the thing needs the optional package {module},")
        assert f"pip install '{requirement}'" in msg
        assert (f"pip install 'learnlaw[{extra}]'" in msg) == (extra is not None)
        assert isinstance(info.value, ImportError)
    with pytest.raises(KeyError):
        require("pandas", "a bug")  # not a known optional package


def _blocked(monkeypatch, *modules):
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_each_use_site_refuses_a_missing_package_with_its_extra(monkeypatch, tmp_path):
    from learnlaw.analysis.compress import compress
    from learnlaw.analysis.fair_figures import set_ratio_ticks
    from learnlaw.analysis.paired import paired_ratio
    from learnlaw.analysis.scaling import fit_scaling_law
    from learnlaw.analysis.sim_fit import fit_sim_cr
    from learnlaw.sweep import check_parameters
    from learnlaw.tasks.hf import causal_lm_task
    from learnlaw.tasks.text import load_tinystories, train_tokenizer

    t = torch.arange(1.0, 201.0)
    curve = (1.0 + (50.0 / t) ** 0.5).tolist()
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    cases = [
        ("scipy.stats", "learnlaw[analysis]", lambda: paired_ratio([2.0, 3.0], [1.0, 1.5])),
        ("scipy.optimize", "learnlaw[analysis]", lambda: fit_sim_cr([1, 2, 3], [0.1, 0.2, 0.25])),
        ("scipy.optimize", "learnlaw[analysis]", lambda: fit_scaling_law(t.tolist(), curve)),
        ("matplotlib.ticker", "learnlaw[analysis]", lambda: set_ratio_ticks(None, [1, 2])),
        ("constriction", "learnlaw[coding]", lambda: compress(b"abc")),
        ("tokenizers", "learnlaw[lm]", lambda: train_tokenizer(["a b"], 300)),
        ("transformers", "learnlaw[hf]", lambda: causal_lm_task(None, None, None, None, pad_id=0)),
        ("papermill", "learnlaw[sweep]", lambda: check_parameters(nb, ["a"])),
        ("datasets", "pip install 'datasets'", lambda: load_tinystories(None, n=1)),
    ]
    for module, fix, call in cases:
        with monkeypatch.context() as m:
            _blocked(m, module)
            with pytest.raises(MissingDependencyError, match=re.escape(fix)):
                call()


def test_require_imports_what_is_installed():
    stats = require("scipy.stats", "a test")
    assert math.isclose(float(stats.t.ppf(0.975, 1e9)), 1.959964, rel_tol=1e-6)
