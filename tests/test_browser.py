"""The built book as a reader's browser shows it (scripts/check_book.py, headless Chromium).

The first test builds the book (`make book`, chapters rendered from their stored outputs) and
opens every chapter of _toc.yml (and the index and search pages) in Debian's ``chromium``: it fails on untypeset or malformed
math, a broken image, a JavaScript error, a missing Colab link, a request to another host, or a
chapter whose title is not its first screen. One screenshot per page goes to _build/screenshots/.
The second test plants one fault in each page of a copy of the built book and shows that the
check reports every one. Without ``chromium`` both skip, naming the package; .ci/run installs it
and sets ``LEARNLAW_REQUIRE_BROWSER=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_book  # noqa: E402

HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return check_book.find_chromium()
    except check_book.BrowserMissing as e:
        if os.environ.get("LEARNLAW_REQUIRE_BROWSER"):  # .ci/run: a skip would hide the check
            pytest.fail(f"{e} (LEARNLAW_REQUIRE_BROWSER is set)")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def built_book(chromium) -> Path:
    """_build/html, built now with `make book` from this environment's packages."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    t0 = time.monotonic()
    proc = subprocess.run(
        ["make", "book", f"VENV={sys.prefix}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"make book: {time.monotonic() - t0:.1f} s")
    return HTML


def test_every_chapter_renders_in_a_browser(built_book, chromium):
    pages = check_book.chapter_pages() + list(check_book.OTHER_PAGES)
    t0 = time.monotonic()
    reports = check_book.check_book(built_book, pages, SCREENSHOTS, chromium)
    print(f"browser check of {len(pages)} pages: {time.monotonic() - t0:.1f} s")
    problems = {r.page: r.problems for r in reports if r.problems}
    assert problems == {}
    for r in reports:
        assert r.screenshot is not None and r.screenshot.stat().st_size > 10_000, r.page
        if r.page not in check_book.OTHER_PAGES:
            assert r.report["typeset"] > 0, f"{r.page}: no formula was typeset"
        assert r.requests and all(u.startswith("http://127.0.0.1:") for u in r.requests)


def _plant(path: Path, pattern: str, replacement: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(pattern, replacement, text, count=count)
    assert n > 0, f"nothing to plant in {path.name}: {pattern!r} not found"
    path.write_text(new, encoding="utf-8")


# page -> (how to break it, the phrases the check must report)
FAULTS = {
    "book/intro.html": (
        lambda p: _plant(p, r"</body>", '<script>throw new Error("planted fault")</script></body>'),
        "JavaScript error: Error: planted fault",
    ),
    "book/compression.html": (  # a TeX error, and a formula with an unbalanced brace
        lambda p: (
            _plant(
                p, r'(<span class="math notranslate nohighlight">)\\\(.*?\\\)', r"\1\\(x^1^2\\)"
            ),
            _plant(
                p,
                r"(<div class=\"math notranslate nohighlight\"[^>]*>\s*(<span[^>]*>.*?</span>)?\s*)\\\[",
                r"\1\\[\\frac{1}{",
            ),
        ),
        "malformed math (MathJax error): 'Double exponent",
        "untypeset math",
    ),
    "book/learning_law.html": (  # a formula MathJax never sees
        lambda p: _plant(p, r'<span class="math notranslate nohighlight">', "<span>"),
        "raw TeX in the text",
    ),
    "book/policy_search.html": (
        lambda p: _plant(
            p, r"</head>", '<link rel="stylesheet" href="https://example.org/x.css"></head>'
        ),
        "request to another host: https://example.org/x.css",
    ),
    "book/perceptron.html": (
        lambda p: _plant(p, r'<img([^>]*?) src="[^"]+"', r'<img\1 src="../_images/missing.png"'),
        "broken image: ../_images/missing.png",
    ),
    "book/transformer.html": (
        lambda p: _plant(p, r"https://colab\.research\.google\.com", "https://example.org", 0),
        "no Colab launch link",
    ),
    "book/scaling.html": (  # the set-up cell unfolded above the story
        lambda p: _plant(p, r'(<div class="cell tag_setup[^"]*"[^>]*>\s*<details)', r"\1 open"),
        "the set-up cell is shown",
    ),
}


def test_check_fails_on_planted_faults(built_book, chromium, tmp_path):
    copy = tmp_path / "html"
    shutil.copytree(built_book, copy)
    for page, (plant, *_) in FAULTS.items():
        plant(copy / page)
    reports = {r.page: r for r in check_book.check_book(copy, list(FAULTS), None, chromium)}
    for page, (_, *expected) in FAULTS.items():
        found = reports[page].problems
        for phrase in expected:
            assert any(phrase in p for p in found), f"{page}: expected {phrase!r}, got {found}"
    # and nothing else: a page reports its own fault only
    assert all("missing.png" in p for p in reports["book/perceptron.html"].problems)


def test_missing_browser_names_the_package(monkeypatch):
    monkeypatch.setattr(check_book.shutil, "which", lambda name: None)
    with pytest.raises(check_book.BrowserMissing, match="apt-get install chromium"):
        check_book.find_chromium()
