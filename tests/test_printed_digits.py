"""Stored outputs that hold on any CPU: no printed number carries digits that hardware can move.

nbval compares every chapter's fresh outputs with its stored ones. A reader's CPU (AVX2 instead
of AVX-512, another thread count or BLAS kernel) sums floating-point numbers in another order, so
a float32 result moves in its 5th–6th significant digit and a float64 finite difference in its
9th–10th. ``book/conftest.py`` therefore compares printed numbers within a relative tolerance
``rtol``: the chapter's ``"learnlaw": {"output_rtol": r}`` metadata, or a cell's own. A number
printed with digits finer than that tolerance shows the reader digits that do not hold, so the
scan here allows at most

    d(rtol) = floor(1 − log10 rtol)   significant digits

(``rtol`` = 1e-3: 4 digits; 1e-2: 3; 1e-6: 7; a cell with ``rtol`` = 0 prints only numbers that
every CPU reproduces exactly, e.g. read from committed data, and is not limited). It scans every
output nbval compares, after the sanitizers of ``tests/nbval_sanitize.cfg`` (as nbval runs them);
cells tagged ``nbval-ignore-output`` or ``nbval-skip`` are not compared and not scanned. The
digits of a decimal are those of its mantissa without leading zeros (``0.0598`` has 3,
``65052.1`` has 6, ``1.27e+00`` has 3, ``67.7%`` has 3); integers are not counted.

``make test-portable`` then runs the whole suite, every chapter included, on other CPU kernel
paths and thread counts: the tolerances are measured there.
"""

from __future__ import annotations

import configparser
import importlib.util
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import sync_setup_cells as sync  # noqa: E402

_spec = importlib.util.spec_from_file_location("book_conftest", ROOT / "book" / "conftest.py")
book_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_conftest)

SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
NOTEBOOKS = sync.book_notebooks()
NOT_COMPARED = {"nbval-ignore-output", "nbval-skip"}
# a decimal number: digits '.' digits, an optional exponent, not part of a word or a version
DECIMAL = re.compile(r"(?<![\w.])(\d*\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def sanitizers(path: Path = SANITIZE) -> list[tuple[str, re.Pattern, str]]:
    """The (section, regex, replacement) triples of an nbval sanitize file, in file order."""
    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    return [
        (s, re.compile(parser.get(s, "regex")), parser.get(s, "replace")) for s in parser.sections()
    ]


def significant_digits(number: str) -> int:
    """Significant digits of a printed decimal (its mantissa without leading zeros)."""
    mantissa = re.split("[eE]", number)[0].replace(".", "").lstrip("0")
    return max(len(mantissa), 1)


def digits_allowed(rtol: float) -> float:
    """The most significant digits a number compared within ``rtol`` may print (inf for 0)."""
    return math.inf if rtol <= 0 else math.floor(1 - math.log10(rtol) + 1e-9)


def compared_texts(cell) -> list[str]:
    """The texts of a code cell's outputs that nbval compares (images are not compared)."""
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        for mime, value in (out.get("data") or {}).items():
            if not mime.startswith("image/"):
                texts.append(value if isinstance(value, str) else "".join(value))
        if out.get("output_type") == "error":
            texts.append(out.get("evalue", ""))
    return texts


def too_precise(nb, patterns=None) -> list[str]:
    """Every printed number of ``nb`` with more digits than its cell's tolerance allows."""
    patterns = sanitizers() if patterns is None else patterns
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or NOT_COMPARED & set(cell.metadata.get("tags", [])):
            continue
        rtol = book_conftest.output_rtol(nb, cell)
        budget = digits_allowed(rtol)
        for text in compared_texts(cell):
            for _, regex, replace in patterns:
                text = regex.sub(replace, text)
            for m in DECIMAL.finditer(text):
                if significant_digits(m.group(0)) > budget:
                    end = text.find("\n", m.end())
                    line = text[text.rfind("\n", 0, m.start()) + 1 : None if end < 0 else end]
                    found.append(
                        f"cell {i} (output_rtol {rtol:g}, {budget} digits): {m.group(0)!r} "
                        f"in {line.strip()[:90]!r}"
                    )
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_printed_numbers_keep_only_the_digits_that_hold_across_hardware(path):
    nb = nbformat.read(path, as_version=4)
    rtol = nb.metadata.get("learnlaw", {}).get("output_rtol")
    assert isinstance(rtol, (int, float)) and 0 <= rtol < 1, (
        f"{path.name}: set the notebook metadata 'learnlaw': {{'output_rtol': r}}, the relative "
        f"difference its printed numbers may show on another CPU (got {rtol!r}; see "
        f"book/conftest.py)"
    )
    found = too_precise(nb)
    assert not found, (
        f"{path.name} prints numbers with more digits than their tolerance leaves meaningful: "
        + "; ".join(found)
        + ". Print fewer digits (the cell's assert checks the number), or mask the rest with a "
        "documented pattern in tests/nbval_sanitize.cfg, then re-execute the chapter."
    )


def test_the_scan_finds_planted_numbers_and_respects_tolerances_sanitizers_and_tags():
    nb = nbformat.v4.new_notebook(metadata={"learnlaw": {"output_rtol": 1e-3}})
    out = nbformat.v4.new_output("stream", name="stdout", text="loss 0.12345, 3.1e-07, 12 steps\n")
    plot = nbformat.v4.new_output(
        "execute_result", data={"text/plain": "67.72%", "image/png": "1.234567"}
    )
    loose = {"learnlaw": {"output_rtol": 0.02}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("0.123456789"),
        nbformat.v4.new_code_cell("print()", outputs=[out]),
        nbformat.v4.new_code_cell("x", outputs=[plot]),
        nbformat.v4.new_code_cell("t", outputs=[out], metadata={"tags": ["nbval-ignore-output"]}),
        nbformat.v4.new_code_cell("y", outputs=[plot], metadata=loose),
    ]
    found = too_precise(nb, [])
    assert [f.split(" in ")[0] for f in found] == [
        "cell 1 (output_rtol 0.001, 4 digits): '0.12345'",
        "cell 4 (output_rtol 0.02, 2 digits): '67.72'",
    ]
    assert found[0].endswith("in 'loss 0.12345, 3.1e-07, 12 steps'")
    masked = [("mask", re.compile(r"0\.12345"), "0.12")]
    assert too_precise(nb, masked) == found[1:]
    nb.metadata["learnlaw"]["output_rtol"] = 0  # exact: any digits
    assert too_precise(nb, []) == found[1:]
    digits = [significant_digits(s) for s in ("0.0598", "65052.1", "1.27e+00", ".50", "0.0")]
    assert digits == [3, 6, 3, 2, 1]
    assert [digits_allowed(r) for r in (1e-3, 1e-2, 2e-2, 1e-6, 0)] == [4, 3, 2, 7, math.inf]


def test_the_comparison_accepts_numbers_within_the_tolerance_and_nothing_else():
    need = book_conftest.needed_rtol
    assert need("J 351.1 CR 0.287", "J   351 CR 0.286") == pytest.approx(0.05 / 351.1, rel=1e-3)
    assert need("4.4 (57.7%)", "4.41 (57.7%)") == 0  # a neighbouring last digit
    assert need("loss 0.0972", "loss 0.0962") == pytest.approx(0.0009 / 0.0972)
    assert need("733609 pairs", "733600 pairs") == pytest.approx(9 / 733609)  # integers: exact
    assert need("error 8.6e-10", "error 2.1e-09") > 0.5
    assert need("a 1", "b 1") == need("x nan", "x 0.1") == need("1 2", "1 2 3") == math.inf
    assert need("same text", "same text") == 0


def test_every_sanitizer_says_why_it_exists():
    """Each section of tests/nbval_sanitize.cfg is preceded by a comment that explains it."""
    lines = SANITIZE.read_text(encoding="utf-8").splitlines()
    sections = [i for i, line in enumerate(lines) if line.startswith("[")]
    assert sections, "tests/nbval_sanitize.cfg has no section"
    for i in sections:
        assert i > 0 and lines[i - 1].startswith("#"), (
            f"tests/nbval_sanitize.cfg: section {lines[i]} (line {i + 1}) has no comment above "
            f"it saying which outputs it masks and why"
        )
    assert [s for s, _, _ in sanitizers()] == [lines[i].strip("[]") for i in sections]
