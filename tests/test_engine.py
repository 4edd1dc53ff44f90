"""learnlaw.core.engine: the one outer loop that every policy fit runs on."""

from __future__ import annotations

import pytest
import torch

import learnlaw as ll
import learnlaw.core.engine as engine
from learnlaw.core.policy import project_simplex
from learnlaw.policies.parametric import block_policy, block_pullback

F64 = torch.float64
T = 12


@pytest.fixture
def task():
    return ll.perceptron_task(dim=5, n_train=16, n_desired=8, n_test=8, dtype=F64, seed=2)


def test_every_fit_entry_point_runs_on_the_one_loop(task, monkeypatch):
    """optimize_policy and the four parametric fits all go through the engine's loop."""
    seen = []
    real = engine._run

    def spy(task, steps, lr, family, **kw):
        seen.append(family.name)
        return real(task, steps, lr, family, **kw)

    for module in ("learnlaw.core.optimize", "learnlaw.policies.parametric_fit",
                   "learnlaw.policies.schedule_fit"):  # fmt: skip
        monkeypatch.setattr(f"{module}._run", spy)
    ll.optimize_policy(task, T, 0.5, 1e-2, 1, progress=False)
    ll.fit.fit_block_policy(task, T, 0.5, 3, 1e-2, 1, progress=False)
    ll.fit.fit_feature_policy(task, T, 0.5, epochs=1, progress=False)
    ll.fit.fit_schedule(task, T, 0.5, 1)
    ll.fit.fit_joint(task, T, 0.5, 1, blocks=2)
    assert seen == ["full", "block", "feature", "schedule", "schedule+block"]


def test_a_family_of_ones_own_plugs_in(task):
    """A user-written family (one static row on the simplex, by projected GD) gives exactly
    what fit_block_policy with Q = 1 gives: the loop, not the entry point, does the fitting."""
    n, eps = task.n_train, 1e-2

    def update(p, g, epoch):
        return {"phi": project_simplex(p["phi"] - eps * g["phi"])}

    family = engine.Family(
        "static",
        {"phi": torch.full((1, n), 1.0 / n, dtype=F64)},
        lambda p: block_policy(p["phi"], T),
        lambda p, sweep: {"phi": block_pullback(sweep.grad, 1)},
        update,
    )
    out = engine.fit_loop(task, T, 0.5, family, epochs=4, validation=3, progress=False)
    ref = ll.fit.fit_block_policy(task, T, 0.5, 1, eps, 4, validation=3, progress=False)
    assert torch.equal(out.params["phi"], ref.phi) and out.best_epoch == ref.best_epoch
    assert [h["val_auc"] for h in out.history] == ref.column("val_auc")
    assert out.history[-1]["J"] < out.history[0]["J"]


def test_a_search_state_in_the_layout_before_the_engine_resumes(task, tmp_path):
    """A state.pt that optimize_policy wrote before it ran on the engine (keys policy, history,
    epoch, kept; no params) resumes to the uninterrupted search, bit for bit."""
    full = ll.optimize_policy(task, T, 0.5, 1e-2, 3, keep=(0, 3), progress=False)

    def interrupt(entry):
        if entry["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ll.optimize_policy(
            task, T, 0.5, 1e-2, 3, keep=(0, 3), checkpoint_dir=tmp_path, callback=interrupt,
            progress=False,
        )  # fmt: skip
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    legacy = dict(
        config=state["config"], policy=state["params"]["policy"], history=state["history"],
        epoch=state["epoch"], kept=state["kept"], world=1,
    )  # fmt: skip
    torch.save(legacy, tmp_path / "state.pt")
    resumed = ll.optimize_policy(
        task, T, 0.5, 1e-2, 3, keep=(0, 3), checkpoint_dir=tmp_path, resume=True, progress=False
    )
    assert torch.equal(resumed.policy, full.policy)
    assert resumed.column("J") == full.column("J")
    assert sorted(resumed.kept) == [0, 3] and torch.equal(resumed.kept[0], full.kept[0])


def test_a_corrupted_state_is_a_checkpoint_error(task, tmp_path):
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ll.fit.CheckpointError, match="state.pt"):
        ll.optimize_policy(
            task, T, 0.5, 1e-2, 2, checkpoint_dir=tmp_path, resume=True, progress=False
        )


def test_select_last_keeps_no_second_copy_and_reuses_the_last_run(task, monkeypatch):
    """select="last" (the full search) holds no best copy of φ, and the run of epoch E is the
    returned run: no extra training run after the loop."""
    calls = []
    real = engine.train

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train", counting)
    res = ll.optimize_policy(task, T, 0.5, 1e-2, 2, progress=False)
    assert len(calls) == 2  # the uniform baseline and epoch E
    assert torch.equal(res.final.desired_loss, real(task, res.policy, 0.5).desired_loss)


# ---- the kernels behind the loop: one protocol, no branch on a kernel class --------------------


def test_every_kernel_is_a_kernels_protocol_and_says_whether_it_factors(task):
    from learnlaw.core.dispatch import kernels_for
    from learnlaw.core.kernels import _KERNELS, Kernels

    for name in _KERNELS:
        k = kernels_for(task.with_(kernels=name))
        assert isinstance(k, Kernels), name
        assert k.factored == (name == "logistic"), name
    k = kernels_for(task.with_(kernels="logistic"))
    theta = torch.randn(task.n_params, dtype=F64)
    x, y = task.train
    r = k.residual(theta)
    gamma = torch.rand(task.n_train, dtype=F64)
    # ∇l_n = r_n x_n: the weighted gradient from the residual equals the kernel's own
    assert torch.allclose(k.xt @ (gamma * r), k.train_grad(theta, gamma), rtol=1e-13, atol=0)
    assert torch.allclose(r, torch.sigmoid(x @ theta) - y.to(F64), rtol=1e-13, atol=1e-15)


def test_no_module_above_the_kernels_names_a_kernel_class():
    """Online rules and controls ask kernels.factored, never isinstance(…, LogisticKernels)."""
    import ast
    from pathlib import Path

    classes = {"LogisticKernels", "AutodiffKernels", "ReverseOverReverseKernels"}
    root = Path(ll.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name in ("kernels.py", "dispatch.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name) and node.id in classes:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders


def test_progress_bars_obey_tqdm_disable():
    """progress=True shows a bar, unless TQDM_DISABLE=1 (tqdm's own switch) is set; tqdm reads
    it at import, hence fresh processes."""
    import os
    import subprocess
    import sys

    code = (
        "import learnlaw as ll\n"
        "t = ll.perceptron_task(dim=3, n_train=8, n_desired=4, n_test=4)\n"
        "ll.fit.fit_block_policy(t, 4, 0.5, 2, 0.01, 1, progress=True)\n"
        "ll.train(t, ll.uniform_policy(4, 8), 0.5, progress=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "block policy fit" in shown.stderr and "train" in shown.stderr
    env["TQDM_DISABLE"] = "1"
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_select_last_refuses_an_early_stop(task):
    """ "last" means epoch E: a divergence stop or patience would end before it."""
    n = task.n_train
    family = engine.Family(
        "static",
        {"phi": torch.full((1, n), 1.0 / n, dtype=F64)},
        lambda p: block_policy(p["phi"], T),
        lambda p, sweep: {"phi": block_pullback(sweep.grad, 1)},
        lambda p, g, epoch: {"phi": project_simplex(p["phi"] - 1e-2 * g["phi"])},
    )
    for kw in (dict(on_divergence="stop"), dict(on_divergence="raise", patience=2)):
        with pytest.raises(ll.LearnlawError, match='select="last"'):
            engine.fit_loop(task, T, 0.5, family, epochs=2, select="last", progress=False, **kw)
    out = engine.fit_loop(
        task, T, 0.5, family, epochs=2, select="last", on_divergence="raise", progress=False
    )
    assert out.best_epoch == 2 and len(out.history) == 3
