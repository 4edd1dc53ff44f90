"""Shared pytest set-up: quiet, reproducible notebook kernels for nbval.

``pytest --nbval`` starts one Jupyter kernel per chapter and those kernels inherit this
process's environment, so the settings below also hold when pytest is run directly rather
than through ``make test``.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Progress bars write to stderr, which nbval compares with the stored outputs.
os.environ.setdefault("TQDM_DISABLE", "1")
# A non-interactive backend (e.g. MPLBACKEND=Agg) would drop the figures from cell outputs.
os.environ.pop("MPLBACKEND", None)


@pytest.fixture(autouse=True)
def _restore_working_directory():
    """Give every test back the working directory it started in.

    The process-wide working directory is shared by threads: code that changes it (e.g.
    papermill's ``cwd=`` from worker threads) can leave it changed, and nbval, which runs the
    chapters after the tests in the same process, resolves relative paths against it.
    """
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where _config.yml and _toc.yml live)."""
    return ROOT


@pytest.fixture(scope="session")
def test_device():
    """The device of tests/test_device_mode.py: ``$LEARNLAW_TEST_DEVICE`` (default ``"cpu"``).

    E.g. ``LEARNLAW_TEST_DEVICE=cuda pytest tests/test_device_mode.py`` runs the public entry
    points on the GPU and compares each result with the same computation on the CPU.
    """
    import torch

    name = os.environ.get("LEARNLAW_TEST_DEVICE", "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        pytest.fail(f"LEARNLAW_TEST_DEVICE={name!r} is not a torch device ({err}); e.g. cuda")
    if device.type == "meta":
        pytest.fail(
            "LEARNLAW_TEST_DEVICE=meta holds no values to compare; the meta-device checks are "
            "tests/test_device.py"
        )
    try:
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as err:
        pytest.fail(f"LEARNLAW_TEST_DEVICE={name!r}: torch cannot use this device here ({err})")
    return device
