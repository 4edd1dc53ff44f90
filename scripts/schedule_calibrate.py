"""Choose the schedule fits' normalisation on the design seed 0 (issue #18): ``lr_norm`` of
``fit_schedule`` ∈ {"rms", "max", "sign"} at ε_η = 0.1, started from seed 0's tuned classic
schedule, scored by the validation AUC (never the test split). The choice with the lowest mean
validation AUC relative to its start, over the clean and flipped-label K = 512 cases, is what
scripts/schedule_grid.py uses; the record goes to learnlaw/data/fair/schedule_calibration.json.

Run:  OMP_NUM_THREADS=1 python scripts/schedule_calibrate.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fair_grid import EPOCHS, OUT, PATIENCE, Grid  # noqa: E402
from schedule_grid import LR_OUTER, start_schedule  # noqa: E402

import learnlaw as ll  # noqa: E402

NORMS = ("rms", "max", "sign")
CASES = ("clean512", "noisy512")


def main() -> None:
    torch.set_num_threads(1)
    rec = dict(seed=0, epochs=EPOCHS, patience=PATIENCE, lr_outer_lr=LR_OUTER, cases={})
    for case in CASES:
        g = Grid(case, 0)
        recs = g.run(log=lambda s: None, skip=("block", "feature", "full", "online", "controls"))
        lr, params, start = start_schedule(g, recs)
        rows = {}
        for norm in NORMS:
            t0 = time.perf_counter()
            res = ll.fit.fit_schedule(
                g.val, g.steps, lr, EPOCHS, blocks=None, outer_lr=LR_OUTER, lr_norm=norm,
                initial=start, validation=g.val.test, patience=PATIENCE, track_test=False,
            )  # fmt: skip
            vals = [h.get("val_auc") for h in res.history]
            rows[norm] = dict(
                start_val_auc=vals[0], best_val_auc=vals[res.best_epoch], best_epoch=res.best_epoch,
                stopped=res.stopped, seconds=time.perf_counter() - t0,
            )  # fmt: skip
            print(case, norm, rows[norm], flush=True)
        rec["cases"][case] = dict(start=dict(params, lr=lr), fits=rows)
    score = {n: sum(rec["cases"][c]["fits"][n]["best_val_auc"] / rec["cases"][c]["fits"][n]["start_val_auc"]
                    for c in CASES) / len(CASES) for n in NORMS}  # fmt: skip
    rec["mean_relative_val_auc"] = score
    rec["chosen"] = min(score, key=score.get)
    print("chosen:", rec["chosen"], score)
    (OUT / "schedule_calibration.json").write_text(json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    main()
