"""nbval compares the chapters' printed numbers with a tolerance that holds on any CPU.

``pytest --nbval`` re-executes every chapter and compares each cell's fresh outputs with the
stored ones as text. A reader's CPU (AVX2 instead of AVX-512, another thread count or BLAS
kernel) sums floating-point numbers in another order, so a float32 result moves in its 5th–6th
significant digit, and a quantity that passes through a threshold (a weight projected to zero, a
first step below a level) can move further. Text equality would fail on such a CPU although
nothing is wrong; it would also fail wherever a value sits on the rounding boundary of its last
printed digit, however few digits are printed.

This plugin changes one thing in nbval: two outputs whose texts differ only in their numbers
compare equal when every pair of numbers agrees within the chapter's tolerance. Everything else
(words and symbols in their order, the number of outputs, ``nan``, the sanitizers of
``tests/nbval_sanitize.cfg``) is compared exactly as nbval does. Numbers ``a`` (stored) and ``b``
(fresh) agree when

    |a − b| ≤ rtol · max(|a|, |b|) + (u_a + u_b) / 2,

with ``u`` the unit of a number's last printed digit (0 for an integer: integers are compared
with ``rtol`` alone), so that a number that rounds to a neighbouring last digit still agrees.
``rtol`` is the chapter's ``"learnlaw": {"output_rtol": r}`` notebook metadata (0 where it has
none: exact, up to the last printed digit), or the same key in a cell's metadata for a cell
whose numbers pass through a threshold and move further (an online rule's sparse weights, a
count of steps past a bound). Each was measured on other CPUs (``make test-portable``) and set
a few times above the largest difference seen; ``tests/test_printed_digits.py`` keeps every
printed number to the digits its tolerance leaves meaningful. The chapter's own asserts check its
claims with their own tolerances; this comparison guards the rest of its printed record.

``LEARNLAW_NBVAL_REPORT=FILE`` appends, for every cell whose text differed, the smallest
``rtol`` that would have accepted it (``inf`` where the words differ) as one JSON line: how the
tolerances were measured.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
SPACES = re.compile(r"\s+")


def _unit(token: str) -> float:
    """The unit of a printed number's last digit (0 for an integer)."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa:
        return 0.0 if not exponent else 10.0 ** int(exponent)
    decimals = len(mantissa.split(".")[1])
    return 10.0 ** (int(exponent or 0) - decimals)


def _split(text: str) -> tuple[str, list[str]]:
    """The text with every number replaced by '#' and no whitespace, and its numbers.

    Whitespace is dropped because a number printed with a width (``f"{x:4.3g}"``) pads with as
    many spaces as its digits leave over: ``(  72%)`` and ``(72.1%)`` are the same layout.
    """
    numbers = NUMBER.findall(text)
    return SPACES.sub("", NUMBER.sub("#", text)), numbers


def needed_rtol(ref: str, test: str) -> float:
    """The smallest rtol under which ``test`` agrees with ``ref`` (inf: they differ in words)."""
    if ref == test:
        return 0.0
    (skel_a, nums_a), (skel_b, nums_b) = _split(ref), _split(test)
    if skel_a != skel_b or len(nums_a) != len(nums_b):
        return math.inf
    need = 0.0
    for x, y in zip(nums_a, nums_b):
        a, b = float(x), float(y)
        scale = max(abs(a), abs(b))
        slack = abs(a - b) - (_unit(x) + _unit(y)) / 2
        if slack <= 1e-12 * scale:  # within the last digits (up to the rounding of this sum)
            continue
        need = max(need, slack / scale if scale > 0 else math.inf)
    return need


def output_rtol(nb, cell) -> float:
    """The tolerance of a cell's printed numbers: its own, else its chapter's, else 0."""
    own = cell.get("metadata", {}).get("learnlaw", {}).get("output_rtol")
    chapter = nb.metadata.get("learnlaw", {}).get("output_rtol", 0.0)
    return float(chapter if own is None else own)


def _texts(output: dict):
    """(container, key) of every text an output holds that nbval compares."""
    if output.get("output_type") == "stream":
        yield output, "text"
    for mime, value in (output.get("data") or {}).items():
        if mime.startswith("text/") and isinstance(value, str):
            yield output["data"], mime


def _patch_nbval() -> None:
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval absent: nothing to patch
        return
    if getattr(IPyNbCell.compare_outputs, "_learnlaw", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        rtol = output_rtol(self.parent.nb, self.cell)
        report = os.environ.get("LEARNLAW_NBVAL_REPORT")
        if len(test) == len(ref):
            test = [copy.deepcopy(o) for o in test]  # nbformat nodes, as nbval expects
            worst = 0.0
            for fresh, stored in zip(test, ref):
                if fresh.get("output_type") != stored.get("output_type"):
                    continue
                pairs = zip(_texts(fresh), _texts(stored))
                for (box, key), (sbox, skey) in pairs:
                    if key != skey:
                        continue
                    a, b = self.sanitize(sbox[skey]), self.sanitize(box[key])
                    need = needed_rtol(a, b)
                    worst = max(worst, need)
                    if need <= rtol:
                        box[key] = sbox[skey]  # the same output, up to the tolerance
            if report and worst > 0:
                with open(report, "a", encoding="utf-8") as f:
                    line = {"cell": f"{self.parent.fspath.basename}::Cell {self.cell_num}"}
                    f.write(json.dumps({**line, "rtol": worst, "allowed": rtol}) + "\n")
        return original(self, test, ref, skip_compare)

    compare_outputs._learnlaw = True
    IPyNbCell.compare_outputs = compare_outputs


_patch_nbval()
