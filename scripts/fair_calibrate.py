"""Choose the fitted methods' outer step ε (outer_step="normalized") on the DESIGN seed 0.

The report seeds (1…5) never see this choice. For each perceptron case, each fitted method is
fitted at uniform training's validation-tuned η on seed 0 with every ε of a small grid; the ε
with the lowest validation AUC is the one scripts/fair_grid.py uses (its ``OUTER``).

    OMP_NUM_THREADS=1 python scripts/fair_calibrate.py clean512
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair_grid as fg  # noqa: E402

EPSILONS = {
    "block policy (10 blocks)": [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
    "full search": [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
    "feature scorer": [0.003, 0.01, 0.05, 0.2],
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=["clean512", "clean4096", "noisy512"])
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    g = fg.Grid(a.case, 0)
    g.dir = fg.CACHE / a.case / "design-seed0"
    g.dir.mkdir(parents=True, exist_ok=True)
    recs = [g.trial("uniform", {}, lr, lambda lr=lr: g.uniform(lr)) for lr in g.grid]
    lr = fg.tuned(recs, "uniform")
    out = dict(case=a.case, seed=0, lr=lr, scores={})
    for method, eps in EPSILONS.items():
        out["scores"][method] = {}
        for e in eps:
            g.outer[method] = e
            t0 = time.perf_counter()
            rec = g.trial(f"{method} eps={e:g}", {}, lr, lambda: g.fitted(method, lr))
            v = rec["val_auc"]
            out["scores"][method][f"{e:g}"] = v if math.isfinite(v) else None
            print(
                f"{method:20s} ε={e:<7g} η={lr:g} val AUC {v:.3f} "
                f"(best epoch {rec.get('best_epoch')}, {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    path = fg.OUT / "calibration.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[a.case] = out
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
