"""Which and how fast (issue #18): the learned step-size schedule, alone and with learned weights.

The decomposition of the schedule chapter, on the fair grid's protocol (scripts/fair_grid.py:
the same tasks, splits, cache and scoring — one protocol for both chapters):

1. tuned constant η — the fair grid's "uniform" (η on the grid, chosen by validation AUC);
2. tuned classic schedule — its "uniform, scheduled" (linear / cosine, warm-up 0 or 5%, peak η
   on the grid, all chosen by validation AUC);
3. **learned schedule** — ``learnlaw.fit.fit_schedule`` started from the tuned classic schedule
   (one log-step per training step, C = T), uniform weights;
4. **learned schedule + block weights** — ``learnlaw.fit.fit_joint(family="block", blocks=10)``
   from the same start, the weights' outer step the fair grid's calibrated block-policy ε (design
   seed 0), the schedule's ε_η = 0.1 (fixed a priori: about a 10% change of η_t per epoch).

The schedule's normalisation (``lr_norm``) was chosen on the design seed 0 by
scripts/schedule_calibrate.py (learnlaw/data/fair/schedule_calibration.json): "sign", every log
step moving by ε_η per epoch.

Both fits run until the validation AUC has not improved for PATIENCE epochs (at most
LEARNED_EPOCHS = 150: a log step moves by ε_η per epoch, so bringing one η_t down 300-fold takes
≈ 57 epochs, more than the fair grid's 30) and keep their best epoch by the validation AUC; each trial is one more record in runs/fair/<case>/seed<k>/, so scripts/fair_summary.py
reports it beside every other method (paired CR ratios against the tuned constant and the tuned
scheduled learner). The start's peak η is the trial's "lr"; the learned schedule itself is kept
(T floats) for the chapter's figure.

Run (one case per process, one thread):
    OMP_NUM_THREADS=1 python scripts/schedule_grid.py noisy512 --seeds 1 2 3 4 5
    python scripts/fair_summary.py noisy512 --seeds 1 2 3 4 5
The Transformer (10 epochs per search, ≈ 30 min each per seed on one core; the two searches are
independent and can run side by side):
    OMP_NUM_THREADS=1 python scripts/schedule_grid.py transformer --seeds 1 2 3 --only "learned schedule"
    OMP_NUM_THREADS=1 python scripts/schedule_grid.py transformer --seeds 1 2 3 \
        --only "learned schedule + block policy"
    python scripts/fair_summary.py transformer --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fair_grid import LEARNED, OUT, PATIENCE, Grid, best_params, kind_zero_shares, tuned  # noqa: E402

import learnlaw as ll  # noqa: E402

LR_OUTER = 0.1  # ε_η: the change of a log η_t per epoch, fixed a priori
LEARNED_EPOCHS = 150  # a cap; patience stops the fits
# the Transformer (T = 1000, N = 128): one epoch is a sweep of ≈ 2.5 plain runs of ≈ 37 CPU-s,
# so its searches take a fixed budget of 10 epochs (≤ e^1 change of any η_t), and the weights'
# ε is fit_joint's default (0.1/N per RMS step, fixed a priori: no Transformer fit was calibrated)
TRANSFORMER_EPOCHS = 10


def lr_norm() -> str:
    """The normalisation chosen on the design seed (scripts/schedule_calibrate.py)."""
    return json.loads((OUT / "schedule_calibration.json").read_text())["chosen"]


def start_schedule(g: Grid, recs: list[dict]) -> tuple[float, dict, torch.Tensor]:
    """The tuned classic schedule of the seed: (peak η, its params, the (T,) schedule)."""
    lr = tuned(recs, "uniform, scheduled")
    params = best_params(recs, "uniform, scheduled", lr)
    sched = ll.policies.classic_schedule(params["schedule"], g.steps, lr, warmup=params["warmup"])
    return lr, params, sched


def learned(g: Grid, method: str, lr: float, start: torch.Tensor) -> dict:
    common = dict(
        validation=g.val.test, patience=PATIENCE, track_test=False, progress=False,
    )  # fmt: skip
    transformer = g.case == "transformer"
    epochs = TRANSFORMER_EPOCHS if transformer else LEARNED_EPOCHS
    eps = None if transformer else g.outer["block policy (10 blocks)"]
    if method == "learned schedule":
        res = ll.fit.fit_schedule(
            g.val, g.steps, lr, epochs, blocks=None, outer_lr=LR_OUTER, lr_norm=lr_norm(),
            initial=start, **common,
        )  # fmt: skip
        policy = ll.uniform_policy(g.steps, g.val.n_train)
    else:
        res = ll.fit.fit_joint(
            g.val, g.steps, lr, epochs, family="block", blocks=10, lr_blocks=None,
            outer_lr=eps, lr_outer_lr=LR_OUTER, lr_norm=lr_norm(),
            initial_lr=start, **common,
        )  # fmt: skip
        policy = res.policy
    schedule = res.lr.detach().double().cpu()
    out = g._score(policy, schedule)
    out.update(
        best_epoch=res.best_epoch,
        epochs_run=sum(1 for h in res.history if h["J"] == h["J"]) - 1,
        stopped=res.stopped,
        zero_fraction=float((policy == 0).double().mean()),
        history=[dict(epoch=h["epoch"], J=h["J"], val_auc=h.get("val_auc")) for h in res.history],
        kinds=kind_zero_shares(g.val, policy),
        schedule=schedule.float(),
        start=start.double().cpu().float(),
    )
    return out


def run_seed(case: str, seed: int, log=print, only: str | None = None) -> None:
    g = Grid(case, seed)
    t0 = time.perf_counter()
    recs = g.run(log=lambda s: None, skip=("block", "feature", "full", "online", "controls"))
    lr, params, start = start_schedule(g, recs)
    for method in LEARNED if only is None else (only,):
        g.trial(method, params, lr, lambda m=method: learned(g, m, lr, start))
        log(f"  {method} (start: {params['schedule']}, warm-up {params['warmup']}, peak η {lr:g}):"
            f" {time.perf_counter() - t0:.0f} s")  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=["clean512", "clean4096", "noisy512", "transformer"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--only", choices=LEARNED, help="run one of the two searches")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    for seed in a.seeds:
        print(f"{a.case} seed {seed}", flush=True)
        run_seed(a.case, seed, log=lambda s: print(s, flush=True), only=a.only)


if __name__ == "__main__":
    main()
