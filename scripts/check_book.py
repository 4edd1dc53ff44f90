"""Open every chapter of the built book in headless Chromium and check it as a reader sees it.

The book is served from ``_build/html`` on 127.0.0.1 (as GitHub Pages serves it: over HTTP, so
that MathJax's web fonts load as they do online) and each chapter of ``_toc.yml`` is opened in
Debian's ``chromium``, driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
no extra Python package, no browser download). After the page has loaded and MathJax has
typeset it, the check fails the page on

- untypeset TeX: a math element (``.math``) that MathJax did not replace, or TeX delimiters left in
  the prose (``\\(``, ``\\[``, ``$$``, ``\\begin{``), or a Markdown table left as text (``| --- |``);
- malformed math: a formula MathJax rendered as an error (``mjx-merror``);
- a broken image (an ``<img>`` that did not decode);
- a JavaScript error (an uncaught exception or a ``console.error``);
- a missing Colab launch link;
- a request to another host (anything but the local server, ``data:`` and ``blob:``);
- the layout: the page's ``<h1>`` title must come before its first code cell, and the set-up
  cell must be collapsed.

It saves one screenshot per page (the first screen, 1280x900)::

    python scripts/check_book.py                      # _build/html -> _build/screenshots/
    python scripts/check_book.py --html DIR --screenshots DIR

``tests/test_browser.py`` runs it, and shows on a copy of the book with planted faults that it
fails. Chromium runs as root here, hence ``--no-sandbox``; the flags that switch off its
background connections (updates, sync, ...) keep it from reaching out on its own.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from sync_setup_cells import chapters  # noqa: E402

BROWSER_PACKAGE = "chromium"  # Debian's package; /usr/bin/chromium
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
    # Every host but the local server resolves to nothing: a request to another host is still
    # seen (and reported) by the check, but never leaves the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
WIDTH, HEIGHT = 1280, 900

# Runs in the page once it has loaded: waits for MathJax and the images, then reports.
PAGE_REPORT_JS = r"""
(async () => {
  const t0 = Date.now();
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  const main = document.querySelector('article.bd-article') || document.body;
  const skip = 'script, style, pre, code, textarea, .highlight, mjx-container, .onlyprint';
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement && n.parentElement.closest(skip)) continue;
    const text = n.textContent;
    for (const mark of ['\\(', '\\[', '$$', '\\begin{', '| --- |']) {
      const i = text.indexOf(mark);
      if (i >= 0) { raw.push(text.slice(Math.max(0, i - 20), i + 40).trim()); break; }
    }
  }
  const maths = [...document.querySelectorAll('.math')].filter(m => !m.closest('.onlyprint'));
  const untypeset = maths.filter(m => !m.querySelector('mjx-container'))
    .map(m => m.textContent.trim().slice(0, 60));
  // A TeX error renders as <merror>; an undefined macro (MathJax's noundefined package) as its
  // name in red: both are in the assistive MathML that MathJax keeps beside each formula.
  const errors = [...document.querySelectorAll('mjx-assistive-mml merror, mjx-assistive-mml [mathcolor="red"]')]
    .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 100));
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute('src'));
  const colab = [...document.querySelectorAll('a[href]')]
    .some(a => a.href.startsWith('https://colab.research.google.com/'));
  const h1 = [...main.querySelectorAll('h1')][0] || null;
  const cell = main.querySelector('div.cell');
  const titleFirst = !!h1 && (!cell ||
    !!(h1.compareDocumentPosition(cell) & Node.DOCUMENT_POSITION_FOLLOWING));
  const setup = main.querySelector('div.cell.tag_setup');
  const setupInput = setup && setup.querySelector('.cell_input');
  const setupShown = !!setupInput && (setupInput.checkVisibility ?
    setupInput.checkVisibility() : setupInput.getClientRects().length > 0);
  return {
    title: h1 ? h1.textContent.replace(/[#¶]/g, '').trim() : null,
    maths: maths.length, typeset: document.querySelectorAll('mjx-container').length,
    raw, untypeset, errors, broken, colab, titleFirst, setup: !!setup, setupShown,
    waitedMs: Date.now() - t0,
  };
})()
"""


class BrowserMissing(RuntimeError):
    """Chromium is not installed."""


def find_chromium() -> str:
    """The Chromium executable, or :class:`BrowserMissing` naming the package to install."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise BrowserMissing(
        f"headless Chromium is not installed: install Debian's package "
        f"'{BROWSER_PACKAGE}' (apt-get install {BROWSER_PACKAGE}); .ci/run does this"
    )


class Chromium:
    """A headless Chromium driven through the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, executable: str | None = None):
        self._profile = tempfile.mkdtemp(prefix="learnlaw-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the protocol reads fd 3 and writes fd 4
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [executable or find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=wire,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60.0) -> dict:
        """Wait for the event ``method`` of ``session`` (it may already have arrived)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self.events.append(self._read(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class PageReport:
    """What the browser saw on one page; ``problems`` is empty when the page is good."""

    page: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    seconds: float = 0.0
    screenshot: Path | None = None
    report: dict = field(default_factory=dict)


def _serve(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(html))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def check_page(
    browser: Chromium,
    url: str,
    name: str,
    origin: str,
    screenshot: Path | None,
    chapter: bool = True,
) -> PageReport:
    """Open ``url`` in a new tab, wait for MathJax, and list what is wrong with the page."""
    t0 = time.monotonic()
    out = PageReport(page=name)
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    try:
        for domain in ("Page", "Runtime", "Network", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        first = len(browser.events)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired", session)
        result = browser.send(
            "Runtime.evaluate",
            {"expression": PAGE_REPORT_JS, "awaitPromise": True, "returnByValue": True},
            session=session,
            timeout=90,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page report script failed: {result['exceptionDetails']}")
        report = out.report = result["result"]["value"]
        time.sleep(0.2)  # let late events (console, requests) arrive
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
        if screenshot is not None:
            shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            out.screenshot = screenshot
        events = [e for e in browser.events[first:] if e.get("sessionId") == session]
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
    p = out.problems
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Network.requestWillBeSent":
            req = params["request"]["url"]
            out.requests.append(req)
            if not req.startswith((origin, "data:", "blob:", "about:")):
                p.append(f"request to another host: {req}")
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            p.append(f"JavaScript error: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            p.append(f"console.error: {args}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            if entry.get("url", "").endswith("/favicon.ico"):
                continue  # the browser asks for it by itself; the book has no favicon
            p.append(
                f"browser error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}"
            )
    for tex in report["untypeset"]:
        p.append(f"untypeset math: {tex!r}")
    for tex in report["raw"]:
        p.append(f"raw TeX in the text: {tex!r}")
    for err in report["errors"]:
        p.append(f"malformed math (MathJax error): {err!r}")
    for src in report["broken"]:
        p.append(f"broken image: {src}")
    if chapter:
        if not report["colab"]:
            p.append("no Colab launch link")
        if not report["title"]:
            p.append("no <h1> title")
        elif not report["titleFirst"]:
            p.append("a code cell comes before the <h1> title")
        if not report["setup"]:
            p.append("no set-up cell (tag 'setup')")
        elif report["setupShown"]:
            p.append("the set-up cell is shown, not collapsed (tag 'hide-cell')")
    out.seconds = time.monotonic() - t0
    return out


def check_book(
    html: Path, pages: list[str], screenshots: Path | None = None, executable: str | None = None
) -> list[PageReport]:
    """Check the pages (paths relative to ``html``, e.g. ``book/intro.html``) of a built book."""
    missing = [p for p in pages if not (html / p).is_file()]
    if missing:
        raise FileNotFoundError(f"not in {html}: {missing}; build the book first (`make book`)")
    server, origin = _serve(html)
    try:
        with Chromium(executable) as browser:
            return [
                check_page(
                    browser,
                    origin + page,
                    page,
                    origin,
                    None if screenshots is None else screenshots / (Path(page).stem + ".png"),
                    chapter=page not in OTHER_PAGES,
                )
                for page in pages
            ]
    finally:
        server.shutdown()
        server.server_close()


# The book's pages that are not chapters: checked the same way, less the chapter-only checks.
OTHER_PAGES = ("genindex.html", "search.html")


def chapter_pages(root: Path = ROOT) -> list[str]:
    """The HTML page of every chapter in ``_toc.yml``, relative to the built book."""
    return [nb.relative_to(root).with_suffix(".html").as_posix() for nb in chapters(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    args = parser.parse_args(argv)
    try:
        reports = check_book(args.html, chapter_pages() + list(OTHER_PAGES), args.screenshots)
    except BrowserMissing as e:
        print(e, file=sys.stderr)
        return 2
    for r in reports:
        status = "ok  " if not r.problems else "FAIL"
        print(
            f"{status} {r.page} ({r.seconds:.1f} s, {r.report.get('typeset', 0)} formulas, "
            f"screenshot {r.screenshot})"
        )
        for problem in r.problems:
            print(f"     {problem}")
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
