"""A Hugging Face ``transformers`` causal language model as a :class:`~learnlaw.Task`.

``transformers`` is optional: this module imports it only when a function needs it, and says how
to install it when it is missing (``pip install "learnlaw[hf]"`` or ``pip install transformers``).

A causal LM (``AutoModelForCausalLM``, ``GPT2LMHeadModel``, ...) returns a ``ModelOutput`` with
``.logits``, expects ``input_ids`` and an ``attention_mask``, and computes a mean loss over the
batch. :func:`causal_lm_task` wraps it into a module that maps token ids ``(B, L)`` to logits
``(B, L, V)`` with the padding masked out of attention, and pairs it with the per-sequence mean
next-token loss of :func:`~learnlaw.tasks.sequence_loss` (padding targets ignored):
one loss per sequence, as learnlaw's policies weigh them. The vocabulary size comes from the
model's config.

Example:
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> lm = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1,
    ...                                 n_head=2, attn_implementation="eager"))
    >>> task = causal_lm_task(lm, train_ids, desired_ids, test_ids, pad_id=0)  # doctest: +SKIP
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError
from learnlaw.core.optional import require
from learnlaw.core.task import Task
from learnlaw.tasks.transformer import sequence_loss

__all__ = ["CausalLM", "causal_lm_task"]


class CausalLM(nn.Module):
    """Token ids ``(B, L)`` → next-token logits ``(B, L, V)`` of a Hugging Face causal LM.

    Positions holding ``pad_id`` are masked out of attention (``attention_mask``); their logits
    are computed but the loss ignores them.
    """

    def __init__(self, lm: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.lm = lm
        self.pad_id = pad_id

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != self.pad_id).long()
        return self.lm(input_ids=ids, attention_mask=mask, use_cache=False).logits


def _split(ids: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """``(B, L+1)`` token rows → inputs ``rows[:, :-1]`` and next-token targets ``rows[:, 1:]``."""
    if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int):
        got = checks.describe(ids) + (f" of dtype {ids.dtype}" if isinstance(ids, Tensor) else "")
        raise ArgumentTypeError(f"{name} must be a (B, L+1) tensor of integer token ids, got {got}")
    if ids.shape[1] < 2:
        raise ArgumentValueError(f"{name} rows need at least 2 tokens (one input, one target)")
    ids = ids.long()
    return ids[:, :-1], ids[:, 1:]


def causal_lm_task(
    lm: nn.Module,
    train: Tensor,
    desired: Tensor,
    test: Tensor,
    *,
    pad_id: int,
    name: str = "hf-causal-lm",
    chunk_size: int | None = None,
    kernels: str = "auto",
    eval_mode: bool = True,
) -> Task:
    """A Task from a Hugging Face causal LM and three sets of tokenised sequences.

    Args:
        lm: a ``transformers`` causal LM (e.g. ``GPT2LMHeadModel``); its ``config.vocab_size``
            is the task's vocabulary size. Prefer ``attn_implementation="eager"`` in its config
            for the forward-over-reverse products of the adjoint.
        train, desired, test: ``(B, L+1)`` integer token ids, right-padded with ``pad_id``;
            row ``r`` trains inputs ``r[:-1]`` on next tokens ``r[1:]``.
        pad_id: the padding id (masked out of attention and of the loss).
        name, chunk_size, kernels: as in :class:`~learnlaw.Task`.
        eval_mode: call ``lm.eval()`` first (the default): a freshly built or loaded model is in
            training mode, where its dropout is random and the Task would refuse it.

    Returns:
        A :class:`~learnlaw.Task` whose per-example loss is each sequence's mean
        next-token cross-entropy over its non-padding targets, in nats; ``params0`` are the LM's
        parameters (detached copies, tied weights once).
    """
    checks.check_int(pad_id, "pad_id", minimum=0)
    checks.check_bool(eval_mode, "eval_mode")
    checks.check_int(chunk_size, "chunk_size", minimum=1, allow_none=True)
    require("transformers", "causal_lm_task")
    config = getattr(lm, "config", None)
    vocab = getattr(config, "vocab_size", None)
    if not isinstance(lm, nn.Module) or not isinstance(vocab, int):
        raise ArgumentTypeError(
            f"lm must be a Hugging Face causal LM (an nn.Module with config.vocab_size), got "
            f"{type(lm).__name__}"
        )
    if eval_mode:
        lm.eval()
    model = CausalLM(lm, pad_id)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    return Task(
        model=model,
        params0=params0,
        train=_split(train, "train"),
        desired=_split(desired, "desired"),
        test=_split(test, "test"),
        loss_fn=partial(sequence_loss, pad_id=pad_id),
        vocab_size=vocab,
        name=name,
        chunk_size=chunk_size,
        kernels=kernels,
        info={"hf_model": type(lm).__name__, "pad_id": pad_id},
    )
