"""The book's wiring: chapters are stored executed, and the test set-up really catches breakage.

``make test`` re-executes every chapter with nbval and compares the outputs with the stored ones.
nbval passes a notebook stored WITHOUT outputs without comparing anything, so this file checks
the stored notebooks themselves, and proves on broken copies that both checks fail when they
should. It also runs the Colab set-up cell in a fresh virtual environment that lacks learnlaw.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import sync_setup_cells as sync  # noqa: E402

CHAPTERS = sync.chapters()
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
INTRO = ROOT / "book" / "intro.ipynb"
SETUP = 1  # the set-up cell's index: after the title (cell 0), the first code cell


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def notebook_problems(nb: nbformat.NotebookNode, setup: str) -> list[str]:
    """Every way ``nb`` is not a well-formed, executed chapter (empty when it is one)."""
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        problems.append(f"invalid notebook: {e.message}")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec name is {kernel!r}, expected 'python3'")
    problem = sync.setup_cell_problem(nb, setup)
    if problem:
        problems.append(f"{problem} (run `make sync`)")
    elif nb.cells[SETUP].outputs:
        problems.append("the set-up cell has outputs; locally it must print nothing")
    code = [c for c in nb.cells if c.cell_type == "code"]
    n_params = sum("parameters" in tags(c) for c in code)
    if n_params != 1:
        problems.append(f"{n_params} code cells are tagged 'parameters', expected exactly 1")
    if any("injected-parameters" in tags(c) for c in code):
        problems.append("a papermill 'injected-parameters' cell was stored; execute with defaults")
    counts = [c.execution_count for c in code if c.source.strip()]
    never = [
        i
        for i, c in enumerate(nb.cells)
        if c in code and c.source.strip() and c.execution_count is None
    ]
    if never:
        problems.append(
            f"cells {never} were never executed: the chapter was stored without outputs "
            "(run `make execute NB=<chapter>`)"
        )
    elif any(b <= a for a, b in zip(counts, counts[1:])):
        problems.append(
            f"execution counts {counts} are not increasing: run the chapter top to bottom"
        )
    if not any(c.outputs for c in code):
        problems.append("no code cell has an output")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and "raises-exception" not in tags(c):
            if any(o.output_type == "error" for o in c.outputs):
                problems.append(f"cell {i} stored an error")
    return problems


def chapter_problems(path: Path) -> list[str]:
    if path.suffix != ".ipynb":
        return [f"{path.name}: a chapter must be a notebook (.ipynb), not {path.suffix}"]
    if not path.is_file():
        return [f"{path} does not exist"]
    return notebook_problems(nbformat.read(path, as_version=4), sync.setup_source())


NOTEBOOKS = sync.book_notebooks()


# --- the stored chapters ---------------------------------------------------------------------


def test_toc_lists_the_intro_first():
    assert CHAPTERS, "_toc.yml lists no chapter"
    assert CHAPTERS[0] == INTRO


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_is_stored_executed_with_the_synced_setup_cell(path):
    """Every chapter in _toc.yml, and every notebook in book/ that nbval will run."""
    assert chapter_problems(path) == []


def test_repository_url_lives_in_config_only():
    """The URL is written in _config.yml; chapters get it only through their set-up cell."""
    repo = sync.load_config()["repository"]
    url = repo["url"].rstrip("/")
    assert f"git+{url}@{repo['branch']}" in sync.setup_source()
    needle = url.split("://", 1)[-1]
    skip_dirs = {".git", ".venv", "_build", "build", "node_modules", "_results", "__pycache__"}
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(p in skip_dirs or p.endswith(".egg-info") or p.startswith(".") for p in rel.parts):
            continue
        if not path.is_file() or path.suffix not in {
            ".py",
            ".md",
            ".toml",
            ".yml",
            ".yaml",
            ".ipynb",
            ".cfg",
            ".txt",
            ".bib",
            "",
        }:
            continue
        if rel == Path("_config.yml"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            cells = [
                c
                for c in nb.get("cells", [])
                if sync.SETUP_TAG not in c.get("metadata", {}).get("tags", [])
            ]
            text = json.dumps(cells)
        if needle in text:
            found.append(str(rel))
    assert found == [], f"the repository URL is written outside _config.yml in {found}"


# --- the checks fail on broken chapters ------------------------------------------------------


def _cleared(nb):
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None


def _first_with_output(nb):
    return next(c for c in nb.cells[1:] if c.cell_type == "code" and c.outputs)


def _first_printing(nb):
    """The first code cell that prints (a stream output, which nbval compares as text)."""
    return next(
        c
        for c in nb.cells[1:]
        if c.cell_type == "code" and any(o.output_type == "stream" for o in c.outputs)
    )


BREAKAGES = {
    "outputs cleared": _cleared,
    "other kernel": lambda nb: nb.metadata.kernelspec.update(name="learnlaw-venv"),
    "no parameters cell": lambda nb: [
        c.metadata.update(tags=[t for t in tags(c) if t != "parameters"]) for c in nb.cells
    ],
    "set-up cell edited": lambda nb: setattr(
        nb.cells[SETUP], "source", nb.cells[SETUP].source + "\n"
    ),
    "set-up cell removed": lambda nb: nb.cells.pop(SETUP),
    "set-up cell above the title": lambda nb: nb.cells.insert(0, nb.cells.pop(SETUP)),
    "set-up cell not collapsed": lambda nb: nb.cells[SETUP].metadata.update(tags=["setup"]),
    "title not first": lambda nb: nb.cells.insert(0, nbformat.v4.new_markdown_cell("Hello.")),
    "set-up cell prints": lambda nb: nb.cells[SETUP].outputs.append(
        nbformat.v4.new_output("stream", name="stdout", text="hello\n")
    ),
    "error stored": lambda nb: _first_with_output(nb).outputs.append(
        nbformat.v4.new_output("error", ename="RuntimeError", evalue="boom", traceback=[])
    ),
    "cells out of order": lambda nb: setattr(_first_with_output(nb), "execution_count", 1),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_checker_fails_on_a_broken_copy(tmp_path, breakage):
    nb = nbformat.read(INTRO, as_version=4)
    assert notebook_problems(nb, sync.setup_source()) == []
    broken = copy.deepcopy(nb)
    BREAKAGES[breakage](broken)
    path = tmp_path / "broken.ipynb"
    nbformat.write(broken, path)
    assert chapter_problems(path), f"the checker accepted a chapter with: {breakage}"


def test_book_build_renders_stored_chapters_and_executes_unexecuted_ones(tmp_path):
    """scripts/book_execution.py: `make book` must not re-run a chapter stored executed."""
    pytest.importorskip("sphinx")
    import book_execution

    assert book_execution.stored_executed(INTRO)
    nb = nbformat.read(INTRO, as_version=4)
    _cleared(nb)
    nbformat.write(nb, tmp_path / "cleared.ipynb")
    assert not book_execution.stored_executed(tmp_path / "cleared.ipynb")
    assert sync.load_config()["execute"]["execute_notebooks"] == "auto"


def test_sync_script_fills_the_setup_cell_from_config(tmp_path):
    (tmp_path / "book").mkdir()
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    url = sync.load_config()["repository"]["url"]
    (tmp_path / "_config.yml").write_text(config.replace(url, "https://example.org/fork/learnlaw"))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    shutil.copy(INTRO, tmp_path / "book" / "intro.ipynb")
    before = nbformat.read(INTRO, as_version=4)

    assert sync.main(["--check", "--root", str(tmp_path)]) == 1
    assert sync.main(["--root", str(tmp_path)]) == 0
    assert sync.main(["--check", "--root", str(tmp_path)]) == 0
    after = nbformat.read(tmp_path / "book" / "intro.ipynb", as_version=4)
    assert "git+https://example.org/fork/learnlaw@main" in after.cells[SETUP].source
    assert url not in after.cells[SETUP].source
    others = [c for i, c in enumerate(after.cells) if i != SETUP]
    assert others == [c for i, c in enumerate(before.cells) if i != SETUP], (
        "only the set-up cell may change"
    )
    target = tmp_path / "book" / "intro.ipynb"
    source = sync.setup_source(tmp_path)

    bare = copy.deepcopy(before)  # a chapter written without the set-up cell gets one
    bare.cells.pop(SETUP)
    nbformat.write(bare, target)
    assert sync.main(["--root", str(tmp_path)]) == 0
    fixed = nbformat.read(target, as_version=4)
    assert sync.setup_cell_problem(fixed, source) is None
    assert len(fixed.cells) == len(before.cells)

    old = copy.deepcopy(before)  # the old layout, set-up cell above the title, is moved
    old.cells.insert(0, old.cells.pop(SETUP))
    old.cells[0].metadata["tags"] = ["setup"]
    nbformat.write(old, target)
    assert sync.main(["--root", str(tmp_path)]) == 0
    moved = nbformat.read(target, as_version=4)
    assert sync.setup_cell_problem(moved, source) is None
    assert moved.cells[SETUP].execution_count == before.cells[SETUP].execution_count
    assert moved.cells[0] == before.cells[0]

    untitled = copy.deepcopy(before)  # no title: the script says so and changes nothing
    untitled.cells.pop(0)
    nbformat.write(untitled, target)
    text = target.read_text()
    assert sync.main(["--root", str(tmp_path)]) == 1
    assert target.read_text() == text


def test_nbval_fails_on_broken_copies(tmp_path):
    """One pytest --nbval run on three copies: intact passes, raising or changed output fails."""
    nb = nbformat.read(INTRO, as_version=4)
    nbformat.write(nb, tmp_path / "intact.ipynb")

    raises = copy.deepcopy(nb)
    cell = _first_with_output(raises)
    cell.source = 'raise RuntimeError("deliberately broken")\n' + cell.source
    nbformat.write(raises, tmp_path / "raises.ipynb")

    changed = copy.deepcopy(nb)
    out = next(o for o in _first_printing(changed).outputs if o.output_type == "stream")
    out.text = out.text.replace(out.text.strip()[:1], "#", 1)
    assert (
        out.text != next(o for o in _first_printing(nb).outputs if o.output_type == "stream").text
    )
    nbformat.write(changed, tmp_path / "changed.ipynb")

    # pytest takes the rootdir (and so the config) from every path on its command line: keep
    # them all inside tmp_path, so that this repository's pyproject.toml is not picked up.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(SANITIZE, tmp_path / "sanitize.cfg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            "pytest.ini",
            "--rootdir",
            ".",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            "sanitize.cfg",
            "-q",
            "-rA",
            "intact.ipynb",
            "raises.ipynb",
            "changed.ipynb",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    log = proc.stdout[-5000:] + proc.stderr[-3000:]
    assert proc.returncode == 1, log
    outcomes = {}  # "PASSED intact.ipynb::Cell 3" lines of the -rA summary
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR") and ".ipynb::" in rest:
            outcomes.setdefault(rest.split(".ipynb::")[0], set()).add(word)
    assert outcomes.get("intact") == {"PASSED"}, log
    assert "FAILED" in outcomes.get("raises", set()), log
    assert "FAILED" in outcomes.get("changed", set()), log


def test_make_test_fails_when_pytest_collects_nothing(tmp_path):
    """pytest exits 5 when it ran no test; `make test` must then fail, not pass."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in (
        "Makefile",
        "pyproject.toml",
        "requirements/torch-cpu.txt",
        "tests/nbval_sanitize.cfg",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    (tmp_path / "tests" / "test_nothing_here.txt").write_text("")
    venv = tmp_path / "venv"  # stands for .venv: the running interpreter, already installed
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed-stamp").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    proc = subprocess.run(
        ["make", "test", f"VENV={venv}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "no tests ran" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "collected no test" in proc.stderr


# --- the Colab set-up cell -------------------------------------------------------------------


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def test_colab_setup_cell_installs_learnlaw_into_a_fresh_environment(tmp_path, monkeypatch):
    """Run intro.ipynb in a venv without learnlaw: the set-up cell must pip-install it.

    The venv sees this environment's packages (torch, pip, ipykernel, ...) through a ``.pth``
    file that points at a folder of links to them, leaving out learnlaw itself, so that the
    test needs no downloads beyond the build backend. ``LEARNLAW_SOURCE`` points at a copy of
    this checkout's package sources (pip builds a source folder in place: a copy keeps the
    checkout clean).
    """
    from nbclient import NotebookClient

    # 1. the dependencies, without learnlaw
    deps = tmp_path / "deps"
    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        name = entry.name.lower()
        if "learnlaw" in name or name.endswith(".pth") or name.startswith("__editable__"):
            continue
        (deps / entry.name).symlink_to(entry)

    # 2. a fresh venv that sees them
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    (_site_packages(python) / "learnlaw_test_deps.pth").write_text(f"{deps}\n")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u, torch, pip, ipykernel, numpy; "
            "print(u.find_spec('learnlaw') is None)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "True", (
        "the fresh venv must see the dependencies but not learnlaw: " + probe.stdout + probe.stderr
    )

    # 3. learnlaw's sources, as in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "learnlaw", src / "learnlaw", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )

    # 4. the chapter, run by a kernel of the fresh venv, with one extra cell that reports
    kernels = tmp_path / "jupyter" / "kernels" / "learnlaw-colab-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fresh venv",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("LEARNLAW_SOURCE", str(src))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.read(INTRO, as_version=4)
    stored = copy.deepcopy(nb)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            textwrap.dedent("""\
        import learnlaw, sys
        print(learnlaw.__file__)
        print(sys.prefix)""")
        )
    )
    NotebookClient(
        nb,
        kernel_name="learnlaw-colab-test",
        timeout=600,
        resources={"metadata": {"path": str(book)}},
    ).execute()

    where, prefix = nb.cells[-1].outputs[0].text.split()
    assert Path(prefix) == venv
    assert Path(where).is_relative_to(_site_packages(python)), where
    direct_url = list(_site_packages(python).glob("learnlaw-*.dist-info/direct_url.json"))
    assert len(direct_url) == 1
    assert json.loads(direct_url[0].read_text())["url"] == src.as_uri()
    # the chapter then ran as stored: its printed numbers are the stored ones
    for new, old in zip(nb.cells[:-1], stored.cells):
        if old.cell_type == "code" and sync.SETUP_TAG not in tags(old):
            text = [o.get("text") for o in old.outputs if o.output_type == "stream"]
            assert [o.get("text") for o in new.outputs if o.output_type == "stream"] == text


def test_execute_chapter_stores_outputs_and_leaves_a_failing_chapter_untouched(tmp_path):
    """scripts/execute_chapter.py, which `make execute NB=...` runs."""
    import execute_chapter

    good = nbformat.v4.new_notebook()
    good.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    good.cells = [
        nbformat.v4.new_code_cell("import os\nprint(os.getcwd())"),
        nbformat.v4.new_code_cell("print(os.environ.get('TQDM_DISABLE'))"),
    ]
    bad = copy.deepcopy(good)
    bad.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"))
    (tmp_path / "sub").mkdir()
    nbformat.write(good, tmp_path / "sub" / "good.ipynb")
    nbformat.write(bad, tmp_path / "bad.ipynb")
    before = (tmp_path / "bad.ipynb").read_text()

    assert execute_chapter.main([str(tmp_path / "sub" / "good.ipynb")]) == 0
    done = nbformat.read(tmp_path / "sub" / "good.ipynb", as_version=4)
    assert [c.execution_count for c in done.cells] == [1, 2]
    assert done.cells[0].outputs[0].text.strip() == str((tmp_path / "sub").resolve())
    assert done.cells[1].outputs[0].text.strip() == "1"
    assert all("execution" not in c.metadata for c in done.cells), "no timing metadata"

    assert execute_chapter.main([str(tmp_path / "bad.ipynb")]) == 1
    assert (tmp_path / "bad.ipynb").read_text() == before
