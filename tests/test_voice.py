"""The book speaks with one voice: parts in the table of contents, and no project language.

A reader meets what the book shows now: no chapter's prose (or printed output) speaks of targets
met or not met, of a moonshot, or of a first, earlier or old version of a comparison. Time to
reach a loss level is a metric and may be called so; "target" alone is not banned.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import sync_setup_cells as sync  # noqa: E402

PARTS = ["Theory", "Reproducing the paper", "In practice", "Appendix"]
# in the prose: project language a reader cannot parse
PROSE = re.compile(
    r"\b(?:targets?\b[^.]{0,80}\b(?:not )?met|(?:not )?met\b[^.]{0,40}\btargets?)\b|\bmoonshot"
    r"|\b(?:first|earlier|old|previous) (?:version|verdict)\b|\bnot met\b|\bNOT met\b",
    re.IGNORECASE,
)
# in the printed outputs (which quote stories, so "met" alone is a word there): the same phrases
# (within one sentence: no line break, and no full stop but a decimal point)
OUTPUT = re.compile(
    r"\btargets?\b(?:[^\n.]|\.\d){0,120}\bmet\b|\bmoonshot|\bNOT met\b", re.IGNORECASE
)


def test_the_toc_has_the_four_parts_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    assert [p["caption"] for p in toc["parts"]] == PARTS
    part = {p["caption"]: [c["file"] for c in p["chapters"]] for p in toc["parts"]}
    assert part["Theory"] == ["book/compression", "book/learning_law", "book/policy_search"]
    assert part["Reproducing the paper"] == ["book/perceptron", "book/transformer", "book/scaling"]
    assert part["In practice"][:2] == ["book/practice", "book/schedule"]
    assert "book/scale" in part["Appendix"] and "book/howto" in part["Appendix"]


def test_the_intro_maps_the_parts_in_toc_order():
    intro = nbformat.read(ROOT / "book" / "intro.ipynb", as_version=4)
    text = next(c.source for c in intro.cells if c.source.startswith("## A map of the book"))
    at = [text.index(f"**{p}.**") for p in PARTS]
    assert at == sorted(at)
    names = [f"(`{nb.relative_to(ROOT).with_suffix('').as_posix()}`)" for nb in sync.chapters()[1:]]
    assert [text.index(n) for n in names] == sorted(text.index(n) for n in names)


def _voice_problems(nb: nbformat.NotebookNode) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found += [f"[{i}] markdown: {m.group(0)!r}" for m in PROSE.finditer(cell.source)]
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            found += [f"[{i}] output: {m.group(0)!r}" for m in OUTPUT.finditer(text)]
    return found


@pytest.mark.parametrize("path", sync.chapters(), ids=lambda p: p.stem)
def test_no_project_language_in_the_book(path):
    assert not _voice_problems(nbformat.read(path, as_version=4))


@pytest.mark.parametrize(
    "phrase",
    [
        "**The target is not met.** The best speed-up",
        "the moonshot's interval",
        "A first version of this comparison",
        "an earlier version of this chapter",
        "The old verdict read",
        "target 4.4×: NOT met",
    ],
)
def test_the_voice_check_catches_each_phrase(phrase):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(phrase)])
    assert _voice_problems(nb)
    out = nbformat.v4.new_code_cell("print()")
    out.outputs = [
        nbformat.v4.new_output("stream", text="Transformer target ≤ 0.65 met in 0 of 3\n")
    ]
    assert _voice_problems(nbformat.v4.new_notebook(cells=[out]))


def test_the_voice_check_lets_plain_words_through():
    ok = (
        "Time to target is a metric. One afternoon, Fluffy met Luke at the playground. "
        "The targets are the last L token ids."
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(ok.replace("Fluffy met", "Fluffy saw"))]
    )
    out = nbformat.v4.new_code_cell("print()")
    out.outputs = [nbformat.v4.new_output("stream", text=ok)]
    nb.cells.append(out)
    assert not _voice_problems(nb)
