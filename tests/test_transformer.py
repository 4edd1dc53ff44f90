"""The Transformer, its per-sequence loss and the language-modelling task."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import central_difference
from torch.func import functional_call, grad, jvp

from learnlaw.core.task import ParamSpec
from learnlaw.tasks.lm_task import PAPER_SCALE, transformer_task
from learnlaw.tasks.transformer import (
    RMSLayerNorm,
    Transformer,
    TransformerConfig,
    count_params,
    sequence_loss,
)

PAD = 1


def tiny(dtype=torch.float64, seed=0, **kw) -> Transformer:
    cfg = dict(vocab_size=13, max_len=7, d_model=8, n_heads=2, n_layers=2) | kw
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(**cfg)).to(dtype)


def small_task(**kw):
    args = (
        dict(
            n_train=24,
            n_desired=6,
            n_test=6,
            max_len=12,
            vocab_size=300,
            d_model=16,
            n_heads=2,
            n_layers=1,
            seed=3,
        )
        | kw
    )
    return transformer_task(**args)


def test_parameter_count_at_paper_scale():
    cfg = TransformerConfig(vocab_size=5000, max_len=64, d_model=128, n_heads=8, n_layers=2)
    model = Transformer(cfg)
    # 2·5000·128 + 64·128 + 2·(12·128² + 4·128) + 2·128 (norms have a weight and a bias).
    assert sum(p.numel() for p in model.parameters()) == count_params(cfg) == 1_682_688
    assert {k: PAPER_SCALE[k] for k in ("vocab_size", "max_len", "d_model", "n_heads")} == dict(
        vocab_size=5000, max_len=64, d_model=128, n_heads=8
    )


def test_rms_layer_norm_formula():
    torch.manual_seed(0)
    norm = RMSLayerNorm(5).double()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    want = x / (x.pow(2).mean(-1, keepdim=True).sqrt() + 1e-8) * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), want)


@pytest.mark.parametrize("attn_scale", ["d_model", "head_dim"])
def test_attention_matches_sdpa(attn_scale):
    model = tiny(attn_scale=attn_scale)
    attn, cfg = model.blocks[0].attn, model.config
    assert cfg.scale == 1 / math.sqrt(8 if attn_scale == "d_model" else 4)
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    heads = [w(x).view(3, 7, 2, 4).transpose(1, 2) for w in (attn.w_q, attn.w_k, attn.w_v)]
    ref = F.scaled_dot_product_attention(*heads, is_causal=True, scale=cfg.scale)
    want = attn.w_o(ref.transpose(1, 2).reshape(3, 7, 8))
    torch.testing.assert_close(attn(x), want)


def test_sequence_loss_against_token_loop():
    torch.manual_seed(1)
    logits = torch.randn(4, 6, 9, dtype=torch.float64)
    targets = torch.randint(2, 9, (4, 6))
    targets[1, 4:] = PAD
    targets[2, 1:] = PAD
    targets[3, :] = PAD
    got = sequence_loss(logits, targets, PAD)
    for b in range(4):
        terms = [
            -torch.log_softmax(logits[b, i], -1)[targets[b, i]]
            for i in range(6)
            if targets[b, i] != PAD
        ]
        want = torch.stack(terms).mean() if terms else torch.tensor(0.0, dtype=torch.float64)
        torch.testing.assert_close(got[b], want)
    assert got[3] == 0


def test_all_padding_sequence_has_zero_loss_and_gradient():
    logits = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    targets = torch.full((2, 5), PAD)
    targets[0, :2] = 3
    loss = sequence_loss(logits, targets, PAD)
    loss.sum().backward()
    assert loss[1] == 0 and torch.isfinite(logits.grad).all()
    assert (logits.grad[1] == 0).all() and (logits.grad[0, 2:] == 0).all()


def test_model_loss_against_prefix_by_prefix_computation():
    """Logit i from the full row equals the last logit of the prefix 0…i (causality + loss)."""
    model = tiny()
    torch.manual_seed(2)
    x = torch.randint(0, 13, (3, 7))
    y = torch.randint(2, 13, (3, 7))
    y[0, 5:] = PAD
    got = sequence_loss(model(x), y, PAD)
    for b in range(3):
        terms = []
        for i in range(7):
            if y[b, i] != PAD:
                last = model(x[b : b + 1, : i + 1])[0, -1]
                terms.append(-torch.log_softmax(last, -1)[y[b, i]])
        torch.testing.assert_close(got[b], torch.stack(terms).mean())


def test_causal_mask():
    model = tiny()
    x = torch.randint(0, 13, (2, 7))
    x2 = x.clone()
    x2[:, 4] = (x[:, 4] + 1) % 13
    a, b = model(x), model(x2)
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=0)
    assert (a[:, 4:] - b[:, 4:]).abs().amax(-1).min() > 1e-6


def test_forward_over_reverse_matches_finite_difference_of_gradient():
    model = tiny(n_layers=1)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    spec = ParamSpec.of(params)
    torch.manual_seed(3)
    x = torch.randint(0, 13, (4, 7))
    y = torch.randint(0, 13, (4, 7))
    y[1, 3:] = PAD

    def loss(theta):
        logits = functional_call(model, spec.unflatten(theta), (x,))
        return sequence_loss(logits, y, PAD).mean()

    theta = spec.flatten(params)
    v = torch.randn_like(theta)
    g, hv = jvp(grad(loss), (theta,), (v,))
    torch.testing.assert_close(g, torch.func.grad(loss)(theta))
    eps = 1e-5
    fd = central_difference(grad(loss), theta, v, eps)
    torch.testing.assert_close(hv, fd, rtol=1e-5, atol=1e-7)
    assert hv.norm() > 1e-3


def test_initial_loss_is_log_v_plus_one_sixth():
    """At init the final norm gives mean(x²) = 1 and the head weights are U(±1/√d), so every
    logit is a sum with variance d·1/(3d) = 1/3: E[CE] ≈ log V + (1/3)/2."""
    task = small_task(n_train=64, vocab_size=512, d_model=32, max_len=16)
    loss = task.losses(split="train").mean().item()
    assert abs(loss - (math.log(task.vocab_size) + 1 / 6)) < 0.05


def test_config_and_input_validation():
    with pytest.raises(ValueError, match="must divide"):
        TransformerConfig(vocab_size=10, max_len=4, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="attn_scale"):
        TransformerConfig(vocab_size=10, max_len=4, attn_scale="sqrt")
    with pytest.raises(ValueError, match="positive int"):
        TransformerConfig(vocab_size=0, max_len=4)
    with pytest.raises(ValueError, match="exceeds max_len"):
        tiny()(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        tiny()(torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="sequence_loss expects"):
        sequence_loss(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), PAD)


# -- the task -----------------------------------------------------------------------------------
def test_task_shapes_kinds_and_sizes():
    task = small_task()
    x, y = task.train
    assert x.shape == y.shape == (24, 12) and task.desired[0].shape == (6, 12)
    assert (x[:, 1:] == y[:, :-1]).all()
    assert (
        task.kinds["perturbed"].sum() == 12
        and (task.kinds["clean"] == ~task.kinds["perturbed"]).all()
    )
    assert task.vocab_size == task.info["tokenizer"].get_vocab_size() == 300
    assert task.n_params == count_params(task.info["config"])
    assert set(task.params0) == {k for k, _ in task.model.named_parameters()}
    assert torch.isfinite(task.losses(split="test")).all()


def rows(pair):
    x, y = pair
    return {tuple(r) for r in torch.cat([x, y[:, -1:]], 1).tolist()}


def test_splits_are_disjoint_and_held_out_sets_clean():
    task = small_task()
    train, dsr, tst = rows(task.train), rows(task.desired), rows(task.test)
    assert not (train & dsr) and not (train & tst) and not (dsr & tst)
    assert len(dsr) == 6 and len(tst) == 6
    clean = small_task(perturb_fraction=0.0)
    for split in ("desired", "test"):
        torch.testing.assert_close(task.split(split), clean.split(split))
    keep = task.kinds["clean"]
    assert (task.train[0][keep] == clean.train[0][keep]).all()
    assert (task.train[0][~keep] != clean.train[0][~keep]).any(1).all()


def test_task_is_deterministic():
    a, b = small_task(), small_task()
    for split in ("train", "desired", "test"):
        torch.testing.assert_close(a.split(split), b.split(split), rtol=0, atol=0)
    for k in a.params0:
        torch.testing.assert_close(a.params0[k], b.params0[k], rtol=0, atol=0)
    assert (a.kinds["perturbed"] == b.kinds["perturbed"]).all()
    c = small_task(seed=4)
    assert not torch.equal(a.train[0], c.train[0])


def test_chunked_losses_equal_unchunked():
    task = small_task(dtype=torch.float64)
    params = {k: v + 0.1 * torch.randn_like(v) for k, v in task.params0.items()}
    full = task.losses(params, "train")
    chunked = task.with_(chunk_size=5).losses(params, "train")
    torch.testing.assert_close(chunked, full)


def test_task_from_a_tinystories_file(tmp_path):
    from learnlaw.tasks.stories import generate_stories

    path = tmp_path / "tiny.txt"
    path.write_text("\n<|endoftext|>\n".join(generate_stories(60, seed=9)), encoding="utf-8")
    task = small_task(corpus=path, n_train=30, max_len=24)
    assert task.n_train == 30 and task.info["corpus"] == str(path)
    with pytest.raises(ValueError, match="ran out"):
        small_task(corpus=path, n_train=50, n_desired=20)


def test_task_validation():
    with pytest.raises(ValueError, match="scale"):
        transformer_task(scale="huge")
    with pytest.raises(ValueError, match="n_train"):
        small_task(n_train=0)
    with pytest.raises(FileNotFoundError):
        small_task(corpus="/nonexistent/stories.txt")


def test_warns_when_the_corpus_cannot_fill_the_vocabulary():
    with pytest.warns(UserWarning, match="not the 5000 requested"):
        task = small_task(vocab_size=5000)
    assert 259 < task.vocab_size < 5000 and task.info["config"].vocab_size == task.vocab_size
