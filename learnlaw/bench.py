"""Benchmark: one policy epoch against one plain training run.

    python -m learnlaw.bench [--device cpu|cuda] [--dtype float32|float64] [--repeat 3] [--threads 1]
                             [--tf32]
    python -m learnlaw.bench --distributed [--quick] [--repeat 1]
    python -m learnlaw.bench --vs-autograd [--quick] [--memory-budget 8] [--record FILE]

prints one JSON line per case: the task, its step kernels, T, N, P, the seconds of a plain training run (uniform
policy, recording the desired-loss curve), of one policy epoch (adjoint sweep + projection +
update), their ratio, and the peak trajectory memory (floats held for θ's, and bytes on a GPU).
Times are the best of ``--repeat`` runs after one warm-up run, the rule of :func:`time_call` (the
timer ``scripts/gpu_check.py`` uses too); the two sides of a ratio are timed in turn, round by
round, so that both see the same load. Ratios, not absolute times, are what carry over
between machines. Every line records ``tf32``: with ``--tf32`` the runs and sweeps use TF32
float32 matmuls on an NVIDIA Ampere+ GPU (:mod:`learnlaw.core.precision`; no effect on the
CPU or in float64), without it exact float32.

It then prints one ``"case": "online"`` line per online Learning-Law rule
(:func:`learnlaw.online_policy`): the seconds of one plain run, of one online run of the same T
(γ_t chosen from the contributions at θ_t), and their ratio — ``relu`` (the cost of ``power``
too) for the perceptron and the MLP, and ``quadratic`` for the perceptron; and one
``"case": "schedule"`` line per task: one epoch of a step-size schedule search
(:func:`learnlaw.schedule_gradient`, the same forward + reverse sweep as a policy epoch, and a
multiplicative update of η_t) against one plain run.

The Transformer (at the CPU scale of ``book/transformer.ipynb``'s defaults, ``TRANSFORMER_CASE``)
has one row per kernel (``autodiff``, ``autodiff_rr``) without checkpointing. Every policy-epoch
row also prints ``flop_ratio``, the same ratio's floor by counted FLOPs
(``epoch_over_plain[kernel]`` of :func:`learnlaw.profile.task_costs` on the same task, T and
checkpointing), and ``ratio_over_flop_ratio``, their quotient: 1 would be an epoch that costs
exactly its counted FLOPs relative to a plain run.

With ``--vs-autograd`` it sets the adjoint sweep (:func:`learnlaw.policy_gradient` with
``checkpoint_every="auto"``) against what a reader would write instead, autograd through the
unrolled training loop (:func:`learnlaw.analysis.unrolled.unrolled_policy_gradient`, one graph,
``backward()`` once), for the paper's perceptron, the MLP and the Transformer at the chapter's CPU
scale over a range of T. Each measurement runs in a fresh subprocess, so that ``peak_bytes``, the
peak RSS increase over the process's RSS before the call (``torch.cuda.max_memory_allocated``
above the allocation before it on a GPU), is that method's alone. One JSON line per (case,
method, T): ``case``, ``method`` (``"adjoint"`` or ``"autograd"``), ``T``, ``N``, ``P``,
``status`` (``"ok"``, or ``"over_budget"`` with ``T_reached``, the steps unrolled when the
baseline passed ``--memory-budget`` GB), ``seconds``, ``peak_bytes`` and, where both finished,
``grad_max_rel_err`` = max|∂J/∂γ_adjoint − ∂J/∂γ_autograd| / max|∂J/∂γ_autograd|.

With ``--distributed`` it measures data parallelism instead (:mod:`learnlaw.core.distributed`):
per case (the paper's perceptron, the MLP, and the Transformer at the CPU scale of
``learnlaw.tasks.CPU_SCALE``) one JSON line with ``case``, ``seconds_1`` and ``seconds_2`` — one policy
epoch (adjoint sweep + sharded projection) on 1 and on 2 CPU processes joined by gloo, one
thread each — and ``scaling`` = seconds_2 / seconds_1 (1/2 would be perfect; the 2-process run
pays one all-reduce of P floats per step each way: ``allreduce_ms`` is the median time of one,
``reductions_per_epoch`` their number; ``train_s_1`` is one plain training run on 1 process).
Wall times on a machine shared with other jobs mix in the contention for its cores, so each row
also has the CPU seconds of the epoch (``cpu_seconds_1``, and ``cpu_seconds_2`` of the busier of
the two processes) and ``cpu_scaling`` = cpu_seconds_2 / cpu_seconds_1: the work per process,
which waiting for a descheduled partner does not inflate (gloo waits without spinning).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from learnlaw.core.adjoint import adjoint_sweep, schedule_gradient
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.errors import LearnlawError
from learnlaw.core.kernels import resolve_kernels
from learnlaw.core.policy import project_simplex, uniform_policy
from learnlaw.core.precision import matmul_precision
from learnlaw.core.training import train
from learnlaw.policies.online import online_policy
from learnlaw.tasks.perceptron import perceptron_task
from learnlaw.tasks.toy import mlp_task

MLP_CASE = dict(dim=32, hidden=64, classes=8, layers=3, n_train=1024, n_desired=256, n_test=256)
TRANSFORMER_CASE = dict(
    n_train=128,
    n_desired=32,
    n_test=64,
    max_len=32,
    vocab_size=384,
    d_model=32,
    n_heads=4,
    n_layers=2,
)
"""The defaults of ``book/transformer.ipynb`` (smaller than ``CPU_SCALE``); T = 100, η = 0.5."""
TRANSFORMER_QUICK = dict(n_train=8, n_desired=4, n_test=4, max_len=8, vocab_size=260, d_model=8)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MeasurementError(LearnlawError, RuntimeError):
    """A benchmark's measurement subprocess failed; the message ends with its stderr."""


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls of one function (see :func:`time_call`)."""

    median: float
    minimum: float
    calls: int
    result: Any


def time_call(
    fn: Callable[[], Any], device: torch.device, repeat: int, budget_s: float = math.inf
) -> Timing:
    """Time ``fn()``: one warm-up call, then up to ``repeat`` timed calls.

    The one timer of the bench and of ``scripts/gpu_check.py``, so that their numbers compare
    (each ratio of the bench — :func:`bench_case`, :func:`bench_online`, :func:`bench_schedule`
    — takes the same minimum after the same warm-up, its two functions' calls interleaved so
    that the ratio sees one load: :func:`_interleaved_minima`).
    The warm-up call pays for what only the first call pays (allocator growth, cuBLAS handles,
    kernel selection, lazy imports); every call is bracketed by a device synchronisation on a
    GPU. Timing stops after ``repeat`` calls, or earlier once ``budget_s`` seconds have passed
    (at least one call is timed). Cost: ``1 + calls`` calls of ``fn``.

    Returns:
        :class:`Timing` with the median and the minimum seconds of the timed calls (the minimum
        is the bench's figure: the least disturbed call on a shared machine), their number, and
        the last call's result.
    """
    result = fn()  # warm-up
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(1, repeat) and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return Timing(times[len(times) // 2], times[0], len(times), result)


def _interleaved_minima(
    fns: list[Callable[[], Any]], device: torch.device, repeat: int
) -> list[float]:
    """The least wall-clock seconds of each of ``fns`` over ``repeat`` rounds, called in turn.

    Each function is called once to warm up, then every round calls all of them one after the
    other, so that a ratio of two of them compares calls made under the same load: on a shared
    machine, timing one function's calls and then the other's lets a burst of load fall on one
    of them only. Cost: ``1 + repeat`` calls of each function.
    """
    for fn in fns:
        fn()
    _sync(device)
    best = [math.inf] * len(fns)
    for _ in range(max(1, repeat)):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def bench_case(
    task, steps: int, lr: float, checkpoint_every, repeat: int, tf32: bool = False
) -> dict:
    """One policy epoch against one plain training run of ``task`` under the uniform policy.

    The epoch is an adjoint sweep (``checkpoint_every`` as in
    :func:`~learnlaw.training.adjoint_sweep`) and a projected step. Both are timed as the least
    of ``repeat`` calls after one warm-up, in turn (:func:`_interleaved_minima`).
    Cost: ``1 + repeat`` runs and epochs.

    Returns:
        A JSON-ready row: sizes, seconds of a run (``train_s``) and of an epoch (``epoch_s``),
        their ``ratio``, the counted FLOP floor of that ratio where known, and the floats the
        sweep stored.
    """
    device = task.device
    policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=device)
    sweeps = []

    def epoch():
        sweep = adjoint_sweep(
            task, policy, lr, checkpoint_every=checkpoint_every, track_test=False, tf32=tf32
        )
        sweeps.append(sweep)
        return project_simplex(policy - 1e-6 * sweep.grad)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_train, t_epoch = _interleaved_minima(
        [lambda: train(task, policy, lr, tf32=tf32), epoch], device, repeat
    )
    kernel = resolve_kernels(task.kernels, device)
    flop_ratio = _flop_ratio(task, steps, kernel, checkpoint_every)
    return dict(
        task=task.name,
        kernels=resolve_kernels(task.kernels, device),
        T=steps,
        N=task.n_train,
        P=task.n_params,
        dtype=str(task.dtype).replace("torch.", ""),
        device=str(device),
        tf32=tf32,
        checkpoint_every=sweeps[-1].checkpoint_every,
        train_s=round(t_train, 4),
        epoch_s=round(t_epoch, 4),
        ratio=round(t_epoch / t_train, 2),
        flop_ratio=None if flop_ratio is None else round(flop_ratio, 3),
        ratio_over_flop_ratio=None
        if flop_ratio is None
        else round(t_epoch / t_train / flop_ratio, 3),
        trajectory_floats=sweeps[-1].stored_floats,
        trajectory_floats_per_sqrtT_P=round(
            sweeps[-1].stored_floats / (steps**0.5 * task.n_params), 2
        ),
        peak_gpu_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    )


def _flop_ratio(task, steps: int, kernel: str, checkpoint_every) -> float | None:
    """The counted floor of one policy epoch over one plain run (``task_costs``' ratio).

    Counted as :func:`bench_case` runs them: the epoch's forward run records no test loss,
    the plain run (:func:`learnlaw.train`) records both curves. ``None`` where nothing is
    counted (``FlopCounterMode`` counts matrix products, not the perceptron's matrix-vector
    products).
    """
    from learnlaw.analysis.cost import task_costs

    costs = task_costs(
        task, steps, kernels=(kernel,), checkpoint_every=checkpoint_every, track_test=False,
        peaks=False,
    )  # fmt: skip
    ratio = costs["epoch_over_plain"][kernel]
    return None if math.isnan(ratio) else ratio  # nan: a plain run of 0 counted FLOPs


def _describe(task, steps: int, tf32: bool) -> dict:
    """The fields that name a benchmark row's task, kernels, sizes, dtype and device."""
    return dict(
        task=task.name,
        kernels=resolve_kernels(task.kernels, task.device),
        T=steps,
        N=task.n_train,
        P=task.n_params,
        dtype=str(task.dtype).replace("torch.", ""),
        device=str(task.device),
        tf32=tf32,
    )


def bench_online(task, steps: int, lr: float, rule: str, repeat: int, tf32: bool = False) -> dict:
    """One online run of ``rule`` against one plain (uniform) run of the same T, each the least
    of ``repeat`` calls after one warm-up, in turn (:func:`_interleaved_minima`)."""
    device = task.device
    policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=device)

    def online(t: int):
        with matmul_precision(tf32):  # online_policy has no tf32= of its own
            return online_policy(task, t, lr, rule)

    t_train, t_online = _interleaved_minima(
        [lambda: train(task, policy, lr, tf32=tf32), lambda: online(steps)], device, repeat
    )
    return dict(
        case="online",
        **_describe(task, steps, tf32),
        rule=rule,
        train_s=round(t_train, 4),
        online_s=round(t_online, 4),
        ratio=round(t_online / t_train, 2),
    )


def bench_schedule(task, steps: int, lr: float, repeat: int, tf32: bool = False) -> dict:
    """One schedule epoch (:func:`learnlaw.schedule_gradient`: one forward + one reverse sweep,
    then a multiplicative update of η_t) against one plain run of the same T, each the least of
    ``repeat`` calls after one warm-up, in turn (:func:`_interleaved_minima`)."""
    device = task.device
    policy = uniform_policy(steps, task.n_train, dtype=task.dtype, device=device)
    sched = torch.full((steps,), lr, dtype=task.dtype, device=device)

    def epoch():
        _, g = schedule_gradient(task, policy, sched, tf32=tf32)
        return sched * torch.exp(-0.01 * g / g.abs().max().clamp_min(1e-30))

    t_train, t_epoch = _interleaved_minima(
        [lambda: train(task, policy, lr, tf32=tf32), epoch], device, repeat
    )
    return dict(
        case="schedule",
        **_describe(task, steps, tf32),
        train_s=round(t_train, 4),
        epoch_s=round(t_epoch, 4),
        ratio=round(t_epoch / t_train, 2),
    )


def _distributed_cases(quick: bool) -> dict[str, tuple[dict, int, float]]:
    """``{case: (task keywords, T, η)}`` of the data-parallel benchmark."""
    if quick:
        return {
            "perceptron": (dict(dim=8, n_train=64, n_desired=16, n_test=16), 10, 0.1),
            "mlp": (dict(n_train=64, n_desired=16, n_test=16), 10, 0.1),
            "transformer": (
                dict(n_train=8, n_desired=4, n_test=4, max_len=8, vocab_size=260, d_model=8),
                4,
                0.5,
            ),
        }
    cpu = __import__("learnlaw.tasks.lm_task", fromlist=["CPU_SCALE"]).CPU_SCALE
    return {
        "perceptron": (dict(), 2000, 0.1),
        "mlp": (MLP_CASE, 500, 0.1),
        "transformer": (dict(scale="cpu"), cpu["steps"], cpu["lr"]),
    }


def _epoch_worker(case: str, quick: bool, dtype: str, repeat: int, out: str) -> None:
    """One rank of the data-parallel benchmark: the best time of ``repeat`` policy epochs."""
    import torch.distributed as dist

    from learnlaw.core.distributed import project_simplex_sharded, shard_of
    from learnlaw.tasks.lm_task import transformer_task

    kwargs, steps, lr = _distributed_cases(quick)[case]
    build = dict(perceptron=perceptron_task, mlp=mlp_task, transformer=transformer_task)[case]
    task = build(**kwargs, dtype=getattr(torch, dtype))
    shard = shard_of(task)
    n_local = task.n_train if shard is None else shard.size()
    policy = torch.full((steps, n_local), 1 / task.n_train, dtype=task.dtype)
    train(task, policy[: min(steps, 5)], lr)  # warm-up

    def epoch():
        sweep = adjoint_sweep(task, policy, lr)
        return project_simplex_sharded(policy - 1e-6 * sweep.grad, shard)

    best = cpu_best = float("inf")
    for _ in range(repeat):
        dist.barrier()
        start, cpu_start = time.perf_counter(), time.process_time()
        epoch()
        cpu = torch.tensor([time.process_time() - cpu_start], dtype=torch.float64)
        dist.barrier()
        best = min(best, time.perf_counter() - start)
        dist.all_reduce(cpu, op=dist.ReduceOp.MAX)  # the busiest rank's CPU seconds
        cpu_best = min(cpu_best, float(cpu[0]))
    # the price of one reduction of P floats, the unit of the sweep's communication
    buf = torch.ones(task.n_params, dtype=task.dtype)
    times = []
    for _ in range(30):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(buf)
        times.append(time.perf_counter() - start)
    train_s = None
    if dist.get_world_size() == 1:  # one plain training run, for the epoch/train ratio
        start = time.perf_counter()
        train(task, policy, lr)
        train_s = time.perf_counter() - start
    if dist.get_rank() == 0:
        info = dict(seconds=best, cpu=cpu_best, N=task.n_train, P=task.n_params, T=steps)
        info["train_s"] = train_s
        info["allreduce_ms"] = 1e3 * sorted(times)[len(times) // 2]  # median
        with open(out, "w") as f:
            json.dump(info, f)


def bench_distributed(
    quick: bool, dtype: str, repeat: int, cases: list[str] | None = None
) -> list[dict]:
    """The data-parallel benchmark (see the module docstring); one row per case."""
    import tempfile

    from learnlaw.core.distributed import spawn

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases or list(_distributed_cases(quick)):
            seconds, cpu, reduce_ms = {}, {}, None
            for world in (1, 2):
                out = os.path.join(tmp, f"{case}_{world}.json")
                spawn(_epoch_worker, world, case, quick, dtype, repeat, out, threads=1)
                with open(out) as f:
                    info = json.load(f)
                seconds[world], cpu[world] = info["seconds"], info["cpu"]
                if world == 1:
                    train_s = info["train_s"]
                else:
                    reduce_ms = info["allreduce_ms"]
            row = dict(
                case=case,
                T=info["T"],
                N=info["N"],
                P=info["P"],
                dtype=dtype,
                seconds_1=round(seconds[1], 6),
                seconds_2=round(seconds[2], 6),
                train_s_1=round(train_s, 4),
                scaling=round(seconds[2] / seconds[1], 3),
                cpu_seconds_1=round(cpu[1], 6),
                cpu_seconds_2=round(cpu[2], 6),
                cpu_scaling=round(cpu[2] / cpu[1], 3),
                allreduce_ms=round(reduce_ms, 3),
                reductions_per_epoch=2 * info["T"],
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# -- the adjoint against unrolled autograd (--vs-autograd) ----------------------------------------


def _vs_cases(quick: bool) -> dict[str, tuple[dict, tuple[int, ...], float]]:
    """``{case: (task keywords, the T's, η)}`` of ``--vs-autograd``."""
    if quick:
        return {
            "perceptron": (dict(dim=16, n_train=256, n_desired=64, n_test=64), (10, 20, 40), 0.1),
            "mlp": (dict(n_train=64, n_desired=16, n_test=16), (5, 10), 0.1),
            "transformer": (TRANSFORMER_QUICK, (2, 4), 0.5),
        }
    return {
        "perceptron": (dict(), (125, 250, 500, 1000, 2000), 0.1),
        "mlp": (MLP_CASE, (25, 50, 100, 200), 0.1),
        "transformer": (TRANSFORMER_CASE, (5, 10, 20, 40), 0.5),
    }


def _build(case: str, kwargs: dict, dtype: torch.dtype, device: torch.device):
    from learnlaw.tasks.lm_task import transformer_task

    build = dict(perceptron=perceptron_task, mlp=mlp_task, transformer=transformer_task)[case]
    return build(**kwargs, dtype=dtype, device=device)


def measure_one(
    case: str,
    method: str,
    steps: int,
    *,
    quick: bool = False,
    dtype: str = "float32",
    device: str = "cpu",
    memory_budget_gb: float = 8.0,
    repeat: int = 1,
    grad_out: str | None = None,
) -> dict:
    """One (case, method, T) measurement in this process (``--vs-autograd`` runs it fresh).

    Builds the task, warms the method up on 2 steps, then measures the best time of ``repeat``
    calls and the peak memory above the memory before the first (RSS, with the peak reset
    first; allocated bytes on a GPU). ``grad_out``: save ∂J/∂γ there (``torch.save``).
    """
    from learnlaw.analysis.unrolled import (
        MemoryBudgetError,
        peak_rss_bytes,
        reset_peak_rss,
        rss_bytes,
        unrolled_policy_gradient,
    )
    from learnlaw.core.adjoint import policy_gradient

    kwargs, _, lr = _vs_cases(quick)[case]
    dev = torch.device(device)
    task = _build(case, kwargs, getattr(torch, dtype), dev)

    def run(t: int, budget_gb: float | None = memory_budget_gb):
        policy = uniform_policy(t, task.n_train, dtype=task.dtype, device=dev)
        if method == "adjoint":
            return policy_gradient(task, policy, lr, checkpoint_every="auto")
        if method == "autograd":
            return unrolled_policy_gradient(task, policy, lr, memory_budget_gb=budget_gb)
        raise ArgumentValueError(f"method must be 'adjoint' or 'autograd', got {method!r}")

    run(min(steps, 2), None)  # warm-up (two steps, outside the budget: the measurement has it)
    row = dict(case=case, method=method, T=steps, N=task.n_train, P=task.n_params)
    row.update(dtype=dtype, device=str(dev), status="ok", memory_budget_gb=memory_budget_gb)
    best, grad = float("inf"), None
    import gc

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        reset_peak_rss()
        before = rss_bytes() or peak_rss_bytes()
    try:
        for _ in range(repeat):
            _sync(dev)
            start = time.perf_counter()
            _, grad = run(steps)
            _sync(dev)
            best = min(best, time.perf_counter() - start)
    except MemoryBudgetError as err:
        row.update(status="over_budget", T_reached=err.steps_done, message=str(err))
        grad = None
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) - before
    else:
        peak = peak_rss_bytes() - before
    row.update(seconds=round(best, 4) if grad is not None else None, peak_bytes=int(peak))
    if grad_out is not None and grad is not None:
        torch.save(grad.detach().cpu(), grad_out)
    return row


def bench_vs_autograd(
    quick: bool,
    dtype: str,
    device: str,
    memory_budget_gb: float,
    repeat: int,
    threads: int | None,
    cases: list[str] | None = None,
    steps_list: tuple[int, ...] | None = None,
) -> list[dict]:
    """The adjoint against unrolled autograd (see the module docstring): one row per (case,
    method, T), each measured in a fresh ``python -m learnlaw.bench --measure-one`` process.

    Args:
        quick: the small sizes of ``_vs_cases(True)``.
        dtype, device: of the tasks (``"float32"``, ``"cpu"``, ...).
        memory_budget_gb: the unrolled baseline's budget (:class:`MemoryBudgetError` past it).
        repeat: best time of this many calls per process.
        threads: torch CPU threads in each process (``None``: torch's default).
        cases: the case names (default: all three).
        steps_list: the T's, instead of each case's own.
    """
    import subprocess
    import tempfile

    rows = []
    env = dict(os.environ, TQDM_DISABLE="1")
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases or list(_vs_cases(quick)):
            for steps in steps_list or _vs_cases(quick)[case][1]:
                pair = {}
                for method in ("adjoint", "autograd"):
                    out = os.path.join(tmp, f"{case}_{method}_{steps}.pt")
                    cmd = [sys.executable, "-m", "learnlaw.bench", "--measure-one"]
                    cmd += [case, method, str(steps), out, "--dtype", dtype, "--device", device]
                    cmd += ["--memory-budget", str(memory_budget_gb), "--repeat", str(repeat)]
                    cmd += ["--quick"] if quick else []
                    cmd += ["--threads", str(threads)] if threads is not None else []
                    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if done.returncode != 0:
                        raise MeasurementError(
                            f"the measurement {case}/{method}/T={steps} failed (exit "
                            f"{done.returncode}); its stderr ends:\n{done.stderr[-2000:]}"
                        )
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    pair[method] = (row, out)
                ok = [m for m, (r, _) in pair.items() if r["status"] == "ok"]
                err = None
                if len(ok) == 2:
                    ga = torch.load(pair["adjoint"][1]).double()
                    gb = torch.load(pair["autograd"][1]).double()
                    err = float((ga - gb).abs().max() / gb.abs().max().clamp_min(1e-300))
                for method in ("adjoint", "autograd"):
                    row = pair[method][0]
                    row["grad_max_rel_err"] = err
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def _write_record(
    path: str, argv: list[str] | None, load_before, rows: list[dict], note: str | None = None
) -> None:
    record = dict(
        command="python -m learnlaw.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        cpu_count=os.cpu_count(),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        torch=torch.__version__,
        rows=rows,
    )
    if note:
        record["note"] = note
    with open(path, "w") as f:
        f.write(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="best of this many runs (default 3; 1 with --distributed)",
    )
    ap.add_argument(
        "--case",
        dest="cases",
        action="append",
        choices=["perceptron", "mlp", "transformer"],
        help="with --distributed or --vs-autograd: only this case (repeatable; default: all three)",
    )
    ap.add_argument(
        "--record",
        metavar="FILE",
        help="with --distributed or --vs-autograd: also write the rows, the command, the date, "
        "the machine's CPU count and its load average before and after to FILE (JSON)",
    )
    ap.add_argument("--note", help="with --record: a note stored in the record (e.g. the load)")
    ap.add_argument(
        "--vs-autograd",
        action="store_true",
        help="the adjoint sweep against autograd through the unrolled loop, over a range of T, "
        "one fresh process per measurement",
    )
    ap.add_argument(
        "--memory-budget",
        type=float,
        default=8.0,
        metavar="GB",
        help="with --vs-autograd: stop the unrolled baseline past this memory growth, in GB "
        "(reported as status over_budget; default 8)",
    )
    ap.add_argument("--measure-one", nargs=4, help=argparse.SUPPRESS)  # CASE METHOD T GRAD_FILE
    ap.add_argument(
        "--distributed",
        action="store_true",
        help="time one policy epoch on 1 and on 2 gloo processes (one thread each) instead",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument(
        "--tf32",
        action="store_true",
        help="TF32 float32 matmuls on an NVIDIA Ampere+ GPU (no effect on the CPU or in "
        "float64); recorded as tf32 in every line (default: exact float32)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); 1 is steadier on a shared machine",
    )
    args = ap.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    if not args.memory_budget > 0:
        ap.error(f"--memory-budget must be a positive number of GB, got {args.memory_budget}")
    if args.measure_one:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        case, method, steps, out = args.measure_one
        row = measure_one(
            case,
            method,
            int(steps),
            quick=args.quick,
            dtype=args.dtype,
            device=args.device,
            memory_budget_gb=args.memory_budget,
            repeat=args.repeat or 1,
            grad_out=out,
        )
        print(json.dumps(row), flush=True)
        return [row]
    if args.vs_autograd:
        load_before = os.getloadavg()
        rows = bench_vs_autograd(
            args.quick,
            args.dtype,
            args.device,
            args.memory_budget,
            args.repeat or 1,
            args.threads,
            args.cases,
        )
        if args.record:
            _write_record(args.record, argv, load_before, rows, args.note)
        return rows
    if args.distributed:
        if args.device != "cpu":
            ap.error("--distributed measures CPU processes joined by gloo; drop --device")
        if args.tf32:
            ap.error("--distributed measures CPU processes, where TF32 does nothing; drop --tf32")
        load_before = os.getloadavg()
        rows = bench_distributed(args.quick, args.dtype, args.repeat or 1, args.cases)
        if args.record:
            _write_record(args.record, argv, load_before, rows, args.note)
        return rows
    args.repeat = args.repeat or 3
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if args.quick:
        cases = [
            (perceptron_task(dim=16, n_train=256, dtype=dtype, device=device), 100, 0.1),
            (mlp_task(n_train=128, dtype=dtype, device=device), 50, 0.1),
        ]
        transformer = (TRANSFORMER_QUICK, 4, 0.5)
    else:
        cases = [
            (perceptron_task(dtype=dtype, device=device), 2000, 0.1),
            (
                mlp_task(**MLP_CASE, dtype=dtype, device=device),
                500,
                0.1,
            ),
        ]
        transformer = (TRANSFORMER_CASE, 100, 0.5)
    # the multi-layer model with both autodiff reverse steps (jvp of the gradient, and a double
    # backward): which one is faster may depend on the device; the default ("auto") is the
    # double backward (see learnlaw.core.kernels.resolve_kernels)
    online_cases = list(cases)
    other = {"autodiff": "autodiff_rr", "autodiff_rr": "autodiff"}
    cases += [
        (t.with_(kernels=other[resolve_kernels(t.kernels, device)]), s, lr)
        for t, s, lr in cases
        if t.name == "mlp"
    ]
    # the Transformer of book/transformer.ipynb (checkpoint_every=None, as there), per kernel
    if not args.cases or "transformer" in args.cases:
        lm = _build("transformer", transformer[0], dtype, device)
        cases += [(lm.with_(kernels=k), *transformer[1:]) for k in ("autodiff", "autodiff_rr")]
    if args.cases:
        cases = [c for c in cases if c[0].name in args.cases]
        online_cases = [c for c in online_cases if c[0].name in args.cases]
    rows = []
    for task, steps, lr in cases:
        for ck in (None,) if task.name == "transformer" else (None, "auto"):
            row = bench_case(task, steps, lr, ck, args.repeat, args.tf32)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for task, steps, lr in online_cases:
        for rule in ("relu", "quadratic") if task.name == "perceptron" else ("relu",):
            row = bench_online(task, steps, lr, rule, args.repeat, args.tf32)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for task, steps, lr in online_cases:  # one epoch of a step-size schedule search
        row = bench_schedule(task, steps, lr, args.repeat, args.tf32)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
