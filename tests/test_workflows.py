"""The GitHub workflows: valid against the workflow schema, and doing what README.md says.

The schema check is check-jsonschema's vendored GitHub-workflow schema (from PyPI; nothing is
fetched at run time). It is shown to fail on a workflow with a misspelled key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def schema_errors(*paths: Path) -> str:
    """check-jsonschema's report on ``paths`` ('' when every file is valid)."""
    pytest.importorskip("check_jsonschema")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
    )
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def test_workflows_are_valid():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in files} >= {"book.yml", "tests.yml"}
    assert schema_errors(*files) == ""


def test_schema_check_fails_on_a_broken_workflow(tmp_path):
    broken = (WORKFLOWS / "tests.yml").read_text().replace("runs-on:", "run-on:", 1)
    (tmp_path / "broken.yml").write_text(broken)
    assert schema_errors(tmp_path / "broken.yml") != ""


def test_book_workflow_builds_and_publishes_to_pages():
    wf = load("book.yml")
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps(wf)}
    assert any(s.get("run", "").strip() == "make book" for s in steps(wf))
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert "actions/deploy-pages" in uses
    deploy = wf["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


def test_tests_workflow_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    runs = [s.get("run", "").strip() for s in steps(load("tests.yml"))]
    assert "make test" in runs
