"""Write the shared set-up cell, filled in from _config.yml, as the first cell of every chapter.

The repository URL and branch live in ``_config.yml`` only (``repository.url`` and
``repository.branch``); the launch buttons read them there, and this script copies them into the
set-up cell that lets a chapter install learnlaw on a fresh runtime such as Colab::

    python scripts/sync_setup_cells.py          # rewrite every chapter (book/*.ipynb)
    python scripts/sync_setup_cells.py --check  # exit 1 and name the chapters that differ

The cell's stored outputs and execution count are kept: locally the cell prints nothing, so a
chapter does not need re-executing after a sync. ``tests/test_notebooks.py`` fails when a
chapter's first cell differs from the template.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
SETUP_TAG = "setup"

TEMPLATE = '''\
# Set-up: on a fresh runtime (e.g. Colab) this installs learnlaw; locally it is already there.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("learnlaw") is None:
    source = os.environ.get("LEARNLAW_SOURCE", "git+{url}@{branch}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)
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


def first_cell_problem(nb: nbformat.NotebookNode, source: str) -> str | None:
    """Why the notebook's first cell is not the set-up cell, or ``None`` if it is."""
    if not nb.cells:
        return "the notebook has no cells"
    cell = nb.cells[0]
    if cell.cell_type != "code":
        return f"the first cell is a {cell.cell_type} cell, not the code set-up cell"
    if SETUP_TAG not in cell.metadata.get("tags", []):
        return f"the first cell is not tagged {SETUP_TAG!r}"
    if cell.source != source:
        return "the first cell's source differs from the template in scripts/sync_setup_cells.py"
    return None


def sync(path: Path, source: str) -> bool:
    """Make the first cell of ``path`` the set-up cell; return whether the file changed."""
    nb = nbformat.read(path, as_version=4)
    if first_cell_problem(nb, source) is None:
        return False
    first = nb.cells[0] if nb.cells else None
    if (
        first is not None
        and first.cell_type == "code"
        and (SETUP_TAG in first.metadata.get("tags", []) or 'find_spec("learnlaw")' in first.source)
    ):
        first.source = source  # an older set-up cell: keep its outputs and execution count
        tags = first.metadata.setdefault("tags", [])
        if SETUP_TAG not in tags:
            tags.insert(0, SETUP_TAG)
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
        cell.pop("id", None)
        if nb.nbformat_minor >= 5:
            cell["id"] = "setup"
            if any(c.get("id") == "setup" for c in nb.cells):
                cell["id"] = "learnlaw-setup"
        nb.cells.insert(0, cell)
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
            problem = first_cell_problem(nbformat.read(path, as_version=4), source)
            if problem:
                print(f"{path.relative_to(args.root)}: {problem}", file=sys.stderr)
                bad.append(path)
        elif sync(path, source):
            print(f"updated {path.relative_to(args.root)}")
    if bad and args.check:
        print("run `python scripts/sync_setup_cells.py` to fix", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
