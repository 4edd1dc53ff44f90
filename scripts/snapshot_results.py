"""Take the snapshot of a chapter's headline numbers that the landing page shows.

After a chapter has been executed at its default parameters (``make test`` or
``make execute NB=book/<chapter>.ipynb`` writes ``book/_results/<chapter>.json``)::

    python scripts/snapshot_results.py perceptron transformer scaling

writes ``learnlaw/data/results/<chapter>.json``: the chapter's default parameters (read from its
``parameters`` cell), the numbers listed in ``HEADLINE`` below, and, where the chapter writes
them (``book/_results/<chapter>.curves.json``), its loss curves. The snapshot is package data, so
the landing page (``book/intro.ipynb``) reads it on a fresh clone or on Colab, where no chapter has
run yet; the chapter, at those parameters, checks its fresh numbers against it
(``learnlaw.data.check_snapshot``), and ``tests/test_snapshots.py`` checks the parameters. Re-execute
``book/intro.ipynb`` after taking a new snapshot.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from pathlib import Path

from learnlaw.data import platform

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "book" / "_results"
SNAPSHOTS = ROOT / "learnlaw" / "data" / "results"

# The numbers each chapter's snapshot keeps (no timings: they depend on the machine).
HEADLINE = {
    "perceptron": [
        "ar_desired",
        "ar_test",
        "ar_test_large",
        "cr_conventional_desired",
        "cr_optimal_desired",
        "cr_conventional_test",
        "cr_optimal_test",
        "sim_conventional",
        "sim_optimal",
        "sim_cr_spearman",
        "best_clean_ar_test_large",
    ],
    "transformer": [
        "ar_desired",
        "ar_test",
        "cr_test_conventional",
        "cr_test_optimal",
        "sim_conventional",
        "sim_optimal",
        "sim_cr_spearman",
        "lr_tuned",
        "ar_tuned",
        "n_params",
        "n_train",
        "steps",
        "epochs",
    ],
    "scaling": [
        "T",
        "N",
        "ar_test",
        "ar_desired",
        "dbeta_test",
        "dbeta_desired",
        "dB_test",
        "dB_desired",
        "ar_paper_table2_T4000",
        "ar_paper_table2_T1e7",
        "ar_1e7_test_min",
        "ar_1e7_test_max",
    ],
}
# Parameters that do not change the numbers (where results and checkpoints go, CPU threads).
NOT_COMPARED = {"results_path", "threads", "cpu_threads", "checkpoint_dir"}


def default_parameters(notebook: Path) -> dict:
    """The values of the chapter's ``parameters`` cell, as JSON stores them."""
    import papermill

    out = {}
    for name, info in papermill.inspect_notebook(str(notebook)).items():
        if name in NOT_COMPARED:
            continue
        try:
            value = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError) as e:
            raise ValueError(
                f"{notebook.name}: the default of {name!r} ({info['default']!r}) is not a literal"
            ) from e
        out[name] = json.loads(json.dumps(value))
    return out


def _no_nan(x):
    return None if isinstance(x, float) and math.isnan(x) else x  # JSON has no NaN: null


def take(chapter: str, results_dir: Path = RESULTS, out_dir: Path = SNAPSHOTS) -> Path:
    """Write ``out_dir/<chapter>.json`` from ``results_dir/<chapter>.json``; return its path."""
    if chapter not in HEADLINE:
        raise SystemExit(f"no headline numbers listed for {chapter!r}; known: {sorted(HEADLINE)}")
    src = results_dir / f"{chapter}.json"
    if not src.is_file():
        raise SystemExit(f"{src} is missing: execute book/{chapter}.ipynb at its defaults first")
    results = json.loads(src.read_text())
    missing = [k for k in HEADLINE[chapter] if k not in results]
    if missing:
        raise SystemExit(f"{src} lacks {missing}")
    snap = {
        "chapter": f"book/{chapter}.ipynb",
        "taken_by": f"python scripts/snapshot_results.py {chapter}",
        # where the numbers were made: the chapter's own record, else this process's platform
        "platform": results.get("platform") or platform(),
        "parameters": default_parameters(ROOT / "book" / f"{chapter}.ipynb"),
        "results": {k: _no_nan(results[k]) for k in HEADLINE[chapter]},
    }
    curves = src.with_suffix(".curves.json")
    if curves.is_file():
        snap["curves"] = json.loads(curves.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{chapter}.json"
    dest.write_text(json.dumps(snap, indent=1, allow_nan=False) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", default=list(HEADLINE))
    args = ap.parse_args(argv)
    for chapter in args.chapters:
        print(f"wrote {take(chapter).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
