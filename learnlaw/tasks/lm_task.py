"""The paper's language-modelling task (Sec. 4.2): a small Transformer on short stories, with
half of the training sequences perturbed and a clean desired set.

``transformer_task(scale="cpu")`` trains in under a minute on a 2-core CPU;
``transformer_task(scale="colab")`` fits a free Colab T4 GPU (:data:`COLAB_SCALE`);
``transformer_task(scale="paper")`` has the paper's sizes (N = 16384, K = 512, L = 64,
|V| = 5000, 2 layers of width 128 with 8 heads, 1.68M parameters). The presets also hold the
paper's (or our CPU) training hyper-parameters for the chapters: ``PRESETS[scale]["lr"]``,
``["steps"]``, ``["outer_lr"]``, ``["epochs"]``.

The stories come from :mod:`learnlaw.tasks.stories` (generated offline, the default) or from a local
TinyStories text file. Training, desired and test sequences are distinct rows of token ids;
the tokenizer is trained on the (clean) training stories only.
"""

from __future__ import annotations

import itertools
import os
import random
import warnings
from functools import partial
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError, MissingFileError
from learnlaw.core.task import Task
from learnlaw.tasks.stories import iter_stories
from learnlaw.tasks.text import encode_sequences, iter_story_file, special_ids, train_tokenizer
from learnlaw.tasks.text import perturb_fraction as perturb_rows
from learnlaw.tasks.transformer import Transformer, TransformerConfig, sequence_loss

__all__ = ["transformer_task", "PRESETS", "PAPER_SCALE", "COLAB_SCALE", "CPU_SCALE"]

# fmt: off
PAPER_SCALE = dict(
    n_train=16384, n_desired=512, n_test=512, max_len=64, vocab_size=5000,
    d_model=128, n_heads=8, n_layers=2, chunk_size=512,
    lr=0.1, steps=4000, outer_lr=0.4, epochs=15,
)
"""The paper's Transformer setting (App. D; its code runs 20 outer epochs, the paper says 15;
``chunk_size`` is the code's ``--batch-size 512``). ``outer_lr`` is the paper's ε for ITS
objective, the mean (Σ_t L)/T; :func:`learnlaw.optimize_policy` steps on J as a sum over t, so
pass ``outer_lr / steps`` (= 1e-4) there."""

CPU_SCALE = dict(
    n_train=256, n_desired=64, n_test=64, max_len=32, vocab_size=512,
    d_model=32, n_heads=4, n_layers=2, chunk_size=None,
    lr=0.5, steps=200, outer_lr=0.4, epochs=5,
)
"""A setting for a 2-core CPU: P = 58,688; one full-batch gradient ≈ 0.1 s (one thread); GD
with lr = 0.5 takes the desired loss from 6.43 to about 2.6 nats in 200 steps (lr = 2 diverges).
``outer_lr`` and ``epochs`` are placeholders, not tuned."""


COLAB_SCALE = dict(
    n_train=2048, n_desired=256, n_test=256, max_len=64, vocab_size=1024,
    d_model=64, n_heads=4, n_layers=2, chunk_size=512,
    lr=0.5, steps=400, outer_lr=0.4, epochs=3,
)
"""A setting for a free Colab T4 GPU (16 GB), between ``cpu`` and ``paper``: the paper's L = 64
and chunks of 512, P = 234,112. Sized by counted FLOPs, not by a run: the Transformer chapter
at this preset (conventional run, 3 policy epochs, the step-size tuning and the SIM analysis)
is 1.9e15 FLOP by ``learnlaw.profile.transformer_costs``, 13 minutes at an ASSUMED 30 %
of the T4's 8.1 TFLOP/s float32 peak (its datasheet); one 512-sequence chunk's reverse step
peaks at 1.8 GB (double backward, the ``"auto"`` kernel; 2.6 GB with the jvp), counted on the
meta device. ``lr`` is the CPU chapter's 0.5, not tuned at this size: in 12 uniform steps at
this size on a CPU, η = 0.3 lowered the desired loss from 7.08 to 6.18 nats, η = 1 to 5.36 and
then rose (5.43 at step 12). ``outer_lr`` is the paper's ε for J/T, not tuned either."""
# fmt: on

PRESETS = {"paper": PAPER_SCALE, "colab": COLAB_SCALE, "cpu": CPU_SCALE}
TASK_KEYS = (
    "n_train",
    "n_desired",
    "n_test",
    "max_len",
    "vocab_size",
    "d_model",
    "n_heads",
    "n_layers",
    "chunk_size",
)


def _unique(texts: Iterator[str]) -> Iterator[str]:
    seen: set[str] = set()
    for t in texts:
        if t not in seen:
            seen.add(t)
            yield t


def _story_stream(corpus: str | os.PathLike, seed: int, need: int) -> Iterator[str]:
    """Distinct stories: generated (endless), or a seeded shuffle of a TinyStories file."""
    if isinstance(corpus, str) and corpus == "generated":
        return _unique(iter_stories(seed))
    path = Path(corpus)
    if not path.is_file():
        raise MissingFileError(
            f"corpus must be 'generated' or the path of a TinyStories .txt file; {path} is not a file"
        )
    # Sample: shuffle the first 4·need stories of the file (all of them if fewer).
    stories = list(itertools.islice(_unique(iter_story_file(path)), 4 * need))
    random.Random(seed).shuffle(stories)
    return iter(stories)


def transformer_task(
    n_train: int | None = None,
    n_desired: int | None = None,
    n_test: int | None = None,
    max_len: int | None = None,
    vocab_size: int | None = None,
    d_model: int | None = None,
    n_heads: int | None = None,
    n_layers: int | None = None,
    perturb_fraction: float = 0.5,
    n_ops: int = 20,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    chunk_size: int | None = None,
    corpus: str | os.PathLike = "generated",
    *,
    scale: str = "cpu",
    attn_scale: str = "d_model",
    kernels: str = "auto",
) -> Task:
    """Build the Transformer language-modelling task.

    Every size left as ``None`` takes its value from ``PRESETS[scale]``.

    Data: distinct stories are split into N training, K desired and K' test stories. A BPE
    tokenizer with ``vocab_size`` tokens is trained on the training stories; every story is
    encoded as ``max_len + 1`` ids (truncated, ``<eos>``, right padding), and held-out rows that
    equal a training row (or each other) are skipped, so the three splits share no sequence.
    Then ``round(perturb_fraction · N)`` training rows get ``n_ops`` random edits
    (:func:`learnlaw.tasks.perturb`); desired and test rows stay clean. Inputs are
    ``rows[:, :-1]``, targets ``rows[:, 1:]``, both ``(n, max_len)``.

    Model: :class:`~learnlaw.tasks.Transformer` with PyTorch's default initialisation
    drawn under ``torch.manual_seed(seed)`` (the global RNG state is restored afterwards).
    Loss: :func:`~learnlaw.tasks.sequence_loss`, the mean CE over non-padding targets.

    Args:
        n_train, n_desired, n_test: N, K and the test size.
        max_len: L, tokens per input sequence.
        vocab_size: the requested |V| (>= 259); ``task.vocab_size`` is the tokenizer's actual
            size, smaller (with a warning) if the corpus runs out of pairs to merge: the
            generated corpus gives at most about 1,400 tokens, so the paper's |V| = 5000
            (and P = 1,682,688) needs a TinyStories file as ``corpus``.
        d_model, n_heads, n_layers: model sizes (paper: 128, 8, 2).
        perturb_fraction: the fraction of perturbed training rows (paper: 0.5).
        n_ops: edits per perturbed row (paper: 20).
        seed: seeds the stories (or the sample of a file), the perturbation and θ₀.
        dtype, device: of the parameters (and device of the data).
        chunk_size: examples per chunk of full-batch sums (``None``: the preset's).
        corpus: ``"generated"`` (:mod:`learnlaw.tasks.stories`, offline) or the path of a TinyStories
            text file with stories separated by ``<|endoftext|>``.
        scale: ``"cpu"`` or ``"paper"``, the preset of the sizes left as ``None``.
        attn_scale: ``"d_model"`` (paper) or ``"head_dim"``; see
            :class:`~learnlaw.tasks.TransformerConfig`.
        kernels: the step kernels (default ``"auto"``: the faster exact autodiff kernels for
            the device, see :func:`learnlaw.core.kernels.resolve_kernels`).

    Returns:
        A :class:`~learnlaw.Task` with ``kinds = {"perturbed", "clean"}`` and ``info``
        holding the sizes, the tokenizer (``info["tokenizer"]``) and the special ids.
    """
    for name, v in (
        ("n_train", n_train),
        ("n_desired", n_desired),
        ("n_test", n_test),
        ("max_len", max_len),
        ("vocab_size", vocab_size),
        ("d_model", d_model),
        ("n_heads", n_heads),
        ("n_layers", n_layers),
        ("chunk_size", chunk_size),
    ):
        checks.check_int(v, name, minimum=1, allow_none=True)
    checks.check_number(perturb_fraction, "perturb_fraction", minimum=0.0, maximum=1.0)
    checks.check_int(n_ops, "n_ops", minimum=0)
    checks.check_int(seed, "seed")
    if scale not in PRESETS:
        raise ArgumentValueError(f"scale must be one of {sorted(PRESETS)}, got {scale!r}")
    given = dict(
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
    size = {k: PRESETS[scale][k] if v is None else v for k, v in given.items()}
    for k in TASK_KEYS:
        v = size[k]
        if k != "chunk_size" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ArgumentValueError(f"{k} must be a positive int, got {v!r}")
    n, k_dsr, k_tst, length = size["n_train"], size["n_desired"], size["n_test"], size["max_len"]
    need = n + k_dsr + k_tst

    stream = _story_stream(corpus, seed, need)
    train_texts = list(itertools.islice(stream, n))
    if len(train_texts) < n:
        raise ArgumentValueError(
            f"the corpus has {len(train_texts)} distinct stories; N = {n} requested"
        )
    tokenizer = train_tokenizer(train_texts, size["vocab_size"])
    ids = special_ids(tokenizer)
    rows = encode_sequences(tokenizer, train_texts, length)

    # Held-out rows: distinct from every training row and from each other.
    seen = {tuple(r) for r in rows.tolist()}
    held: list[Tensor] = []
    while len(held) < k_dsr + k_tst:
        batch = list(itertools.islice(stream, max(64, k_dsr + k_tst - len(held))))
        if not batch:
            raise ArgumentValueError(
                f"the corpus ran out after {len(held)} distinct held-out sequences; "
                f"K + test = {k_dsr + k_tst} requested (use a larger corpus or smaller sizes)"
            )
        for r in encode_sequences(tokenizer, batch, length):
            key = tuple(r.tolist())
            if key not in seen and len(held) < k_dsr + k_tst:
                seen.add(key)
                held.append(r)
    held_rows = torch.stack(held)

    g = torch.Generator().manual_seed(seed)
    v = tokenizer.get_vocab_size()
    if v < size["vocab_size"]:
        warnings.warn(
            f"the tokenizer has {v} tokens, not the {size['vocab_size']} requested: the "
            f"{n} training stories have no more pairs to merge (the generated corpus saturates "
            "near 1,400 tokens); pass corpus=<TinyStories .txt file> for the paper's 5,000",
            stacklevel=2,
        )
    rows, mask = perturb_rows(
        rows,
        perturb_fraction,
        n_ops,
        vocab_size=v,
        pad_id=ids["pad"],
        generator=g,
        exclude=(ids["unk"], ids["eos"]),
    )

    config = TransformerConfig(
        vocab_size=v,
        max_len=length,
        d_model=size["d_model"],
        n_heads=size["n_heads"],
        n_layers=size["n_layers"],
        attn_scale=attn_scale,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Transformer(config)
    model = model.to(device=device, dtype=dtype)

    def split(r: Tensor) -> tuple[Tensor, Tensor]:
        r = r.to(device)
        return r[:, :-1].contiguous(), r[:, 1:].contiguous()

    pad_tokens = (rows[:, 1:] == ids["pad"]).float().mean().item()
    return Task(
        model=model,
        params0={name: p.detach().clone() for name, p in model.named_parameters()},
        train=split(rows),
        desired=split(held_rows[:k_dsr]),
        test=split(held_rows[k_dsr:]),
        loss_fn=partial(sequence_loss, pad_id=ids["pad"]),
        vocab_size=v,
        name="transformer",
        chunk_size=size["chunk_size"],
        kinds={"perturbed": mask.to(device), "clean": ~mask.to(device)},
        kernels=kernels,
        info=dict(
            **size,
            vocab_size_actual=v,
            perturb_fraction=perturb_fraction,
            n_ops=n_ops,
            seed=seed,
            scale=scale,
            corpus=str(corpus),
            config=config,
            tokenizer=tokenizer,
            pad_id=ids["pad"],
            eos_id=ids["eos"],
            train_pad_fraction=pad_tokens,
        ),
    )
