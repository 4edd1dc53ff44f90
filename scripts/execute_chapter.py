"""Execute one chapter top to bottom and store its outputs in place (``make execute NB=...``).

    python scripts/execute_chapter.py book/intro.ipynb [--timeout SECONDS]

The kernel is ``python3`` of the running interpreter, the working directory is the notebook's
folder (as in the book build and in nbval), progress bars are off (``TQDM_DISABLE=1``), and no
per-cell timing metadata is stored, so re-executing an unchanged chapter gives a clean diff.
If a cell fails, the notebook file is left untouched and the error is shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(path: Path, timeout: int = 1800) -> float:
    """Execute ``path`` in place; return the wall time in seconds."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.pop("MPLBACKEND", None)  # a non-interactive backend drops figures from outputs
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed to one cell")
    args = parser.parse_args(argv)
    if args.notebook.suffix != ".ipynb" or not args.notebook.is_file():
        parser.error(f"expected an existing .ipynb file, got {args.notebook}")
    try:
        elapsed = execute(args.notebook, args.timeout)
    except CellExecutionError as e:
        print(f"{args.notebook}: a cell failed; the file was not changed\n{e}", file=sys.stderr)
        return 1
    print(f"executed {args.notebook} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
