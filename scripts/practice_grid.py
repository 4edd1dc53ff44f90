"""The practice chapter's grid: every method against a tuned learner, on held-out data, 3 seeds.

For each case and seed, the desired set is split into a fit part (what a method may use) and a
validation part (what chooses η and every other hyperparameter); the test split only reports
(learnlaw.analysis.protocol). Two regimes are read off the same grid: (a) every method at the
paper's η, (b) every method at its own validation-tuned η, against uniform training at its own
tuned η. Results go to learnlaw/data/practice/<case>.json, which book/practice.ipynb reads.

Cases:
  clean512    the paper's perceptron (D=128, N=4096, T=2000), K=512 desired
  clean4096   the same with K=4096 desired (nested desired sets, one shared test pool)
  noisy512    K=512, 10% of the training labels flipped
  transformer the Transformer chapter's CPU setting (N=128, T=100), half of the training
              sequences perturbed, K=64 desired, 128 test sequences; uniform, baselines,
              relu and power online rules and the full search only (a plain run costs ~20 s)

Run (one case per process; about 10–40 min each on one thread of this 2-core machine):
    OMP_NUM_THREADS=1 python scripts/practice_grid.py clean512 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import time
from pathlib import Path

import numpy as np
import torch

import learnlaw as ll
from learnlaw.analysis.protocol import Candidate, compare, run_trials, uniform_method
from learnlaw.core.training import train
from learnlaw.policies.baselines import desired_only_task, importance_policy, union_task
from learnlaw.policies.tuning import validation_task

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "learnlaw" / "data" / "practice"
FIXED_LR = {"perceptron": 0.1, "transformer": 0.5}  # the paper's / the chapter's η
TEST_POOL = 16384
DESIRED_POOL = 4096


def make_task(case: str, seed: int) -> tuple[ll.Task, int]:
    """(task, T) of a case; the test split is the reporting pool."""
    if case == "transformer":
        task = ll.transformer_task(
            n_train=128,
            n_desired=64,
            n_test=128,
            max_len=32,
            vocab_size=384,
            d_model=32,
            n_heads=4,
            n_layers=2,
            perturb_fraction=0.5,
            n_ops=20,
            seed=seed,
        )
        return task, 100
    k = 4096 if case == "clean4096" else 512
    noisy = 0.1 if case == "noisy512" else 0
    task = ll.perceptron_task(
        n_desired=k, n_test=TEST_POOL, desired_pool=DESIRED_POOL, noisy=noisy, seed=seed
    )
    return task, 2000


# -- methods: fn(val_task, lr, **params) ----------------------------------------------------------
def m_uniform(task, lr, *, steps):
    return uniform_method(task, lr, steps)


def m_replaced(task, lr, *, steps, make):
    t = make(task)
    pol = ll.uniform_policy(steps, t.n_train, dtype=t.dtype, device=t.device)
    return Candidate(pol, train=t.train, run=train(t, pol, lr))


def m_importance(task, lr, *, steps, exponent):
    return importance_policy(task, steps, exponent)


def m_online(task, lr, *, steps, rule, **params):
    return ll.online_policy(task, steps, lr, rule=rule, **params)


def m_block(task, lr, *, steps, blocks, outer_lr, epochs, warm=None):
    initial = None
    if warm is not None:
        initial = ll.online_policy(task, steps, lr, rule=warm).policy
        if blocks < steps:
            raise ValueError("warm starts are for the full search only")
    return ll.fit.fit_block_policy(
        task,
        steps,
        lr,
        blocks,
        outer_lr,
        epochs,
        initial=initial,
        validation=task.test,
        patience=8,
        progress=False,
    )


def m_feature(task, lr, *, steps, blocks, outer_lr, epochs):
    # per-block features along the uniform run (loss and gradient norm: no desired-set columns,
    # which over-fit), sparsemax link, plain GD: the best transferring scorer in exploratory
    # runs of scripts/parametric_transfer.py on seed 0
    feats, names = ll.policies.trajectory_features(
        task, steps, lr, blocks, columns=["bias", "loss", "grad_norm"]
    )
    return ll.fit.fit_feature_policy(
        task,
        steps,
        lr,
        features=feats,
        feature_names=names,
        blocks=blocks,
        link="sparsemax",
        optimizer="gd",
        outer_lr=outer_lr,
        epochs=epochs,
        validation=task.test,
        patience=8,
        progress=False,
    )


def methods_for(case: str, steps: int, epochs: int):
    """{name: (fn, hyperparameter grid)} and {name: η grid}."""
    p = functools.partial
    if case == "transformer":
        lrs = [0.5, 1.0, 1.5]
        search_lrs = [0.5]
        outer = dict(block=1e-3, search=0.01, feature=1e-2)
    else:
        lrs = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
        search_lrs = [0.1, 1.0, 10.0]
        outer = dict(block=1e-7, search=1e-4, feature=1e-2)
    methods = {
        "uniform": (p(m_uniform, steps=steps), [{}]),
        "desired only": (p(m_replaced, steps=steps, make=desired_only_task), [{}]),
        "train ∪ desired": (p(m_replaced, steps=steps, make=union_task), [{}]),
    }
    if case != "transformer":
        methods["importance weights"] = (
            p(m_importance, steps=steps),
            [dict(exponent=a) for a in (0.1, 0.3, 1.0)],
        )
    powers = (0.25,) if case == "transformer" else (0.05, 0.25, 2.0, 8.0)
    methods |= {
        "online relu": (p(m_online, steps=steps, rule="relu"), [{}]),
        "online power": (p(m_online, steps=steps, rule="power"), [dict(power=q) for q in powers]),
    }
    if case != "transformer":  # ~18 plain runs each: affordable for the perceptron only
        methods["online quadratic"] = (p(m_online, steps=steps, rule="quadratic"), [dict(cap=4.0)])
    methods |= {
        "block policy (10 blocks)": (
            p(m_block, steps=steps, blocks=10, outer_lr=outer["block"], epochs=epochs),
            [{}],
        ),
        "feature scorer": (
            p(m_feature, steps=steps, blocks=10, outer_lr=outer["feature"], epochs=epochs),
            [{}],
        ),
        "full search": (
            p(m_block, steps=steps, blocks=steps, outer_lr=outer["search"], epochs=epochs),
            [{}],
        ),
        "full search, warm": (
            p(
                m_block,
                steps=steps,
                blocks=steps,
                outer_lr=outer["search"],
                epochs=epochs,
                warm="relu",
            ),
            [{}],
        ),
    }
    if case == "transformer":  # a policy epoch costs ~3 plain runs of ~20 s: the full search only
        for name in ("block policy (10 blocks)", "feature scorer", "full search, warm"):
            del methods[name]
    searches = ("block policy (10 blocks)", "feature scorer", "full search", "full search, warm")
    grids = {name: (search_lrs if name in searches else lrs) for name in methods}
    return methods, grids


def kind_zero_shares(task: ll.Task, policy: torch.Tensor) -> dict:
    """Per planted kind: the share of its (t, n) entries with γ = 0 and its share of the weight."""
    out = {}
    for kind, mask in task.kinds.items():
        if int(mask.sum()) == 0:
            continue
        cols = policy[:, mask]
        out[kind] = dict(
            examples=int(mask.sum()),
            zero_share=float((cols == 0).double().mean()),
            weight_share=float(cols.sum() / policy.sum()),
        )
    return out


def curve(c: np.ndarray, every: int) -> list[float]:
    return [round(float(v), 6) for v in c[::every]]


def run_seed(case: str, seed: int, epochs: int, progress: bool, only=None) -> dict:
    """Run every trial of one seed; the raw record (every trial's curves) for :func:`summarize_seed`."""
    task, steps = make_task(case, seed)
    val = validation_task(task, task.n_desired // 4, seed)  # desired = fit, test = validation
    report = task.with_(desired=val.desired)  # desired = fit part, test = the reporting pool
    methods, grids = methods_for(case, steps, epochs)
    if only:
        methods = {k: v for k, v in methods.items() if k == "uniform" or k in only}
    start = time.perf_counter()
    trials = run_trials(
        val,
        report,
        methods,
        grids,
        progress=progress,
        inspect=functools.partial(kind_zero_shares, task),
    )
    return dict(
        case=case,
        seed=seed,
        steps=steps,
        vocab_size=task.vocab_size,
        n_fit=val.n_desired,
        n_val=val.n_test,
        n_test=task.n_test,
        seconds=time.perf_counter() - start,
        trials=trials,
    )


def summarize_seed(raw: dict) -> dict:
    """The committed summary of one seed: every trial's scores, and both regimes' comparisons."""
    trials, steps = raw["trials"], raw["steps"]
    family = "transformer" if raw["case"] == "transformer" else "perceptron"
    every = max(1, steps // 100)
    out = {k: raw[k] for k in ("seed", "steps", "n_fit", "n_val", "n_test", "seconds")}
    out["trials"] = [
        dict(
            method=t.method,
            params=t.params,
            lr=t.lr,
            seconds=t.seconds,
            val_auc=t.val_auc if math.isfinite(t.val_auc) else None,
            final_test=None if t.test is None else float(t.test[-1]),
            error=t.error,
        )
        for t in trials
    ]
    # the unit of cost: one plain run, the median over the uniform trials (each is one run)
    unit = float(np.median([t.seconds for t in trials if t.method == "uniform"]))
    out["plain_seconds_median"] = unit
    out["regimes"] = {}
    for regime, fixed in (("a", FIXED_LR[family]), ("b", None)):
        rows = compare(trials, vocab_size=raw["vocab_size"], fixed_lr=fixed, plain_seconds=unit)
        for row in rows:
            if "curve" in row:
                row["test_curve"] = curve(row.pop("curve"), every)
        out["regimes"][regime] = rows
    return clean_json(out)


def clean_json(x):
    """nan/inf as null, tensors and numpy numbers as plain numbers (strict JSON)."""
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=["clean512", "clean4096", "noisy512", "transformer"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every policy search (30; 3 for the Transformer, as in its chapter)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--only", nargs="+", default=None, help="run these methods (and uniform)")
    ap.add_argument(
        "--from-raw",
        action="store_true",
        help="re-summarise the trials saved in runs/practice/ instead of running them",
    )
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.epochs is None:
        a.epochs = 3 if a.case == "transformer" else 30
    out = a.out or OUT / f"{a.case}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = dict(
        case=a.case,
        # the command that ran the trials (one process per seed gives the same numbers)
        command=" ".join(
            ["python scripts/practice_grid.py", a.case, "--seeds", *map(str, a.seeds)]
            + (["--only", *(shlex.quote(m) for m in a.only)] if a.only else [])
        ),
        epochs=a.epochs,
        torch=torch.__version__,
        seeds=[],
    )
    raw_dir = ROOT / "runs" / "practice"  # every trial's curves (gitignored), to re-summarise
    raw_dir.mkdir(parents=True, exist_ok=True)
    for seed in a.seeds:
        raw_path = raw_dir / f"{a.case}-seed{seed}.pt"
        if a.from_raw:
            raw = torch.load(raw_path, weights_only=False)
        else:
            raw = run_seed(a.case, seed, a.epochs, a.progress, a.only)
            torch.save(raw, raw_path)
        result["seeds"].append(summarize_seed(raw))
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
        tmp.replace(out)
        print(f"{a.case} seed {seed}: {raw['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
