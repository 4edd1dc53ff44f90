"""The paper's small decoder-only Transformer and its per-sequence loss (Sec. 4.2, App. D).

A faithful port of ``learning_law/src/modeling.py`` of the paper's code: token + learned
position embeddings, ``n_layers`` pre-norm blocks (causal multi-head attention without biases,
a ReLU MLP of width 4·d without biases), a final norm and an untied bias-free LM head; no
dropout; PyTorch's default initialisation. The norm is the paper's "RMSLayerNorm"

.. math::  \\mathrm{norm}(x) = \\frac{x}{\\sqrt{\\operatorname{mean}(x^2)} + 10^{-8}} \\odot w + b,

with a weight *and* a bias, which is what makes the paper's count of 1,682,688 parameters
(V = 5000, L = 64, d = 128, 2 layers) come out exactly:
``2·V·d + L·d + n_layers·(12·d² + 4·d) + 2·d``.

Everything is plain tensor maths (matmul, masked softmax, no fused attention kernel, no
in-place ops), so forward-over-reverse differentiation — ``torch.func.jvp`` of
``torch.func.grad``, which the adjoint sweep uses for Hessian-vector products — runs through
the model. Shape letters: B batch, L sequence length, V vocabulary, d model width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError

__all__ = ["TransformerConfig", "Transformer", "RMSLayerNorm", "sequence_loss", "count_params"]

ATTN_SCALES = ("d_model", "head_dim")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of :class:`Transformer`.

    Attributes:
        vocab_size: V, the number of token ids.
        max_len: the longest input sequence (number of learned positions).
        d_model: d, the residual width (paper: 128).
        n_heads: attention heads; must divide ``d_model`` (paper: 8).
        n_layers: Transformer blocks (paper: 2).
        attn_scale: ``"d_model"`` scales attention logits by 1/√d, as the paper's code does
            (``/ hidden_size ** 0.5``); ``"head_dim"`` by 1/√(d / n_heads), the usual choice.
            The paper's choice makes attention flatter at initialisation by a factor √n_heads.
        eps: added to the RMS in the norm (paper: 1e-8).
    """

    vocab_size: int
    max_len: int
    d_model: int = 128
    n_heads: int = 8
    n_layers: int = 2
    attn_scale: str = "d_model"
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ArgumentValueError(
                    f"TransformerConfig.{name} must be a positive int, got {v!r}"
                )
        if self.d_model % self.n_heads:
            raise ArgumentValueError(
                f"n_heads={self.n_heads} must divide d_model={self.d_model}; pick e.g. "
                f"n_heads={math.gcd(self.d_model, 8)}"
            )
        if self.attn_scale not in ATTN_SCALES:
            raise ArgumentValueError(
                f"attn_scale must be one of {ATTN_SCALES}, got {self.attn_scale!r}"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def scale(self) -> float:
        """The factor multiplying q·k: 1/√d_model (paper) or 1/√head_dim."""
        return 1 / math.sqrt(self.d_model if self.attn_scale == "d_model" else self.head_dim)


def count_params(config: TransformerConfig) -> int:
    """P in closed form: ``2·V·d + L·d + n_layers·(12·d² + 4·d) + 2·d``.

    Per block: Q, K, V, O (4·d²), the MLP (2·4·d²) and two norms (2·2·d); plus the token
    embedding and the untied head (V·d each), the positions (L·d) and the final norm (2·d).
    """
    v, n, d, layers = config.vocab_size, config.max_len, config.d_model, config.n_layers
    return 2 * v * d + n * d + layers * (12 * d * d + 4 * d) + 2 * d


def _add_scalar(x: Tensor, value: float) -> Tensor:
    """``x + value`` by ``aten.add.Scalar``: the same floats as ``x + value`` (ATen wraps the
    number the same way), but no host→device copy of ``value`` under ``torch.func.jvp``
    (``x + value`` dispatches ``add.Tensor``, whose forward-mode rule turns the number into a
    CPU tensor and moves it to ``x``'s device: one small synchronous copy per call on a GPU)."""
    return torch.ops.aten.add.Scalar(x, value)


def _mul_scalar(x: Tensor, value: float) -> Tensor:
    """``x * value`` by ``aten.mul.Scalar`` (see :func:`_add_scalar`; ``mul.Tensor`` copies the
    number to the device twice under ``jvp``)."""
    return torch.ops.aten.mul.Scalar(x, value)


class RMSLayerNorm(nn.Module):
    """The paper's norm, ``x / (rms(x) + eps) * weight + bias`` over the last axis."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        rms = x.pow(2).mean(-1, keepdim=True).sqrt()
        # the Scalar overload keeps eps a host number; ``rms + eps`` (add.Tensor) would make
        # torch.func.jvp wrap it as a CPU tensor and copy it to the device on every call
        return x / _add_scalar(rms, self.eps) * self.weight + self.bias


class Attention(nn.Module):
    """Causal multi-head self-attention without biases, as plain maths (no fused kernel)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        d = config.d_model
        self.n_heads, self.scale = config.n_heads, config.scale
        self.w_q = nn.Linear(d, d, bias=False)
        self.w_k = nn.Linear(d, d, bias=False)
        self.w_v = nn.Linear(d, d, bias=False)
        self.w_o = nn.Linear(d, d, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        h = self.n_heads
        # (B, L, d) -> (B, h, L, d/h)
        q, k, v = (
            w(x).view(b, n, h, d // h).transpose(1, 2) for w in (self.w_q, self.w_k, self.w_v)
        )
        att = _mul_scalar(q @ k.transpose(-1, -2), self.scale)  # (B, h, L, L)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, torch.finfo(att.dtype).min).softmax(-1)
        out = (att @ v).transpose(1, 2).reshape(b, n, d)
        return self.w_o(out)


class MLP(nn.Module):
    """``d -> 4d (ReLU) -> d`` without biases."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        d = config.d_model
        self.mlp_1 = nn.Linear(d, 4 * d, bias=False)
        self.mlp_2 = nn.Linear(4 * d, d, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp_2(F.relu(self.mlp_1(x)))


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = RMSLayerNorm(config.d_model, config.eps)
        self.attn = Attention(config)
        self.ln_2 = RMSLayerNorm(config.d_model, config.eps)
        self.ffn = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.ffn(self.ln_2(x))


class Transformer(nn.Module):
    """The paper's decoder-only LM: ``(B, L)`` token ids -> ``(B, L, V)`` next-token logits.

    Logit ``[b, i]`` predicts token ``i + 1`` from tokens ``0 … i`` of row ``b`` (causal), so
    padding at the end of a row never changes the logits of the tokens before it.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.word_embed = nn.Embedding(config.vocab_size, d)
        self.pos_embed = nn.Embedding(config.max_len, d)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_end = RMSLayerNorm(d, config.eps)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, idx: Tensor) -> Tensor:
        if idx.dim() != 2:
            raise ArgumentValueError(
                f"Transformer expects (B, L) token ids, got shape {tuple(idx.shape)}"
            )
        if idx.shape[1] > self.config.max_len:
            raise ArgumentValueError(
                f"sequence length {idx.shape[1]} exceeds max_len={self.config.max_len}; "
                "truncate the inputs or build the model with a larger max_len"
            )
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.word_embed(idx) + self.pos_embed(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_end(x))


def sequence_loss(logits: Tensor, targets: Tensor, pad_id: int) -> Tensor:
    """Mean next-token cross-entropy of each sequence over its non-padding targets, in nats.

    .. math::  l_b = \\frac{\\sum_i m_{b,i}\\,(-\\log \\mathrm{softmax}(z_{b,i})_{y_{b,i}})}
               {\\max(1, \\sum_i m_{b,i})},\\qquad m_{b,i} = [y_{b,i} \\ne \\mathrm{pad}]

    (the paper's ``compute_loss``). A sequence without any non-padding target has nothing to
    predict; its loss is defined as 0 (not 0/0 = NaN), and its gradient is 0.

    Args:
        logits: ``(B, L, V)``.
        targets: ``(B, L)`` token ids; entries equal to ``pad_id`` are ignored.
        pad_id: the padding id.

    Returns:
        ``(B,)`` per-sequence losses (``reduction="none"``).
    """
    checks.check_int(pad_id, "pad_id")
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ArgumentValueError(
            f"sequence_loss expects logits (B, L, V) and targets (B, L); got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    pad = targets == pad_id
    mask = (~pad).to(logits.dtype)
    idx = targets.masked_fill(pad, 0)  # any valid index; those terms are masked out
    logp = logits.log_softmax(-1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)  # (B, L)
    return -(logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)
