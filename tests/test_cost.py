"""Counted FLOPs and tracked peak memory (learnlaw.analysis.cost) against closed forms."""

import math

import pytest
import torch

from learnlaw.analysis.cost import (
    GPU_FP32_PEAK_TFLOPS,
    PAPER_COUNTS,
    AllocationTracker,
    count_flops,
    epoch_step_counts,
    meta_peak_bytes,
    meta_transformer_task,
    project_seconds,
    synthetic_transformer_task,
    task_costs,
    transformer_costs,
    transformer_forward_flops,
)
from learnlaw.core.dispatch import kernels_for
from learnlaw.tasks.lm_task import PAPER_SCALE

TINY = dict(
    n_train=24,
    n_desired=8,
    n_test=12,
    max_len=8,
    vocab_size=40,
    d_model=16,
    n_heads=2,
    n_layers=2,
    chunk_size=10,
)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_linear_flops_closed_form(device):
    b, i, o = 7, 13, 5
    lin = torch.nn.Linear(i, o, device=device)
    x = torch.randn(b, i, device=device)
    assert count_flops(lin, x) == 2 * b * i * o
    # forward + backward (input and weight gradients): 3x
    x.requires_grad_(True)
    assert count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * b * i * o


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_peak_of_a_matmul_chain(device):
    n = 64
    nbytes = n * n * 4
    x = torch.ones(n, n, device=device)

    def chain():
        y = x @ x  # 1 live
        z = y @ x  # 2 live
        del y  # 1 live
        w = z @ x  # 2 live
        v = w @ x  # 3 live: the peak
        del z, w
        return v.sum()  # v + a scalar

    with AllocationTracker() as mem:
        out = chain()
    assert mem.peak == 3 * nbytes
    assert mem.current == out.untyped_storage().nbytes()  # only the returned scalar is left
    assert meta_peak_bytes(chain) == 3 * nbytes


def test_tracker_skips_views_inplace_and_baseline():
    x = torch.ones(100, 100, device="meta")

    def fn():
        x.mul_(2)  # in place on a baseline storage: not an allocation
        v = x.view(-1)[:10]  # a view: same storage
        return v.t() if v.dim() == 2 else v

    assert meta_peak_bytes(fn) == 0


def test_meta_task_matches_the_real_model():
    meta = meta_transformer_task(**TINY)
    real = synthetic_transformer_task(**TINY, device="cpu")
    assert meta.device.type == "meta" and real.device.type == "cpu"
    assert meta.n_params == real.n_params
    assert meta.spec.shapes == real.spec.shapes
    assert real.train[0].shape == (TINY["n_train"], TINY["max_len"])
    assert float(real.losses().mean()) == pytest.approx(math.log(TINY["vocab_size"]), rel=0.3)


def test_meta_peak_equals_cpu_peak():
    sizes = dict(TINY, chunk_size=None, n_train=6)
    peaks = []
    for device in ("meta", "cpu"):
        task = synthetic_transformer_task(**sizes, device=device, kernels="autodiff")
        theta = task.spec.flatten(task.params0)
        gamma = torch.full((task.n_train,), 1 / task.n_train, device=device)
        kern = kernels_for(task)
        with torch.no_grad():
            peaks.append(meta_peak_bytes(kern.reverse, theta, gamma, torch.ones_like(theta)))
    assert peaks[0] == peaks[1] > 0


def test_costs_are_consistent():
    steps = 10
    c = transformer_costs(**TINY, steps=steps)
    fwd = dict(TINY, n=TINY["n_train"])
    n_fwd = transformer_forward_flops(**fwd)
    assert c["train_step_flops"] == 3 * n_fwd
    k_fwd = transformer_forward_flops(**dict(fwd, n=TINY["n_desired"]))
    t_fwd = transformer_forward_flops(**dict(fwd, n=TINY["n_test"]))
    assert c["loss_eval_flops"] == k_fwd + t_fwd
    assert c["desired_grad_flops"] == 3 * k_fwd
    # the N contributions: one desired gradient, then a jvp (primal and tangent) over N
    assert c["contribution_flops"] == c["desired_grad_flops"] + 3 * n_fwd
    counts = c["counts"]
    assert counts["k"] == 4 and counts["recomputed_steps"] == 10 - 3  # segments 4, 4, 2
    assert (
        c["plain_run_flops"] == steps * c["train_step_flops"] + (steps + 1) * (c["loss_eval_flops"])
    )
    for name, rev in c["reverse_step_flops"].items():
        # a reverse step costs between one and a few forward+backward passes
        assert 1.5 * c["train_step_flops"] <= rev <= 5 * c["train_step_flops"]
        parts = (
            c["plain_run_flops"]
            + counts["recomputed_steps"] * c["train_step_flops"]
            + steps * rev
            + steps * c["desired_grad_flops"]
        )
        assert c["policy_epoch_flops"][name] == parts
        assert c["epoch_over_plain"][name] == pytest.approx(parts / c["plain_run_flops"])
    # peaks: a reverse step holds more than a training gradient; the jvp more than rr
    assert 0 < c["train_chunk_peak_bytes"] < c["reverse_chunk_peak_bytes"]["autodiff_rr"]
    assert c["reverse_chunk_peak_bytes"]["autodiff_rr"] < c["reverse_chunk_peak_bytes"]["autodiff"]
    p = c["n_params"]
    assert c["checkpoint_bytes"] == (steps // 4 + 1) * p * 4
    assert c["trajectory_bytes"] == (steps // 4 + 1 + 4) * p * 4


def test_epoch_counts_without_checkpointing_and_generic_task():
    c = epoch_step_counts(100, None, track_test=False)
    assert c["k"] == 1 and c["recomputed_steps"] == 0 and c["test_loss_evals"] == 0
    assert c["checkpoints"] == 101
    task = meta_transformer_task(**TINY)
    costs = task_costs(task, 5, kernels=("autodiff",), checkpoint_every=None, peaks=False)
    assert "train_chunk_peak_bytes" not in costs
    assert costs["counts"]["recomputed_steps"] == 0


def test_paper_counts_match_the_closed_form():
    fwd = transformer_forward_flops(**dict(PAPER_SCALE, n=PAPER_SCALE["n_train"]))
    assert PAPER_COUNTS["train_step_flops"] == 3 * fwd
    assert PAPER_COUNTS["reverse_step_flops"] == 9 * fwd
    assert PAPER_COUNTS["train_step_flops"] == pytest.approx(6.71e12, rel=1e-3)
    assert PAPER_COUNTS["plain_run_flops"] == pytest.approx(2.74e16, rel=2e-3)
    assert PAPER_COUNTS["policy_epoch_flops"] == pytest.approx(1.35e17, rel=1e-2)


def test_project_seconds():
    assert project_seconds(67e12, GPU_FP32_PEAK_TFLOPS["H200"], 1.0) == pytest.approx(1.0)
    assert project_seconds(1e12, 10, 0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        project_seconds(1, 10, 0)
