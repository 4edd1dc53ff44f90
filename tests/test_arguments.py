"""Every public function refuses a wrong scalar argument with a learnlaw error, never torch's.

For each function in ``learnlaw.__all__`` that takes a scalar argument (an int, a float, a bool
or a string choice), each such argument is replaced by a value of the wrong type (a string, a
tensor, a float for an int, ...) and, where the argument has a range, by a value out of it. The
call must raise ``TypeError``/``ValueError`` whose traceback ends in learnlaw's code, with a
message that names the argument. ``test_every_scalar_argument_is_covered`` keeps the table
complete: a new public function or argument must be added here (or exempted, with the reason).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

import learnlaw
from learnlaw.analysis import paired

LEARNLAW = Path(learnlaw.__file__).resolve().parent
POLICY = torch.full((30, 256), 1 / 256)  # what a caller may pass for steps by mistake


@pytest.fixture(scope="module")
def env():
    task = learnlaw.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4)
    policy = learnlaw.uniform_policy(3, 8)
    return {"task": task, "policy": policy, "curve": torch.tensor([3.0, 2.0, 1.0])}


def _plain(fn):
    return lambda e, **kw: fn(**kw)


def _with_task(fn, *names):
    return lambda e, **kw: fn(*(e[n] for n in names), **kw)


def _fit_loop(e, **kw):
    """learnlaw.fit.fit_loop on a one-row block family of the arguments' task."""
    from learnlaw.policies.parametric import block_policy, block_pullback

    n = e["task"].n_train
    fam = learnlaw.fit.Family(
        "static",
        {"phi": torch.full((1, n), 1.0 / n)},
        lambda p: block_policy(p["phi"], 3),
        lambda p, sweep: {"phi": block_pullback(sweep.grad, 1)},
        lambda p, g, epoch: {"phi": learnlaw.project_simplex(p["phi"] - 0.1 * g["phi"])},
    )
    return learnlaw.fit.fit_loop(e["task"], family=fam, **kw)


def _enter(e, **kw):
    with learnlaw.profile.matmul_precision(**kw):
        pass


L = learnlaw
# name → (call, valid keyword arguments, {argument: kind}); kinds: "int", "int+" (≥ 1),
# "int0" (≥ 0), "steps", "num" (any real), "num+" (> 0), "num0" (≥ 0), "lr", "frac" (in
# [0, 1]), "frac+" (in (0, 1]), "factor" (> 1 or None), "bool", ("choice", valid),
# "int+?"/"num0?"/"num+?" (None allowed)
TABLE = {
    "train": (
        _with_task(L.train, "task", "policy"),
        dict(lr=0.1),
        {
            "lr": "lr",
            "keep_params": "bool",
            "progress": "bool",
            "divergence_factor": "factor",
            "tf32": "bool",
        },
    ),
    "check_divergence": (
        _plain(L.training.check_divergence),
        dict(loss=1.0, step=1, lr=0.1, initial=1.0),
        {"step": "int0", "lr": "lr", "factor": "factor"},
    ),
    "adjoint_sweep": (
        _with_task(L.training.adjoint_sweep, "task", "policy"),
        dict(lr=0.1),
        {
            "lr": "lr",
            "checkpoint_every": "ckpt",
            "track_test": "bool",
            "progress": "bool",
            "divergence_factor": "factor",
            "tf32": "bool",
        },
    ),
    "policy_gradient": (
        _with_task(L.policy_gradient, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr", "checkpoint_every": "ckpt", "divergence_factor": "factor", "tf32": "bool"},
    ),
    "schedule_gradient": (
        _with_task(L.schedule_gradient, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr", "checkpoint_every": "ckpt", "divergence_factor": "factor", "tf32": "bool"},
    ),
    "optimize_policy": (
        _with_task(L.optimize_policy, "task"),
        dict(steps=3, lr=0.1, outer_lr=0.1, epochs=1, progress=False),
        {
            "steps": "steps",
            "lr": "lr",
            "outer_lr": "lr",
            "epochs": "int0",
            "schedule": ("choice", "constant"),
            "uniform_steps": "int0",
            "checkpoint_dir": "path",
            "checkpoint_every": "ckpt",
            "resume": "bool",
            "progress": "bool",
            "divergence_factor": "factor",
            "tf32": "bool",
            "outer_step": ("choice", "plain"),
        },
    ),
    "online_policy": (
        _with_task(L.online_policy, "task"),
        dict(steps=3, lr=0.1),
        {
            "steps": "steps",
            "lr": "lr",
            "rule": ("choice", "relu"),
            "control": ("choice", "direction"),
            "step": ("choice", "fixed"),
            "keep_params": "bool",
            "keep_contributions": "bool",
            "progress": "bool",
            "divergence_factor": "factor",
        },
    ),
    "online_policy[power]": (
        _with_task(L.online_policy, "task"),
        dict(steps=3, lr=0.1, rule="power", power=2.0),
        {"power": "num+"},
    ),
    "online_policy[quadratic]": (
        _with_task(L.online_policy, "task"),
        dict(steps=3, lr=0.1, rule="quadratic"),
        {"cap": "cap", "iters": "int+", "tol": "num0"},
    ),
    "online_policy[line_search]": (
        _with_task(L.online_policy, "task"),
        dict(steps=3, lr=0.1, step="line_search"),
        {"max_lr": "num+?", "trust": "cap"},
    ),
    "replay_policy": (
        _with_task(L.policies.replay_policy, "task", "policy"),
        dict(lr=0.1),
        {
            "lr": "lr",
            "control": ("choice", "direction"),
            "keep_params": "bool",
            "progress": "bool",
            "divergence_factor": "factor",
            "tf32": "bool",
        },
    ),
    "random_sparse_policy": (
        _with_task(L.policies.random_sparse_policy, "policy"),
        dict(seed=0),
        {"seed": "int0"},
    ),
    "uniform_policy": (
        _plain(L.uniform_policy),
        dict(steps=3, n=8),
        {"steps": "steps", "n": "int+"},
    ),
    "validate_policy": (
        _with_task(L.policies.validate_policy, "policy"),
        {},
        {"steps": "int+?", "n": "int+?", "atol": "num0?"},
    ),
    "project_simplex": (_with_task(L.project_simplex, "policy"), {}, {"max_iter": "int0"}),
    "contributions": (_with_task(L.contributions, "task"), {}, {"split": ("choice", "desired")}),
    "contribution_trajectory": (
        lambda e, **kw: L.law.contribution_trajectory(
            e["task"], e["task"].spec.flatten(e["task"].params0)[None], **kw
        ),
        {},
        {"split": ("choice", "desired"), "block": "int+"},
    ),
    "run_contributions": (
        _with_task(L.law.run_contributions, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr", "split": ("choice", "desired")},
    ),
    "learning_speeds": (
        _with_task(L.law.learning_speeds, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr"},
    ),
    "learned_weight_ratios": (
        lambda e, **kw: L.law.learned_weight_ratios(e["policy"], torch.ones(3, 8), **kw),
        {},
        {"threshold": "num0"},
    ),
    "reach_step": (_with_task(L.scaling.reach_step, "curve"), dict(level=1.5), {"level": "num"}),
    "compression_ratio": (
        _with_task(L.compression_ratio, "curve"),
        dict(vocab_size=2),
        {"vocab_size": "int2"},
    ),
    "kkt_report": (
        lambda e, **kw: L.theory.kkt_report(e["policy"], torch.zeros(3, 8), **kw),
        {},
        {"tol": "num0"},
    ),
    "fd_directional_derivative": (
        lambda e, **kw: L.theory.fd_directional_derivative(
            e["task"], e["policy"], direction=torch.zeros(3, 8), **kw
        ),
        dict(lr=0.1),
        {"lr": "lr", "eps": "num+"},
    ),
    "future_contributions": (
        lambda e, **kw: L.theory.future_contributions(torch.zeros(3, 8), **kw),
        dict(lr=0.1),
        {"lr": "lr"},
    ),
    "fit_scaling_law": (
        lambda e, **kw: L.scaling.fit_scaling_law([1, 2, 3, 4, 5], [3.0, 2.0, 1.5, 1.3, 1.2], **kw),
        {},
        {"t0": "num0?", "L0": "num?"},
    ),
    "fit_scaling_laws": (
        lambda e, **kw: L.scaling.fit_scaling_laws(
            [1, 2, 3, 4, 5], [[3.0, 2.0, 1.5, 1.3, 1.2]], **kw
        ),
        {},
        {"shared_L0": "bool", "t0": "num0?", "L0": "num?"},
    ),
    "compressed_bits_bound": (
        _plain(L.compress.compressed_bits_bound),
        dict(auc_bits=10.0, n_symbols=5, vocab_size=4),
        {"auc_bits": "num0", "n_symbols": "int0", "vocab_size": "int0"},
    ),
    "encode": (lambda e, **kw: L.compress.encode(b"abc", **kw), {}, {"progress": "bool"}),
    "compress": (lambda e, **kw: L.compress.compress(b"abc", **kw), {}, {"progress": "bool"}),
    "decompress": (lambda e, **kw: L.compress.decompress(b"abc", **kw), {}, {"progress": "bool"}),
    "prequential_code_length": (
        lambda e, **kw: L.compress.prequential_code_length(b"abc", **kw),
        {},
        {"progress": "bool"},
    ),
    "matmul_precision": (_enter, dict(tf32=False), {"tf32": "bool"}),
    "sequence_loss": (
        lambda e, **kw: L.tasks.sequence_loss(
            torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), **kw
        ),
        dict(pad_id=0),
        {"pad_id": "int"},
    ),
    "generate_stories": (_plain(L.tasks.generate_stories), dict(n=2), {"n": "int0", "seed": "int"}),
    "train_tokenizer": (
        lambda e, **kw: L.tasks.train_tokenizer(["a b"], **kw),
        dict(vocab_size=300),  # ≥ 259: 3 special tokens + 256 bytes
        {"vocab_size": "int2", "min_frequency": "int+"},
    ),
    "encode_sequences": (
        lambda e, **kw: L.tasks.encode_sequences(None, ["a"], **kw),
        dict(max_len=4),
        {"max_len": "int+", "add_eos": "bool"},
    ),
    "perturb": (
        lambda e, **kw: L.tasks.perturb(torch.ones(5, dtype=torch.long), **kw),
        dict(vocab_size=10, pad_id=0),
        {"n_ops": "int0", "vocab_size": "int2", "pad_id": "int", "min_len": "int+"},
    ),
    "perturb_fraction": (
        lambda e, **kw: L.tasks.perturb_fraction(torch.ones(2, 5, dtype=torch.long), **kw),
        dict(vocab_size=10, pad_id=0),
        {"fraction": "frac", "n_ops": "int0", "vocab_size": "int2", "pad_id": "int"},
    ),
    "load_tinystories": (
        lambda e, **kw: L.tasks.load_tinystories("/nonexistent", **kw),
        {},
        {"split": ("choice", "train"), "n": "int+?"},
    ),
    "perceptron_task": (
        _plain(L.perceptron_task),
        dict(dim=4, n_train=8, n_desired=4, n_test=4),
        {
            "dim": "int+",
            "n_train": "int+",
            "n_desired": "int+",
            "n_test": "int+",
            "seed": "int",
            "train_std": "num+",
            "desired_mean": "num",
            "noisy": "num0",
            "duplicates": "num0",
            "combinations": "num0",
            "easy": "num0",
            "easy_margin": "num+",
            "desired_noise": "num0",
            "desired_pool": "int+?",
        },
    ),
    "transformer_task": (
        _plain(L.transformer_task),
        {},
        {
            "n_train": "int+?",
            "n_desired": "int+?",
            "n_test": "int+?",
            "max_len": "int+?",
            "vocab_size": "int+?",
            "d_model": "int+?",
            "n_heads": "int+?",
            "n_layers": "int+?",
            "chunk_size": "int+?",
            "perturb_fraction": "frac",
            "n_ops": "int0",
            "seed": "int",
        },
    ),
    "block_policy": (
        lambda e, **kw: L.policies.block_policy(torch.zeros(2, 8), **kw),
        dict(steps=4),
        {"steps": "steps"},
    ),
    "feature_policy": (
        lambda e, **kw: L.policies.feature_policy(torch.zeros(1, 2), torch.zeros(8, 2), **kw),
        dict(steps=4),
        {"steps": "steps", "link": ("choice", "softmax"), "temperature": "num+"},
    ),
    "example_features": (
        _with_task(L.policies.example_features, "task"),
        {},
        {"grad_norm": "bool", "use_kinds": "bool", "standardize": "bool"},
    ),
    "trajectory_features": (
        _with_task(L.policies.trajectory_features, "task"),
        dict(steps=3, lr=0.1, blocks=1),
        {
            "steps": "steps",
            "lr": "lr",
            "blocks": "int+",
            "grad_norm": "bool",
            "use_kinds": "bool",
            "standardize": "bool",
        },
    ),
    "fit_block_policy": (
        _with_task(L.fit.fit_block_policy, "task"),
        dict(steps=3, lr=0.1, blocks=1, outer_lr=0.1, epochs=1, progress=False),
        {
            "steps": "steps",
            "lr": "lr",
            "blocks": "int+",
            "outer_lr": "lr",
            "epochs": "int0",
            "schedule": ("choice", "constant"),
            "validation_seed": "int",
            "patience": "int+?",
            "track_test": "bool",
            "checkpoint_every": "ckpt",
            "progress": "bool",
            "tf32": "bool",
            "outer_step": ("choice", "plain"),
        },
    ),
    "fit_feature_policy": (
        _with_task(L.fit.fit_feature_policy, "task"),
        dict(steps=3, lr=0.1, epochs=1, progress=False),
        {
            "steps": "steps",
            "lr": "lr",
            "blocks": "int+",
            "link": ("choice", "softmax"),
            "temperature": "num+",
            "outer_lr": "lr",
            "epochs": "int0",
            "optimizer": ("choice", "adam"),
            "schedule": ("choice", "constant"),
            "validation_seed": "int",
            "patience": "int+?",
            "track_test": "bool",
            "checkpoint_every": "ckpt",
            "progress": "bool",
            "tf32": "bool",
            "outer_step": ("choice", "plain"),
        },
    ),
    "fit_loop": (
        _fit_loop,
        dict(steps=3, lr=0.1, epochs=1, progress=False),
        {
            "steps": "steps",
            "lr": "lr",
            "epochs": "int0",
            "validation_seed": "int",
            "patience": "int+?",
            "track_test": "bool",
            "checkpoint_every": "ckpt",
            "checkpoint_dir": "path",
            "resume": "bool",
            "progress": "bool",
            "tf32": "bool",
            "outer_step": ("choice", "plain"),
            "select": ("choice", "best"),
            "on_divergence": ("choice", "stop"),
            "divergence_factor": "factor",
            "timed": "bool",
        },
    ),
    "fit_schedule": (
        _with_task(L.fit.fit_schedule, "task"),
        dict(steps=3, lr=0.1, epochs=1),
        {
            "steps": "steps",
            "lr": "lr",
            "epochs": "int0",
            "blocks": "int+?",
            "outer_lr": "lr",
            "lr_norm": ("choice", "rms"),
            "validation_seed": "int",
            "patience": "int+?",
            "track_test": "bool",
            "checkpoint_every": "ckpt",
            "checkpoint_dir": "path",
            "resume": "bool",
            "progress": "bool",
            "tf32": "bool",
        },
    ),
    "fit_joint": (
        _with_task(L.fit.fit_joint, "task"),
        dict(steps=3, lr=0.1, epochs=1, blocks=1),
        {
            "steps": "steps",
            "lr": "lr",
            "epochs": "int0",
            "family": ("choice", "block"),
            "blocks": "int+",
            "lr_blocks": "int+?",
            "outer_lr": "num+?",
            "lr_outer_lr": "lr",
            "lr_norm": ("choice", "rms"),
            "link": ("choice", "softmax"),
            "temperature": "num+",
            "optimizer": ("choice", "adam"),
            "validation_seed": "int",
            "patience": "int+?",
            "track_test": "bool",
            "checkpoint_every": "ckpt",
            "checkpoint_dir": "path",
            "resume": "bool",
            "progress": "bool",
            "tf32": "bool",
        },
    ),
    "schedule_kkt_residual": (
        _with_task(L.theory.schedule_kkt_residual, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr", "blocks": "int+?", "checkpoint_every": "ckpt"},
    ),
    "total_free_gradient": (
        _with_task(L.theory.total_free_gradient, "task", "policy"),
        {},
        {"checkpoint_every": "ckpt"},
    ),
    "total_free_residual": (
        _with_task(L.theory.total_free_residual, "task", "policy"),
        {},
        {"checkpoint_every": "ckpt"},
    ),
    "sharpness": (
        _with_task(L.theory.sharpness, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr", "every": "int+", "iters": "int+", "seed": "int"},
    ),
    "select_lr": (
        lambda e, **kw: L.select_lr(e["task"], lambda t, lr: None, [0.1], **kw),
        {},
        {"n_holdout": "int+?", "holdout_seed": "int", "criterion": ("choice", "auc")},
    ),
    "reweight": (
        lambda e, **kw: L.reweight(
            e["task"].model, e["task"].loss_fn, e["task"].train, e["task"].desired, **kw
        ),
        dict(steps=3, lrs=(0.1,), progress=False),
        {
            "steps": "steps",
            "rule": ("choice", "relu"),
            "n_holdout": "int+?",
            "holdout_seed": "int",
            "criterion": ("choice", "auc"),
            "vocab_size": "int+?",
            "progress": "bool",
        },
    ),
    "tune_lr": (
        lambda e, **kw: L.fit.tune_lr(lambda lr: None, [0.1], **kw),
        {},
        {"criterion": ("choice", "auc"), "split": ("choice", "test")},
    ),
    "validation_task": (
        _with_task(L.fit.validation_task, "task"),
        {},
        {"n_holdout": "int+?", "seed": "int"},
    ),
    "importance_policy": (
        _with_task(L.policies.importance_policy, "task"),
        dict(steps=3),
        {"steps": "steps", "exponent": "num0"},
    ),
    "importance_weights": (
        _with_task(L.policies.importance_weights, "task"),
        {},
        {"exponent": "num0"},
    ),
    "evaluate_policy": (
        _with_task(L.compare.evaluate_policy, "task", "policy"),
        dict(lr=0.1),
        {"lr": "lr"},
    ),
    "schedule_pullback": (
        lambda e, **kw: L.fit.schedule_pullback(torch.ones(4), torch.full((4,), 0.1), **kw),
        dict(blocks=2),
        {"blocks": "int+"},
    ),
    "block_schedule": (
        lambda e, **kw: L.policies.block_schedule(torch.full((2,), 0.1), **kw),
        dict(steps=4),
        {"steps": "steps"},
    ),
    "fit_sim_cr": (
        lambda e, **kw: L.law.fit_sim_cr([1.0, 1.5, 2.0, 3.0], [0.1, 0.2, 0.3, 0.5], **kw),
        dict(b_max=None),
        {"b_max": "num+?"},
    ),
    "kind_weight_shares": (
        lambda e, **kw: L.law.kind_weight_shares(e["policy"], {"a": torch.arange(8) < 4}, **kw),
        {},
        {"relative": "bool"},
    ),
    "law_diagnostics": (
        _with_task(L.law.law_diagnostics, "task", "policy"),
        dict(lr=0.1),
        {
            "lr": "lr",
            "split": ("choice", "desired"),
            "loss_threshold": "num0",
            "before": "int+?",
            "head": "int+",
            "grid": "int2",
        },
    ),
    "mlp_task": (
        _plain(L.tasks.mlp_task),
        dict(dim=2, hidden=3, n_train=8, n_desired=4, n_test=4),
        {
            "dim": "int+",
            "hidden": "int+",
            "classes": "int2",
            "layers": "int+",
            "n_train": "int+",
            "n_desired": "int0",
            "n_test": "int0",
            "seed": "int",
            "chunk_size": "int+?",
            "kernels": ("choice", "auto"),
        },
    ),
    "resolve_checkpointing": (
        _plain(L.training.resolve_checkpointing),
        dict(checkpoint_every=None, steps=4),
        {"checkpoint_every": "ckpt", "steps": "steps"},
    ),
    "classic_schedule": (
        _plain(L.policies.classic_schedule),
        dict(kind="cosine", steps=4, lr=0.1),
        {
            "kind": ("choice", "cosine"),
            "steps": "steps",
            "lr": "lr",
            "warmup": "frac",
            "final": "frac",
        },
    ),
    # learnlaw.analysis.paired (not in learnlaw.__all__; its scalar arguments are checked alike)
    "paired_ratio": (
        lambda e, **kw: paired.paired_ratio([2.0, 3.0], [1.0, 1.5], **kw),
        {},
        {"confidence": "frac+"},
    ),
    "time_to_target": (
        _with_task(paired.time_to_target, "curve"),
        dict(target=1.5),
        {"target": "num"},
    ),
    "beats": (
        lambda e, **kw: paired.beats((1.1, 1.3), [0.9, 0.8], **kw),
        {},
        {"threshold": "num+"},
    ),
}

TINY_TRANSFORMER = dict(
    n_train=4, n_desired=2, n_test=2, max_len=4, vocab_size=8, d_model=4, n_heads=1, n_layers=1,
    chunk_size=None, steps=3, peaks=False,
)  # fmt: skip
TABLE["project_seconds"] = (
    _plain(L.profile.project_seconds),
    dict(flops=1e12, tflops=8.1),
    {"flops": "num0", "tflops": "num+", "sustained_fraction": "frac+"},
)
TABLE["task_costs"] = (
    _with_task(L.profile.task_costs, "task"),
    dict(steps=3, kernels=(), peaks=False),
    {"steps": "steps", "checkpoint_every": "ckpt", "track_test": "bool", "peaks": "bool"},
)
TABLE["transformer_costs"] = (
    _plain(L.profile.transformer_costs),
    TINY_TRANSFORMER,
    {
        **{k: "int+" for k in TINY_TRANSFORMER if k not in ("chunk_size", "steps", "peaks")},
        "chunk_size": "int+?",
        "steps": "steps",
        "checkpoint_every": "ckpt",
        "track_test": "bool",
        "peaks": "bool",
    },
)
TABLE["causal_lm_task"] = (
    lambda e, **kw: L.tasks.causal_lm_task(None, None, None, None, **kw),
    dict(pad_id=0),
    {"pad_id": "int0", "chunk_size": "int+?", "eval_mode": "bool"},
)

# scalar arguments that are not checked here, and why
EXEMPT = {
    "check_divergence": {"what"},  # a free-form label of the message
    "transformer_task": {
        "device",
        "corpus",
        "scale",
        "attn_scale",
        "kernels",
    },  # checked by torch / resolve
    "perceptron_task": {"device", "kernels"},
    "load_tinystories": {"path"},
    "fit_scaling_law": {"refine"},  # bool or a string, validated by _refine_space
    "fit_scaling_laws": {"refine", "criterion"},
    "uniform_policy": {"device"},
    "classic_schedule": {"device"},  # checked by torch
    "causal_lm_task": {"name", "kernels"},  # a free-form label; kernels resolved by the Task
    "mlp_task": {"device"},  # checked by torch
    # learnlaw.data: names of committed files and chapters, looked up in the package data (an
    # unknown one gets a LearnlawError naming the ones there); the rest are the caller's dicts
    "load_json": {"name"},
    "snapshot": {"chapter"},
    "check_snapshot": {"chapter", "results", "namespace", "curves"},
    "platform": {"device"},  # any torch device name, checked by torch
}

INT_BAD = ["3", 2.5, True, POLICY]
NUM_BAD = ["0.1", POLICY, True]
RANGE_BAD = {
    "int+": 0,
    "int0": -1,
    "int2": 1,
    "steps": 0,
    "num+": 0.0,
    "num0": -1.0,
    "lr": -0.1,
    "frac": 1.5,
    "factor": 0.5,
    "int+?": 0,
    "num0?": -1.0,
    "num+?": 0.0,
    "ckpt": 0,
    "cap": 0.5,
    "frac+": 0.0,
}


def _cases():
    for fname, (_, _, args) in TABLE.items():
        for arg, kind in args.items():
            if isinstance(kind, tuple):
                yield fname, arg, 3, TypeError
                yield fname, arg, "no-such-" + str(kind[1]), ValueError
                continue
            if kind == "path":
                yield fname, arg, 3, TypeError
                yield fname, arg, POLICY, TypeError
                continue
            if kind == "bool":
                bad = ["yes", 1, POLICY]
            elif kind.startswith(("int", "steps", "ckpt")):
                bad = INT_BAD + (["often"] if kind == "ckpt" else [])
            else:
                bad = NUM_BAD
            for b in bad:
                yield (
                    fname,
                    arg,
                    b,
                    TypeError if not isinstance(b, str) or kind != "ckpt" else ValueError,
                )
            if kind in RANGE_BAD:
                yield fname, arg, RANGE_BAD[kind], ValueError


def _label(v):
    return f"tensor{tuple(v.shape)}" if isinstance(v, torch.Tensor) else repr(v)


CASES = list(_cases())


@pytest.mark.parametrize(
    "fname,arg,bad,kind", CASES, ids=[f"{f}-{a}-{_label(b)}" for f, a, b, _ in CASES]
)
def test_a_wrong_scalar_argument_gets_a_learnlaw_error(env, fname, arg, bad, kind):
    call, valid, _ = TABLE[fname]
    with pytest.raises((TypeError, ValueError)) as info:
        call(env, **{**valid, arg: bad})
    last = Path(str(info.traceback[-1].path)).resolve()
    assert LEARNLAW in last.parents, f"raised from {last}, not from learnlaw: {info.value}"
    assert arg in str(info.value) or arg.replace("_", " ") in str(info.value), str(info.value)


def test_a_policy_passed_as_steps_names_the_mix_up(env):
    with pytest.raises(
        TypeError,
        match=r"steps must be an int T ≥ 1.*tensor of shape \(30, 256\)"
        r".*initial_policy=",
    ):
        L.optimize_policy(env["task"], POLICY, 0.1, 0.1, 1)


def _scalar(annotation) -> bool:
    a = str(annotation)
    if any(
        t in a
        for t in (
            "Tensor",
            "Callable",
            "Sequence",
            "Iterable",
            "tuple",
            "list",
            "dict",
            "Task",
            "Config",
            "bytes",
            "Data",
            "Generator",
        )
    ):
        return False
    return any(t in a for t in ("int", "float", "bool", "str"))


def _public():
    """Every public name: the top level's and each namespace's ``__all__``."""
    for mod in (learnlaw, *learnlaw._NAMESPACES):
        for name in mod.__all__:
            yield name, getattr(mod, name)


def test_every_scalar_argument_is_covered():
    missing = []
    for name, fn in _public():
        if isinstance(fn, type) or not callable(fn):
            continue
        exempt = EXEMPT.get(name, set())
        if exempt == "*":
            continue
        covered = {
            a for key, (_, _, args) in TABLE.items() if key.split("[")[0] == name for a in args
        }
        for p in inspect.signature(fn).parameters.values():
            if _scalar(p.annotation) and p.name not in covered and p.name not in exempt:
                missing.append(f"{name}({p.name})")
    assert not missing, f"add these to TABLE (or EXEMPT, with the reason): {missing}"
