"""Sphinx extension (loaded through _config.yml): which chapters the book build executes.

(It also drops a script that another extension adds twice to each page: see the end.)

myst-nb's ``auto`` mode executes every notebook that has a code cell without outputs, and every
chapter has some (the set-up cell prints nothing), so ``auto`` alone would re-run all chapters
on every build. With this extension, ``auto`` means: a chapter stored executed (every non-empty
code cell has an execution count) is rendered from its stored outputs; a chapter stored without
outputs is executed at build time.

The environment variable ``BOOK_EXECUTE`` overrides ``execute.execute_notebooks`` of
_config.yml for one build (``make book EXECUTE=force`` sets it): ``force`` re-executes every
chapter, ``off`` executes none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging
from sync_setup_cells import chapters

MODES = ("auto", "force", "cache", "off")
logger = logging.getLogger(__name__)


def stored_executed(path: Path) -> bool:
    """Whether every non-empty code cell of the notebook at ``path`` has been executed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [
        c
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code" and "".join(c.get("source", "")).strip()
    ]
    return bool(code) and all(c.get("execution_count") is not None for c in code)


def _configure(app: Sphinx, config: Config) -> None:
    mode = os.environ.get("BOOK_EXECUTE", "").strip()
    if mode:
        if mode not in MODES:
            raise ValueError(f"BOOK_EXECUTE must be one of {MODES}, got {mode!r}")
        config.nb_execution_mode = mode
    if config.nb_execution_mode != "auto":
        logger.info(f"[book_execution] execution mode {config.nb_execution_mode!r}")
        return
    src = Path(app.srcdir)
    stored = [
        p.relative_to(src).as_posix()
        for p in chapters(src)
        if p.suffix == ".ipynb" and p.is_file() and stored_executed(p)
    ]
    config.nb_execution_excludepatterns = list(config.nb_execution_excludepatterns) + stored
    logger.info(f"[book_execution] rendered from stored outputs: {', '.join(stored) or 'none'}")


def _drop_repeated_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Keep one copy of each script on a page.

    With Sphinx 7.4 and sphinx-thebe 0.3.1, the inline script that declares
    ``const THEBE_JS_URL`` is added to every page twice, and the browser then throws
    "Identifier 'THEBE_JS_URL' has already been declared" (tests/test_browser.py fails on it).
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        name = getattr(js, "filename", js) or None  # an inline script has "" or None
        key = (name, tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
