"""``import learnlaw`` stays light: optional and heavy dependencies load where they are used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "tokenizers", "matplotlib", "constriction", "transformers", "papermill")


def test_import_learnlaw_loads_none_of_the_heavy_or_optional_dependencies():
    code = (
        "import sys, learnlaw, learnlaw.bench, learnlaw.search; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import learnlaw imported {out.stdout.strip()}"
