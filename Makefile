# learnlaw: the book and its tests. The two commands a reader needs (README.md):
#
#   make book    build the HTML book into _build/html (creates .venv/ on first use)
#   make test    run every test: the unit tests in tests/ and every chapter under nbval
#
# Other targets:
#   make book EXECUTE=force      rebuild with every chapter re-executed (default: auto, which
#                                executes only a chapter stored without outputs)
#   make execute NB=book/X.ipynb re-execute one chapter in place, storing its outputs
#   make sync                    rewrite every chapter's set-up cell from _config.yml
#   make mathjax                 fetch the pinned MathJax the book serves (make book does it)
#   make lint / make format      ruff
#   make clean                   remove _build/ and the chapters' _results/

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXECUTE ?= auto
TIMEOUT ?= 1800
JB_FLAGS ?= -W -n --keep-going
PYTEST_ARGS ?=
NBVAL_ARGS := --nbval --nbval-current-env --nbval-sanitize-with "$(CURDIR)/tests/nbval_sanitize.cfg"

# Progress bars write to stderr, which nbval compares and the book would show: keep them off.
export TQDM_DISABLE := 1
# A non-interactive matplotlib backend would drop figures from the chapters' outputs.
unexport MPLBACKEND

# MathJax, served from the built book itself (no page loads anything from another host). It comes
# from the npm registry, pinned by version and checked against the tarball's sha512 (npm's
# "integrity"), and is unpacked into build/mathjax/, which _config.yml adds to the book's
# _static/ (mathjax_path). Needs npm (Node.js); `apt-get install npm` where it is missing.
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA512 := Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==
MATHJAX := build/mathjax/mathjax/tex-mml-chtml.js

.PHONY: help install mathjax book test execute sync lint format clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# --- the virtual environment: created once, re-installed only when the requirements change ----
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel through a constraints file; pyproject.toml itself only asks
# for torch>=2.3, so that a Colab runtime keeps its own torch.
$(STAMP): pyproject.toml requirements/torch-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install -c requirements/torch-cpu.txt -e ".[book,test]"
	touch $(STAMP)

install: $(STAMP)

# --- the book -------------------------------------------------------------------------------
$(MATHJAX): Makefile
	@command -v npm >/dev/null || { echo "make book needs npm (Node.js) to fetch MathJax $(MATHJAX_VERSION) from the npm registry: install it (Debian: apt-get install npm)" >&2; exit 1; }
	rm -rf build/mathjax && mkdir -p build/mathjax/tmp
	cd build/mathjax/tmp && npm pack --silent --no-fund --no-audit mathjax@$(MATHJAX_VERSION) >/dev/null
	@got="$$(openssl dgst -sha512 -binary build/mathjax/tmp/mathjax-$(MATHJAX_VERSION).tgz | base64 -w0)"; \
	if [ "$$got" != "$(MATHJAX_SHA512)" ]; then \
	  echo "mathjax-$(MATHJAX_VERSION).tgz: sha512 $$got, expected $(MATHJAX_SHA512)" >&2; exit 1; fi
	tar -xzf build/mathjax/tmp/mathjax-$(MATHJAX_VERSION).tgz -C build/mathjax/tmp package/es5
	mv build/mathjax/tmp/package/es5 build/mathjax/mathjax && rm -rf build/mathjax/tmp
	@test -f $@ && touch $@

mathjax: $(MATHJAX)

# EXECUTE=auto renders chapters from their stored outputs (see scripts/book_execution.py).
book: $(STAMP) $(MATHJAX)
	@case "$(EXECUTE)" in auto|force|cache|off) ;; \
	  *) echo "EXECUTE must be auto, force, cache or off, got '$(EXECUTE)'" >&2; exit 2;; esac
	BOOK_EXECUTE=$(EXECUTE) $(BIN)/jupyter-book build --all $(JB_FLAGS) .
	@echo "The book: $(CURDIR)/_build/html/index.html"

# --- the tests ------------------------------------------------------------------------------
# One pytest run: the unit tests and, through nbval, every chapter in book/ re-executed and
# compared with its stored outputs. pytest exits 5 when it collected no test: that fails too.
test: $(STAMP)
	@rc=0; $(BIN)/python -m pytest $(NBVAL_ARGS) $(PYTEST_ARGS) tests book || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no test" >&2; fi; \
	exit $$rc

# --- one chapter ----------------------------------------------------------------------------
execute: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make execute NB=book/<chapter>.ipynb" >&2; exit 2; }
	$(BIN)/python scripts/execute_chapter.py "$(NB)" --timeout $(TIMEOUT)

sync: $(STAMP)
	$(BIN)/python scripts/sync_setup_cells.py

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf _build book/_build book/_results
