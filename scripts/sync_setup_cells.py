"""Write the shared set-up cell, filled in from _config.yml, into every chapter, after its title.

The repository URL and branch live in ``_config.yml`` only (``repository.url`` and
``repository.branch``); the launch buttons read them there, and this script copies them into the
set-up cell that lets a chapter install learnlaw on a fresh runtime such as Colab.

Layout of a chapter: cell 0 is its title and opening paragraph (markdown, ``# Title``); cell 1
is the set-up cell, the first code cell (Colab runs it first), tagged ``setup`` and ``hide-cell``
so that the built book shows it collapsed under the title::

    python scripts/sync_setup_cells.py          # rewrite every chapter (book/*.ipynb)
    python scripts/sync_setup_cells.py --check  # exit 1 and name the chapters that differ

The cell's stored outputs and execution count are kept: locally the cell prints nothing, so a
chapter does not need re-executing after a sync. ``tests/test_notebooks.py`` fails when a
chapter's layout or set-up cell differs from this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
SETUP_TAG = "setup"
# Jupyter Book collapses a cell tagged hide-cell behind a "Show code cell" toggle.
SETUP_TAGS = (SETUP_TAG, "hide-cell")

TEMPLATE = '''\
# Set-up: on a fresh runtime (e.g. Colab) this installs learnlaw; locally it is already there.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("learnlaw") is None:
    # learnlaw with what the chapters use (scipy, matplotlib, the coder, the tokenizer);
    # LEARNLAW_SOURCE: a local folder or any URL pip accepts
    source = os.environ.get("LEARNLAW_SOURCE", "git+{url}@{branch}")
    spec = f"{{source}}[chapters]" if os.path.isdir(source) else f"learnlaw[chapters] @ {{source}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
    importlib.invalidate_caches()

import torch

device = "cuda" if torch.cuda.is_available() else "cpu"'''


def load_config(root: Path = ROOT) -> dict:
    """The parsed ``_config.yml`` of the book at ``root``."""
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def setup_source(root: Path = ROOT) -> str:
    """The set-up cell's source, with the repository URL and branch from ``_config.yml``."""
    repo = load_config(root).get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch")
    if not url or not branch:
        raise ValueError(
            f"_config.yml needs repository.url and repository.branch, got url={url!r}, "
            f"branch={branch!r}; set both under `repository:`"
        )
    return TEMPLATE.format(url=str(url).rstrip("/"), branch=branch)


def _toc_files(entry: dict) -> list[str]:
    files = [entry["file"]] if "file" in entry else []
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key) or []:
            files += _toc_files(child)
    return files


def chapters(root: Path = ROOT) -> list[Path]:
    """The notebooks of every page listed in ``_toc.yml`` (root first), as absolute paths.

    Entries without a suffix are ``.ipynb`` chapters; an entry that names a ``.md`` page is
    returned as is (the tests then report that it is not a notebook).
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]] + _toc_files(toc)
    return [root / (n if Path(n).suffix else n + ".ipynb") for n in names]


def book_notebooks(root: Path = ROOT) -> list[Path]:
    """The chapters of ``_toc.yml``, then every other notebook under ``book/`` (not yet listed).

    Skips build outputs, checkpoints and ``_results`` folders.
    """
    listed = chapters(root)
    others = sorted(
        p
        for p in (root / "book").rglob("*.ipynb")
        if p not in listed
        and not any(part.startswith((".", "_")) for part in p.relative_to(root / "book").parts)
    )
    return listed + others


def title_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why the notebook does not open with its title, or ``None`` if it does."""
    if not nb.cells:
        return "the notebook has no cells"
    first = nb.cells[0]
    if first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        return (
            f"the first cell is a {first.cell_type} cell that does not start with a '# ' title: "
            "a chapter opens with its title and opening paragraph (one markdown cell)"
        )
    return None


def setup_cell_problem(nb: nbformat.NotebookNode, source: str) -> str | None:
    """Why cell 1 is not the set-up cell (title first, set-up second), or ``None`` if it is.

    The layout: cell 0 is the markdown title (and opening paragraph); cell 1 is the set-up cell,
    the notebook's first code cell (so that it runs first on Colab), tagged ``setup`` and
    ``hide-cell`` (collapsed in the built book).
    """
    problem = title_problem(nb)
    if problem:
        return problem
    if len(nb.cells) < 2 or nb.cells[1].cell_type != "code":
        return "the second cell is not the code set-up cell"
    cell = nb.cells[1]
    missing = [t for t in SETUP_TAGS if t not in cell.metadata.get("tags", [])]
    if missing:
        return f"the set-up cell (cell 1) is not tagged {missing}"
    if cell.source != source:
        return "the set-up cell's source differs from the template in scripts/sync_setup_cells.py"
    return None


def _is_setup(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and (
        SETUP_TAG in cell.metadata.get("tags", []) or 'find_spec("learnlaw")' in cell.source
    )


def sync(path: Path, source: str) -> bool:
    """Make cell 1 of ``path`` the set-up cell, after the title; return whether it changed.

    An existing set-up cell (tagged ``setup``, or an older one that installs learnlaw) keeps its
    outputs and execution count and is moved to just after the title. A chapter that does not
    open with a ``# `` title is not changed: ``ValueError`` says so (no title is invented).
    """
    nb = nbformat.read(path, as_version=4)
    if setup_cell_problem(nb, source) is None:
        return False
    found = [i for i, c in enumerate(nb.cells) if _is_setup(c)]
    if len(found) > 1:
        raise ValueError(f"{path}: cells {found} are all set-up cells; keep one")
    if found:
        cell = nb.cells.pop(found[0])  # keep its outputs and execution count
        cell.source = source
    else:
        cell = nbformat.v4.new_code_cell(source)
        cell.pop("id", None)
        if nb.nbformat_minor >= 5:
            cell["id"] = "setup"
            if any(c.get("id") == "setup" for c in nb.cells):
                cell["id"] = "learnlaw-setup"
    others = [t for t in cell.metadata.get("tags", []) if t not in SETUP_TAGS]
    cell.metadata["tags"] = [*SETUP_TAGS, *others]
    problem = title_problem(nb)
    if problem:
        raise ValueError(f"{path}: {problem}; add the title, then run the sync again")
    nb.cells.insert(1, cell)
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report; change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's root (with _toc.yml)")
    args = parser.parse_args(argv)
    source = setup_source(args.root)
    bad = []
    for path in book_notebooks(args.root):
        if not path.exists():
            print(f"missing chapter: {path.relative_to(args.root)}", file=sys.stderr)
            bad.append(path)
            continue
        if args.check:
            problem = setup_cell_problem(nbformat.read(path, as_version=4), source)
            if problem:
                print(f"{path.relative_to(args.root)}: {problem}", file=sys.stderr)
                bad.append(path)
        else:
            try:
                changed = sync(path, source)
            except ValueError as e:
                print(e, file=sys.stderr)
                bad.append(path)
                continue
            if changed:
                print(f"updated {path.relative_to(args.root)}")
    if bad and args.check:
        print("run `python scripts/sync_setup_cells.py` to fix", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
