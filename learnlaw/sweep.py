"""Run a notebook over a grid of parameters with papermill, resumably: ``python -m learnlaw.sweep``.

    python -m learnlaw.sweep book/chapter.ipynb -p steps 100,200 -p lr 0.05,0.1 --out sweeps/x

The notebook needs a cell tagged ``parameters`` that defines every swept name and
``results_path``; the sweep sets ``results_path`` to ``OUT/<run-id>/results.json`` and the
notebook writes a JSON object of scalars (its results) there. Layout of OUT::

    sweep.json              the notebook, the grid and the run ids
    <run-id>/params.json    the run's parameters
    <run-id>/notebook.ipynb the executed notebook (kept when the run fails)
    <run-id>/results.json   written by the notebook
    <run-id>/done           marker written after a successful run (absent: the run is re-run)
    <run-id>/error.txt      the error of a failed run
    results.csv             one row per run: run_id, the parameters, status, the results

A run is finished when ``done`` and its results exist; finished runs are skipped, anything else
(never started, interrupted, failed) is run again; to redo a finished run, delete its folder.
On Ctrl-C no new run starts and the running ones finish. The sweep's own files are written
atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import io
import itertools
import json
import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import quote

from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.errors import LearnlawError
from learnlaw.core.optional import require
from learnlaw.core.progress import progress_bar

__all__ = ["SweepError", "run_sweep", "parse_value", "run_id", "check_parameters", "main"]

Scalar = int | float | bool | str | None
_RESERVED = ("run_id", "status", "error")


class SweepError(LearnlawError, ValueError):
    """The sweep cannot start: a bad notebook, grid or output folder."""


# -- grid and run ids -----------------------------------------------------------------------------
def parse_value(text: str) -> Scalar:
    """A command-line value as a Python literal (int, float, bool, None, quoted str), else the str.

    ``"100"`` → 100, ``"0.05"`` → 0.05, ``"True"`` → True, ``"adam"`` → ``"adam"``.
    """
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, (int, float, bool, str, type(None))) else text


def _token(value: Scalar) -> str:
    text = value if isinstance(value, str) else repr(value)
    return quote(text, safe="+-.") or "''"


def run_id(params: dict[str, Scalar]) -> str:
    """A readable, filesystem-safe id: ``steps=100_lr=0.05``.

    Values are written with ``repr`` (a str as is); characters other than letters, digits and
    ``_ . + - ~`` are %-escaped. Ids longer than 120 characters are cut and end in a hash.
    """
    if not params:
        return "defaults"
    rid = "_".join(f"{k}={_token(v)}" for k, v in params.items())
    if len(rid) > 120:
        rid = rid[:100] + "_" + hashlib.sha1(rid.encode()).hexdigest()[:12]
    return rid


def _grid_runs(grid: dict[str, list]) -> list[dict[str, Scalar]]:
    if not isinstance(grid, dict):
        raise SweepError(
            f"the grid must be a dict name -> list of values, got {type(grid).__name__}"
        )
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise SweepError(f"parameter {name!r} needs a non-empty list of values, got {values!r}")
        for v in values:
            if not isinstance(v, (int, float, bool, str, type(None))):
                raise SweepError(
                    f"parameter {name!r}: values must be int, float, bool, str or None, got {v!r}"
                )
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def check_parameters(notebook: str | os.PathLike, names, results_param: str = "results_path"):
    """Check ``names`` and ``results_param`` against the notebook's ``parameters`` cell.

    Papermill only warns about an unknown parameter; a sweep over a misspelled name would run
    the same notebook many times. Raises :class:`SweepError` listing the known names.
    """
    papermill = require("papermill", "a sweep of a notebook")
    known = papermill.inspect_notebook(str(notebook))
    if not known:
        raise SweepError(f"{notebook} has no cell tagged 'parameters' (or it defines no names)")
    listing = ", ".join(sorted(known))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SweepError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {notebook}; its "
            f"parameters cell defines: {listing}"
        )
    if results_param in names:
        raise SweepError(f"{results_param!r} is set by the sweep (each run's results file)")
    if results_param not in known:
        raise SweepError(
            f"{notebook} has no parameter {results_param!r}: add `{results_param} = "
            f'"results.json"` to its parameters cell and write the results (a JSON object) there '
            f"(it defines: {listing})"
        )


# -- files ----------------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_results(path: Path) -> dict:
    results = json.loads(path.read_text())
    if not isinstance(results, dict):
        raise ArgumentValueError(
            f"{path} must hold a JSON object (a flat dict), got {type(results).__name__}"
        )
    return results


def _is_done(run_dir: Path, results_name: str) -> bool:
    if not (run_dir / "done").exists():
        return False
    try:
        _read_results(run_dir / results_name)
    except (OSError, ValueError):
        return False
    return True


class _RunFailed(LearnlawError):
    """papermill's process failed; the message is its last line of stderr (the error)."""


# -- one run (in this thread or a worker thread) ------------------------------------------------
def _execute(notebook, run_dir, params, results_param, results_name, kernel_name, timeout):
    """Run the notebook once; returns ``(status, error)``. Never raises."""
    # papermill runs in a child process: its `cwd` option would chdir this whole process, which
    # breaks parallel runs (threads share one working directory) and the caller's own paths.
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("done", "error.txt", results_name):
        (run_dir / name).unlink(missing_ok=True)
    _write_atomic(run_dir / "params.json", json.dumps(params, indent=1))
    params_file = run_dir / "parameters.json"  # JSON is YAML, which papermill's -f reads
    _write_atomic(params_file, json.dumps({**params, results_param: str(run_dir / results_name)}))
    out_nb = run_dir / "notebook.ipynb"
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(Path(notebook).resolve()),
        str(out_nb),
        "-f",
        str(params_file),
        "-k",
        kernel_name,
        "--no-progress-bar",
        "--cwd",
        str(Path(notebook).resolve().parent),
    ]
    if timeout is not None:
        cmd += ["--execution-timeout", str(int(timeout))]
    start = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise _RunFailed(lines[-1] if lines else f"papermill exited {proc.returncode}")
        _read_results(run_dir / results_name)
    except Exception as e:  # noqa: BLE001 - a failed run is reported, the sweep goes on
        if isinstance(e, _RunFailed):
            error = str(e)
        elif isinstance(e, FileNotFoundError) and not (run_dir / results_name).exists():
            error = f"the notebook wrote no results to {results_param} ({run_dir / results_name})"
        else:
            error = f"{type(e).__name__}: {e}"
        detail = proc.stderr if "proc" in locals() else traceback.format_exc()
        _write_atomic(run_dir / "error.txt", error + "\n\n" + detail)
        return "failed", error
    marker = dict(params=params, seconds=round(time.time() - start, 3), finished=time.time())
    _write_atomic(run_dir / "done", json.dumps(marker))
    return "done", None


# -- the sweep ------------------------------------------------------------------------------------
def run_sweep(
    notebook: str | os.PathLike,
    grid: dict[str, list],
    out: str | os.PathLike,
    *,
    jobs: int = 1,
    progress: bool = True,
    results_name: str = "results.json",
    results_param: str = "results_path",
    kernel_name: str = "python3",
    timeout: float | None = None,
) -> list[dict]:
    """Run ``notebook`` for every point of the Cartesian ``grid``, skipping finished runs.

    Args:
        notebook: a ``.ipynb`` with a ``parameters`` cell defining the grid's names and
            ``results_param``. It runs with its own folder as the working directory.
        grid: name → list of values (int, float, bool, str, None); the first name varies slowest.
        out: the sweep folder (created); one sub-folder per run, named by :func:`run_id`.
        jobs: notebooks run at once (each in its own kernel process, driven by a thread).
        progress: a tqdm bar over the runs.
        results_name: the file name of each run's results in its folder.
        results_param: the notebook parameter that receives the results path.
        kernel_name: the Jupyter kernel.
        timeout: per-cell execution timeout in seconds (papermill's ``execution_timeout``).

    Returns:
        One row per run in grid order: ``{"run_id", *params, "status", *results}`` (status
        ``"done"`` or ``"failed"``; failed rows also carry ``"error"``). The rows are also
        written to ``out/results.csv``; a result named like a parameter or a reserved column gets
        the prefix ``result.``. Failed runs are reported on stderr and do not stop the sweep.

    Raises:
        SweepError: before anything runs, for an unknown parameter, a notebook without
            ``results_param``, a bad grid, or two grid points with the same run id.
    """
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise SweepError(f"no notebook at {notebook}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise SweepError(f"jobs must be a positive int, got {jobs!r}")
    if "/" in results_name or results_name in ("", ".", "..", "done", "params.json"):
        raise SweepError(f"results_name must be a plain file name, got {results_name!r}")
    runs = _grid_runs(grid)
    check_parameters(notebook, list(grid), results_param)
    ids = [run_id(p) for p in runs]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SweepError(
            f"two grid points share the run id {dup!r} (e.g. 1 and '1'); make the values distinct"
        )
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = dict(notebook=str(notebook), grid=grid, runs=ids, results_param=results_param)
    _write_atomic(out / "sweep.json", json.dumps(manifest, indent=1))

    status = {rid: "done" for rid in ids if _is_done(out / rid, results_name)}
    errors: dict[str, str] = {}
    todo = [(rid, p) for rid, p in zip(ids, runs) if rid not in status]
    args = (results_param, results_name, kernel_name, timeout)
    bar = progress_bar(progress, total=len(ids), initial=len(status), desc="sweep", unit="run")

    def finish(rid: str, result: tuple[str, str | None]) -> None:
        status[rid], error = result
        if error is not None:
            errors[rid] = error
            nb = out / rid / "notebook.ipynb"
            bar.write(f"run {rid} FAILED: {error}\n  notebook: {nb}", file=sys.stderr)
        bar.update(1)
        bar.set_postfix(failed=len(errors), refresh=False)

    with bar:
        if jobs == 1 or len(todo) <= 1:
            for rid, p in todo:
                bar.set_postfix_str(rid)
                finish(rid, _execute(notebook, out / rid, p, *args))
        else:
            # threads suffice: each papermill run drives its own kernel process
            pool = ThreadPoolExecutor(max_workers=min(jobs, len(todo)))
            try:
                futures = {
                    pool.submit(_execute, notebook, out / rid, p, *args): rid for rid, p in todo
                }
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
            finally:  # on Ctrl-C: start nothing new; the running notebooks finish
                pool.shutdown(wait=True, cancel_futures=True)

    rows = []
    for rid, p in zip(ids, runs):
        row = {"run_id": rid, **p, "status": status[rid]}
        if status[rid] == "done":
            for k, v in _read_results(out / rid / results_name).items():
                row[f"result.{k}" if k in row or k in _RESERVED else k] = v
        else:
            row["error"] = errors.get(rid, "")
        rows.append(row)
    _write_atomic(out / "results.csv", _to_csv(rows))
    if errors:
        print(f"{len(errors)} of {len(ids)} runs failed; see error.txt in:", file=sys.stderr)
        for rid in errors:
            print(f"  {out / rid}", file=sys.stderr)
    return rows


def _to_csv(rows: list[dict]) -> str:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
        )
    return buf.getvalue()


# -- command line ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """The CLI; returns 0 if every run finished, 1 if some failed, 2 for bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m learnlaw.sweep",
        description="Run a notebook with papermill over the Cartesian grid of -p values.",
    )
    parser.add_argument("notebook", help="the .ipynb (needs a 'parameters' cell with results_path)")
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUES"),
        help="a parameter and its comma-separated values, parsed as Python literals",
    )
    parser.add_argument("--out", required=True, help="the sweep folder")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel")
    parser.add_argument("--results-name", default="results.json", help="each run's results file")
    parser.add_argument("--results-param", default="results_path", help="its notebook parameter")
    parser.add_argument("--kernel", default="python3", help="the Jupyter kernel name")
    parser.add_argument("--timeout", type=float, default=None, help="per-cell timeout (s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = parser.parse_args(argv)
    grid: dict[str, list] = {}
    for name, values in a.param:
        if name in grid:
            parser.error(f"parameter {name!r} given twice; list all its values in one -p")
        grid[name] = [parse_value(v) for v in values.split(",")]
    try:
        rows = run_sweep(
            a.notebook,
            grid,
            a.out,
            jobs=a.jobs,
            progress=not a.no_progress,
            results_name=a.results_name,
            results_param=a.results_param,
            kernel_name=a.kernel,
            timeout=a.timeout,
        )
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = sum(r["status"] != "done" for r in rows)
    print(f"{len(rows) - failed} of {len(rows)} runs done; {Path(a.out) / 'results.csv'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
