"""Print the CPU kernels this process gets, and check them against the variant asked for.

``make test-portable`` runs it before each variant, in the variant's environment, so that a
log names the kernel path and thread count of every run, and a variant whose environment did
not take effect (an unknown variable name, a library that ignores it) stops before its tests::

    python scripts/cpu_report.py                 # print only
    python scripts/cpu_report.py --expect avx2   # exit 1 unless torch and numpy run AVX2 kernels
    python scripts/cpu_report.py --is avx2       # the same test, silent: exit 0 or 1

(``.ci/run`` uses ``--is avx2`` to see whether this machine's own kernels already are the AVX2
ones, so that its AVX2 pass need not repeat what ``make test`` just ran.)

Prints one line, e.g. ``torch 2.13.0+cpu: ATen AVX2, 2 thread(s); numpy 2.4.6: dispatch
X86_V3; OpenBLAS Haswell``.
"""

from __future__ import annotations

import argparse
import os
import sys

# torch's capability names, and the numpy dispatch targets that such a CPU would not run
EXPECT = {
    "avx2": ("AVX2", {"X86_V4", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR"}),
    "default": ("DEFAULT", {"X86_V3", "X86_V4", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR"}),
}


def report() -> dict:
    """torch's ATen capability and threads, numpy's dispatch targets and OpenBLAS core."""
    import numpy as np
    import torch

    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    dispatch = [d for d in __cpu_dispatch__ if __cpu_features__.get(d)]
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
        )
    except ImportError:
        blas = f"OpenBLAS core {os.environ.get('OPENBLAS_CORETYPE', 'chosen at load time')}"
    return {
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "dispatch": dispatch,
        "blas": blas,
    }


def _wrong(r: dict, variant: str) -> list[str]:
    """How the kernels of report ``r`` differ from ``variant``'s (empty: they are its)."""
    capability, banned = EXPECT[variant]
    wrong = []
    if r["capability"] != capability:
        wrong.append(f"torch runs {r['capability']} kernels, expected {capability}")
    if banned & set(r["dispatch"]):
        wrong.append(f"numpy dispatches {sorted(banned & set(r['dispatch']))}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", choices=sorted(EXPECT), help="the variant that must hold")
    parser.add_argument(
        "--is", dest="is_", choices=sorted(EXPECT), help="exit 0 if it holds, 1 if not; no output"
    )
    args = parser.parse_args(argv)
    r = report()
    if args.is_:
        return 0 if not _wrong(r, args.is_) else 1
    print(
        f"torch {r['torch']}: ATen {r['capability']}, {r['threads']} thread(s); "
        f"numpy {r['numpy']}: dispatch {' '.join(r['dispatch']) or 'baseline only'}; {r['blas']}"
    )
    if args.expect:
        wrong = _wrong(r, args.expect)
        if wrong:
            print(
                f"cpu_report: the '{args.expect}' variant did not take effect: "
                + "; ".join(wrong)
                + ". Check ATEN_CPU_CAPABILITY and NPY_DISABLE_CPU_FEATURES in the Makefile's "
                "test-portable recipe against this torch and numpy.",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
