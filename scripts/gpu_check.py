"""One short device check of learnlaw (at most 8 minutes on one GPU), written as one JSON record.

Run it on a GPU machine, from the repository root, after
``pip install --no-deps --no-build-isolation -e .``::

    python scripts/gpu_check.py --out learnlaw/data/gpu_check.json            # --device cuda
    python scripts/gpu_check.py --out /tmp/gpu_check.json --device cpu --small  # the CPU test

and commit the record as ``learnlaw/data/gpu_check.json`` (the GPU run, not the ``--small`` one).
The record holds ``torch`` (version), ``device`` (its name), ``git_commit``, ``date``,
``seconds`` and five sections, each with its own ``seconds`` and, if it failed, ``error`` (a
failing section never loses the record; the file is rewritten after every section):

a. ``agreement`` — CPU against the device in float64 on tiny tasks (a Transformer with the
   autodiff kernels, the perceptron with its closed-form and autodiff kernels): the train
   curves, ``policy_gradient`` J and ∂J/∂γ per kernel and checkpointing (None, "auto", 3),
   ``contributions`` and ``online_policy`` ("relu"): the max relative error of each
   (``max|device − cpu| / max|cpu|``).
b. ``host_syncs`` — host syncs per step of ``train``, ``policy_gradient`` and ``online_policy``
   ("relu", "power") on the device, counted by :class:`learnlaw.analysis.device_audit.DeviceAudit`
   at two lengths T₁ < T₂: per step = (count(T₂) − count(T₁)) / (T₂ − T₁); plus the
   mixed-device ops and cross-device copies. With ``--device cpu`` the audit counts reads of CPU
   tensors (``cpu=True``: what would be syncs on a device). Copies ``cpu->meta`` on a CPU run
   are torch's own (the forward-mode formula of ``clamp`` under ``jvp``), not transfers.
c. ``paper_shapes`` — one 512-sequence chunk at the paper's Transformer shapes (L = 64,
   |V| = 5000, d = 128, 8 heads, 2 layers; ``--small``: a tiny model): seconds (the median of
   the timed calls after a warm-up, ``min_seconds`` their minimum: ``learnlaw.bench.time_call``,
   the bench's timer) and peak memory
   of one training gradient and one reverse step per kernel ("autodiff", "autodiff_rr"), in
   float32 and TF32 (:func:`learnlaw.core.precision.matmul_precision`), the TF32 result's
   relative error and speed-up, the counted FLOPs (:mod:`learnlaw.analysis.cost`) and the
   achieved TFLOP/s, and the meta-device peak predicted for the same call. Peak memory is
   ``torch.cuda.max_memory_allocated`` above the allocation at the start on CUDA, the
   :class:`~learnlaw.analysis.cost.AllocationTracker` on the CPU.
d. ``epoch_extrapolation`` — one short policy epoch (``adjoint_sweep`` with ``track_test`` and
   ``checkpoint_every="auto"``, what one epoch of ``optimize_policy`` runs) at the paper's N
   (chunks of 512) and T = 16, timed, and extrapolated to T = 4000 by the counted FLOPs at the
   same shapes: ``seconds(4000) = seconds(T) · F_epoch(4000) / F_epoch(T)`` (F counts the exact
   step composition, recomputation included), beside the plain linear ``seconds(T) · 4000 / T``
   and the projection from the datasheet peak (an assumption).
e. ``launcher`` — ``python -m learnlaw.search`` on the device with a tiny perceptron search,
   interrupted (SIGINT) after its first epoch and run again with ``--resume`` on the same
   ``--out``: both exit codes and whether the resumed run continued to the last epoch.

The GPU machine may lack ``constriction`` (the arithmetic coder of ``learnlaw.compress``):
learnlaw imports it only when a compression function runs, so nothing here needs it; the
launcher section records whether ``import learnlaw`` works in a fresh process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUDGET_S = 8 * 60
"""The whole run's wall-clock target on one GPU; sections stop repeating when it runs short."""

from learnlaw.analysis.cost import (  # noqa: E402
    GPU_FP32_PEAK_TFLOPS,
    GPU_TF32_PEAK_TFLOPS,
    AllocationTracker,
    count_flops,
    meta_peak_bytes,
    project_seconds,
    synthetic_transformer_task,
    task_costs,
)
from learnlaw.analysis.device_audit import DeviceAudit  # noqa: E402
from learnlaw.bench import time_call  # noqa: E402
from learnlaw.core.adjoint import adjoint_sweep, policy_gradient  # noqa: E402
from learnlaw.core.dispatch import kernels_for  # noqa: E402
from learnlaw.core.law import contributions  # noqa: E402
from learnlaw.core.precision import matmul_precision  # noqa: E402
from learnlaw.core.training import train  # noqa: E402
from learnlaw.policies.online import online_policy  # noqa: E402
from learnlaw.tasks.perceptron import perceptron_task  # noqa: E402

PAPER_SHAPES = dict(max_len=64, vocab_size=5000, d_model=128, n_heads=8, n_layers=2)
SMALL_SHAPES = dict(max_len=8, vocab_size=64, d_model=16, n_heads=2, n_layers=2)


# -- helpers ---------------------------------------------------------------------------------
class Clock:
    """The run's deadline."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.budget_s = budget_s

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> tuple[int, str]:
    """Peak bytes allocated during ``fn()`` above the allocation at entry, and how measured."""
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base, "torch.cuda.max_memory_allocated"
    with AllocationTracker() as mem:
        fn()
    return mem.peak, "AllocationTracker"


def rel_err(a: Any, b: Any) -> float:
    """``max|a − b| / max|b|`` (``max|a − b|`` when b is all zero), on the CPU in float64."""
    a = torch.as_tensor(a).detach().double().cpu()
    b = torch.as_tensor(b).detach().double().cpu()
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    diff = (a - b).abs()
    diff = torch.where(torch.isnan(a) & torch.isnan(b), torch.zeros_like(diff), diff)
    scale = b.abs().nan_to_num(0).max()
    err = diff.max() / scale if scale > 0 else diff.max()
    return float(err)


def flat(xs) -> torch.Tensor:
    return torch.cat([torch.as_tensor(x).reshape(-1).double().cpu() for x in xs])


def random_policy(steps: int, n: int, seed: int = 0) -> torch.Tensor:
    """A non-uniform (T, N) policy on the simplex (CPU, float64)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(steps, n, generator=g, dtype=torch.float64) + 0.5
    return w / w.sum(1, keepdim=True)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or "cpu"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def gpu_key(name: str) -> str | None:
    """The key of :data:`GPU_FP32_PEAK_TFLOPS` that a device name contains, if any."""
    for key in GPU_FP32_PEAK_TFLOPS:
        if key in name.upper():
            return key
    return None


# -- tiny tasks ------------------------------------------------------------------------------
def tiny_transformer(device, dtype=torch.float64, kernels="autodiff", small=True):
    sizes = dict(n_train=12, n_desired=6, n_test=6, chunk_size=5, **SMALL_SHAPES)
    if not small:
        sizes.update(n_train=24, n_desired=8, n_test=8)
    return synthetic_transformer_task(**sizes, device=device, dtype=dtype, kernels=kernels)


def tiny_perceptron(device, dtype=torch.float64, kernels="logistic", small=True):
    n = 48 if small else 256
    return perceptron_task(
        dim=8, n_train=n, n_desired=16, n_test=16, device=device, dtype=dtype, kernels=kernels
    )


# -- a. agreement ------------------------------------------------------------------------------
def section_agreement(device: torch.device, small: bool, clock: Clock) -> dict:
    cpu = torch.device("cpu")
    steps = 6 if small else 12
    out: dict[str, Any] = {"dtype": "float64", "steps": steps, "max_rel_err": {}}
    errs = out["max_rel_err"]
    cases = [
        ("transformer", "autodiff", tiny_transformer, 0.05),
        ("transformer", "autodiff_rr", tiny_transformer, 0.05),
        ("perceptron", "logistic", tiny_perceptron, 0.5),
        ("perceptron", "autodiff", tiny_perceptron, 0.5),
    ]
    for name, kern, build, lr in cases:
        tasks = {"cpu": build(cpu, kernels=kern, small=small)}
        tasks["dev"] = build(device, kernels=kern, small=small)
        key = f"{name}/{kern}"
        policy = random_policy(steps, tasks["cpu"].n_train)
        res: dict[str, Any] = {}
        for side, task in tasks.items():
            r: dict[str, Any] = {}
            pol = policy.to(device=task.device)
            run = train(task, pol, lr)
            r["train"] = flat([run.desired_loss, run.test_loss])
            for ck in (None, "auto", 3):
                j, g = policy_gradient(task, pol, lr, checkpoint_every=ck)
                r[f"policy_gradient[{ck}]/J"] = torch.tensor([j])
                r[f"policy_gradient[{ck}]/grad"] = g
            r["contributions"] = contributions(task)
            if kern in ("autodiff", "logistic"):
                on = online_policy(task, steps, lr, "relu")
                r["online_policy[relu]"] = flat([on.policy, on.run.desired_loss, on.run.test_loss])
            res[side] = r
        for item in res["cpu"]:
            errs[f"{key}/{item}"] = rel_err(res["dev"][item], res["cpu"][item])
        if clock.left() < BUDGET_S * 0.5:
            out["stopped_early"] = f"after {key}: time budget"
            break
    out["max"] = max(errs.values()) if errs else None
    return out


# -- b. host syncs ------------------------------------------------------------------------------
def _audit(fn: Callable[[], Any], cpu: bool) -> DeviceAudit:
    with DeviceAudit(sites=True, cpu=cpu) as audit:
        fn()
    return audit


def section_host_syncs(device: torch.device, small: bool, clock: Clock) -> dict:
    t1, t2 = (8, 16) if small else (8, 24)
    on_cpu = device.type == "cpu"  # count reads of CPU tensors: syncs were it a device
    out: dict[str, Any] = {"steps": [t1, t2], "dtype": "float32", "per_step": {}, "totals": {}}
    out["cpu_reads_counted"] = on_cpu
    tf = tiny_transformer(device, torch.float32, kernels="autodiff", small=small)
    pc = tiny_perceptron(device, torch.float32, small=small)

    def runs(task, steps):
        pol = random_policy(steps, task.n_train).to(device=device, dtype=task.dtype)
        return {
            "train": lambda: train(task, pol, 0.05),
            "policy_gradient[auto]": lambda: policy_gradient(task, pol, 0.05, "auto"),
            "online_policy[relu]": lambda: online_policy(task, steps, 0.05, "relu"),
            "online_policy[power=2]": lambda: online_policy(task, steps, 0.05, "power", power=2.0),
        }

    for tname, task in (("transformer", tf), ("perceptron", pc)):
        first, second = runs(task, t1), runs(task, t2)
        for fname in first:
            key = f"{tname}/{fname}"
            a1, a2 = _audit(first[fname], on_cpu), _audit(second[fname], on_cpu)
            out["per_step"][key] = (a2.host_syncs - a1.host_syncs) / (t2 - t1)
            rep = a2.report()
            out["totals"][key] = dict(
                host_syncs=rep["host_syncs"],
                syncs_by_op=rep["syncs_by_op"],
                syncs_by_site=dict(list(rep["syncs_by_site"].items())[:6]),
                mixed_device_ops=rep["n_mixed_device_ops"],
                copies=rep["copies"]["total"],
                copies_by_direction=rep["copies"]["by_direction"],
            )
    out["mixed_device_ops"] = sum(v["mixed_device_ops"] for v in out["totals"].values())
    return out


# -- c. paper shapes -----------------------------------------------------------------------------
def _chunk_task(device, small: bool):
    shapes = SMALL_SHAPES if small else PAPER_SHAPES
    c = 16 if small else 512
    sizes = dict(n_train=c, n_desired=c, n_test=c, chunk_size=c, **shapes)
    return sizes, synthetic_transformer_task(**sizes, device=device, dtype=torch.float32)


def section_paper_shapes(device: torch.device, small: bool, clock: Clock) -> dict:
    sizes, task = _chunk_task(device, small)
    _, meta = _chunk_task("meta", small)
    theta = task.spec.flatten(task.params0)
    opts = dict(dtype=theta.dtype, device=device)
    gamma = torch.full((task.n_train,), 1.0 / task.n_train, **opts)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(theta.numel(), generator=gen, dtype=theta.dtype).to(device) * 1e-2
    m_theta = meta.spec.flatten(meta.params0)
    m_gamma = torch.empty(meta.n_train, device="meta")
    m_v = torch.empty_like(m_theta)
    repeats = 3 if small else 5
    per_call = 2.0 if small else 15.0
    name = device_name(device)
    key = gpu_key(name)
    out: dict[str, Any] = dict(
        sizes=sizes,
        n_params=task.n_params,
        tokens=task.n_train * sizes["max_len"],
        repeats=repeats,
        peak_method=None,
        assumed_peak_tflops={
            "float32": GPU_FP32_PEAK_TFLOPS.get(key),
            "tf32": GPU_TF32_PEAK_TFLOPS.get(key),
        },
        calls={},
    )
    calls = {"train_step": ("autodiff", "train_grad")}
    calls.update({f"reverse_step[{k}]": (k, "reverse") for k in ("autodiff", "autodiff_rr")})
    for cname, (kname, method) in calls.items():
        if clock.left() < 60 and not small:
            out["calls"][cname] = {"skipped": "time budget"}
            continue
        kern = getattr(kernels_for(task.with_(kernels=kname)), method)
        m_kern = getattr(kernels_for(meta.with_(kernels=kname)), method)
        args = (theta, gamma) if method == "train_grad" else (theta, gamma, v)
        m_args = (m_theta, m_gamma) if method == "train_grad" else (m_theta, m_gamma, m_v)
        with torch.no_grad():
            flops = count_flops(m_kern, *m_args)
            meta_peak = meta_peak_bytes(m_kern, *m_args)
        entry: dict[str, Any] = dict(flops=flops, meta_peak_bytes=meta_peak)
        results = {}
        for label, tf32 in (("float32", False), ("tf32", True)):

            def call(kern=kern, args=args, tf32=tf32):
                with torch.no_grad(), matmul_precision(tf32):
                    res = kern(*args)
                return flat(res) if isinstance(res, tuple) else res.reshape(-1)

            timing = time_call(call, device, repeats, per_call)
            seconds, res = timing.median, timing.result
            peak, how = peak_bytes(call, device)
            out["peak_method"] = how
            results[label] = res
            entry[label] = dict(
                seconds=seconds,
                min_seconds=timing.minimum,
                calls_timed=timing.calls,
                peak_bytes=peak,
                achieved_tflops=flops / seconds / 1e12 if seconds > 0 else None,
            )
        entry["tf32_rel_err"] = rel_err(results["tf32"], results["float32"])
        t32, ttf = entry["float32"]["seconds"], entry["tf32"]["seconds"]
        entry["tf32_speedup"] = t32 / ttf if ttf > 0 else None
        out["calls"][cname] = entry
        del results
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


# -- d. one short epoch, extrapolated -------------------------------------------------------------
def section_epoch(device: torch.device, small: bool, clock: Clock) -> dict:
    shapes = SMALL_SHAPES if small else PAPER_SHAPES
    n, c, k = (64, 16, 16) if small else (16384, 512, 512)
    steps = 4 if small else 16
    target = 4000
    sizes = dict(n_train=n, n_desired=k, n_test=k, chunk_size=c, **shapes)
    kernels = "autodiff_rr" if device.type == "cpu" else "autodiff"
    task = synthetic_transformer_task(**sizes, device=device, kernels=kernels)
    meta = synthetic_transformer_task(**sizes, device="meta", kernels=kernels)
    short = task_costs(meta, steps, kernels=(kernels,), peaks=False)
    long = task_costs(meta, target, kernels=(kernels,), peaks=False)
    out: dict[str, Any] = dict(sizes=sizes, kernels=kernels, steps=steps, target_steps=target)
    pol = torch.full((steps, n), 1.0 / n, device=device)
    lr = 0.1
    sync(device)
    t0 = time.perf_counter()
    train(task, pol, lr)  # also the warm-up of the epoch below
    sync(device)
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    adjoint_sweep(task, pol, lr, checkpoint_every="auto", track_test=True)
    sync(device)
    epoch_s = time.perf_counter() - t0
    f_short, f_long = short["policy_epoch_flops"][kernels], long["policy_epoch_flops"][kernels]
    achieved = f_short / epoch_s / 1e12
    key = gpu_key(device_name(device))
    peak = GPU_FP32_PEAK_TFLOPS.get(key)
    out.update(
        plain_run_seconds=plain_s,
        plain_run_flops=short["plain_run_flops"],
        epoch_seconds=epoch_s,
        epoch_flops=f_short,
        epoch_over_plain_measured=epoch_s / plain_s if plain_s > 0 else None,
        epoch_over_plain_counted=short["epoch_over_plain"][kernels],
        achieved_tflops=achieved,
        formula="seconds(4000) = seconds(T) * F_epoch(4000) / F_epoch(T), F counted on meta",
        counted_epoch_flops_4000=f_long,
        extrapolated_epoch_seconds_4000=epoch_s * f_long / f_short,
        linear_epoch_seconds_4000=epoch_s * target / steps,
        extrapolated_plain_run_seconds_4000=plain_s
        * long["plain_run_flops"]
        / short["plain_run_flops"],
        assumed_peak_tflops=peak,
        projected_epoch_seconds_4000_at_assumed_peak=(
            project_seconds(f_long, peak) if peak else None
        ),
    )
    return out


# -- e. the launcher ------------------------------------------------------------------------------
def _env() -> dict:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
    paths = [str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths).rstrip(os.pathsep)
    return env


def _history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def section_launcher(device: torch.device, small: bool, clock: Clock) -> dict:
    epochs = 40
    out: dict[str, Any] = dict(epochs=epochs)
    with tempfile.TemporaryDirectory() as tmp:
        plain = subprocess.run(
            [sys.executable, "-c", "import learnlaw"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        out["import_learnlaw_rc"] = plain.returncode
        if plain.returncode:
            out["import_learnlaw_error"] = (plain.stderr.strip().splitlines() or [""])[-1]
        run_dir = Path(tmp, "search")
        cmd = [
            sys.executable,
            "-m",
            "learnlaw.search",
            "--task",
            "perceptron",
            "--set",
            "n_train=256",
            "--set",
            "dim=16",
            "--set",
            "n_desired=32",
            "--set",
            "n_test=32",
            "--steps",
            "200",
            "--epochs",
            str(epochs),
            "--device",
            device.type,
            "--out",
            str(run_dir),
        ]
        out["command"] = " ".join(cmd[1:]).replace(str(run_dir), "OUT")
        env = _env()
        t0 = time.perf_counter()
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        interrupted = False
        hist = run_dir / "history.jsonl"
        while first.poll() is None and time.perf_counter() - t0 < 120:
            if len(_history(hist)) >= 1:
                first.send_signal(signal.SIGINT)
                interrupted = True
                break
            time.sleep(0.02)
        try:
            _, err1 = first.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            first.kill()
            _, err1 = first.communicate()
        out["first"] = dict(
            rc=first.returncode,
            interrupted=interrupted,
            seconds=time.perf_counter() - t0,
            epochs_done=len(_history(hist)),
            stderr_tail=err1.strip().splitlines()[-2:],
        )
        before = _history(hist)
        t0 = time.perf_counter()
        second = subprocess.run(
            cmd + ["--resume", "--quiet"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = _history(hist)
        out["resumed"] = dict(
            rc=second.returncode,
            seconds=time.perf_counter() - t0,
            epochs_in_history=[r["epoch"] for r in after],
            stderr_tail=second.stderr.strip().splitlines()[-2:],
        )
        out["resumed_from_epoch"] = len(before)
        out["policy_written"] = (run_dir / "policy.pt").exists()
        out["continued"] = bool(
            second.returncode == 0
            and [r["epoch"] for r in after] == list(range(epochs + 1))
            and 0 < len(before) <= epochs
            and [r["J"] for r in after[: len(before)]] == [r["J"] for r in before]
        )
    return out


# -- main ---------------------------------------------------------------------------------------
SECTIONS = {
    "agreement": section_agreement,
    "host_syncs": section_host_syncs,
    "paper_shapes": section_paper_shapes,
    "epoch_extrapolation": section_epoch,
    "launcher": section_launcher,
}


def write(record: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str, allow_nan=True) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Run every section, write the record to ``--out``; 0 unless the record cannot be written."""
    ap = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="the JSON record to write")
    ap.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cuda (default when visible) or cpu",
    )
    ap.add_argument("--small", action="store_true", help="tiny sizes: < 60 s on a CPU")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset to run")
    ap.add_argument(
        "--threads",
        type=int,
        help="CPU threads of torch (default: 1 with --small, whose tensors are too small to "
        "gain from more and which a loaded CPU slows down 100-fold with several; else torch's)",
    )
    args = ap.parse_args(argv)
    threads = args.threads or (1 if args.small else None)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the launcher's subprocesses
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is visible to torch")
    clock = Clock(BUDGET_S)
    record: dict[str, Any] = dict(
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=device_name(device),
        device_type=device.type,
        git_commit=git_commit(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        python=platform.python_version(),
        small=args.small,
        budget_seconds=BUDGET_S,
        threads=torch.get_num_threads(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(record, args.out)
    for name in args.sections.split(","):
        t0 = time.perf_counter()
        try:
            result = SECTIONS[name](device, args.small, clock)
        except Exception as err:  # a failed section is recorded, the others still run
            result = dict(error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        result["seconds"] = round(time.perf_counter() - t0, 3)
        record[name] = result
        record["seconds"] = round(time.perf_counter() - clock.start, 3)
        write(record, args.out)
        print(
            f"{name}: {result['seconds']:.1f} s", "error" if "error" in result else "", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
