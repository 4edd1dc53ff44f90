"""Text for the language-model task: a BPE tokenizer, fixed-length encoding, the paper's
perturbation of training sequences, and a TinyStories loader.

The paper reduces Mistral's BPE tokenizer to a 5K vocabulary; we train a byte-level BPE
tokenizer (Hugging Face ``tokenizers``) at the requested vocabulary size instead, because it
needs no download and decodes exactly: ``decode(encode(text)) == text`` for any text. Ids
0, 1, 2 are the special tokens ``<unk>``, ``<pad>``, ``<eos>`` (the paper's code also pads with
id 1); every byte has its own token, so ``<unk>`` never occurs.

Perturbation (paper Sec. 4.2): a perturbed sequence has ``n_ops`` = 20 operations applied in a
row, each chosen uniformly among (1) replace a random token with a random vocabulary token,
(2) delete the last token, (3) repeat a random token. The paper does not say how an operation
is chosen (its code for this is not public); uniform is our choice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentTypeError, ArgumentValueError, MissingFileError
from learnlaw.core.optional import require

if TYPE_CHECKING:  # tokenizers is imported where a tokenizer is trained
    from tokenizers import Tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "train_tokenizer",
    "special_ids",
    "encode_sequences",
    "decode_sequences",
    "perturb",
    "perturb_fraction",
    "load_tinystories",
    "iter_story_file",
]

SPECIAL_TOKENS = ("<unk>", "<pad>", "<eos>")
"""Special tokens, with ids 0, 1, 2 in every tokenizer of :func:`train_tokenizer`."""
N_BYTES = 256
STORY_SEPARATOR = "<|endoftext|>"
OPS = ("replace", "delete", "repeat")
"""The paper's three perturbation operations."""


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE tokenizer with exactly ``vocab_size`` tokens (if the corpus allows).

    The vocabulary is the 3 special tokens, the 256 byte tokens and ``vocab_size − 259``
    merges learned from ``texts`` (fewer if no pair occurs ``min_frequency`` times any more).
    Training is deterministic: the same texts give the same tokenizer.

    Args:
        texts: the training corpus, one document per string.
        vocab_size: |V|, at least 259 (3 special + 256 bytes); the paper uses 5000.
        min_frequency: a pair is merged only if it occurs at least this often.

    Returns:
        A ``tokenizers.Tokenizer``; ``tokenizer.get_vocab_size()`` is the actual |V|.
    """
    low = len(SPECIAL_TOKENS) + N_BYTES
    expected = f"an int >= {low} (3 special tokens + 256 bytes)"
    checks.check_int(vocab_size, "vocab_size", minimum=low, expected=expected)
    checks.check_int(min_frequency, "min_frequency", minimum=1)
    tk = require("tokenizers", "the byte-level BPE tokenizer of the Transformer task")
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """``{"unk": id, "pad": id, "eos": id}`` of a tokenizer from :func:`train_tokenizer`."""
    out = {}
    for t in SPECIAL_TOKENS:
        i = tokenizer.token_to_id(t)
        if i is None:
            raise ArgumentValueError(
                f"the tokenizer has no {t} token; build it with train_tokenizer"
            )
        out[t.strip("<>")] = i
    return out


def encode_sequences(
    tokenizer: Tokenizer, texts: Sequence[str], max_len: int, *, add_eos: bool = True
) -> Tensor:
    """Encode texts as rows of ``max_len + 1`` token ids, truncated or right-padded.

    Each text is tokenized, followed by ``<eos>`` (if ``add_eos``), cut to its first
    ``max_len + 1`` tokens and padded with ``<pad>``. A row splits into inputs ``[:, :-1]`` and
    next-token targets ``[:, 1:]``, each of length ``max_len``.

    Returns:
        ``(n, max_len + 1)`` int64 ids.
    """
    checks.check_int(max_len, "max_len", minimum=1)
    checks.check_bool(add_eos, "add_eos")
    if isinstance(texts, str):
        raise ArgumentTypeError(
            "texts must be a sequence of strings, got one string; wrap it in a list"
        )
    ids = special_ids(tokenizer)
    width = max_len + 1
    out = torch.full((len(texts), width), ids["pad"], dtype=torch.long)
    tail = [ids["eos"]] if add_eos else []
    for i, enc in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        row = (enc.ids + tail)[:width]
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def decode_sequences(tokenizer: Tokenizer, rows: Tensor) -> list[str]:
    """Decode ``(n, L)`` ids to text, dropping special tokens (padding, end of story)."""
    return tokenizer.decode_batch(rows.tolist(), skip_special_tokens=True)


def _length(row: list[int], pad_id: int) -> int:
    """Number of tokens before the trailing padding."""
    n = len(row)
    while n and row[n - 1] == pad_id:
        n -= 1
    return n


def perturb(
    tokens: Tensor,
    n_ops: int = 20,
    *,
    vocab_size: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    exclude: Iterable[int] = (),
    min_len: int = 2,
    ops: Sequence[str] = OPS,
) -> Tensor:
    """Apply ``n_ops`` random edits in a row to each right-padded sequence (paper Sec. 4.2).

    Each edit is chosen uniformly among

    1. *replace*: a uniformly random token position gets a uniformly random id from
       ``[0, vocab_size)`` without ``pad_id`` and ``exclude``;
    2. *delete*: the last non-padding token becomes padding (skipped when only ``min_len``
       tokens are left, so that a sequence keeps at least one input and one target);
    3. *repeat*: a copy of a uniformly random token is inserted right after it; the tokens
       after it shift right and the last one falls off if the row is full.

    Args:
        tokens: ``(L,)`` or ``(B, L)`` ids, padding only at the end of each row.
        n_ops: edits per sequence (paper: 20).
        vocab_size: |V|.
        pad_id: the padding id.
        generator: the source of randomness (same state -> same output).
        exclude: ids never drawn by *replace* (e.g. the other special tokens).
        min_len: the shortest sequence that *delete* leaves.
        ops: the operations to choose from (uniformly), a subset of
            ``("replace", "delete", "repeat")``; all three in the paper.

    Returns:
        A new tensor of the shape, dtype and device of ``tokens``.
    """
    checks.check_int(n_ops, "n_ops", minimum=0)
    checks.check_int(vocab_size, "vocab_size", minimum=2)
    checks.check_int(pad_id, "pad_id")
    checks.check_int(min_len, "min_len", minimum=1)
    if tokens.dim() not in (1, 2) or tokens.dtype not in (torch.int32, torch.int64):
        raise ArgumentValueError(
            f"tokens must be (L,) or (B, L) integer ids, got {tuple(tokens.shape)} {tokens.dtype}"
        )
    if not ops or any(o not in OPS for o in ops):
        raise ArgumentValueError(f"ops must be a non-empty subset of {OPS}, got {ops!r}")
    banned = {pad_id, *exclude}
    allowed = torch.tensor([i for i in range(vocab_size) if i not in banned], dtype=torch.long)
    if len(allowed) == 0:
        raise ArgumentValueError(
            f"no token id left to draw: vocab_size={vocab_size}, excluded {banned}"
        )
    rows = tokens.reshape(-1, tokens.shape[-1]).tolist()
    width = tokens.shape[-1]
    shape = (len(rows), n_ops)
    kinds = torch.tensor([OPS.index(o) for o in ops])
    chosen = kinds[torch.randint(len(kinds), shape, generator=generator)].tolist()
    where = torch.rand(shape, generator=generator, dtype=torch.float64).tolist()
    new = allowed[torch.randint(len(allowed), shape, generator=generator)].tolist()
    out = []
    for row, op_r, u_r, t_r in zip(rows, chosen, where, new):
        seq = row[: _length(row, pad_id)]
        for op, u, t in zip(op_r, u_r, t_r):
            n = len(seq)
            if op == 0 and n:
                seq[int(u * n)] = t
            elif op == 1 and n > min_len:
                seq.pop()
            elif op == 2 and n:
                i = int(u * n)
                seq.insert(i + 1, seq[i])
                del seq[width:]
        out.append(seq + [pad_id] * (width - len(seq)))
    return torch.tensor(out, dtype=tokens.dtype, device=tokens.device).reshape(tokens.shape)


def perturb_fraction(
    batch: Tensor,
    fraction: float = 0.5,
    n_ops: int = 20,
    *,
    vocab_size: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    exclude: Iterable[int] = (),
    ops: Sequence[str] = OPS,
) -> tuple[Tensor, Tensor]:
    """Perturb ``round(fraction · B)`` uniformly chosen rows of ``batch`` with :func:`perturb`.

    Returns:
        ``(perturbed batch (B, L), mask (B,) bool)``; rows where the mask is False are
        unchanged copies.
    """
    checks.check_number(fraction, "fraction", minimum=0.0, maximum=1.0)
    checks.check_int(n_ops, "n_ops", minimum=0)
    checks.check_int(vocab_size, "vocab_size", minimum=2)
    checks.check_int(pad_id, "pad_id")
    if not 0 <= fraction <= 1:
        raise ArgumentValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if batch.dim() != 2:
        raise ArgumentValueError(f"batch must be (B, L) ids, got shape {tuple(batch.shape)}")
    b = len(batch)
    mask = torch.zeros(b, dtype=torch.bool)
    mask[torch.randperm(b, generator=generator)[: round(fraction * b)]] = True
    out = batch.clone()
    idx = mask.nonzero()[:, 0].to(batch.device)
    out[idx] = perturb(
        batch[idx],
        n_ops,
        vocab_size=vocab_size,
        pad_id=pad_id,
        generator=generator,
        exclude=exclude,
        ops=ops,
    )
    return out, mask.to(batch.device)


def iter_story_file(path: str | os.PathLike, chunk: int = 1 << 20) -> Iterator[str]:
    """Stream the stories of a (possibly huge) text file, separated by ``<|endoftext|>``."""
    buf = ""
    with open(path, encoding="utf-8") as f:
        while block := f.read(chunk):
            buf += block
            *done, buf = buf.split(STORY_SEPARATOR)
            yield from (s.strip() for s in done if s.strip())
    if buf.strip():
        yield buf.strip()


def load_tinystories(
    path: str | os.PathLike | None = None, split: str = "train", n: int | None = None
) -> list[str]:
    """Stories from a local TinyStories text file, or from the Hugging Face hub.

    Args:
        path: a text file of stories separated by ``<|endoftext|>`` (the format of
            ``TinyStories-train.txt`` / ``TinyStoriesV2-GPT4-valid.txt``), or a folder holding
            exactly one ``*.txt`` file whose name contains ``split``. ``None``: download the
            ``roneneldan/TinyStories`` dataset with the ``datasets`` library (needs internet
            and ``pip install datasets``).
        split: ``"train"`` or ``"validation"`` (``"valid"`` in the file names).
        n: keep only the first ``n`` stories (the file is read lazily, so this is fast).

    Returns:
        A list of stories, stripped of surrounding whitespace, empty ones dropped.
    """
    checks.check_choice(split, "split", ("train", "validation"))
    checks.check_int(n, "n", minimum=1, allow_none=True)
    if path is None:
        # or pass the path of a local TinyStories .txt file instead
        datasets = require("datasets", "load_tinystories(path=None), which downloads TinyStories,")
        ds = datasets.load_dataset("roneneldan/TinyStories", split=split)
        texts = ds["text"] if n is None else ds.select(range(min(n, len(ds))))["text"]
        return [t.strip() for t in texts if t.strip()]
    p = Path(path)
    if p.is_dir():
        key = "valid" if split.startswith("valid") else split
        found = sorted(f for f in p.glob("*.txt") if key in f.name)
        if len(found) != 1:
            raise MissingFileError(
                f"expected one *.txt file with {key!r} in its name in {p}, found "
                f"{[f.name for f in found]}; pass the file's path instead"
            )
        p = found[0]
    if not p.is_file():
        raise MissingFileError(f"no TinyStories text file at {p}")
    out = []
    for story in iter_story_file(p):
        if n is not None and len(out) >= n:
            break
        out.append(story)
    return out
