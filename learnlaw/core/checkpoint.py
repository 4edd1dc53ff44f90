"""Checkpoints of a policy search: one file per process, written atomically, resumed exactly.

One process writes ``state.pt``. In a ``torch.distributed`` group of R > 1 processes
(:mod:`learnlaw.core.distributed`) rank r writes ``state.r<r>.e<epoch>.pt`` holding ITS
``(T, N_r)`` block of the policy (plus the replicated history), then all ranks wait for each
other (a barrier) before deleting their previous epoch's file. A kill at any moment therefore
leaves, on every rank, a file of one common epoch: resuming finds the newest epoch that all
ranks have. Every state records the number of processes that wrote it: resuming with another
number is an error (the shards would not match).

A truncated or corrupted file is reported as a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.distributed as dist

from learnlaw.core.distributed import Shard, all_reduce

__all__ = ["CheckpointError", "save_state", "load_state", "load_file", "atomic_save"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: unreadable, or written by a different setup."""


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_file(path: Path, device) -> object:
    """``torch.load`` with an error that names the file and says what to do."""
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(
            f"cannot resume from {path}: the file is truncated or corrupted "
            f"({type(err).__name__}: {str(err)[:200]}); delete the checkpoint directory's "
            "state files to start the search again, or resume=False"
        ) from err


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
