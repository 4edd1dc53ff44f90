"""The Hugging Face adapter: a tiny randomly initialised GPT-2 (no download) as a learnlaw Task.

Skipped when ``transformers`` is not installed (it is optional: ``pip install "learnlaw[hf]"``),
except for the install hint, which is checked without it.
"""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import central_difference

import learnlaw as ll
from learnlaw.tasks import hf

F64 = torch.float64
PAD, V, N = 0, 32, 16


def test_a_missing_transformers_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import then raises ImportError
    with pytest.raises(ll.LearnlawError, match=r"pip install 'transformers>=5'.*learnlaw\[hf\]"):
        hf.causal_lm_task(None, None, None, None, pad_id=0)


@pytest.fixture(scope="module")
def gpt2():
    transformers = pytest.importorskip("transformers")
    transformers.utils.logging.set_verbosity_error()
    config = transformers.GPT2Config(
        vocab_size=V, n_positions=16, n_embd=16, n_layer=1, n_head=2,
        attn_implementation="eager", bos_token_id=1, eos_token_id=1, pad_token_id=PAD,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).to(F64)


def _rows(n: int, g: torch.Generator) -> torch.Tensor:
    """``(n, 9)`` random token rows, right-padded to random lengths 4…9."""
    rows = torch.randint(2, V, (n, 9), generator=g)
    lengths = torch.randint(4, 10, (n,), generator=g)
    rows[torch.arange(9)[None] >= lengths[:, None]] = PAD
    return rows


@pytest.fixture(scope="module")
def task(gpt2):
    g = torch.Generator().manual_seed(1)
    return hf.causal_lm_task(gpt2, _rows(N, g), _rows(8, g), _rows(8, g), pad_id=PAD)


def test_the_task_has_per_sequence_losses_masked_padding_and_the_config_vocabulary(task, gpt2):
    assert task.vocab_size == V == gpt2.config.vocab_size
    assert task.n_train == N and task.dtype == F64
    x, y = task.train
    losses = task.losses()
    assert losses.shape == (N,)
    # one sequence by hand: the mean next-token CE over its non-padding targets
    n_real = int((y[0] != PAD).sum())
    with torch.no_grad():
        logits = gpt2(input_ids=x[:1], attention_mask=(x[:1] != PAD).long()).logits[0]
    ce = torch.nn.functional.cross_entropy(logits[:n_real], y[0, :n_real])
    torch.testing.assert_close(losses[0], ce)


def test_a_model_in_training_mode_is_refused(gpt2):
    g = torch.Generator().manual_seed(1)
    gpt2.train()
    try:
        with pytest.raises(ValueError, match=r"not deterministic.*Dropout.*model\.eval\(\)"):
            hf.causal_lm_task(
                gpt2, _rows(4, g), _rows(4, g), _rows(4, g), pad_id=PAD, eval_mode=False
            )
    finally:
        gpt2.eval()


def test_policy_gradient_matches_central_differences(task):
    steps, lr, eps = 6, 0.2, 1e-6
    g = torch.Generator().manual_seed(2)
    policy = torch.softmax(torch.randn(steps, N, generator=g, dtype=F64), 1)
    j, grad = ll.policy_gradient(task, policy, lr)
    j_ckpt, grad_ckpt = ll.policy_gradient(task, policy, lr, checkpoint_every=2)
    assert abs(j_ckpt - j) <= 1e-10 * abs(j)
    assert float((grad_ckpt - grad).abs().max() / grad.abs().max()) <= 1e-10
    for _ in range(2):  # two random zero-sum directions (they keep each row on the simplex)
        d = torch.randn(steps, N, generator=g, dtype=F64)
        d -= d.mean(1, keepdim=True)
        fd = central_difference(
            lambda p: float(ll.train(task, p, lr).desired_loss[1:].sum()), policy, d, eps
        )
        exact = float((grad * d).sum())
        assert abs(fd - exact) <= 1e-6 * abs(exact), (fd, exact)


def test_conventional_online_and_searched_training(task):
    steps, lr = 6, 0.2
    uniform = ll.uniform_policy(steps, N, dtype=F64)
    conventional = ll.train(task, uniform, lr)
    assert conventional.desired_loss[-1] < conventional.desired_loss[0]
    online = ll.online_policy(task, steps, lr)
    ll.policies.validate_policy(online.policy, steps=steps, n=N)
    search = ll.optimize_policy(task, steps, lr, 0.05, 2, progress=False)
    j = [h["J"] for h in search.history]
    assert j[-1] < j[0]
