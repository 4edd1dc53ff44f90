"""A dispatch-level audit of device hygiene: host syncs, mixed-device ops, cross-device copies.

Code that runs on an accelerator is slow for three reasons that a CPU run never shows:

* **host syncs** — the host waits for the device: every ``float(t)``, ``int(t)``, ``bool(t)``,
  ``t.item()`` of a device tensor (``aten._local_scalar_dense``), ops whose output shape
  depends on the data (``aten.nonzero``, boolean-mask indexing, ``masked_select``,
  ``unique`` …) and blocking device→host copies (``t.cpu()``, ``t.tolist()``). Once per
  training step each costs a round trip (tens of µs on a GPU) and empties the launch queue;
* **mixed-device ops** — an op whose tensor arguments sit on more than one device: an error on
  CUDA ("Expected all tensors to be on the same device"), or a hidden copy where torch allows it
  (CPU index tensors into a CUDA tensor). A 0-dim CPU tensor is allowed in any op (torch reads
  it on the host, as a "wrapped number") and is not counted;
* **cross-device copies** — ``aten._to_copy``, ``aten.copy_`` and ``Tensor.to`` between
  devices. A host→device copy inside a training step (e.g. a Python float that a
  ``torch.func`` transform wraps as a CPU tensor and moves to the device) is a small
  synchronous transfer per op.

:class:`DeviceAudit` counts all three at the dispatcher, below autograd and the ``torch.func``
transforms, so it sees what actually runs. It works on any device:

* on CUDA (or any real accelerator) it only counts — nothing is changed;
* on the CPU it counts the same ops (they cost nothing there, but mark where an accelerator
  would wait); a CPU run has no second device, so no mixed-device op or copy can show;
* on the **meta** device (tensors with shapes and no data) it finds device bugs without a GPU:
  a task built with ``device="meta"`` runs the library's code paths with every tensor on
  ``meta``, so any CPU tensor that meets them is a mixed-device op or a copy. Meta tensors hold
  no values, so the audit *fakes* what the host would read (:meth:`DeviceAudit.fake_scalar`):
  ``1`` for integers, ``0.5`` for floats, and for booleans ``True`` if the value comes from an
  ``all`` reduction or ``isfinite`` ("every entry is fine") and ``False`` otherwise (so
  ``bool(bad.any())`` reads "nothing is wrong"); a copy out of ``meta`` is filled with the same
  fake value. It also sets ``torch.fx.experimental._config.meta_nonzero_assume_all_nonzero``
  inside the context (``nonzero`` of a meta tensor then returns every index instead of
  raising) and restores it on exit. Control flow that depends on data therefore takes one
  fixed branch on meta: count loops with data-dependent exits on the CPU.

Example::

    task = perceptron_task(dim=8, n_train=32, n_desired=8, n_test=8, device="meta")
    with DeviceAudit() as audit:
        train(task, uniform_policy(100, task.n_train), lr=0.1)
    audit.host_syncs        # int: ops that would make the host wait
    audit.syncs_by_op       # {"aten._local_scalar_dense": …}
    audit.mixed_device_ops  # [] when the code is device-clean
    audit.copies            # {"host_to_device": 0, "device_to_host": 0, …}
    audit.report()          # all of it as a dict (JSON-serialisable)
"""

from __future__ import annotations

import os
import traceback
from collections import Counter

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["DeviceAudit", "SYNC_OPS", "COPY_OPS"]

_aten = torch.ops.aten

SYNC_OPS = frozenset(
    {
        "_local_scalar_dense",  # float(t), int(t), bool(t), t.item()
        "item",
        "is_nonzero",
        "nonzero",  # output shape = number of non-zeros
        "equal",  # returns a Python bool
        "masked_select",
        "unique_dim",
        "unique_consecutive",
        "_unique",
        "_unique2",
        "unique_dim_consecutive",
        "bincount",  # output size = max + 1
    }
)
"""Overload packets (``aten.<name>``) whose every call makes the host wait for the device.

Besides these, :class:`DeviceAudit` counts ``aten.index`` / ``aten.index_put_`` with a boolean
mask (a hidden ``nonzero``), ``aten.repeat_interleave`` with tensor repeats and no
``output_size``, and blocking device→host copies."""

COPY_OPS = frozenset({"_to_copy", "copy_", "copy", "to", "_copy_from", "_copy_from_and_resize"})
"""Overload packets that copy between devices; they are counted in :attr:`DeviceAudit.copies`,
never as mixed-device ops."""

_TRUE_BOOL_PRODUCERS = frozenset({"all", "isfinite"})
_LIBRARY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _packet(func) -> str:
    """``aten.add.Tensor`` → ``"add"``."""
    return func.overloadpacket.__name__


def _site() -> str:
    """``file:line`` of the innermost frame in learnlaw (else of the innermost caller outside
    torch) that led to the current op."""
    frames = [
        f
        for f in traceback.extract_stack()
        if f"{os.sep}torch{os.sep}" not in f.filename and not f.filename.endswith("device_audit.py")
    ]
    ours = [f for f in frames if f.filename.startswith(_LIBRARY_ROOT + os.sep)]
    if ours:
        f = ours[-1]
        return f"{os.path.relpath(f.filename, os.path.dirname(_LIBRARY_ROOT))}:{f.lineno}"
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"


class DeviceAudit(TorchDispatchMode):
    """Count host syncs, mixed-device ops and cross-device copies of the code run inside it.

    A :class:`torch.utils._python_dispatch.TorchDispatchMode`: every aten op called inside
    ``with DeviceAudit() as audit:`` passes through :meth:`__torch_dispatch__`, including the
    ops that ``torch.func`` transforms (``grad``, ``jvp``, ``vmap``) and autograd's backward
    emit. See the module docstring for what is counted and how the meta device is faked.

    Args:
        fake_meta: on the meta device, return fake values for host reads and copies out of
            ``meta`` (default ``True``; ``False`` lets them raise as meta tensors do).
        fake_float: the value a float read of a meta tensor returns (default 0.5).
        fake_int: the value an integer read of a meta tensor returns (default 1).
        sites: also record where (``file:line`` in learnlaw, else the caller) each host sync and
            mixed-device op happens, in :attr:`syncs_by_site` and the report (default ``True``;
            it costs one stack walk per sync).
        cpu: also count host reads of CPU tensors (``float()`` of a CPU tensor, ``nonzero`` on
            the CPU …), which cost nothing but would be host syncs if the same code ran on an
            accelerator (default ``False``: on a CUDA or meta run, reads of CPU tensors are
            not syncs). ``Tensor.tolist()`` and ``Tensor.numpy()`` of a CPU tensor never reach
            the dispatcher and are not counted.

    Attributes:
        ops: the number of aten ops seen.
        syncs_by_op: ``Counter`` of host syncs by op name (e.g. ``"aten._local_scalar_dense"``,
            ``"aten.nonzero"``, ``"aten._to_copy (device→host)"``).
        syncs_by_site: ``Counter`` of host syncs by ``file:line`` (with ``sites=True``).
        mixed_device_ops: ``[(op name, (device, …)), …]``, one entry per offending call, devices
            sorted; 0-dim CPU tensors are left out.
        mixed_device_sites: ``file:line`` of each entry of :attr:`mixed_device_ops`.
        copies_by_direction: ``Counter`` of cross-device copies keyed ``"cpu->cuda:0"``.
    """

    def __init__(
        self,
        *,
        fake_meta: bool = True,
        fake_float: float = 0.5,
        fake_int: int = 1,
        sites: bool = True,
        cpu: bool = False,
    ):
        super().__init__()
        self.fake_meta = fake_meta
        self.fake_float = float(fake_float)
        self.fake_int = int(fake_int)
        self.sites = sites
        self.cpu = cpu
        self.ops = 0
        self.syncs_by_op: Counter[str] = Counter()
        self.syncs_by_site: Counter[str] = Counter()
        self.mixed_device_ops: list[tuple[str, tuple[str, ...]]] = []
        self.mixed_device_sites: list[str] = []
        self.copies_by_direction: Counter[str] = Counter()
        self._bool_source: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._saved_nonzero_flag: bool | None = None

    # -- the context -------------------------------------------------------------------------
    def __enter__(self) -> "DeviceAudit":
        import torch.fx.experimental._config as fx_config

        self._saved_nonzero_flag = fx_config.meta_nonzero_assume_all_nonzero
        fx_config.meta_nonzero_assume_all_nonzero = True
        super().__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        import torch.fx.experimental._config as fx_config

        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            fx_config.meta_nonzero_assume_all_nonzero = self._saved_nonzero_flag

    # -- results -----------------------------------------------------------------------------
    @property
    def host_syncs(self) -> int:
        """The number of host syncs counted (all ops of :attr:`syncs_by_op`)."""
        return sum(self.syncs_by_op.values())

    @property
    def copies(self) -> dict:
        """Cross-device copies: ``{"host_to_device", "device_to_host", "device_to_device",
        "total"}`` counts and ``"by_direction"`` (``{"cpu->meta": n, …}``); "host" is the CPU."""
        h2d = d2h = d2d = 0
        for key, n in self.copies_by_direction.items():
            src, dst = key.split("->")
            if src == "cpu":
                h2d += n
            elif dst == "cpu":
                d2h += n
            else:
                d2d += n
        return {
            "host_to_device": h2d,
            "device_to_host": d2h,
            "device_to_device": d2d,
            "total": h2d + d2h + d2d,
            "by_direction": dict(self.copies_by_direction),
        }

    @property
    def host_to_device(self) -> int:
        """Host→device copies (``copies["host_to_device"]``)."""
        return self.copies["host_to_device"]

    def report(self) -> dict:
        """Everything counted, as a JSON-serialisable dict.

        Returns:
            ``{"ops", "host_syncs", "syncs_by_op", "syncs_by_site", "mixed_device_ops"
            (a list of ``{"op", "devices", "site"}``), "n_mixed_device_ops", "copies"}``.
        """
        mixed = [
            {"op": op, "devices": list(devs), "site": site}
            for (op, devs), site in zip(self.mixed_device_ops, self.mixed_device_sites)
        ]
        return {
            "ops": self.ops,
            "host_syncs": self.host_syncs,
            "syncs_by_op": dict(self.syncs_by_op),
            "syncs_by_site": dict(self.syncs_by_site.most_common()),
            "mixed_device_ops": mixed,
            "n_mixed_device_ops": len(self.mixed_device_ops),
            "copies": self.copies,
        }

    # -- fakes on meta -------------------------------------------------------------------------
    def fake_scalar(self, t: Tensor) -> bool | int | float:
        """What a host read of the meta tensor ``t`` returns (see the module docstring)."""
        if t.dtype == torch.bool:
            return self._bool_source.get(t) in _TRUE_BOOL_PRODUCERS
        if t.dtype.is_complex:
            return complex(self.fake_float)
        if t.dtype.is_floating_point:
            return self.fake_float
        return self.fake_int

    def _fake_fill(self, t: Tensor) -> float | int | bool:
        if t.dtype == torch.bool:
            return False
        return self.fake_float if t.dtype.is_floating_point else self.fake_int

    # -- the dispatch hook -----------------------------------------------------------------------
    def _sync(self, name: str) -> None:
        self.syncs_by_op[name] += 1
        if self.sites:
            self.syncs_by_site[_site()] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        name = _packet(func)
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, Tensor)]
        on_meta = self.fake_meta and any(t.device.type == "meta" for t in tensors)

        if name in COPY_OPS:
            return self._copy(func, name, args, kwargs, on_meta)

        devices = {str(t.device) for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devices) > 1:
            self.mixed_device_ops.append((f"aten.{name}", tuple(sorted(devices))))
            self.mixed_device_sites.append(_site() if self.sites else "")

        device_read = self.cpu or any(t.device.type != "cpu" for t in tensors)
        if device_read and (name in SYNC_OPS or self._data_dependent(name, func, args, kwargs)):
            self._sync(f"aten.{name}")
            if on_meta and name in ("_local_scalar_dense", "item", "is_nonzero"):
                return self.fake_scalar(args[0])
            if on_meta and name == "equal":
                return True

        out = func(*args, **kwargs)
        if on_meta and name in ("any", "all", "isfinite") and isinstance(out, Tensor):
            self._bool_source[out] = name
        return out

    @staticmethod
    def _data_dependent(name: str, func, args, kwargs) -> bool:
        """Ops that sync only with some arguments (boolean masks, tensor repeats)."""
        if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in indices or ())
        if name == "repeat_interleave":
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if func is _aten.repeat_interleave.Tensor:
                repeats = args[0]
            return isinstance(repeats, Tensor) and kwargs.get("output_size") is None
        return False

    def _copy(self, func, name: str, args, kwargs, on_meta: bool):
        """Run a copy op, counting it when it crosses devices (and faking copies out of meta)."""
        if name in ("copy_", "_copy_from", "_copy_from_and_resize"):
            # copy_(dst, src); _copy_from(src, dst)
            dst, src = (args[0], args[1]) if name == "copy_" else (args[1], args[0])
            src_dev, dst_dev = src.device, dst.device
            out = None
            if on_meta and src_dev.type == "meta" and dst_dev.type != "meta":
                dst.fill_(self._fake_fill(dst))
                out = dst
            self._count_copy(src_dev, dst_dev, kwargs.get("non_blocking", False))
            return func(*args, **kwargs) if out is None else out
        # _to_copy / to / copy: the source is args[0], the destination the result's device
        src = args[0]
        target = kwargs.get("device")
        if target is None:
            target = next((a for a in args[1:] if isinstance(a, (torch.device, str))), None)
            other = next((a for a in args[1:] if isinstance(a, Tensor)), None)
            target = other.device if target is None and other is not None else target
        dst_dev = torch.device(target) if target is not None else src.device
        if dst_dev.type == "cuda" and dst_dev.index is None and src.device.type == "cuda":
            dst_dev = src.device
        non_blocking = kwargs.get("non_blocking", False) or (
            len(args) > 2 and isinstance(args[2], bool) and args[2]
        )
        if on_meta and src.device.type == "meta" and dst_dev.type != "meta":
            self._count_copy(src.device, dst_dev, non_blocking)
            dtype = kwargs.get("dtype") or src.dtype
            dtype = next((a for a in args[1:] if isinstance(a, torch.dtype)), dtype)
            fill = self._fake_fill(torch.empty((), dtype=dtype, device="meta"))
            return torch.full(src.shape, fill, dtype=dtype, device=dst_dev)
        out = func(*args, **kwargs)
        if isinstance(out, Tensor):
            self._count_copy(src.device, out.device, non_blocking)
        return out

    def _count_copy(self, src: torch.device, dst: torch.device, non_blocking: bool) -> None:
        if src == dst:
            return
        self.copies_by_direction[f"{src}->{dst}"] += 1
        if dst.type == "cpu" and not non_blocking:
            self._sync(f"aten.copy (device→host, {src.type})")
