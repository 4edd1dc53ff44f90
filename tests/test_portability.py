"""The Transformer chapter where readers run it: resuming an interrupted search.

The chapter runs at tiny sizes with a ``checkpoint_dir`` twice: the second run must resume the
search from the saved state and report the same numbers. (Other CPUs' kernel paths and thread
counts are ``make test-portable``'s: every chapter under nbval, its snapshot check taking the
"another CPU" branch of :func:`learnlaw.data.check_snapshot`; CI runs its AVX2 variant.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "transformer.ipynb"


def _papermill(out: Path, env: dict, params: dict, timeout: int = 1500) -> None:
    cmd = [sys.executable, "-m", "papermill", str(CHAPTER), str(out), "--cwd", str(CHAPTER.parent)]
    cmd += ["--no-progress-bar", "-k", "python3"]
    for name, value in params.items():
        cmd += ["-y", json.dumps({name: value})]  # JSON is YAML: lists and None pass as such
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{CHAPTER.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )


def _outputs(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts.append("".join(o.get("text", "")) if o.get("output_type") == "stream" else "")
    return "\n".join(texts)


def test_transformer_chapter_search_resumes_from_its_checkpoint_dir(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    # the chapter's own small parameters (those of the Colab-style test), with 2 epochs
    small = {**json.loads(CHAPTER.read_text())["metadata"]["learnlaw"]["colab_smoke"], "epochs": 2}
    ckdir = tmp_path / "search"
    runs = []
    for i in range(2):
        res = tmp_path / f"r{i}.json"
        params = {**small, "checkpoint_dir": str(ckdir), "results_path": str(res)}
        _papermill(tmp_path / f"out{i}.ipynb", env, params)
        runs.append((json.loads(res.read_text()), _outputs(tmp_path / f"out{i}.ipynb")))
    assert any(ckdir.glob("state*.pt"))
    assert f"search state in {ckdir}: new" in runs[0][1]
    assert f"search state in {ckdir}: resumed from it" in runs[1][1]
    for k in ("J_start", "J_end", "ar_test", "cr_test_optimal", "sim_optimal"):
        assert runs[0][0][k] == runs[1][0][k], k
