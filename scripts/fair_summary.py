"""Summarise the fair grid's cached trials (scripts/fair_grid.py) into learnlaw/data/fair/<case>.json.

    python scripts/fair_summary.py clean512 --seeds 1 2 3 4 5

Per seed, every method is selected on validation — regime (a) at the paper's η, regime (b) over
every η (and schedule) it ran — and reported on the held-out test pool against two tuned
learners: uniform training at its tuned constant η ("uniform") and uniform training at its tuned
schedule ("uniform, scheduled"). Over seeds, the paired ratios (method ÷ tuned learner, per seed)
get a 95% Student-t interval on the log scale (learnlaw.analysis.paired).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fair_grid import CACHE, FITTED, LEARNED, ONLINE, OUT, PAPER_LR, make_task  # noqa: E402

from learnlaw.analysis.fair_report import paired_over
from learnlaw.analysis.paired import targets_from_baseline, time_to_target
from learnlaw.core.metrics import compression_ratio
from learnlaw.scaling import hitting_ratio

LEVELS = (1 / 64, 1 / 8, 1.0)


def load(case: str, seed: int) -> list[dict]:
    d = CACHE / case / f"seed{seed}"
    return [torch.load(p, weights_only=False) for p in sorted(d.glob("*.pt"))]


def expand(recs: list[dict]) -> list[dict]:
    """The fitted trials' replays (controls, schedules) as trials of their own."""
    out = []
    for r in recs:
        out.append(r)
        for control, c in r.get("controls", {}).items():
            out.append(dict(c, method=f"{r['method']}, {control} control", params={}, lr=r["lr"]))
        for key, s in r.get("schedules", {}).items():
            kind, warm = key.split(",")
            params = dict(schedule=kind, warmup=float(warm))
            out.append(dict(s, method=f"{r['method']}, scheduled", params=params, lr=r["lr"]))
    return out


def pick(recs: list[dict], method: str, lr: float | None = None) -> dict | None:
    pool = [r for r in recs if r["method"] == method and (lr is None or r["lr"] == lr)]
    pool = [r for r in pool if math.isfinite(r["val_auc"])]
    if not pool:
        return None
    return min(pool, key=lambda r: (r["val_auc"], r["lr"]))


def derived(method: str) -> bool:
    """Rows without an η grid of their own: a fitted policy's replays (controls, schedules) run
    at the η values the fit walked, and a learned schedule starts from the tuned classic one."""
    replay = method.endswith((" control", ", scheduled")) and method != "uniform, scheduled"
    return replay or method in LEARNED


def edge_of_tried(recs: list[dict], method: str, chosen: dict) -> bool:
    lrs = sorted({r["lr"] for r in recs if r["method"] == method})
    return chosen["lr"] == lrs[0] or chosen["lr"] == lrs[-1]


def row(rec: dict, base: dict, levels: list[float], vocab: int) -> dict:
    test = np.asarray(rec["test"])
    out = dict(
        method=rec["method"],
        params=rec.get("params", {}),
        lr=rec["lr"],
        val_auc=rec["val_auc"],
        cr_test=compression_ratio(torch.as_tensor(test), vocab),
        final_test=float(test[-1]),
        ar_test=hitting_ratio(base["test"], test),
        seconds=rec.get("seconds"),
    )
    t_base = [time_to_target(base["test"], lv) for lv in levels]
    t_m = [time_to_target(test, lv) for lv in levels]
    out["time_to_target"] = t_m
    out["speedup_at_target"] = [
        (tb / tm) if (tb is not None and tm is not None and tm > 0) else None
        for tb, tm in zip(t_base, t_m)
    ]
    every = max(1, (len(test) - 1) // 100)
    out["test_curve"] = [round(float(v), 6) for v in test[::every]]
    for k in ("best_epoch", "epochs_run", "stopped", "zero_fraction", "kinds"):
        if k in rec:
            out[k] = rec[k]
    for k in ("schedule", "start"):  # learned schedules (scripts/schedule_grid.py), 100 points
        if k in rec:
            v = torch.as_tensor(rec[k]).double()
            out[k] = [round(float(x), 6) for x in v[:: max(1, len(v) // 100)]]
    return out


def seed_summary(case: str, seed: int) -> dict:
    recs = expand(load(case, seed))
    vocab = make_task(case, seed)[0].vocab_size
    methods = list(dict.fromkeys(r["method"] for r in recs))
    out = dict(seed=seed, regimes={}, tried={})
    for m in methods:
        out["tried"][m] = sorted({r["lr"] for r in recs if r["method"] == m})
    out["trials"] = [
        dict(
            method=r["method"], params=r.get("params", {}), lr=r["lr"],
            val_auc=r["val_auc"] if math.isfinite(r["val_auc"]) else None,
            final_test=float(np.asarray(r["test"])[-1]) if "test" in r else None,
            error=r.get("error"), best_epoch=r.get("best_epoch"), stopped=r.get("stopped"),
            seconds=r.get("seconds"),
        )
        for r in recs
    ]  # fmt: skip
    plain = [r["seconds"] for r in recs if r["method"] == "uniform" and "seconds" in r]
    out["plain_seconds_median"] = float(np.median(plain))  # a uniform trial is one run
    for regime, lr in (("a", PAPER_LR[case]), ("b", None)):
        base = pick(recs, "uniform", lr)
        sched = pick(recs, "uniform, scheduled", lr)
        levels = targets_from_baseline(np.asarray(base["test"]), LEVELS)
        rows = []
        for m in methods:
            if regime == "a" and (m.startswith("uniform, scheduled") or m in LEARNED):
                continue
            chosen = pick(recs, m, lr)
            if chosen is None:
                rows.append(dict(method=m, error="every trial diverged"))
                continue
            r = row(chosen, base, levels, vocab)
            if sched is not None:
                r["vs_scheduled"] = dict(
                    cr_ratio=r["cr_test"]
                    / compression_ratio(torch.as_tensor(sched["test"]), vocab),
                    final_ratio=r["final_test"] / float(np.asarray(sched["test"])[-1]),
                )
            if regime == "b":  # a learned schedule starts from the tuned classic: no η grid
                r["at_edge"] = None if derived(m) else edge_of_tried(recs, m, chosen)
            rows.append(r)
        out["regimes"][regime] = dict(levels=[float(v) for v in levels], rows=rows)
    out["controls"] = controls(recs, case, vocab)
    return out


def controls(recs: list[dict], case: str, vocab: int) -> list[dict]:
    """Per Law method with norm-matched controls, at the paper's η and at the method's tuned η:
    the held-out CR of uniform training, of the method, and of its direction and length
    controls (the method's hyperparameters chosen on validation at that η)."""
    cr = lambda r: compression_ratio(torch.as_tensor(r["test"]), vocab)  # noqa: E731
    out = []
    names = [m[: -len(", direction control")] for m in dict.fromkeys(r["method"] for r in recs)]
    names = [m for m in names if pick(recs, f"{m}, direction control") is not None]
    for m in dict.fromkeys(names):
        tuned_lr = pick(recs, m)["lr"]
        for where, lr in (("paper", PAPER_LR[case]), ("tuned", tuned_lr)):
            me = pick(recs, m, lr)
            d = pick(recs, f"{m}, direction control", lr)
            ln = pick(recs, f"{m}, length control", lr)
            u = pick(recs, "uniform", lr)
            if None in (me, d, ln, u):
                continue
            out.append(dict(
                method=m, where=where, lr=lr, cr_uniform=cr(u), cr_method=cr(me),
                cr_direction=cr(d), cr_length=cr(ln),
            ))  # fmt: skip
    return out


def across_seeds(seeds: list[dict]) -> dict:
    """Paired ratios over seeds for every method and regime."""
    out = {}
    for regime in ("a", "b"):
        per = {}
        names = dict.fromkeys(r["method"] for s in seeds for r in s["regimes"][regime]["rows"])
        base = {s["seed"]: _row(s, regime, "uniform") for s in seeds}
        sched = {s["seed"]: _row(s, regime, "uniform, scheduled") for s in seeds}
        for m in names:
            rows = {s["seed"]: _row(s, regime, m) for s in seeds}
            ok = [k for k, r in rows.items() if r is not None and "cr_test" in r]
            entry = dict(seeds=ok, lrs=[rows[k]["lr"] for k in ok])
            entry["vs_uniform"] = _paired(rows, base, ok)
            if regime == "b" and any(v is not None for v in sched.values()):
                entry["vs_scheduled"] = _paired(rows, sched, ok)
                entry["at_edge"] = [rows[k].get("at_edge") for k in ok]
            per[m] = entry
        out[regime] = per
    return out


def _row(seed_summary: dict, regime: str, method: str) -> dict | None:
    for r in seed_summary["regimes"][regime]["rows"]:
        if r["method"] == method:
            return r
    return None


def _paired(rows: dict, base: dict, ok: list[int]) -> dict:
    ok = [k for k in ok if base.get(k) is not None]
    if len(ok) < 2:
        return dict(n=len(ok))
    p = paired_over(ok, rows, base)
    return dict(
        n=len(ok),
        cr_ratio=_jsonable(p["cr_ratio"]),
        final_ratio=_jsonable(p["final_ratio"]),
        beats=p["beats"],
    )


def _jsonable(x):
    if hasattr(x, "_asdict"):
        x = x._asdict()
    elif hasattr(x, "__dataclass_fields__"):
        x = {k: getattr(x, k) for k in x.__dataclass_fields__}
    return clean(x)


def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return clean(x.tolist())
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_summary(case: str, seeds: list[int], out: Path) -> None:
    per_seed = [seed_summary(case, s) for s in seeds]
    result = dict(
        case=case,
        command=f"python scripts/fair_grid.py {case} --seeds {' '.join(map(str, seeds))}",
        grid=make_task(case, seeds[0])[2],
        steps=make_task(case, seeds[0])[1],
        online=list(ONLINE),
        fitted=list(FITTED),
        torch=torch.__version__,
        seeds=per_seed,
        paired=across_seeds(per_seed),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(result), indent=1, allow_nan=False) + "\n")
    print(f"wrote {out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=sorted(PAPER_LR))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    a = ap.parse_args(argv)
    write_summary(a.case, a.seeds, OUT / f"{a.case}.json")


if __name__ == "__main__":
    main()
