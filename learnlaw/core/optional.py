"""Optional dependencies: imported where they are used, refused with the install line when absent.

``pip install learnlaw`` installs the core only: torch, numpy and tqdm. Everything else is an
extra, imported on first use, so that ``import learnlaw`` and every namespace work without it::

    extra       packages        what needs them
    analysis    scipy           Student-t intervals, scaling-law and SIM fits
                matplotlib      the figures of learnlaw.analysis.fair_figures
    coding      constriction    the arithmetic coder (learnlaw.compress.compress / decompress)
    lm          tokenizers      the Transformer task's byte-level BPE tokenizer
    hf          transformers    a Hugging Face causal LM as a Task (learnlaw.tasks.hf)
    sweep       papermill       python -m learnlaw.sweep (chapters run over a grid)
    chapters    all of analysis, coding and lm: what the book's chapters import on a fresh runtime
    book        chapters plus jupyter-book: building the book
    test        chapters plus pytest, nbval, papermill, ruff: the test suite

A missing one raises :class:`MissingDependencyError`, which names the package, what needed it and
the line that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from learnlaw.core.errors import LearnlawError

__all__ = ["EXTRAS", "MissingDependencyError", "require"]

# top-level module → (pip requirement, learnlaw extra that installs it)
EXTRAS: dict[str, tuple[str, str | None]] = {
    "scipy": ("scipy>=1.10", "analysis"),
    "matplotlib": ("matplotlib>=3.7", "analysis"),
    "constriction": ("constriction>=0.3", "coding"),
    "tokenizers": ("tokenizers>=0.15", "lm"),
    "transformers": ("transformers>=5", "hf"),
    "papermill": ("papermill>=2.5", "sweep"),
    "datasets": ("datasets", None),  # only to download TinyStories; no extra installs it
}


class MissingDependencyError(LearnlawError, ImportError):
    """An optional package that a learnlaw function needs is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"scipy.stats"``), or say how to install the package it belongs to.

    Args:
        module: a dotted module name whose top-level package is one of :data:`EXTRAS`.
        purpose: what needs it, for the message (e.g. ``"a Student-t interval"``).

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: the package is not installed (or cannot be imported); the message
            names the pip requirement and the learnlaw extra that installs it.
        KeyError: ``module`` does not belong to a known optional package (a bug in learnlaw).
    """
    top = module.split(".")[0]
    requirement, extra = EXTRAS[top]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        with_extra = f" or with learnlaw's extra: pip install 'learnlaw[{extra}]'" if extra else ""
        raise MissingDependencyError(
            f"{purpose} needs the optional package {top}, which is not installed "
            f"({type(e).__name__}: {e}); install it with pip install '{requirement}'{with_extra}"
        ) from e
