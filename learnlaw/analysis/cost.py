"""What training and policy search cost: counted FLOPs and measured peak memory, no assumed rates.

Everything here is *counted* or *measured* on the meta device (tensors with shapes and no data:
nothing is computed, nothing is allocated), so the paper's sizes can be costed on a laptop:

* :func:`count_flops` — the FLOPs of one call, by :class:`torch.utils.flop_counter.FlopCounterMode`.
  It counts the matrix products (``mm``, ``bmm``, ``addmm``, convolutions, fused attention);
  element-wise ops, reductions, softmax and index ops count 0. For the paper's Transformer the
  matrix products are all but a few per cent of the arithmetic, but not of the memory traffic.
* :func:`meta_peak_bytes` — the peak bytes of tensor storage alive at once during a call, above
  what was alive when it started, by :class:`AllocationTracker` (a ``TorchDispatchMode`` that
  registers the storage of every op's output once and forgets it when it is freed). Works on
  meta (no real memory) and on a CPU. It sees what ATen ops return (activations, saved tensors,
  gradients, temporaries), not allocator rounding, caching or workspaces inside a kernel.
* :func:`meta_transformer_task` — the paper-shaped Transformer task (the model and loss of
  :func:`learnlaw.transformer_task`) with token ids made up directly on the device, no stories,
  no tokenizer; :func:`synthetic_transformer_task` is the same on any device (random ids).
* :func:`task_costs` / :func:`transformer_costs` — one training step, one loss evaluation, one
  reverse step per kernel counted on meta, multiplied up to a plain run and a policy epoch by
  the exact step counts of :func:`learnlaw.train` and :func:`learnlaw.training.adjoint_sweep`.
* :func:`project_seconds` — FLOPs into seconds at a peak rate times a sustained fraction. The
  rates (:data:`GPU_FP32_PEAK_TFLOPS`, :data:`GPU_TF32_PEAK_TFLOPS`) and the fraction
  (:data:`DEFAULT_SUSTAINED_FRACTION`) are assumptions from datasheets, not measurements; the
  measured rate comes from ``scripts/gpu_check.py`` (``learnlaw/data/gpu_check.json``).

Counted at the paper's shapes (N = 16,384, K = 512, test 512, L = 64, |V| = 5000, d = 128,
8 heads, 2 layers, chunks of 512, T = 4000, float32) — ``transformer_costs(**PAPER_SCALE)``:
see :data:`PAPER_COUNTS`.
"""

from __future__ import annotations

import math
import weakref
from functools import partial
from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from learnlaw.core.adjoint import resolve_checkpointing
from learnlaw.core.checks import (
    check_bool,
    check_checkpoint_every,
    check_int,
    check_number,
    check_steps,
)
from learnlaw.core.dispatch import kernels_for
from learnlaw.core.task import Task
from learnlaw.tasks.transformer import Transformer, TransformerConfig, sequence_loss

__all__ = [
    "AllocationTracker",
    "count_flops",
    "meta_peak_bytes",
    "meta_transformer_task",
    "synthetic_transformer_task",
    "task_costs",
    "transformer_costs",
    "epoch_step_counts",
    "project_seconds",
    "GPU_FP32_PEAK_TFLOPS",
    "GPU_TF32_PEAK_TFLOPS",
    "DEFAULT_SUSTAINED_FRACTION",
    "PAPER_COUNTS",
    "transformer_forward_flops",
]

GPU_FP32_PEAK_TFLOPS = {"T4": 8.1, "A100": 19.5, "H100": 67.0, "H200": 67.0}
"""ASSUMED peak float32 rates (non-tensor-core FMA units, dense), TFLOP/s, from NVIDIA's
datasheets: "NVIDIA T4 Tensor Core GPU" (single precision 8.1 TFLOPS), "NVIDIA A100 Tensor Core
GPU" (FP32 19.5 TFLOPS), "NVIDIA H100 Tensor Core GPU" (FP32 67 TFLOPS, the SXM5 board; the PCIe
card is 51) and "NVIDIA H200 Tensor Core GPU" (FP32 67 TFLOPS, SXM). Peaks at boost clock; no
program reaches them."""

GPU_TF32_PEAK_TFLOPS = {"A100": 156.0, "H100": 494.5, "H200": 494.5}
"""ASSUMED peak TF32 tensor-core rates, dense (the datasheets print twice these "with sparsity":
A100 312, H100/H200 SXM 989), TFLOP/s, same datasheets. The T4 has no TF32."""

DEFAULT_SUSTAINED_FRACTION = 0.3
"""ASSUMED fraction of the peak that the training steps sustain. The paper's model is narrow
(d = 128: the matrix products are 128-wide, the attention ones 16-wide per head) and a large
share of its time goes to element-wise ops and memory traffic that :func:`count_flops` does not
count, so a fraction well below the 0.5–0.7 of large-model training is expected; 0.3 is a
placeholder until ``scripts/gpu_check.py`` measures the achieved TFLOP/s on a real device."""


# -- counting ------------------------------------------------------------------------------------
def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """The FLOPs of one call ``fn(*args, **kwargs)``, counted by ``FlopCounterMode``.

    A multiply-add counts 2 (a ``(B, i) @ (i, o)`` product is ``2·B·i·o``); only matrix
    products, convolutions and fused attention are counted. Works on meta tensors, where
    nothing is computed. Backward passes run inside the call are counted too.

    Args:
        fn: the function.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        The total FLOPs.
    """
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def _storages(tree: Any) -> Iterable[torch.UntypedStorage]:
    for leaf in tree_flatten(tree)[0]:
        if isinstance(leaf, Tensor):
            yield leaf.untyped_storage()


class AllocationTracker(TorchDispatchMode):
    """Track the bytes of tensor storage that ATen ops allocate, and their peak.

    Every op's outputs are inspected: a storage not seen before (and not one of the op's
    inputs, which in-place ops and views return) is registered with its ``nbytes`` and a
    ``weakref.finalize`` that subtracts them when the storage is freed. Storages alive before
    the tracker was entered are the baseline and never counted. ``current`` is what is alive
    now, ``peak`` the most that was alive at once.

    Example:
        >>> with AllocationTracker() as mem:
        ...     y = x @ w
        >>> mem.peak
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        self.allocations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {s._cdata for s in _storages((args, kwargs))}
        for storage in _storages(out):
            key = storage._cdata
            if key in self.live or key in inputs:
                continue
            size = storage.nbytes()
            self.live[key] = size
            self.current += size
            self.allocations += 1
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)
        return out

    def _free(self, key: int) -> None:
        size = self.live.pop(key, None)
        if size is not None:
            self.current -= size


def meta_peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Peak bytes of tensor storage alive at once during ``fn(*args, **kwargs)``.

    Measured by :class:`AllocationTracker` above the baseline at entry (the arguments and
    everything else alive before the call are not counted; what the call returns is, while
    it is alive). On meta tensors nothing is allocated, so this costs the paper's shapes on
    any machine; on a CPU it measures the same tensors for real.

    Args:
        fn: the function.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        The peak, in bytes.
    """
    with AllocationTracker() as mem:
        fn(*args, **kwargs)
    return mem.peak


# -- the paper-shaped task without stories ---------------------------------------------------------
def synthetic_transformer_task(
    n_train: int,
    n_desired: int,
    n_test: int,
    max_len: int,
    vocab_size: int,
    d_model: int,
    n_heads: int,
    n_layers: int,
    chunk_size: int | None = None,
    *,
    device: torch.device | str = "meta",
    dtype: torch.dtype = torch.float32,
    kernels: str = "auto",
    seed: int = 0,
    attn_scale: str = "d_model",
) -> Task:
    """The Transformer task of :func:`learnlaw.transformer_task` with made-up token ids.

    Same model (:class:`~learnlaw.tasks.Transformer`, PyTorch's default
    initialisation under ``torch.manual_seed(seed)``), same loss
    (:func:`~learnlaw.tasks.sequence_loss` with ``pad_id = 0``) and the same split
    shapes ``(n, max_len)``, but the ids are drawn uniformly from ``1 … vocab_size − 1`` (no
    padding), without tokenising any story. Costs depend only on the shapes; on the meta device
    the ids and parameters have no values at all.

    Args:
        n_train, n_desired, n_test: N, K and the test size.
        max_len: L.
        vocab_size: |V| (the paper: 5000).
        d_model, n_heads, n_layers: the model's sizes.
        chunk_size: examples per chunk of full-batch sums (``None``: one chunk).
        device: ``"meta"`` (default) or a real device.
        dtype: of the parameters.
        kernels: the task's step kernels (see :class:`~learnlaw.Task`).
        seed: seeds θ₀ and the ids.
        attn_scale: see :class:`~learnlaw.tasks.TransformerConfig`.

    Returns:
        A :class:`~learnlaw.Task` named ``"transformer"``.
    """
    config = TransformerConfig(
        vocab_size=vocab_size,
        max_len=max_len,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        attn_scale=attn_scale,
    )
    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            model = Transformer(config).to(dtype=dtype)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Transformer(config)
        model = model.to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)

    def rows(n: int) -> tuple[Tensor, Tensor]:
        if device.type == "meta":
            r = torch.empty(n, max_len + 1, dtype=torch.long, device="meta")
        else:
            r = torch.randint(1, vocab_size, (n, max_len + 1), generator=gen).to(device)
        return r[:, :-1].contiguous(), r[:, 1:].contiguous()

    return Task(
        model=model,
        params0={name: p.detach().clone() for name, p in model.named_parameters()},
        train=rows(n_train),
        desired=rows(n_desired),
        test=rows(n_test),
        loss_fn=partial(sequence_loss, pad_id=0),
        vocab_size=vocab_size,
        name="transformer",
        chunk_size=chunk_size,
        kernels=kernels,
        info=dict(
            n_train=n_train,
            n_desired=n_desired,
            n_test=n_test,
            max_len=max_len,
            vocab_size=vocab_size,
            d_model=d_model,
            n_heads=n_heads,
            n_layers=n_layers,
            chunk_size=chunk_size,
            config=config,
            synthetic=True,
        ),
    )


def meta_transformer_task(**sizes: Any) -> Task:
    """:func:`synthetic_transformer_task` on the meta device (shapes only, no data, no memory).

    Example:
        >>> from learnlaw.tasks.lm_task import PAPER_SCALE, TASK_KEYS
        >>> task = meta_transformer_task(**{k: PAPER_SCALE[k] for k in TASK_KEYS})
    """
    sizes.setdefault("device", "meta")
    return synthetic_transformer_task(**sizes)


# -- costs of training and of a policy epoch ---------------------------------------------------
def epoch_step_counts(
    steps: int, checkpoint_every: int | str | None = "auto", track_test: bool = True
) -> dict[str, int]:
    """How many of each kernel call one policy epoch makes (read off ``adjoint_sweep``).

    One epoch of :func:`learnlaw.optimize_policy` is one
    :func:`~learnlaw.training.adjoint_sweep` (``track_test=True``;
    :func:`~learnlaw.policy_gradient` passes ``False``):

    * forward run: ``T`` training steps, ``T + 1`` desired losses (and ``T + 1`` test losses);
    * reverse: ``∇L_dsr(θ_T)`` once, then for each segment ``[s, e)`` of ``k`` steps the
      ``e − s − 1`` steps from the checkpoint θ_s are recomputed (k > 1 only), and ``T``
      reverse steps, with one more ``∇L_dsr(θ_t)`` for each t ≥ 1: ``T`` desired gradients in all.

    Returns:
        ``k``, ``train_steps`` (forward run), ``recomputed_steps`` (T − ⌈T/k⌉ for k > 1),
        ``desired_loss_evals``, ``test_loss_evals``, ``reverse_steps``, ``desired_grads``,
        ``checkpoints`` (stored θ's: ⌊T/k⌋ + 1) and ``segment`` (θ's recomputed at once: k
        for k > 1, else 0).
    """
    k = resolve_checkpointing(checkpoint_every, steps)
    recomputed = 0
    if k > 1:
        recomputed = sum(min(s + k, steps) - 1 - s for s in range(0, steps, k))
    return dict(
        k=k,
        train_steps=steps,
        recomputed_steps=recomputed,
        desired_loss_evals=steps + 1,
        test_loss_evals=steps + 1 if track_test else 0,
        reverse_steps=steps,
        desired_grads=steps,
        checkpoints=steps // k + 1,
        segment=k if k > 1 else 0,
    )


def _chunk_task(task: Task) -> Task:
    """The task cut to its first training chunk (for the peak of one chunk)."""
    c = task.chunk_size or task.n_train
    x, y = task.train
    return task.with_(train=(x[:c], y[:c]), kinds={})


def task_costs(
    task: Task,
    steps: int,
    kernels: Iterable[str] = ("autodiff", "autodiff_rr"),
    checkpoint_every: int | str | None = "auto",
    track_test: bool = True,
    peaks: bool = True,
) -> dict[str, Any]:
    """Counted FLOPs and meta-device peaks of training and of one policy epoch on ``task``.

    One call of each kernel operation is counted at θ₀ under the uniform policy (on the meta
    device if the task is there; the counts depend only on shapes) and multiplied by the step
    counts of :func:`epoch_step_counts`:

    * ``plain_run_flops = T·train_step + (T+1)·loss_eval`` (:func:`learnlaw.train` tracks both
      curves);
    * ``policy_epoch_flops[k] = plain_run + recomputed·train_step + T·reverse_step[k]
      + T·desired_grad`` (test losses only with ``track_test``).

    Args:
        task: the task (best on the meta device: see :func:`meta_transformer_task`).
        steps: T.
        kernels: the kernel names to cost the reverse step with.
        checkpoint_every: the sweep's checkpointing (``"auto"``: k = ⌈√T⌉).
        track_test: the forward run of the epoch also evaluates the test loss (as
            :func:`learnlaw.optimize_policy`'s sweeps do).
        peaks: also measure the peaks of one chunk (the slowest part on meta).

    Returns:
        A dict: ``n_params``; FLOPs ``train_step_flops``, ``desired_loss_flops``,
        ``test_loss_flops``, ``loss_eval_flops`` (desired + test at one θ),
        ``desired_grad_flops``, ``contribution_flops`` (the N contributions CT_n at one θ,
        :func:`learnlaw.contributions`), ``reverse_step_flops`` (per kernel), ``plain_run_flops``,
        ``policy_epoch_flops`` (per kernel), ``epoch_over_plain`` (per kernel),
        ``reverse_over_train`` (per kernel); ``counts`` (:func:`epoch_step_counts`); bytes
        ``train_chunk_peak_bytes``, ``reverse_chunk_peak_bytes`` (per kernel),
        ``checkpoint_bytes`` (the stored θ's) and ``trajectory_bytes`` (checkpoints plus
        one recomputed segment, :attr:`~learnlaw.core.adjoint.Sweep.stored_floats`).
    """
    steps = check_steps(steps)
    check_checkpoint_every(checkpoint_every)
    check_bool(track_test, "track_test")
    check_bool(peaks, "peaks")
    kernels = tuple(kernels)
    theta = task.spec.flatten(task.params0).detach()
    opts = dict(dtype=theta.dtype, device=theta.device)
    gamma = torch.full((task.n_train,), 1.0 / task.n_train, **opts)
    v = torch.ones_like(theta) if theta.device.type != "meta" else torch.empty_like(theta)
    base = kernels_for(task.with_(kernels=kernels[0] if kernels else "autodiff"))
    with torch.no_grad():
        train_step = count_flops(base.train_grad, theta, gamma)
        desired_loss = count_flops(base.split_loss, theta, "desired")
        test_loss = count_flops(base.split_loss, theta, "test")
    desired_grad = count_flops(base.desired_grad, theta)
    with torch.no_grad():
        contribution = count_flops(base.contributions, theta)  # ∇L_dsr, then one jvp over N
    counts = epoch_step_counts(steps, checkpoint_every, track_test)
    loss_eval = desired_loss + test_loss
    plain_run = steps * train_step + (steps + 1) * loss_eval
    forward = (
        counts["train_steps"] * train_step
        + counts["desired_loss_evals"] * desired_loss
        + counts["test_loss_evals"] * test_loss
    )
    reverse_step, epoch, over, rev_over = {}, {}, {}, {}
    for name in kernels:
        kern = kernels_for(task.with_(kernels=name))
        with torch.no_grad():
            reverse_step[name] = count_flops(kern.reverse, theta, gamma, v)
        epoch[name] = (
            forward
            + counts["recomputed_steps"] * train_step
            + counts["reverse_steps"] * reverse_step[name]
            + counts["desired_grads"] * desired_grad
        )
        over[name] = epoch[name] / plain_run if plain_run else math.nan  # mv counts 0
        rev_over[name] = reverse_step[name] / train_step if train_step else math.nan
    itemsize = theta.element_size()
    p = task.n_params
    out: dict[str, Any] = dict(
        n_params=p,
        steps=steps,
        device=str(theta.device),
        dtype=str(theta.dtype).removeprefix("torch."),
        train_step_flops=train_step,
        desired_loss_flops=desired_loss,
        test_loss_flops=test_loss,
        loss_eval_flops=loss_eval,
        desired_grad_flops=desired_grad,
        contribution_flops=contribution,
        reverse_step_flops=reverse_step,
        plain_run_flops=plain_run,
        policy_epoch_flops=epoch,
        epoch_over_plain=over,
        reverse_over_train=rev_over,
        counts=counts,
        checkpoint_bytes=counts["checkpoints"] * p * itemsize,
        trajectory_bytes=(counts["checkpoints"] + counts["segment"]) * p * itemsize,
    )
    if peaks:
        chunk = _chunk_task(task)
        g = torch.full((chunk.n_train,), 1.0 / task.n_train, **opts)
        base = kernels_for(chunk.with_(kernels=kernels[0] if kernels else "autodiff"))
        out["train_chunk_peak_bytes"] = meta_peak_bytes(base.train_grad, theta, g)
        out["reverse_chunk_peak_bytes"] = {
            name: meta_peak_bytes(kernels_for(chunk.with_(kernels=name)).reverse, theta, g, v)
            for name in kernels
        }
        out["chunk_size"] = chunk.n_train
    return out


def transformer_costs(
    n_train: int,
    n_desired: int,
    n_test: int,
    max_len: int,
    vocab_size: int,
    d_model: int,
    n_heads: int,
    n_layers: int,
    chunk_size: int | None,
    steps: int,
    kernels: Iterable[str] = ("autodiff", "autodiff_rr"),
    checkpoint_every: int | str | None = "auto",
    track_test: bool = True,
    peaks: bool = True,
    dtype: torch.dtype = torch.float32,
    **ignored: Any,
) -> dict[str, Any]:
    """:func:`task_costs` of the Transformer task at these sizes, counted on the meta device.

    Accepts a preset directly: ``transformer_costs(**PAPER_SCALE)`` (its ``lr``, ``epochs``
    and ``outer_lr`` are ignored). Nothing is allocated; at the paper's sizes it takes a few
    seconds (one full step of 32 chunks per kernel, traced on meta).

    Args:
        n_train, n_desired, n_test, max_len, vocab_size, d_model, n_heads, n_layers,
            chunk_size: the task's sizes (see :func:`learnlaw.transformer_task`).
        steps: T.
        kernels: kernel names for the reverse step.
        checkpoint_every: the sweep's checkpointing.
        track_test: the epoch's forward run tracks the test loss too.
        peaks: also measure the peaks of one chunk.
        dtype: the parameters' dtype.
        **ignored: other preset keys (``lr``, ``outer_lr``, ``epochs``).

    Returns:
        :func:`task_costs`'s dict, plus ``sizes`` and ``tokens_per_step`` (N·L).
    """
    sizes = dict(
        n_train=n_train,
        n_desired=n_desired,
        n_test=n_test,
        max_len=max_len,
        vocab_size=vocab_size,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        chunk_size=chunk_size,
    )
    for name, value in sizes.items():
        check_int(value, name, minimum=1, allow_none=name == "chunk_size")
    task = meta_transformer_task(**sizes, dtype=dtype)
    out = task_costs(task, steps, kernels, checkpoint_every, track_test, peaks)
    out["sizes"] = sizes
    out["tokens_per_step"] = n_train * max_len
    return out


def project_seconds(
    flops: float,
    tflops: float,
    sustained_fraction: float = DEFAULT_SUSTAINED_FRACTION,
) -> float:
    """Seconds for ``flops`` at ``tflops`` peak TFLOP/s sustained at ``sustained_fraction``.

    ``flops / (tflops · 1e12 · sustained_fraction)``. Both rates are assumptions (see
    :data:`GPU_FP32_PEAK_TFLOPS`, :data:`DEFAULT_SUSTAINED_FRACTION`); for a measured rate pass
    the achieved TFLOP/s of ``scripts/gpu_check.py`` with ``sustained_fraction=1``.

    Example:
        >>> project_seconds(1.35e17, GPU_FP32_PEAK_TFLOPS["H200"])  # one paper policy epoch
    """
    flops = check_number(flops, "flops", minimum=0)
    tflops = check_number(tflops, "tflops", minimum=0, strict=True)
    sustained_fraction = check_number(
        sustained_fraction, "sustained_fraction", minimum=0, maximum=1, strict=True
    )
    return flops / (tflops * 1e12 * sustained_fraction)


def transformer_forward_flops(
    n: int, max_len: int, vocab_size: int, d_model: int, n_layers: int, **ignored: Any
) -> int:
    """Closed form of the counted FLOPs of one forward pass of ``n`` sequences.

    Per token: ``2·(n_layers·12·d² + d·V)`` for the linear maps (Q, K, V, O, the 4d MLP and the
    head) plus ``n_layers·4·L·d`` for the attention products q·kᵀ and att·v (full L×L, masked
    afterwards). A training step counts 3× its N-sequence forward (forward + backward), a
    reverse step 9× (both kernels), a desired gradient 3× its K-sequence forward.
    """
    d, per_token = d_model, 2 * (n_layers * 12 * d_model**2 + d_model * vocab_size)
    return n * max_len * (per_token + n_layers * 4 * max_len * d)


PAPER_COUNTS: dict[str, Any] = dict(
    n_params=1_682_688,
    train_step_flops=6_706_591_432_704,
    loss_eval_flops=139_720_654_848,
    desired_grad_flops=209_580_982_272,
    reverse_step_flops=20_119_774_298_112,
    plain_run_flops=27_385_388_070_862_848,
    policy_epoch_flops=135_106_659_662_954_496,
    epoch_over_plain=4.9335,
    train_chunk_peak_bytes=3_874_750_984,
    reverse_chunk_peak_bytes={"autodiff": 7_871_849_996, "autodiff_rr": 6_252_573_704},
    checkpoint_bytes=424_037_376,
    trajectory_bytes=854_805_504,
)
"""``transformer_costs(**PAPER_SCALE)`` (float32, ``checkpoint_every="auto"``: k = 64, 63 stored
θ's, 3,937 recomputed steps), counted with torch 2.13 in about 12 s on a 2-core CPU: 6.71 TFLOP
per training step (1,048,576 tokens), 2.74e16 per plain run of T = 4000, 1.351e17 per policy
epoch (4.93 plain runs: 1 forward run, 0.96 of recomputation, 2.94 for the reverse steps, 0.03
of desired gradients; both kernels count the same FLOPs, a reverse step = 3 training steps). Peak of
one 512-sequence chunk: 3.87 GB for a training gradient, 7.87 GB for a jvp reverse step and
6.25 GB for a double-backward one (one logits tensor is 0.66 GB)."""
