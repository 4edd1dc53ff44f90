"""Benchmark: one policy epoch against one plain training run.

    python -m learnlaw.bench [--device cpu|cuda] [--dtype float32|float64] [--repeat 3] [--threads 1]

prints one JSON line per case: the task, its step kernels, T, N, P, the seconds of a plain training run (uniform
policy, recording the desired-loss curve), of one policy epoch (adjoint sweep + projection +
update), their ratio, and the peak trajectory memory (floats held for θ's, and bytes on a GPU).
Times are the best of ``--repeat`` runs. Ratios, not absolute times, are what carry over
between machines.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from learnlaw.core.adjoint import adjoint_sweep
from learnlaw.core.policy import project_simplex, uniform_policy
from learnlaw.core.training import train
from learnlaw.tasks.perceptron import perceptron_task
from learnlaw.tasks.toy import mlp_task


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, repeat: int, device: torch.device) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench_case(task, steps: int, lr: float, checkpoint_every, repeat: int) -> dict:
    device = task.device
    policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=device)
    train(task, policy[: min(steps, 20)], lr)  # warm-up
    t_train = _best(lambda: train(task, policy, lr), repeat, device)
    sweeps = []

    def epoch():
        sweep = adjoint_sweep(task, policy, lr, checkpoint_every=checkpoint_every, track_test=False)
        sweeps.append(sweep)
        return project_simplex(policy - 1e-6 * sweep.grad)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_epoch = _best(epoch, repeat, device)
    return dict(
        task=task.name,
        kernels=task.kernels,
        T=steps,
        N=task.n_train,
        P=task.n_params,
        dtype=str(task.dtype).replace("torch.", ""),
        device=str(device),
        checkpoint_every=sweeps[-1].checkpoint_every,
        train_s=round(t_train, 4),
        epoch_s=round(t_epoch, 4),
        ratio=round(t_epoch / t_train, 2),
        trajectory_floats=sweeps[-1].stored_floats,
        trajectory_floats_per_sqrtT_P=round(
            sweeps[-1].stored_floats / (steps**0.5 * task.n_params), 2
        ),
        peak_gpu_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    )


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); 1 is steadier on a shared machine",
    )
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if args.quick:
        cases = [
            (perceptron_task(dim=16, n_train=256, dtype=dtype, device=device), 100, 0.1),
            (mlp_task(n_train=128, dtype=dtype, device=device), 50, 0.1),
        ]
    else:
        cases = [
            (perceptron_task(dtype=dtype, device=device), 2000, 0.1),
            (
                mlp_task(
                    dim=32,
                    hidden=64,
                    classes=8,
                    layers=3,
                    n_train=1024,
                    n_desired=256,
                    n_test=256,
                    dtype=dtype,
                    device=device,
                ),
                500,
                0.1,
            ),
        ]
    # the multi-layer model with both autodiff reverse steps (jvp of the gradient, and a double
    # backward): which one is faster depends on the device
    cases += [(t.with_(kernels="autodiff_rr"), s, lr) for t, s, lr in cases if t.name == "mlp"]
    rows = []
    for task, steps, lr in cases:
        for ck in (None, "auto"):
            row = bench_case(task, steps, lr, ck, args.repeat)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
