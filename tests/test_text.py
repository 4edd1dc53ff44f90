"""Stories, tokenizer, encoding, perturbation and the TinyStories loader."""

import re

import pytest
import torch

from learnlaw.tasks.stories import generate_stories
from learnlaw.tasks.text import (
    decode_sequences,
    encode_sequences,
    iter_story_file,
    load_tinystories,
    perturb,
    perturb_fraction,
    special_ids,
    train_tokenizer,
)

STORIES = generate_stories(300, seed=0)
PAD, V = 1, 50


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(STORIES, 400)


def sentences(texts):
    return {s for t in texts for s in re.split(r'(?<=[.!?"])\s+', t)}


# -- stories ------------------------------------------------------------------------------------
def test_stories_are_reproducible_and_seeded():
    assert generate_stories(40, seed=5) == generate_stories(40, seed=5)
    assert generate_stories(40, seed=5)[:10] == generate_stories(10, seed=5)
    assert not set(generate_stories(40, seed=5)) & set(generate_stories(40, seed=6))
    assert generate_stories(0) == []
    with pytest.raises(ValueError, match="non-negative int"):
        generate_stories(-1)


def test_stories_are_varied_and_well_formed():
    assert len(set(STORIES)) == len(STORIES)
    assert len(sentences(STORIES)) > 2000  # distinct sentences in 300 stories
    assert len({s.split(".")[0] for s in STORIES}) > 200  # distinct opening sentences
    for s in STORIES:
        assert s[0].isupper() and s[-1] in '.!"' and s.count('"') % 2 == 0
        assert "{" not in s and "  " not in s
        assert 30 <= len(s.split()) <= 250


# -- tokenizer and encoding ---------------------------------------------------------------------
def test_tokenizer_round_trip_is_exact(tok):
    extra = ['Café — naïve "quotes"\n\ttabs  and  spaces 😀', "", " leading space"]
    for text in STORIES + extra:
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_tokenizer_sizes_ids_and_determinism(tok):
    assert tok.get_vocab_size() == 400
    assert special_ids(tok) == {"unk": 0, "pad": 1, "eos": 2}
    assert train_tokenizer(STORIES, 400).to_str() == tok.to_str()
    with pytest.raises(ValueError, match=">= 259"):
        train_tokenizer(STORIES, 258)


def test_encode_sequences_pads_truncates_and_ends_with_eos(tok):
    texts = ["Hi.", STORIES[0]]
    rows = encode_sequences(tok, texts, max_len=16)
    assert rows.shape == (2, 17) and rows.dtype == torch.long
    short = tok.encode("Hi.", add_special_tokens=False).ids
    assert rows[0].tolist() == short + [2] + [PAD] * (17 - len(short) - 1)
    assert rows[1].tolist() == tok.encode(STORIES[0], add_special_tokens=False).ids[:17]
    assert decode_sequences(tok, rows)[0] == "Hi."
    assert STORIES[0].startswith(decode_sequences(tok, rows[1:])[0])
    with pytest.raises(TypeError, match="one string"):
        encode_sequences(tok, "Hi.", 4)
    with pytest.raises(ValueError, match="max_len"):
        encode_sequences(tok, texts, 0)


# -- perturbation -------------------------------------------------------------------------------
def batch(b=64, width=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = torch.randint(3, V, (b, width), generator=g)
    lengths = torch.randint(3, width + 1, (b,), generator=g)
    out[torch.arange(width) >= lengths[:, None]] = PAD
    return out, lengths


def length(row):
    return int((row != PAD).sum())


def test_replace_changes_one_token_to_an_allowed_id():
    x, _ = batch()
    g = torch.Generator().manual_seed(1)
    out = perturb(x, 1, vocab_size=V, pad_id=PAD, generator=g, exclude=(0, 2), ops=("replace",))
    diff = (out != x).sum(1)
    assert diff.max() == 1 and diff.sum() >= 60  # a replacement may redraw the same id
    changed = out[out != x]
    assert not ((changed == PAD) | (changed == 0) | (changed == 2)).any()
    assert ((out == PAD) == (x == PAD)).all()


def test_delete_removes_last_tokens_down_to_min_len():
    x, lengths = batch()
    out = perturb(x, 5, vocab_size=V, pad_id=PAD, ops=("delete",))
    for r, o, n in zip(x, out, lengths.tolist()):
        m = max(2, n - 5) if n > 2 else n
        assert o.tolist() == r[:m].tolist() + [PAD] * (20 - m)


def test_repeat_inserts_a_copy_after_a_token():
    x, lengths = batch()
    out = perturb(x, 1, vocab_size=V, pad_id=PAD, ops=("repeat",))
    for r, o, n in zip(x.tolist(), out.tolist(), lengths.tolist()):
        seq = r[:n]
        options = [(seq[: i + 1] + [seq[i]] + seq[i + 1 :])[:20] for i in range(n)]
        assert o[: min(n + 1, 20)] in options and length(torch.tensor(o)) == min(n + 1, 20)


def test_perturbation_with_all_ops_keeps_padding_at_the_end():
    x, _ = batch(256)
    out = perturb(x, 20, vocab_size=V, pad_id=PAD, generator=torch.Generator().manual_seed(0))
    lengths = (out != PAD).sum(1)
    assert ((out != PAD) == (torch.arange(20) < lengths[:, None])).all()
    assert (lengths >= 2).all() and (out != x).any(1).float().mean() > 0.95
    one = perturb(x[0], 3, vocab_size=V, pad_id=PAD)
    assert one.shape == (20,)


def test_perturbation_is_deterministic_under_a_generator():
    x, _ = batch()
    a = perturb(x, vocab_size=V, pad_id=PAD, generator=torch.Generator().manual_seed(7))
    b = perturb(x, vocab_size=V, pad_id=PAD, generator=torch.Generator().manual_seed(7))
    c = perturb(x, vocab_size=V, pad_id=PAD, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fraction, count", [(0.5, 32), (0.25, 16), (0.0, 0), (1.0, 64)])
def test_perturb_fraction_marks_and_leaves_clean_rows(fraction, count):
    x, _ = batch()
    g = torch.Generator().manual_seed(2)
    out, mask = perturb_fraction(x, fraction, vocab_size=V, pad_id=PAD, generator=g)
    assert mask.dtype == torch.bool and mask.sum() == count
    assert torch.equal(out[~mask], x[~mask])
    assert (out[mask] != x[mask]).any(1).all()


def test_perturbation_validation():
    x, _ = batch()
    with pytest.raises(ValueError, match="ops"):
        perturb(x, vocab_size=V, pad_id=PAD, ops=("swap",))
    with pytest.raises(ValueError, match="integer ids"):
        perturb(x.float(), vocab_size=V, pad_id=PAD)
    with pytest.raises(ValueError, match="fraction"):
        perturb_fraction(x, 1.5, vocab_size=V, pad_id=PAD)
    with pytest.raises(ValueError, match="no token id"):
        perturb(x, vocab_size=2, pad_id=PAD, exclude=(0,))


# -- TinyStories loader -------------------------------------------------------------------------
def write(path, stories):
    path.write_text("".join(f"{s}\n<|endoftext|>\n" for s in stories), encoding="utf-8")
    return path


def test_load_tinystories_from_a_file(tmp_path):
    stories = ["One day, Tom saw a cat.\nThe cat was happy.", "Lily had a ball.", "The end."]
    path = write(tmp_path / "TinyStories-valid.txt", stories + ["  "])
    assert load_tinystories(path) == stories
    assert load_tinystories(path, n=2) == stories[:2]
    assert load_tinystories(tmp_path, split="validation") == stories
    assert list(iter_story_file(path, chunk=5)) == stories  # separators split across reads
    with pytest.raises(FileNotFoundError, match="train"):
        load_tinystories(tmp_path, split="train")
    with pytest.raises(FileNotFoundError):
        load_tinystories(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="n must be"):
        load_tinystories(path, n=-1)
