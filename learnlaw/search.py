"""Policy search from the command line, on one process or many (``torchrun``).

    python -m learnlaw.search --task transformer --scale cpu --out runs/tf
    torchrun --standalone --nproc-per-node 2 -m learnlaw.search --task transformer --out runs/tf2

runs :func:`learnlaw.optimize_policy` and writes into ``--out``:

* ``checkpoints/``: the search state after every epoch (one file per process, see
  :mod:`learnlaw.core.checkpoint`); Ctrl-C or a kill leaves it resumable with ``--resume``;
* ``history.jsonl``: one JSON object per evaluated policy (epochs 0…E, E being the final
  policy) with ``epoch``, ``J`` (desired AUC), ``test_auc``, ``cr_test``, ``ar_test``,
  ``zero_fraction``, ``outer_lr`` and ``seconds`` (wall time since the previous line; the first
  line includes the uniform-policy baseline run; ``null`` for an epoch finished just before an
  interruption), written as the epochs finish;
* ``policy.pt``: the final policy, a ``(T, N)`` tensor for ``torch.load`` (under torchrun the
  full policy, assembled once at the end);
* ``config.json``: the settings of the run (a resume must use the same), ``tf32`` included
  (``--tf32``: TF32 float32 matmuls on an NVIDIA Ampere+ GPU, see
  :mod:`learnlaw.core.precision`; no effect on the CPU).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes join one group (gloo on CPU, NCCL with
``--device cuda``, each rank on ``cuda:<LOCAL_RANK>``) and split the training examples
(:mod:`learnlaw.core.distributed`); the files are the same as with one process.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

__all__ = ["main", "build_parser"]

TASKS = ("perceptron", "transformer")
PERCEPTRON_DEFAULTS = dict(steps=2000, lr=0.1, outer_lr=1e-4, epochs=15)
"""The perceptron chapter's T, η and ε (paper App. D), with 15 epochs."""


def _constructor(task: str):
    if task == "perceptron":
        from learnlaw.tasks.perceptron import perceptron_task

        return perceptron_task
    from learnlaw.tasks.lm_task import transformer_task

    return transformer_task


def _parse_set(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word, e.g. a corpus path
    return key.strip(), value


def _checkpoint_every(text: str):
    if text == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int or 'auto', got {text!r}")
    return k


def _lr(text: str) -> float:
    """``--lr``: one float; a list of steps (a schedule) is refused with the fix."""
    try:
        return float(text)
    except ValueError:
        pass
    if any(sep in text.strip() for sep in (",", " ", "[", "(")):
        from learnlaw.core.checks import SCHEDULE_SUPPORTED

        raise argparse.ArgumentTypeError(
            f"got {text!r}: the launcher's inner run takes one η; a (T,) schedule is only "
            f"supported by {SCHEDULE_SUPPORTED} (the Python API); pass a float"
        )
    raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m learnlaw.search",
        description="Search a near-optimal learning policy (projected gradient descent on the "
        "AUC of the desired loss). Runs on one process, or on R under torchrun "
        "--nproc-per-node R (data parallelism over the training examples).",
        epilog="Example: python -m learnlaw.search --task perceptron --set n_train=512 "
        "--steps 200 --epochs 5 --out runs/p. Threads per process: set OMP_NUM_THREADS.",
    )
    ap.add_argument("--task", required=True, choices=TASKS, help="the task to search on")
    ap.add_argument(
        "--scale",
        choices=("cpu", "colab", "paper"),
        default="cpu",
        help="the Transformer preset (learnlaw.tasks.PRESETS): sizes and default --steps/--lr/"
        "--outer-lr/--epochs; 'colab' fits a T4 GPU, 'paper' is N=16384, T=4000 (default: "
        "cpu). The perceptron has one setting, the paper's.",
    )
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        type=_parse_set,
        metavar="KEY=VALUE",
        help="any keyword of the task constructor (perceptron_task / transformer_task), e.g. "
        "--set n_train=512 --set dim=32; repeatable; values are Python literals",
    )
    ap.add_argument("--steps", type=int, help="T, training steps of the inner run")
    ap.add_argument("--lr", type=_lr, help="η of the inner gradient descent (a float)")
    ap.add_argument(
        "--outer-lr",
        type=float,
        help="ε, the policy step size on J = Σ_t L_dsr(θ_t) (a sum over t: the paper's ε for "
        "its mean objective divided by T)",
    )
    ap.add_argument("--epochs", type=int, help="policy epochs E")
    ap.add_argument(
        "--schedule",
        choices=("constant", "linear"),
        default="constant",
        help="ε constant, or decaying linearly to 0 over the epochs (default: constant)",
    )
    ap.add_argument(
        "--checkpoint-every",
        type=_checkpoint_every,
        default="auto",
        metavar="K|auto",
        help="θ checkpointing of each sweep: keep every K-th θ_t and recompute the rest "
        "('auto': K=⌈√T⌉, memory ≈ 2√T·P floats; 1: all T·P). The search state itself is "
        "saved after every epoch. (default: auto)",
    )
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument(
        "--tf32",
        action="store_true",
        help="TF32 float32 matmuls on an NVIDIA Ampere+ GPU (faster; inputs rounded to a "
        "10-bit mantissa, relative 2^-11 instead of 2^-24); no effect on the CPU or in "
        "float64. Recorded in config.json: a resume must repeat it. (default: exact float32)",
    )
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu or cuda (under torchrun each rank takes cuda:<LOCAL_RANK>) (default: cpu)",
    )
    ap.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue the search saved in --out (same settings, same number of processes)",
    )
    ap.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return ap


def _settings(ap: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """Validated settings (task keywords and search hyper-parameters) or ``ap.error``."""
    ctor = _constructor(args.task)
    params = inspect.signature(ctor).parameters
    allowed = sorted(k for k in params if k not in ("dtype", "device", "scale"))
    task_kwargs = {}
    for key, value in args.sets:
        if key not in allowed:
            ap.error(
                f"--set {key}=...: {args.task} has no keyword {key!r}; expected one of "
                f"{', '.join(allowed)} (--dtype, --device and --scale are flags)"
            )
        task_kwargs[key] = value
    if args.task == "transformer":
        from learnlaw.tasks.lm_task import PRESETS

        preset = PRESETS[args.scale]
        task_kwargs["scale"] = args.scale
        defaults = dict(
            steps=preset["steps"],
            lr=preset["lr"],
            outer_lr=preset["outer_lr"] / preset["steps"],
            epochs=preset["epochs"],
        )
    else:
        defaults = PERCEPTRON_DEFAULTS
    s = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}
    if s["steps"] < 1:
        ap.error(f"--steps must be at least 1 (T ≥ 1 training steps), got {s['steps']}")
    for flag, key in (("--lr", "lr"), ("--outer-lr", "outer_lr")):
        if not (math.isfinite(s[key]) and s[key] > 0):
            ap.error(f"{flag} must be a positive finite number, got {s[key]}")
    if s["epochs"] < 0:
        ap.error(f"--epochs must be 0 or more, got {s['epochs']}")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        ap.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is visible to torch here; use --device cpu")
    return dict(
        task=args.task,
        task_kwargs=task_kwargs,
        schedule=args.schedule,
        checkpoint_every=args.checkpoint_every,
        dtype=args.dtype,
        tf32=args.tf32,
        **s,
    )


def _check_out(ap: argparse.ArgumentParser, args: argparse.Namespace, settings: dict) -> None:
    out: Path = args.out
    config = out / "config.json"
    if args.resume:
        if not config.exists():
            ap.error(f"--resume: {out} holds no search (no config.json); drop --resume")
        try:
            saved = json.loads(config.read_text())
        except (OSError, ValueError) as err:
            ap.error(f"--resume: cannot read {config} ({err}); start a new search elsewhere")
        saved.setdefault("tf32", False)  # written before --tf32 existed: exact float32
        now = json.loads(json.dumps(settings))
        if saved != now:
            diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
            ap.error(
                f"--resume: {out} holds a search with other settings (saved vs now: {diff}); "
                "repeat the original flags, or use another --out"
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        ap.error(
            f"--out {out} already exists; add --resume to continue the search saved there, "
            "or choose a new directory"
        )


def _init_group(device: str) -> str:
    """Join the torchrun group if there is one; return this rank's device."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            device = f"cuda:{local}"
            torch.cuda.set_device(device)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return device


def _clean(entry: dict) -> dict:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()
    }


def _write_lines(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def run(args: argparse.Namespace, settings: dict) -> int:
    import torch.distributed as dist

    from learnlaw.core.distributed import rank
    from learnlaw.core.optimize import optimize_policy

    device = _init_group(args.device)
    if dist.is_initialized():
        dist.barrier()  # every rank has checked --out before rank 0 writes into it
    lead = rank() == 0
    out: Path = args.out
    if lead:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(settings, indent=1) + "\n")
    task = _constructor(args.task)(
        **settings["task_kwargs"], dtype=getattr(torch, settings["dtype"]), device=device
    )
    history_path = out / "history.jsonl"
    rows: list[dict] = []
    if args.resume and history_path.exists():
        rows = [json.loads(line) for line in history_path.read_text().splitlines() if line]
    clock = {"t": time.perf_counter()}
    if lead and not args.quiet:
        world = dist.get_world_size() if dist.is_initialized() else 1
        print(
            f"search: {args.task}, N={task.n_train}, P={task.n_params}, T={settings['steps']}, "
            f"E={settings['epochs']}, {world} process(es), device {device}"
            + (", TF32 matmuls" if settings["tf32"] else ""),
            file=sys.stderr,
            flush=True,
        )

    def on_epoch(entry: dict) -> None:
        now = time.perf_counter()
        row = _clean(dict(entry, seconds=round(now - clock["t"], 3)))
        clock["t"] = now
        if not lead:
            return
        rows[:] = [r for r in rows if r["epoch"] < row["epoch"]] + [row]
        _write_lines(history_path, rows)
        if not args.quiet:
            print(
                f"epoch {row['epoch']:>4}/{settings['epochs']}  J={row['J']:.6g}  "
                f"CR={row['cr_test']:.4g}  {row['seconds']:.1f} s",
                file=sys.stderr,
                flush=True,
            )

    result = optimize_policy(
        task,
        settings["steps"],
        settings["lr"],
        settings["outer_lr"],
        settings["epochs"],
        schedule=settings["schedule"],
        checkpoint_every=settings["checkpoint_every"],
        checkpoint_dir=out / "checkpoints",
        resume=args.resume,
        progress=False,
        callback=on_epoch,
        tf32=settings["tf32"],
    )
    if lead:
        # the search's own history is complete (an epoch finished just before an interrupt
        # may have missed its line); keep the measured seconds where there are some
        seconds = {r["epoch"]: r.get("seconds") for r in rows}
        rows[:] = [_clean(dict(h, seconds=seconds.get(h["epoch"]))) for h in result.history]
        _write_lines(history_path, rows)
        tmp = out / "policy.pt.tmp"
        torch.save(result.policy.cpu(), tmp)
        os.replace(tmp, out / "policy.pt")
        if not args.quiet:
            print(f"done: {out / 'policy.pt'}, {history_path}", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the search, and turn expected failures into one-line errors."""
    from learnlaw.core.errors import LearnlawError

    ap = build_parser()
    args = ap.parse_args(argv)
    settings = _settings(ap, args)
    _check_out(ap, args, settings)
    try:
        return run(args, settings)
    except KeyboardInterrupt:
        print(
            f"interrupted: the last finished epoch is saved in {args.out}; continue with the "
            "same command plus --resume",
            file=sys.stderr,
        )
        return 130
    except (LearnlawError, ValueError) as err:  # every learnlaw error, and torch's bad values
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
