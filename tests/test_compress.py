"""Tests for learnlaw.analysis.compress: training as lossless compression (paper Theorem A.1)."""

import math
import random
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learnlaw.analysis.compress import (
    _HEADER,
    _HEADER_CRC,
    HEADER_BYTES,
    RC_OVERHEAD_BITS,
    SEAL_BITS,
    CoderConfig,
    CompressionError,
    coding_probs,
    coding_tables,
    compress,
    compressed_bits_bound,
    decompress,
    encode,
    init_params,
    mlp_logits,
    prequential_code_length,
)

SMALL = CoderConfig(context=3, embed=8, hidden=32, lr=0.5, batch_size=16, seed=1)

_DET = "the a every no some this that my her our".split()
_ADJ = (
    "small old bright quiet heavy green strange careful distant warm broken simple "
    "early gentle curious narrow silver patient"
).split()
_NOUN = (
    "river teacher machine garden letter village doctor window engine market student "
    "mountain kitchen question harbour lamp farmer library winter bridge child theory "
    "painter road"
).split()
_VERB = (
    "watches builds follows remembers carries opens explains finds answers repairs "
    "visits measures describes forgets counts paints"
).split()
_ADV = "slowly quietly again often carefully suddenly rarely today".split()
_PREP = "near under behind across beside beyond inside along".split()
_CONJ = "and but because while although so".split()


def english_like(n_bytes: int, seed: int = 0) -> str:
    """Grammatical, non-repeating English-like sentences drawn from a small grammar."""
    rng = random.Random(seed)

    def noun_phrase() -> str:
        words = [rng.choice(_DET)]
        if rng.random() < 0.6:
            words.append(rng.choice(_ADJ))
        words.append(rng.choice(_NOUN))
        return " ".join(words)

    def clause() -> str:
        words = [noun_phrase(), rng.choice(_VERB), noun_phrase()]
        if rng.random() < 0.5:
            words.append(rng.choice(_PREP) + " " + noun_phrase())
        if rng.random() < 0.4:
            words.append(rng.choice(_ADV))
        return " ".join(words)

    out, size = [], 0
    while size < n_bytes:
        s = clause()
        if rng.random() < 0.3:
            s += ", " + rng.choice(_CONJ) + " " + clause()
        s = s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?"])
        s += "\n" if rng.random() < 0.15 else " "
        out.append(s)
        size += len(s)
    return "".join(out)[:n_bytes]


TEXT = english_like(2000).encode()


def _reheader(blob: bytes, **changes) -> bytes:
    """Rewrite header fields and recompute the header CRC (a well-formed but altered stream)."""
    names = ["magic", "version", "flags", "context", "embed", "hidden", "batch_size", "lr",
             "seed", "length", "bitmap", "data_crc", "n_payload", "payload_crc"]  # fmt: skip
    values = dict(zip(names, _HEADER.unpack(blob[: _HEADER.size])))
    values.update(changes)
    head = _HEADER.pack(*(values[n] for n in names))
    return head + _HEADER_CRC.pack(zlib.crc32(head)) + blob[HEADER_BYTES:]


# ------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x",
        b"a" * 300,  # one-symbol alphabet: the header alone determines it
        b"ab" * 150,
        bytes(range(256)) + bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8)),
        TEXT,
        TEXT[:1001],  # 1001 = 62 * 16 + 9: last batch is partial
        "Größe, déjà vu, naïve café — Ελληνικά, 日本語テキスト, emoji 🙂🙃 " * 8,
    ],
    ids=["empty", "one", "repeat", "pair", "random", "text", "partial", "utf8"],
)
def test_round_trip_is_exact(data):
    raw = data.encode("utf-8") if isinstance(data, str) else data
    blob = compress(data, SMALL)
    assert decompress(blob) == raw
    assert decompress(blob, SMALL) == raw


def test_round_trip_default_config_and_buffer_types():
    data = TEXT[:700]
    assert decompress(compress(data)) == data
    assert decompress(compress(bytearray(data), SMALL)) == data
    assert decompress(bytearray(compress(memoryview(data), SMALL))) == data


def test_same_input_same_stream_and_seed_matters():
    assert compress(TEXT[:500], SMALL) == compress(TEXT[:500], SMALL)
    other = CoderConfig(**{**SMALL.__dict__, "seed": 2})
    blob = compress(TEXT[:500], other)
    assert blob != compress(TEXT[:500], SMALL)
    assert decompress(blob) == TEXT[:500]


def test_caller_thread_count_is_irrelevant_and_restored():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        blob = compress(TEXT[:400], SMALL)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert decompress(blob) == TEXT[:400]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------- the maths


def test_coding_probs_do_not_depend_on_batching():
    """Encoder (B rows at once) and decoder (one row) must feed identical floats to the coder."""
    gen = torch.Generator().manual_seed(0)
    for vocab, cfg in [(5, SMALL), (38, CoderConfig()), (256, SMALL)]:
        params = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64)
                  for k, v in init_params(vocab, cfg).items()}  # fmt: skip
        tables = coding_tables(params, cfg.context)
        ctx = np.random.default_rng(vocab).integers(0, vocab + 1, (50, cfg.context))
        full = coding_probs(tables, ctx)
        for n in (1, 3, 32):
            part = np.concatenate([coding_probs(tables, ctx[i : i + n]) for i in range(0, 50, n)])
            assert np.array_equal(part, full)
        # and they are the model's softmax
        ref = torch.softmax(mlp_logits(params, torch.from_numpy(ctx)), dim=1).numpy()
        np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-300)


def _reference_auc(raw: bytes, cfg: CoderConfig) -> list[float]:
    """Algorithm 1 written out with plain autograd and Python-built contexts."""
    alphabet = sorted(set(raw))
    sym = [alphabet.index(b) for b in raw]
    v, c, b = len(alphabet), cfg.context, cfg.batch_size
    params = {k: p.clone().requires_grad_() for k, p in init_params(v, cfg).items()}
    out = []
    for s in range(0, len(sym), b):
        idx = range(s, min(s + b, len(sym)))
        ctx = torch.tensor([[sym[j] if j >= 0 else v for j in range(m - c, m)] for m in idx])
        loss = F.cross_entropy(mlp_logits(params, ctx), torch.tensor([sym[m] for m in idx]))
        out.append(loss.item() / math.log(2))
        loss.backward()
        with torch.no_grad():
            for p in params.values():
                p -= cfg.lr * p.grad
                p.grad = None
    return out


def test_auc_is_the_online_training_loss_of_algorithm_1():
    raw = TEXT[:300]
    auc, batch_bits = prequential_code_length(raw, SMALL)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is much faster
    try:
        ref = _reference_auc(raw, SMALL)
    finally:
        torch.set_num_threads(before)
    assert batch_bits.shape == (math.ceil(300 / 16),)
    np.testing.assert_allclose(batch_bits.numpy(), ref, rtol=1e-10)
    sizes = [16] * 18 + [300 - 16 * 18]
    assert auc == pytest.approx(sum(n * bits for n, bits in zip(sizes, ref)), rel=1e-12)
    # zero output layer: the first batch is coded uniformly, L_1 = log2 V
    assert batch_bits[0].item() == pytest.approx(math.log2(len(set(raw))), abs=1e-12)


def test_encode_reports_the_same_auc_and_consistent_sizes():
    enc = encode(TEXT, SMALL)
    auc, batch_bits = prequential_code_length(TEXT, SMALL)
    assert enc.auc_bits == auc and torch.equal(enc.batch_bits, batch_bits)
    assert enc.ideal_bits == pytest.approx(auc, rel=1e-9)
    assert enc.header_bits == 8 * HEADER_BYTES
    assert enc.total_bits == enc.payload_bits + enc.header_bits == 8 * len(enc.blob)
    assert enc.n_symbols == len(TEXT) and enc.vocab_size == len(set(TEXT))


@pytest.mark.parametrize("n", [1, 17, 600, 2000])
def test_compressed_size_within_bound_of_auc(n):
    enc = encode(TEXT[:n], SMALL)
    assert enc.total_bits <= enc.bound_bits
    assert enc.bound_bits == compressed_bits_bound(enc.auc_bits, n, enc.vocab_size)
    # the range coder alone: ideal length + worst-case truncation and quantization + seal
    eps = RC_OVERHEAD_BITS - math.log2(1 - enc.vocab_size * 2.0**-24)
    assert enc.payload_bits <= enc.ideal_bits + n * eps + SEAL_BITS


def test_bound_on_random_bytes_and_trivial_alphabets():
    data = bytes(np.random.default_rng(1).integers(0, 256, 800, np.uint8))
    enc = encode(data, SMALL)
    assert enc.total_bits <= enc.bound_bits
    assert enc.auc_bits > 0.9 * 8 * 800  # incompressible: the model cannot do much better
    for trivial in (b"", b"zzzz"):
        enc = encode(trivial, SMALL)
        assert enc.payload_bits == 0 and enc.total_bits == enc.bound_bits == 8 * HEADER_BYTES


def test_redundant_text_compresses():
    enc = encode(TEXT, SMALL)
    assert enc.ratio_to_raw > 1.5
    assert enc.total_bits < 8 * len(TEXT)
    # the loss curve decreases: later batches cost fewer bits than the first
    assert enc.batch_bits[-20:].mean() < 0.75 * enc.batch_bits[0]


# ------------------------------------------------------------------------------- bad streams


@pytest.fixture(scope="module")
def blob():
    return compress(TEXT[:500], SMALL)


def _flip(blob: bytes, i: int) -> bytes:
    return blob[:i] + bytes([blob[i] ^ 0x10]) + blob[i + 1 :]


def test_corrupted_payload_is_detected(blob):
    with pytest.raises(CompressionError, match="payload checksum"):
        decompress(_flip(blob, len(blob) - 5))


def test_corrupted_header_is_detected(blob):
    for i in (5, 20, 40, HEADER_BYTES - 1):
        with pytest.raises(CompressionError, match="header checksum"):
            decompress(_flip(blob, i))
    with pytest.raises(CompressionError, match="not a learnlaw stream"):
        decompress(_flip(blob, 0))


def test_corruption_past_the_checksums_fails_the_data_crc(blob):
    """A payload altered together with its checksum decodes to garbage -> the data CRC says so."""
    bad = _flip(blob, HEADER_BYTES + 3)
    bad = _reheader(bad, payload_crc=zlib.crc32(bad[HEADER_BYTES:]))
    with pytest.raises(CompressionError, match="CRC-32"):
        decompress(bad)
    with pytest.raises(CompressionError, match="CRC-32"):
        decompress(_reheader(blob, data_crc=zlib.crc32(b"something else")))


def test_inconsistent_or_foreign_headers(blob):
    with pytest.raises(CompressionError, match="format version"):
        decompress(_reheader(blob, version=99))
    with pytest.raises(CompressionError, match="invalid config"):
        decompress(_reheader(blob, batch_size=0))
    with pytest.raises(CompressionError, match="inconsistent header"):
        decompress(_reheader(blob, bitmap=bytes(32)))


def test_truncated_stream_is_detected(blob):
    with pytest.raises(CompressionError, match="truncated"):
        decompress(blob[:-4])
    with pytest.raises(CompressionError, match="truncated"):
        decompress(blob[:-1])
    with pytest.raises(CompressionError, match="too short"):
        decompress(blob[:10])
    with pytest.raises(CompressionError, match="too short"):
        decompress(b"")
    with pytest.raises(CompressionError, match="truncated or padded"):
        decompress(blob + b"\0")


def test_decoding_with_another_config_names_the_fields(blob):
    other = CoderConfig(**{**SMALL.__dict__, "lr": 0.25, "hidden": 64})
    with pytest.raises(CompressionError, match="hidden") as err:
        decompress(blob, other)
    assert "lr (stream 0.5, given 0.25)" in str(err.value)
    assert "seed" not in str(err.value)


# ------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"context": -1}, ValueError, "context"),
        ({"hidden": 2.0}, TypeError, "hidden"),
        ({"embed": True}, TypeError, "embed"),
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_config(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CoderConfig(**kwargs)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="data must be bytes"):
        compress(123)
    with pytest.raises(TypeError, match="data must be bytes"):
        compress([1, 2, 3])
    with pytest.raises(TypeError, match="data must be bytes"):
        prequential_code_length(None, SMALL)
    with pytest.raises(TypeError, match="config must be a CoderConfig"):
        compress(b"abc", {"batch_size": 4})
    with pytest.raises(TypeError, match="blob must be bytes"):
        decompress("LLPC")


def test_learnlaw_imports_without_constriction_and_the_coder_says_what_is_missing():
    code = (
        "import sys; sys.modules['constriction'] = None\n"  # as if it were not installed
        "import learnlaw\n"
        "from learnlaw.analysis.compress import _constriction\n"
        "try:\n    _constriction()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "needs the optional package constriction" in out.stdout
    assert "pip install 'learnlaw[coding]'" in out.stdout
