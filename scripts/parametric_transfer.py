"""Do parameterised policies transfer to held-out data where the full T×N search over-fits?

The paper's perceptron (learnlaw.perceptron_task(), T = 2000, η = 0.1, float32, one thread); the
test split is the chapter's larger one (16384 examples of the desired distribution, the first 512
being the default test set). Every fit holds out 128 of the 512 desired examples (--validation)
to choose its epoch; the test split only reports. Prints one JSON line per run. Examples:

    OMP_NUM_THREADS=1 nice -n 10 python scripts/parametric_transfer.py feature --trajectory \
        --columns bias,loss,grad_norm --blocks 10 --link sparsemax --optimizer gd \
        --outer-lr 1e-2 --epochs 60 --validation 128 --patience 5
    OMP_NUM_THREADS=1 nice -n 10 python scripts/parametric_transfer.py block --blocks 10 \
        --outer-lr 3e-7 --epochs 30 --validation 128 --patience 5
"""

import argparse
import json
import math

import torch

import learnlaw as ll
from learnlaw.core.engine import split_validation
from learnlaw.core.metrics import empirical_acceleration_ratio

p = argparse.ArgumentParser()
p.add_argument("family", choices=["block", "feature"])
p.add_argument("--blocks", type=int, default=10)
p.add_argument("--outer-lr", type=float, required=True)
p.add_argument("--epochs", type=int, default=50)
p.add_argument("--schedule", default="constant")
p.add_argument("--validation", type=int, default=None)
p.add_argument("--patience", type=int, default=None)
p.add_argument("--link", default="softmax")
p.add_argument("--temperature", type=float, default=1.0)
p.add_argument("--optimizer", default="adam")
p.add_argument("--kinds", action="store_true", help="oracle kind indicators as features")
p.add_argument("--trajectory", action="store_true", help="per-block features (uniform run)")
p.add_argument("--columns", default=None, help="comma-separated feature columns to keep")
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--n-test", type=int, default=16384)
a = p.parse_args()
torch.set_num_threads(1)
task = ll.perceptron_task()
task = task.with_(test=ll.perceptron_task(n_test=a.n_test).test)
common = dict(validation=a.validation, patience=a.patience, schedule=a.schedule, progress=False)
if a.family == "block":
    res = ll.fit.fit_block_policy(task, a.steps, a.lr, a.blocks, a.outer_lr, a.epochs, **common)
else:
    fit_task, _ = split_validation(task, a.validation, 0)  # the fit's own held-out draw
    kw = dict(use_kinds=a.kinds, columns=a.columns.split(",") if a.columns else None)
    if a.trajectory:
        feats, names = ll.policies.trajectory_features(fit_task, a.steps, a.lr, a.blocks, **kw)
    else:
        feats, names = ll.policies.example_features(fit_task, **kw)
    res = ll.fit.fit_feature_policy(
        task,
        a.steps,
        a.lr,
        features=feats,
        feature_names=names,
        blocks=a.blocks,
        link=a.link,
        temperature=a.temperature,
        outer_lr=a.outer_lr,
        epochs=a.epochs,
        optimizer=a.optimizer,
        **common,
    )
nan = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 4)  # noqa
out = dict(
    args=vars(a),
    epochs_run=len(res.history) - 1,
    best_epoch=res.best_epoch,
    seconds=round(res.seconds, 1),
    ar_test=nan(empirical_acceleration_ratio(res.baseline.test_loss, res.run.test_loss)),
    ar_desired=nan(empirical_acceleration_ratio(res.baseline.desired_loss, res.run.desired_loss)),
    cr_test=nan(res.run.compression_ratio("test")),
    cr_test_uniform=nan(res.baseline.compression_ratio("test")),
    final_test=nan(float(res.run.test_loss[-1])),
    final_test_uniform=nan(float(res.baseline.test_loss[-1])),
    zero_fraction=nan(float((res.policy == 0).double().mean())),
    J=[nan(x) for x in res.column("J")],
    ar_test_curve=[nan(x) for x in res.column("ar_test")],
    test_auc_curve=[nan(x) for x in res.column("test_auc")],
    test_auc_uniform=nan(res.baseline.auc("test")),
    ar_val_curve=[nan(x) for x in res.column("ar_val")],
)
if res.phi.ndim == 2 and res.feature_names:
    out["phi"] = {
        n: [nan(float(v)) for v in res.phi[:, i]] for i, n in enumerate(res.feature_names)
    }
print(json.dumps(out))
