"""Every chapter runs the way Colab runs it: the notebook alone, learnlaw installed by its set-up cell.

Each chapter of ``_toc.yml`` is copied alone into an empty folder and executed with papermill,
at small parameters, by a kernel of ONE fresh virtual environment shared by all chapters. The
environment starts as a Colab runtime does: Python with torch, numpy, scipy, matplotlib and
ipykernel, and no learnlaw. The first chapter's set-up cell then pip-installs learnlaw from
``LEARNLAW_SOURCE``, a copy of this checkout's package sources (not editable: what a chapter
reads must come with the package, as on Colab). torch is the CPU wheel pinned by
requirements/torch-cpu.txt, so that nothing large is downloaded.

The small parameters of a chapter live in the chapter itself, in its notebook metadata::

    "metadata": {"learnlaw": {"colab_smoke": {"steps": 50, "epochs": 2}}, ...}

(``{}`` runs it at its defaults). A chapter without them fails here with a message saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import sync_setup_cells as sync  # noqa: E402

CHAPTERS = sync.chapters()
META_KEY, SMOKE_KEY = "learnlaw", "colab_smoke"
KERNEL = "learnlaw-colab-smoke"
# What a Colab runtime already has (torch through the CPU constraint).
COLAB_BASE = ["torch", "numpy", "scipy", "matplotlib", "ipykernel"]
TIMEOUT = 900  # seconds for one chapter at its small parameters


def smoke_parameters(path: Path) -> dict:
    """The chapter's small parameters (``metadata.learnlaw.colab_smoke``), checked by name."""
    import papermill

    nb = nbformat.read(path, as_version=4)
    params = nb.metadata.get(META_KEY, {}).get(SMOKE_KEY)
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if params is None:
        raise LookupError(
            f"{rel} has no small parameters for the Colab-style test: add them to the notebook's "
            f'metadata as "{META_KEY}": {{"{SMOKE_KEY}": {{"name": value, ...}}}} (names from its '
            f"'parameters' cell, values small enough to run in a minute or two on a CPU; {{}} runs "
            f"the defaults); see tests/test_colab.py"
        )
    known = papermill.inspect_notebook(str(path))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise LookupError(
            f"{rel}: {META_KEY}.{SMOKE_KEY} sets {unknown}, which its parameters cell does not "
            f"define (it defines {sorted(known)})"
        )
    return dict(params)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh venv as on Colab (no learnlaw), its kernel, and LEARNLAW_SOURCE: set up once."""
    base = tmp_path_factory.mktemp("colab")
    t0 = time.monotonic()
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PIP_CONSTRAINT=str(ROOT / "requirements" / "torch-cpu.txt"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TQDM_DISABLE="1",
    )
    env.pop("MPLBACKEND", None)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *COLAB_BASE],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('learnlaw') is None)"],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "True", "the fresh venv must not see learnlaw"

    src = base / "src"  # learnlaw's sources as in the checkout; pip builds from a copy
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "learnlaw", src / "learnlaw", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    kernels = base / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fresh venv, as on Colab",
                "language": "python",
            }
        )
    )
    env.update(JUPYTER_PATH=str(base / "jupyter"), LEARNLAW_SOURCE=str(src))
    print(f"Colab-style venv ready in {time.monotonic() - t0:.0f} s")
    return {"base": base, "venv": venv, "python": python, "src": src, "env": env}


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_alone_as_on_colab(colab, path, monkeypatch):
    import papermill

    try:
        params = smoke_parameters(path)
    except LookupError as e:
        pytest.fail(str(e))
    folder = colab["base"] / path.stem
    folder.mkdir()
    shutil.copy(path, folder / path.name)  # the chapter alone: no book/, no data/, no scripts/
    for k in list(os.environ):
        if k not in colab["env"]:
            monkeypatch.delenv(k)
    for k, v in colab["env"].items():
        monkeypatch.setenv(k, v)
    t0 = time.monotonic()
    try:
        papermill.execute_notebook(
            str(folder / path.name),
            str(folder / f"{path.stem}.out.ipynb"),
            parameters=params,
            kernel_name=KERNEL,
            cwd=str(folder),
            progress_bar=False,
            execution_timeout=TIMEOUT,
        )
    except papermill.PapermillExecutionError as e:
        # papermill runs a cell tagged raises-exception (a chapter showing an error on purpose)
        # and goes on, but then reports its error too: only an untagged cell's error counts
        done = nbformat.read(folder / f"{path.stem}.out.ipynb", as_version=4)
        unexpected = [
            c.execution_count
            for c in done.cells
            if c.cell_type == "code"
            and "raises-exception" not in c.metadata.get("tags", [])
            and any(o.output_type == "error" for o in c.outputs)
        ]
        if unexpected or any(
            c.metadata.get("papermill", {}).get("status") != "completed"
            for c in done.cells
            if c.cell_type == "code"
        ):
            pytest.fail(
                f"{path.relative_to(ROOT)} run alone, as on Colab, at {params} failed in cell "
                f"{e.exec_count}: {e.ename}: {e.evalue}"
            )
    print(f"{path.stem}: {time.monotonic() - t0:.0f} s at {params}")
    site = _site_packages(colab["python"])
    dist = list(site.glob("learnlaw-*.dist-info/direct_url.json"))
    assert len(dist) == 1, "the set-up cell did not install learnlaw into the fresh venv"
    assert json.loads(dist[0].read_text())["url"] == colab["src"].as_uri()
    assert (site / "learnlaw" / "data" / "perceptron_variants.json").is_file()


def test_a_chapter_without_small_parameters_is_named(tmp_path):
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    nb.metadata.pop(META_KEY, None)
    (tmp_path / "book").mkdir()
    path = tmp_path / "book" / "new.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(LookupError, match="has no small parameters"):
        smoke_parameters(path)
    nb.metadata[META_KEY] = {SMOKE_KEY: {"no_such_parameter": 1}}
    nbformat.write(nb, path)
    with pytest.raises(LookupError, match="no_such_parameter"):
        smoke_parameters(path)
