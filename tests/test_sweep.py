"""The papermill sweep: grid, run ids, parameter checks, CSV, failures, resume (tiny notebook)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from learnlaw.sweep import SweepError, check_parameters, parse_value, run_id, run_sweep

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "tests" / "data" / "tiny_sweep.ipynb"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mtimes(out: Path) -> dict[str, int]:
    return {d.name: (d / "notebook.ipynb").stat().st_mtime_ns for d in out.iterdir() if d.is_dir()}


# -- pure helpers (no kernel) ---------------------------------------------------------------------
def test_parse_value_reads_python_literals_and_falls_back_to_str():
    assert parse_value("100") == 100 and isinstance(parse_value("100"), int)
    assert parse_value("0.05") == 0.05 and parse_value("1e-3") == 0.001
    assert parse_value("True") is True and parse_value("None") is None
    assert parse_value("'7'") == "7"
    assert parse_value("adam") == "adam" and parse_value("a b") == "a b"
    assert parse_value("[1, 2]") == "[1, 2]"  # not a scalar: kept as text


def test_run_id_is_readable_and_filesystem_safe():
    assert run_id({"steps": 100, "lr": 0.05}) == "steps=100_lr=0.05"
    assert run_id({"flag": True, "name": "adam"}) == "flag=True_name=adam"
    rid = run_id({"path": "a/b c=d"})
    assert "/" not in rid and " " not in rid and rid.count("=") == 1
    assert run_id({}) == "defaults"
    long = run_id({"x": "y" * 300})
    assert len(long) <= 120 and long != run_id({"x": "y" * 301})


def test_unknown_parameter_is_an_error_listing_the_known_names(tmp_path):
    with pytest.raises(SweepError, match=r"'c'.*a, b, results_path"):
        run_sweep(NB, {"a": [1], "c": [2]}, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written
    with pytest.raises(SweepError, match="set by the sweep"):
        check_parameters(NB, ["results_path"])
    with pytest.raises(SweepError, match="share the run id"):
        run_sweep(NB, {"b": [1, "1"]}, tmp_path / "out", progress=False)
    with pytest.raises(SweepError, match="non-empty list"):
        run_sweep(NB, {"a": []}, tmp_path / "out", progress=False)
    with pytest.raises(SweepError, match="jobs"):
        run_sweep(NB, {"a": [1]}, tmp_path / "out", jobs=0, progress=False)


def test_notebook_without_results_parameter_is_an_error(tmp_path):
    nb = nbformat.read(NB, as_version=4)
    nb.cells[1].source = "a = 1\nb = 2.0"
    path = tmp_path / "no_results.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(SweepError, match="no parameter 'results_path'"):
        run_sweep(path, {"a": [1]}, tmp_path / "out", progress=False)


# -- real runs ------------------------------------------------------------------------------------
def test_cli_runs_the_grid_keeps_failed_runs_and_exits_non_zero(tmp_path):
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "learnlaw.sweep", str(NB), "-p", "a", "1,13", "-p", "b", "2.0,0.5"]
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--jobs", "2", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    rows = read_csv(out / "results.csv")
    assert [r["run_id"] for r in rows] == ["a=1_b=2.0", "a=1_b=0.5", "a=13_b=2.0", "a=13_b=0.5"]
    assert list(rows[0])[:4] == ["run_id", "a", "b", "status"]
    ok = {
        r["run_id"]: (float(r["sum"]), float(r["product"])) for r in rows if r["status"] == "done"
    }
    assert ok == {"a=1_b=2.0": (3.0, 2.0), "a=1_b=0.5": (1.5, 0.5)}
    for rid in ("a=13_b=2.0", "a=13_b=0.5"):
        run = out / rid
        assert (run / "notebook.ipynb").exists() and not (run / "done").exists()
        assert "unlucky a=13" in (run / "error.txt").read_text()
        assert f"run {rid} FAILED: ValueError: unlucky a=13" in proc.stderr
        assert str(run / "notebook.ipynb") in proc.stderr
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2 and all("unlucky" in r["error"] for r in failed)
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["grid"] == {"a": [1, 13], "b": [2.0, 0.5]}


def test_resume_runs_only_unfinished_runs(tmp_path):
    out = tmp_path / "sweep"
    grid = {"a": [1, 2], "b": [0.5, 2.0]}
    rows = run_sweep(NB, grid, out, jobs=2, progress=False)
    assert [(r["a"], r["b"], r["status"], r["sum"]) for r in rows] == [
        (1, 0.5, "done", 1.5),
        (1, 2.0, "done", 3.0),
        (2, 0.5, "done", 2.5),
        (2, 2.0, "done", 4.0),
    ]
    assert read_csv(out / "results.csv")[3]["product"] == "4.0"
    before = mtimes(out)

    assert run_sweep(NB, grid, out, jobs=2, progress=False) == rows  # all finished: nothing ran
    assert mtimes(out) == before

    (out / "a=1_b=2.0" / "results.json").unlink()  # lost results
    (out / "a=2_b=0.5" / "done").unlink()  # interrupted: files there, no marker
    again = run_sweep(NB, grid, out, jobs=2, progress=False)
    assert again == rows
    after = mtimes(out)
    changed = {rid for rid in before if after[rid] != before[rid]}
    assert changed == {"a=1_b=2.0", "a=2_b=0.5"}
    assert all((out / rid / "done").exists() for rid in before)
