"""Checkpoints of a policy search: one file per process, written atomically, resumed exactly.

One process writes ``state.pt``. In a ``torch.distributed`` group of R > 1 processes
(:mod:`learnlaw.core.distributed`) rank r writes ``state.r<r>.e<epoch>.pt`` holding ITS
``(T, N_r)`` block of the policy (plus the replicated history), then all ranks wait for each
other (a barrier) before deleting their previous epoch's file. A kill at any moment therefore
leaves, on every rank, a file of one common epoch: resuming finds the newest epoch that all
ranks have. Every state records the number of processes that wrote it: resuming with another
number is an error (the shards would not match).

Every tensor is written as a CPU tensor (:func:`to_cpu`, recursively through dicts, lists and
tuples) and read back with ``map_location="cpu"`` before it is moved to the requested device
(:func:`load_file`): a checkpoint written on a GPU resumes on a CPU-only machine, and the file
does not depend on which GPU (``cuda:<k>``) wrote it. Cost: one device-to-host copy of the
state per save (T·N_r policy floats per epoch), one host-to-device copy per load.

A truncated or corrupted file is reported as a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.distributed as dist

from learnlaw.core.distributed import Shard, all_reduce
from learnlaw.core.errors import LearnlawError

__all__ = [
    "CheckpointError",
    "save_state",
    "load_state",
    "load_file",
    "atomic_save",
    "to_cpu",
    "to_device",
]


class CheckpointError(LearnlawError, ValueError):
    """A checkpoint that cannot be resumed: unreadable, or written by a different setup."""


def _map(obj, fn):
    """``obj`` with ``fn`` applied to every tensor inside dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map(v, fn)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(_map(v, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(v, fn) for v in obj)
    return obj


def _cpu_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "cpu":
        return t
    if t.device.type == "meta":  # no data to copy: an uninitialised CPU tensor of its shape
        return torch.empty_like(t, device="cpu")
    return t.detach().to("cpu")


def to_cpu(obj):
    """``obj`` with every tensor (in nested dicts, lists and tuples) moved to the CPU.

    CPU tensors are kept as they are (no copy); a tensor on a GPU is copied to the host. A
    tensor on PyTorch's ``meta`` device (shapes only, used to check device handling without a
    GPU) becomes an uninitialised CPU tensor of the same shape and dtype.
    """
    return _map(obj, _cpu_tensor)


def to_device(obj, device):
    """``obj`` with every tensor (in nested dicts, lists and tuples) moved to ``device``."""
    if device is None:
        return obj
    device = torch.device(device)
    return _map(obj, lambda t: t.to(device))


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` of ``to_cpu(obj)`` to a temporary file, then rename.

    A reader never sees half a file, and every tensor in the file is a CPU tensor.
    """
    tmp = path.with_name(path.name + ".tmp")
    torch.save(to_cpu(obj), tmp)
    os.replace(tmp, path)


def load_file(path: Path, device) -> object:
    """``torch.load`` onto the CPU, then every tensor to ``device``, with errors that name the file.

    Loading uses ``map_location="cpu"``, so a file whose tensors were written from a GPU (by an
    older version that did not move them first) also loads on a CPU-only machine.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(
            f"cannot resume from {path}: the file is truncated or corrupted "
            f"({type(err).__name__}: {str(err)[:200]}); delete the checkpoint directory's "
            "state files to start the search again, or resume=False"
        ) from err
    return to_device(obj, device)


def _shard_files(ckdir: Path) -> dict[int, dict[int, Path]]:
    """``{rank: {epoch: path}}`` of the distributed state files in ``ckdir``."""
    found: dict[int, dict[int, Path]] = {}
    for path in ckdir.glob("state.r*.e*.pt"):
        m = re.fullmatch(r"state\.r(\d+)\.e(\d+)\.pt", path.name)
        if m:
            found.setdefault(int(m[1]), {})[int(m[2])] = path
    return found


def save_state(ckdir: Path, state: dict, shard: Shard | None) -> None:
    """Save this process's ``state`` (a dict with ``epoch``) for a later :func:`load_state`."""
    state = dict(state, world=1 if shard is None else shard.world)
    if shard is None:
        atomic_save(state, ckdir / "state.pt")
        return
    epoch = state["epoch"]
    atomic_save(state, ckdir / f"state.r{shard.rank}.e{epoch}.pt")
    dist.barrier()  # every rank has its file of this epoch: the older ones can go
    for e, path in _shard_files(ckdir).get(shard.rank, {}).items():
        if e < epoch:
            path.unlink(missing_ok=True)


def _agree(ok: bool) -> bool:
    """True on every rank iff ``ok`` on every rank (one reduction)."""
    flag = torch.tensor([0.0 if ok else 1.0], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    return float(all_reduce(flag, dist.ReduceOp.MAX)[0]) == 0


def _mismatch(ckdir: Path, saved: int, now: int) -> CheckpointError:
    return CheckpointError(
        f"cannot resume from {ckdir}: its checkpoint was written by {saved} process(es) and "
        f"this search runs on {now}; resume with {saved} process(es) (e.g. torchrun "
        f"--nproc-per-node {saved}), or start a new search in another directory"
    )


def load_state(ckdir: Path, shard: Shard | None, device) -> dict | None:
    """This process's saved state in ``ckdir`` (``None`` if there is none).

    Raises:
        CheckpointError: a truncated/corrupted file (named), or a checkpoint written by a
            different number of processes.
    """
    world = 1 if shard is None else shard.world
    files = _shard_files(ckdir)
    single = ckdir / "state.pt"
    if shard is None:
        if files:
            raise _mismatch(ckdir, max(files) + 1, 1)
        if not single.exists():
            return None
        state = load_file(single, device)
        if state.get("world", 1) != 1:
            raise _mismatch(ckdir, state["world"], 1)
        return state
    # every rank reads the same directory listing, so these checks agree across ranks
    if single.exists() and not files:
        raise _mismatch(ckdir, 1, world)
    if files and max(files) + 1 != world:
        raise _mismatch(ckdir, max(files) + 1, world)
    mine = files.get(shard.rank, {})
    if not files:
        return None
    newest = torch.tensor([float(max(mine)) if mine else -1.0], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        newest = newest.cuda()
    common = int(all_reduce(newest, dist.ReduceOp.MIN)[0])
    if common < 0 or common not in mine:
        error = CheckpointError(
            f"cannot resume from {ckdir}: no epoch was saved by all {world} processes "
            f"(rank {shard.rank} has epochs {sorted(mine)}); start a new search"
        )
        _agree(False)
        raise error
    state, error = None, None
    try:
        state = load_file(mine[common], device)
        if state.get("world") != world:
            raise _mismatch(ckdir, state.get("world"), world)
    except CheckpointError as err:
        error = err
    if not _agree(error is None):
        raise error or CheckpointError(
            f"cannot resume from {ckdir}: another process could not read its checkpoint "
            "(its error names the file)"
        )
    return state
