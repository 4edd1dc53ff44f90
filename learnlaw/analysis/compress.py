r"""Training is compression: a real, lossless prequential coder (paper §3.1, App. A; Rae 2023).

Theorem A.1 of the paper (Algorithms 1-2) says that one epoch of mini-batch SGD on a text of
``M`` symbols, ``B`` symbols per batch, *is* a lossless code of the text whose length is

.. math::  d(\mathcal C) = \sum_{t=1}^{\lceil M/B\rceil} B\,L_t + d(\text{LM}),
           \qquad L_t = -\tfrac1B \sum_{m\in\text{batch }t} \log_2 p_{\theta_t}(w_m\mid w_{<m}),

the area under the online training-loss curve (AUC, in bits) plus the length of the program that
runs the training. This module builds that code for real. The **encoder**, for every batch ``t``:
(1) before touching θ, range-codes each symbol ``w_m`` of the batch with the model's predictive
distribution :math:`p_{\theta_t}(\cdot\mid w_{m-C},\dots,w_{m-1})` (a window of the ``C`` previous
symbols, padded at the start), then (2) takes one SGD step
:math:`\theta_{t+1}=\theta_t-\eta\nabla_\theta L_t` on the batch's mean cross-entropy. The
**decoder** replays the same training: it decodes batch ``t`` symbol by symbol (the window of
symbol ``m`` holds symbols ``< m`` only, so it is known when ``m`` is decoded), then applies the
very same update. By induction both sides see the same θ_t, so decoding is exact.

The model (:class:`ContextMLP`) is a small byte-level MLP in float64 on the CPU: embeddings of the
``C`` previous symbols, concatenated, a ReLU hidden layer, then ``V`` logits, where the alphabet
``V`` is the set of distinct bytes of the message (stored in the header as a 256-bit map). The
output layer starts at zero, so :math:`L_1=\log_2 V` exactly (the paper's "loss of a random LM").

**Bit-exactness.** Encoder and decoder must feed the entropy coder bit-identical floats. The
coding probabilities come from :func:`coding_probs`, which uses only elementwise IEEE operations
and reductions whose order does not depend on how many rows are computed at once, so the
encoder's batched call (``B`` rows) and the decoder's one-row calls give identical bits (tested).
Training uses the same torch code on the same tensors on both sides. A final CRC-32 of the
message turns any residual mismatch (e.g. decoding on a machine whose libm/BLAS differs) into a
:class:`CompressionError`, never silent garbage. Streams are only guaranteed to decode on the
same software/hardware stack that wrote them.

**The bound.** Let :math:`p_m` be the model's probability of the coded symbol and ``q_m`` the
24-bit fixed-point probability that ``constriction``'s lazy categorical model (``perfect=False``)
gives it. That model assigns :math:`2^{24}q_m = \lfloor c_{m+1}s\rfloor-\lfloor c_m s\rfloor+1`
with cumulative sums :math:`c` and :math:`s=(2^{24}-V)/\sum p`, hence
:math:`q_m \ge p_m(1-V2^{-24})`: at most :math:`\epsilon_q=-\log_2(1-V2^{-24})` bits per symbol
(:math:`2\cdot10^{-5}` for ``V=256``). The range coder (64-bit state, 32-bit words) keeps
``range >= 2**32`` and truncates ``range >> 24``, losing at most a factor :math:`1-2^{-8}`:
:math:`\epsilon_{rc}=-\log_2(1-2^{-8})=0.00565` bits per symbol in the *worst* case, and
sealing appends one or two 32-bit words (≤ 64 bits). So the file size obeys

.. math::  8\,|\text{blob}| \;\le\; \text{AUC}_{\text{bits}}
           + M(\epsilon_{rc}+\epsilon_q+10^{-8}) + 64 + 8\,|\text{header}|,

(:func:`compressed_bits_bound`; the :math:`10^{-8}` per symbol covers the float64 difference
between the training forward pass that defines the AUC and the coding path). Why
:math:`\epsilon_{rc}`: after ``w`` emitted words the range equals
:math:`(2^{64}-1)\,2^{32w}\prod_m q_m(1-\delta_m)<2^{64}`, with truncation losses
:math:`\delta_m\le2^{24}/\text{range}\le2^{-8}`, so :math:`32w<\sum_m-\log_2 q_m(1-\delta_m)`
(up to a :math:`2^{-64}` term); the seal then adds one or two words. The worst case is loose:
on 30 KB of English-like text (default config, ``V=38``) the payload was 46,080 bits for an AUC
of 46,074.7 bits (5.3 bits of excess, seal included, i.e. 0.01 %), the blob 46,800 bits with
the 720-bit header, and the bound allowed 47,028 bits.

Shape letters: ``M`` symbols, ``C`` context window, ``V`` alphabet, ``H`` hidden units,
``D`` embedding size, ``n`` rows computed at once.
"""

from __future__ import annotations

import math
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor, nn
from torch.func import functional_call

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.errors import LearnlawError
from learnlaw.core.optional import require
from learnlaw.core.progress import progress_bar


def _constriction():
    """constriction's (Categorical, RangeEncoder, RangeDecoder), imported on first use.

    Imported here, not at the top, so that ``import learnlaw`` works where the coder is not
    installed (e.g. a bare GPU machine); only :func:`compress`/:func:`decompress` need it.
    constriction is a compiled extension: its submodules are attributes, not packages.
    """
    stream = require("constriction", "learnlaw's arithmetic coder").stream
    return stream.model.Categorical, stream.queue.RangeEncoder, stream.queue.RangeDecoder


__all__ = [
    "CoderConfig",
    "CompressionError",
    "ContextMLP",
    "Encoded",
    "coding_probs",
    "coding_tables",
    "compress",
    "compressed_bits_bound",
    "decompress",
    "encode",
    "init_params",
    "mlp_logits",
    "prequential_code_length",
]

Data = Union[bytes, bytearray, memoryview, str]

MAGIC = b"LLPC"
FORMAT_VERSION = 1
# magic, version, flags, context, embed, hidden, batch_size, lr, seed, length, alphabet map,
# data crc32, payload bytes, payload crc32; then the crc32 of all of these.
_HEADER = struct.Struct("<4sBBHHIIdQQ32sIII")
_HEADER_CRC = struct.Struct("<I")
HEADER_BYTES = _HEADER.size + _HEADER_CRC.size
SEAL_BITS = 64
RC_OVERHEAD_BITS = -math.log2(1.0 - 2.0**-8)  # per symbol, worst case (range truncation)
FLOAT_SLACK_BITS = 1e-8  # per symbol: training-forward vs coding-path float64 rounding
_LN2 = math.log(2.0)


class CompressionError(LearnlawError, ValueError):
    """A stream that cannot be decoded: corrupt, truncated, foreign or made with another config."""


@dataclass(frozen=True)
class CoderConfig:
    """The training run that defines the code (stored in the stream header).

    Attributes:
        context: C, number of previous symbols the model sees (window, padded at the start).
        embed: D, embedding size per symbol.
        hidden: H, ReLU hidden units.
        lr: η, the SGD learning rate (one step per batch, on the batch's mean loss in nats).
        batch_size: B, symbols per batch (the last batch may be shorter).
        seed: seed of the initial parameters θ_1.
    """

    context: int = 4
    embed: int = 32
    hidden: int = 256
    lr: float = 0.7
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        limits = {"context": 2**16, "embed": 2**16, "hidden": 2**32, "batch_size": 2**32}
        for name, upper in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentTypeError(
                    f"CoderConfig.{name} must be an int, got {type(value).__name__} {value!r}."
                )
            if not 1 <= value < upper:
                raise ArgumentValueError(
                    f"CoderConfig.{name} must be in [1, {upper}), got {value}; "
                    f"pass a positive integer, e.g. {name}={getattr(CoderConfig, name)}."
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ArgumentTypeError(
                f"CoderConfig.seed must be an int, got {type(self.seed).__name__}."
            )
        if not 0 <= self.seed < 2**64:
            raise ArgumentValueError(f"CoderConfig.seed must be in [0, 2**64), got {self.seed}.")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise ArgumentTypeError(
                f"CoderConfig.lr must be a float, got {type(self.lr).__name__}."
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ArgumentValueError(f"CoderConfig.lr must be finite and > 0, got {self.lr}.")
        object.__setattr__(self, "lr", float(self.lr))


# --------------------------------------------------------------------------------------------
# The model: params dict -> logits.
# --------------------------------------------------------------------------------------------


def mlp_logits(params: dict[str, Tensor], contexts: Tensor) -> Tensor:
    """``(n, C)`` symbol indices (``V`` = padding) -> ``(n, V)`` logits.

    :math:`\\text{logits} = b_2 + \\mathrm{ReLU}(b_1 + [E_{x_1};\\dots;E_{x_C}]\\,W_1)\\,W_2`.
    """
    x = params["emb"][contexts].flatten(1)  # (n, C*D)
    h = torch.relu(x @ params["w1"] + params["b1"])  # (n, H)
    return h @ params["w2"] + params["b2"]


class ContextMLP(nn.Module):
    """Thin ``nn.Module`` wrapper of :func:`mlp_logits`, called through ``functional_call``."""

    def __init__(self, vocab_size: int, config: CoderConfig) -> None:
        super().__init__()
        c, d, h, v = config.context, config.embed, config.hidden, vocab_size
        f64 = torch.float64
        self.emb = nn.Parameter(torch.zeros(v + 1, d, dtype=f64))
        self.w1 = nn.Parameter(torch.zeros(c * d, h, dtype=f64))
        self.b1 = nn.Parameter(torch.zeros(h, dtype=f64))
        self.w2 = nn.Parameter(torch.zeros(h, v, dtype=f64))
        self.b2 = nn.Parameter(torch.zeros(v, dtype=f64))

    def forward(self, contexts: Tensor) -> Tensor:
        return mlp_logits(dict(self.named_parameters()), contexts)


def init_params(vocab_size: int, config: CoderConfig) -> dict[str, Tensor]:
    """θ_1: N(0,1) embeddings, W_1 ~ N(0, 1/(C·D)), zero biases and zero output layer.

    The zero output layer makes every first prediction uniform, so ``L_1 = log2 V`` bits.
    """
    c, d, h, v = config.context, config.embed, config.hidden, vocab_size
    gen = torch.Generator().manual_seed(config.seed)
    f64 = torch.float64
    return {
        "emb": torch.randn(v + 1, d, generator=gen, dtype=f64),
        "w1": torch.randn(c * d, h, generator=gen, dtype=f64) / math.sqrt(c * d),
        "b1": torch.zeros(h, dtype=f64),
        "w2": torch.zeros(h, v, dtype=f64),
        "b2": torch.zeros(v, dtype=f64),
    }


def _sgd_step(
    model: ContextMLP, params: dict[str, Tensor], contexts: Tensor, targets: Tensor, lr: float
) -> tuple[dict[str, Tensor], Tensor]:
    """One step θ ← θ − η ∇ mean_b ℓ_b; returns the new params and the ``(n,)`` losses (nats).

    ``torch.autograd.grad`` on detached leaves (1.7x faster here than ``torch.func.grad`` for
    these tiny matrices, with bit-identical results).
    """
    leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
    per_example = F.cross_entropy(
        functional_call(model, leaves, (contexts,)), targets, reduction="none"
    )
    grads = torch.autograd.grad(per_example.mean(), list(leaves.values()))
    new = {k: (params[k] - lr * g).detach() for k, g in zip(leaves, grads)}
    return new, per_example.detach()


# --------------------------------------------------------------------------------------------
# The coding path: bit-identical for any number of rows.
# --------------------------------------------------------------------------------------------


def coding_tables(params: dict[str, Tensor], context: int) -> tuple[np.ndarray, ...]:
    """Precompute ``T[k] = E W_1^{(k)}`` of shape ``(C, V+1, H)`` plus ``b1, W2, b2`` (numpy)."""
    emb, w1 = params["emb"], params["w1"]
    table = torch.matmul(emb.unsqueeze(0), w1.reshape(context, emb.shape[1], -1))
    flat = table.reshape(-1, table.shape[-1]).numpy()  # (C*(V+1), H)
    return flat, params["b1"].numpy(), params["w2"].numpy(), params["b2"].numpy()


def coding_probs(tables: tuple[np.ndarray, ...], contexts: np.ndarray) -> np.ndarray:
    """``(n, C)`` contexts -> ``(n, V)`` float64 probabilities used for entropy coding.

    Same function as :func:`mlp_logits` followed by a softmax, evaluated with a first-layer lookup
    table. Every reduction runs over a non-contiguous axis (sequential order) or over one row, so
    row ``i`` of the result does not depend on ``n``: the encoder's batched call and the decoder's
    one-row calls produce identical bits.
    """
    flat, b1, w2, b2 = tables
    n, c = contexts.shape
    rows = flat.shape[0] // c
    idx = contexts + np.arange(c) * rows  # (n, C) rows of the flat table
    pre = flat[idx].sum(axis=1) + b1  # (n, C, H) summed over C, in order
    h = np.maximum(pre, 0.0)
    logits = (h[:, :, None] * w2).sum(axis=1) + b2  # (n, H, V) summed over H, in order
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# The shared training replay.
# --------------------------------------------------------------------------------------------


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting.

    The matrices are tiny, so thread hand-off dominates (a 32x128 @ 128x64 float64 matmul took
    22 us on 1 thread and 1.5 ms on 2 on this loaded 2-core machine), and one thread makes the
    replayed training independent of the caller's thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _replay(
    buf: np.ndarray,
    n_symbols: int,
    vocab_size: int,
    config: CoderConfig,
    code_batch: Optional[Callable[[tuple[np.ndarray, ...], int, int], None]],
    progress: bool,
    desc: str,
) -> Tensor:
    """Run the one-epoch online training over ``buf[C:]``; returns ``(T,)`` batch losses in bits.

    ``buf`` is ``(C + M,)``: ``C`` padding symbols (= V) then the message. Before each update,
    ``code_batch(tables, s, e)`` may read (encoder) or fill (decoder) ``buf[C+s : C+e]``. The
    same function drives the encoder, the decoder and :func:`prequential_code_length`, so all
    three see bit-identical θ_t.
    """
    c, b = config.context, config.batch_size
    model = ContextMLP(vocab_size, config)
    params = init_params(vocab_size, config)
    windows = sliding_window_view(buf, c)  # row m = context of symbol m (a view: sees writes)
    starts = range(0, n_symbols, b)
    batch_bits = torch.empty(len(starts), dtype=torch.float64)
    with _single_thread():
        for t, s in enumerate(progress_bar(progress, starts, desc=desc, leave=False)):
            e = min(s + b, n_symbols)
            if code_batch is not None:
                code_batch(coding_tables(params, c), s, e)
            contexts = torch.from_numpy(windows[s:e].copy())
            targets = torch.from_numpy(buf[c + s : c + e].copy())
            params, losses = _sgd_step(model, params, contexts, targets, config.lr)
            batch_bits[t] = losses.mean() / _LN2
    return batch_bits


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ArgumentTypeError(
        f"data must be bytes, bytearray, memoryview or str, got {type(data).__name__}; "
        "encode other objects to bytes first."
    )


def _check_config(config: Optional[CoderConfig]) -> CoderConfig:
    if config is None:
        return CoderConfig()
    if not isinstance(config, CoderConfig):
        raise ArgumentTypeError(
            f"config must be a CoderConfig or None, got {type(config).__name__}."
        )
    return config


def _symbols(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """bytes -> (alphabet (V,) uint8 sorted, symbols (M,) int64 in [0, V))."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    alphabet = np.unique(arr)
    return alphabet, np.searchsorted(alphabet, arr).astype(np.int64)


def _padded(symbols: np.ndarray, vocab_size: int, context: int) -> np.ndarray:
    buf = np.full(context + len(symbols), vocab_size, dtype=np.int64)
    buf[context:] = symbols
    return buf


def prequential_code_length(
    data: Data, config: Optional[CoderConfig] = None, progress: bool = False
) -> tuple[float, Tensor]:
    """The AUC of the online training loss in bits, :math:`\\sum_t n_t L_t` (no coding).

    Args:
        data: the message (``str`` is UTF-8 encoded).
        config: the training run (default :class:`CoderConfig`).
        progress: show a tqdm bar.

    Returns:
        ``(auc_bits, batch_bits)``: the total and the ``(T,)`` mean loss of each batch in bits,
        measured before that batch's update; ``T = ceil(M / B)``. An alphabet of at most one
        symbol costs 0 bits.
    """
    checks.check_bool(progress, "progress")
    raw, config = _as_bytes(data), _check_config(config)
    alphabet, symbols = _symbols(raw)
    m, v = len(symbols), len(alphabet)
    if v <= 1:
        return 0.0, torch.zeros(-(-m // config.batch_size), dtype=torch.float64)
    buf = _padded(symbols, v, config.context)
    batch_bits = _replay(buf, m, v, config, None, progress, "code length")
    return _auc_bits(batch_bits, m, config.batch_size), batch_bits


def _auc_bits(batch_bits: Tensor, n_symbols: int, batch_size: int) -> float:
    sizes = torch.full_like(batch_bits, float(batch_size))
    if len(sizes):
        sizes[-1] = n_symbols - batch_size * (len(sizes) - 1)
    return float((sizes * batch_bits).sum())


def compressed_bits_bound(auc_bits: float, n_symbols: int, vocab_size: int) -> float:
    """Upper bound on ``8 * len(compress(data))`` given the AUC in bits (see module docstring).

    ``auc_bits + M (ε_rc + ε_q(V) + 1e-8) + 64 + 8 * HEADER_BYTES`` with
    ``ε_rc = -log2(1 - 2^-8)`` and ``ε_q = -log2(1 - V 2^-24)``; just the header if ``V <= 1``.
    """
    checks.check_number(auc_bits, "auc_bits", minimum=0.0)
    checks.check_int(n_symbols, "n_symbols", minimum=0)
    checks.check_int(vocab_size, "vocab_size", minimum=0)
    header = 8 * HEADER_BYTES
    if vocab_size <= 1:
        return float(header)
    eps_q = -math.log2(1.0 - vocab_size * 2.0**-24)
    per_symbol = RC_OVERHEAD_BITS + eps_q + FLOAT_SLACK_BITS
    return auc_bits + n_symbols * per_symbol + SEAL_BITS + header


# --------------------------------------------------------------------------------------------
# Encoder / decoder.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A compressed message and the numbers that explain its size.

    Attributes:
        blob: the self-describing compressed stream (header + range-coded payload).
        n_symbols: M, the message length in bytes.
        vocab_size: V, the number of distinct bytes (the coder's alphabet).
        auc_bits: Σ_t n_t L_t, the AUC of the online training loss in bits (Theorem A.1).
        batch_bits: ``(T,)`` mean loss of each batch in bits, before its update.
        ideal_bits: Σ_m -log2 p_m with the coding-path probabilities (= auc_bits up to float64).
        payload_bits: bits of the range-coded payload (a multiple of 32).
        header_bits: bits of the header.
    """

    blob: bytes
    n_symbols: int
    vocab_size: int
    auc_bits: float
    batch_bits: Tensor
    ideal_bits: float
    payload_bits: int
    header_bits: int

    @property
    def total_bits(self) -> int:
        """``8 * len(blob)``."""
        return 8 * len(self.blob)

    @property
    def bound_bits(self) -> float:
        """:func:`compressed_bits_bound` for this message."""
        return compressed_bits_bound(self.auc_bits, self.n_symbols, self.vocab_size)

    @property
    def ratio_to_raw(self) -> float:
        """Compression ratio ``8 M / total_bits`` against 8 bits per byte."""
        return 8 * self.n_symbols / self.total_bits


def encode(data: Data, config: Optional[CoderConfig] = None, progress: bool = False) -> Encoded:
    """Compress ``data`` by online training (Algorithm 1) and report where the bits go.

    Args:
        data: the message (``str`` is UTF-8 encoded; :func:`decompress` returns bytes).
        config: the training run (default :class:`CoderConfig`); stored in the header.
        progress: show a tqdm bar.
    """
    checks.check_bool(progress, "progress")
    raw, config = _as_bytes(data), _check_config(config)
    alphabet, symbols = _symbols(raw)
    m, v, c = len(symbols), len(alphabet), config.context
    Categorical, RangeEncoder, _ = _constriction()
    encoder = RangeEncoder()
    family = Categorical(perfect=False)
    ideal = [0.0]
    if v >= 2:
        buf = _padded(symbols, v, c)
        windows = sliding_window_view(buf, c)
        targets32 = symbols.astype(np.int32)

        def code_batch(tables: tuple[np.ndarray, ...], s: int, e: int) -> None:
            probs = coding_probs(tables, windows[s:e])
            encoder.encode(targets32[s:e], family, probs)
            ideal[0] -= float(np.log2(probs[np.arange(e - s), symbols[s:e]]).sum())

        batch_bits = _replay(buf, m, v, config, code_batch, progress, "encode")
        auc = _auc_bits(batch_bits, m, config.batch_size)
        payload = encoder.get_compressed().astype("<u4").tobytes()
    else:
        batch_bits = torch.zeros(-(-m // config.batch_size), dtype=torch.float64)
        auc, payload = 0.0, b""
    bitmap = np.packbits(np.isin(np.arange(256), alphabet), bitorder="little").tobytes()
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        0,
        config.context,
        config.embed,
        config.hidden,
        config.batch_size,
        config.lr,
        config.seed,
        m,
        bitmap,
        zlib.crc32(raw),
        len(payload),
        zlib.crc32(payload),
    )
    header += _HEADER_CRC.pack(zlib.crc32(header))
    return Encoded(
        blob=header + payload,
        n_symbols=m,
        vocab_size=v,
        auc_bits=auc,
        batch_bits=batch_bits,
        ideal_bits=ideal[0],
        payload_bits=8 * len(payload),
        header_bits=8 * len(header),
    )


def compress(data: Data, config: Optional[CoderConfig] = None, progress: bool = False) -> bytes:
    """``encode(data, config).blob``: the compressed stream."""
    checks.check_bool(progress, "progress")
    return encode(data, config, progress).blob


def _read_header(blob: bytes) -> tuple[CoderConfig, int, np.ndarray, int, bytes]:
    if len(blob) < HEADER_BYTES:
        raise CompressionError(
            f"stream too short: {len(blob)} bytes, a header alone has {HEADER_BYTES} "
            "(truncated or not a learnlaw stream)."
        )
    if blob[:4] != MAGIC:
        raise CompressionError(f"not a learnlaw stream: magic {blob[:4]!r}, expected {MAGIC!r}.")
    head = blob[: _HEADER.size]
    (stored_crc,) = _HEADER_CRC.unpack_from(blob, _HEADER.size)
    if zlib.crc32(head) != stored_crc:
        raise CompressionError("header checksum mismatch: the stream header is corrupted.")
    (_, version, _, c, d, h, b, lr, seed, m, bitmap, data_crc, n_payload, payload_crc) = (
        _HEADER.unpack(head)
    )
    if version != FORMAT_VERSION:
        raise CompressionError(
            f"unsupported format version {version}; this learnlaw reads {FORMAT_VERSION}."
        )
    try:
        config = CoderConfig(context=c, embed=d, hidden=h, lr=lr, batch_size=b, seed=seed)
    except (TypeError, ValueError) as err:
        raise CompressionError(f"invalid config in header: {err}") from err
    payload = blob[HEADER_BYTES:]
    if len(payload) != n_payload:
        raise CompressionError(
            f"truncated or padded stream: header says {n_payload} payload bytes, "
            f"found {len(payload)}."
        )
    if zlib.crc32(payload) != payload_crc:
        raise CompressionError("payload checksum mismatch: the compressed data is corrupted.")
    alphabet = np.flatnonzero(np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little"))
    return config, m, alphabet.astype(np.uint8), data_crc, payload


def decompress(blob: bytes, config: Optional[CoderConfig] = None, progress: bool = False) -> bytes:
    """Invert :func:`compress` by replaying the training (Algorithm 2).

    Args:
        blob: a stream made by :func:`compress`.
        config: if given, must equal the config stored in the stream; ``None`` uses the header.
        progress: show a tqdm bar.

    Raises:
        CompressionError: corrupt, truncated or foreign stream; a ``config`` that differs from
            the header (the message names the fields); a decoded message whose CRC-32 differs
            from the original's.
    """
    checks.check_bool(progress, "progress")
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ArgumentTypeError(f"blob must be bytes, got {type(blob).__name__}.")
    blob = bytes(blob)
    stored, m, alphabet, data_crc, payload = _read_header(blob)
    if config is not None:
        config = _check_config(config)
        diff = [
            f"{f.name} (stream {getattr(stored, f.name)!r}, given {getattr(config, f.name)!r})"
            for f in fields(CoderConfig)
            if getattr(stored, f.name) != getattr(config, f.name)
        ]
        if diff:
            raise CompressionError(
                "config differs from the one the stream was made with: "
                + ", ".join(diff)
                + "; pass config=None to use the stream's own."
            )
    v, c = len(alphabet), stored.context
    if v == 0 and m > 0 or len(payload) % 4 or (v <= 1 and payload):
        raise CompressionError("inconsistent header: alphabet, length and payload disagree.")
    if v <= 1:
        raw = bytes(alphabet.tobytes() * m)
    else:
        buf = _padded(np.zeros(m, dtype=np.int64), v, c)
        Categorical, _, RangeDecoder = _constriction()
        decoder = RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        family = Categorical(perfect=False)

        def code_batch(tables: tuple[np.ndarray, ...], s: int, e: int) -> None:
            for i in range(s, e):
                probs = coding_probs(tables, buf[None, i : i + c])
                buf[c + i] = decoder.decode(family, probs)[0]

        try:
            _replay(buf, m, v, stored, code_batch, progress, "decode")
        except (RuntimeError, ValueError) as err:  # constriction errors on malformed data
            raise CompressionError(f"range decoder failed: {err}") from err
        raw = alphabet[buf[c:]].tobytes()
    if zlib.crc32(raw) != data_crc:
        raise CompressionError(
            "decoded data fails its CRC-32: the stream is corrupted, or was written on a "
            "machine whose floating-point results differ from this one."
        )
    return raw
