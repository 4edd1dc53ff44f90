"""The chapters where readers run them: another CPU kernel path and thread count, and resuming.

A reader's laptop or cloud CPU runs PyTorch's AVX2 kernels where this machine runs AVX-512, and
floating-point sums then run in another order: the Transformer chapter's numbers move in their
5th–6th significant digit. Here the chapter runs at its defaults under
``ATEN_CPU_CAPABILITY=avx2`` with 2 threads instead of its 1: it must finish (its prose's claims
are asserted inside it, with tolerances), its snapshot check must take the "another CPU" branch
of :func:`learnlaw.data.check_snapshot`, and its numbers must agree with the snapshot within
``CROSS_CPU_RTOL`` (checked again here, so a chapter that skipped its check cannot pass).

The second test runs the chapter at tiny sizes with a ``checkpoint_dir`` twice: the second run
must resume the search from the saved state and report the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from learnlaw import data

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "transformer.ipynb"
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def _papermill(out: Path, env: dict, params: dict, timeout: int = 1500) -> None:
    cmd = [sys.executable, "-m", "papermill", str(CHAPTER), str(out), "--cwd", str(CHAPTER.parent)]
    cmd += ["--no-progress-bar", "-k", "python3"]
    for name, value in params.items():
        cmd += ["-y", json.dumps({name: value})]  # JSON is YAML: lists and None pass as such
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{CHAPTER.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )


def _capability(env: dict) -> str:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip()


def _outputs(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts.append("".join(o.get("text", "")) if o.get("output_type") == "stream" else "")
    return "\n".join(texts)


def test_transformer_chapter_at_its_defaults_on_avx2_kernels_and_two_threads(tmp_path):
    env = {**os.environ, **AVX2, "TQDM_DISABLE": "1"}
    if _capability(env) != "AVX2":
        pytest.skip(f"this CPU cannot run torch's AVX2 kernels (capability {_capability(env)!r})")
    results_path = tmp_path / "transformer.json"
    _papermill(tmp_path / "out.ipynb", env, {"cpu_threads": 2, "results_path": str(results_path)})
    results = json.loads(results_path.read_text())
    assert results["platform"]["cpu_capability"] == "AVX2"
    snap = data.snapshot("transformer")
    assert snap["platform"]["cpu_capability"] != "AVX2"  # the check compared across CPUs
    far = {
        k: (results[k], v)
        for k, v in snap["results"].items()
        if not data._close(results[k], v, data.CROSS_CPU_RTOL)
    }
    assert not far, f"beyond CROSS_CPU_RTOL = {data.CROSS_CPU_RTOL}: {far}"


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
