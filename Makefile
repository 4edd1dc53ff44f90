# learnlaw: the book and its tests. The two commands a reader needs (README.md):
#
#   make book    build the HTML book into _build/html (creates .venv/ on first use)
#   make test    run every test: the unit tests in tests/ and every chapter under nbval
#
# Other targets:
#   make book EXECUTE=force      rebuild with every chapter re-executed (default: auto, which
#                                executes only a chapter stored without outputs)
#   make test PYTEST_ARGS="-n 2 --dist loadscope"
#                                two test files or chapters at a time (pytest-xdist; loadscope
#                                keeps a file, and a chapter's cells in order, in one worker)
#   make test-portable           make test again on other CPUs' kernel paths and thread counts
#                                (PORTABLE="avx2:1 avx2:2 default:1 default:2"; see below)
#   make execute NB=book/X.ipynb re-execute one chapter in place, storing its outputs
#   make sync                    rewrite every chapter's set-up cell from _config.yml
#   make mathjax                 fetch the pinned MathJax from PyPI (make book does it)
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
TESTS ?= tests book
NBVAL_ARGS := --nbval --nbval-current-env --nbval-sanitize-with "$(CURDIR)/tests/nbval_sanitize.cfg"

# Progress bars write to stderr, which nbval compares and the book would show: keep them off.
export TQDM_DISABLE := 1
# A non-interactive matplotlib backend would drop figures from the chapters' outputs.
unexport MPLBACKEND

# MathJax, served from the built book itself (no page loads anything from another host). Its
# es5 bundle comes from PyPI, in the wheel django-static-mathjax (MathJax 3.2.2 packaged for
# Django; no dependencies), fetched by the venv's pip, pinned by version and checked against the
# wheel's sha256. Python's zipfile unpacks only mathjax/static/mathjax/es5/ into build/mathjax/,
# which _config.yml adds to the book's _static/ (mathjax_path). Needs nothing but Python and
# network access to PyPI (or PIP_INDEX_URL pointing at a mirror holding the wheel). The wheel's
# es5 files are npm's mathjax@3.2.2 ones up to the minifier: 13 of its 106 files lack a few
# no-op self-assignments (`r=r,`) that npm's build left in. To move to another MathJax: set
# MATHJAX_VERSION, MATHJAX_WHEEL and MATHJAX_WHEEL_SHA256 (sha256sum of the wheel that
# `pip download` saves); the recipe also checks the VERSION string in es5/tex-mml-chtml.js.
MATHJAX_VERSION := 3.2.2
MATHJAX_WHEEL := django-static-mathjax==3.2.2.1
MATHJAX_WHEEL_SHA256 := 05ad109fd9e5d9d380c76389689b7f523e9ccb7f7a85c1eb962c7564eac7601d
MATHJAX := build/mathjax/mathjax/tex-mml-chtml.js

# Checks the downloaded wheel's sha256, unpacks its es5/ into DIR/es5 and checks that
# es5/tex-mml-chtml.js is MathJax MATHJAX_VERSION.
# Usage: python -c "$$MATHJAX_UNPACK" DIR SHA256 MATHJAX_VERSION MATHJAX_WHEEL
define MATHJAX_UNPACK
import hashlib
import pathlib
import sys
import zipfile

tmp = pathlib.Path(sys.argv[1])
expected, version, pin = sys.argv[2:5]
wheels = sorted(tmp.glob("*.whl"))
if len(wheels) != 1:
    found = [w.name for w in wheels]
    sys.exit(f"make mathjax: expected one wheel in {tmp} from pip download {pin}, found {found}")
wheel = wheels[0]
got = hashlib.sha256(wheel.read_bytes()).hexdigest()
if got != expected:
    sys.exit(
        f"make mathjax: {wheel.name} has sha256 {got} (received), expected {expected} "
        f"(MATHJAX_WHEEL_SHA256 in the Makefile). This is not the pinned {pin}: run "
        f"`PIP_NO_CACHE_DIR=1 make mathjax` (a proxy, a mirror or pip's cache may have served "
        f"another file); change the checksum only after checking the new wheel's content."
    )
prefix = "mathjax/static/mathjax/es5/"
out = tmp / "es5"
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
    for m in members:
        rel = m.filename[len(prefix) :]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"make mathjax: {wheel.name} holds an unsafe path {m.filename!r}")
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(z.read(m))
main = out / "tex-mml-chtml.js"
if not main.is_file():
    sys.exit(f"make mathjax: {wheel.name} has no {prefix}tex-mml-chtml.js ({len(members)} files)")
if f'VERSION="{version}"' not in main.read_text(encoding="utf-8"):
    sys.exit(
        f"make mathjax: {prefix}tex-mml-chtml.js in {wheel.name} is not MathJax {version} "
        f'(no VERSION="{version}"): MATHJAX_VERSION and MATHJAX_WHEEL in the Makefile disagree'
    )
print(f"MathJax {version}: {len(members)} files from {wheel.name} (sha256 {got})")
endef
export MATHJAX_UNPACK

.PHONY: help install mathjax book test test-portable execute sync lint format clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# --- the virtual environment: created once, re-installed only when the requirements change ----
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel through a constraints file; pyproject.toml itself only asks
# for torch>=2.3, so that a Colab runtime keeps its own torch.
$(STAMP): pyproject.toml requirements/torch-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install -c requirements/torch-cpu.txt -e ".[book,test,hf]"
	touch $(STAMP)

install: $(STAMP)

# --- the book -------------------------------------------------------------------------------
$(MATHJAX): Makefile | $(BIN)/python
	rm -rf build/mathjax && mkdir -p build/mathjax/tmp
	@$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps \
	  --only-binary=:all: "$(MATHJAX_WHEEL)" -d build/mathjax/tmp || { \
	  echo "make mathjax: pip could not download $(MATHJAX_WHEEL) (MathJax $(MATHJAX_VERSION))" \
	    "from PyPI; pip's message above says why. It needs network access to PyPI, or" \
	    "PIP_INDEX_URL set to an index that holds this wheel." >&2; exit 1; }
	@$(BIN)/python -c "$$MATHJAX_UNPACK" build/mathjax/tmp \
	  "$(MATHJAX_WHEEL_SHA256)" "$(MATHJAX_VERSION)" "$(MATHJAX_WHEEL)"
	mv build/mathjax/tmp/es5 build/mathjax/mathjax && rm -rf build/mathjax/tmp
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
	@rc=0; $(BIN)/python -m pytest $(NBVAL_ARGS) $(PYTEST_ARGS) $(TESTS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no test" >&2; fi; \
	exit $$rc

# --- the tests on other CPUs ---------------------------------------------------------------
# A reader's CPU without AVX-512 (most laptops, AMD and older Intel cloud runners) sums floats in
# another order. Each variant CAP:THREADS re-runs `make test` (PYTEST_ARGS applies) with every
# library the suite computes with held to the kernels of such a CPU, and THREADS threads:
#   avx2     torch's ATen kernels (ATEN_CPU_CAPABILITY), MKL's BLAS (MKL_ENABLE_INSTRUCTIONS),
#            oneDNN (ONEDNN_MAX_CPU_ISA) and numpy's dispatched loops (NPY_DISABLE_CPU_FEATURES)
#            at AVX2, as on a Haswell-to-Zen CPU;
#   default  no vectorised ATen kernels, SSE4.2 BLAS and oneDNN, numpy at its baseline (x86-64-v2);
#   THREADS  OMP_NUM_THREADS (torch's default) and LEARNLAW_THREADS, which the chapters' `threads`
#            parameter reads.
# numpy's and scipy's OpenBLAS runs Haswell (AVX2) or Nehalem (SSE4.2) kernels (OPENBLAS_CORETYPE;
# a value already set in the environment is kept). Each run first prints the kernels it got
# (scripts/cpu_report.py) and stops if the variant did not take effect.
PORTABLE ?= avx2:1 avx2:2 default:1 default:2
NPY_AVX512 := X86_V4 AVX512_ICL AVX512_SPR

test-portable: $(STAMP)
	@for v in $(PORTABLE); do \
	  cap=$${v%%:*}; threads=$${v##*:}; \
	  case "$$cap" in \
	    avx2) cpu="ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2"; \
	          npy="$(NPY_AVX512)"; blas=$${OPENBLAS_CORETYPE:-Haswell};; \
	    default) cpu="ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41"; \
	          npy="X86_V3 $(NPY_AVX512)"; blas=$${OPENBLAS_CORETYPE:-Nehalem};; \
	    *) echo "make test-portable: unknown CPU '$$cap' in PORTABLE='$(PORTABLE)' (avx2 or default)" >&2; \
	       exit 2;; \
	  esac; \
	  case "$$threads" in ''|*[!0-9]*) echo "make test-portable: '$$v' needs CAP:THREADS, e.g. avx2:2" >&2; \
	    exit 2;; esac; \
	  echo "=== make test on $$cap kernels, $$threads thread(s): $$cpu OPENBLAS_CORETYPE=$$blas"; \
	  env $$cpu NPY_DISABLE_CPU_FEATURES="$$npy" OPENBLAS_CORETYPE=$$blas OMP_NUM_THREADS=$$threads \
	    LEARNLAW_THREADS=$$threads $(BIN)/python scripts/cpu_report.py --expect "$$cap" || exit $$?; \
	  env $$cpu NPY_DISABLE_CPU_FEATURES="$$npy" OPENBLAS_CORETYPE=$$blas OMP_NUM_THREADS=$$threads \
	    LEARNLAW_THREADS=$$threads $(MAKE) --no-print-directory test || exit $$?; \
	done

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
