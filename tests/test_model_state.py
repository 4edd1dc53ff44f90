"""Task refuses stochastic and stateful models; an eval-mode model with buffers works throughout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learnlaw import Task, online_policy, policy_gradient, train, uniform_policy


class SmallCNN(nn.Module):
    """Conv2d → (BatchNorm2d) → ReLU → (Dropout) → Linear over 12×12 single-channel images."""

    def __init__(self, batchnorm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)  # 12×12 → 5×5
        self.norm = nn.BatchNorm2d(4) if batchnorm else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv(x)))
        return self.head(self.drop(h.flatten(1)))


def per_example(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def cnn_task(model: nn.Module, n: int = 32, dtype=torch.float64) -> Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n + 16, 1, 12, 12, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n + 16,), generator=g)
    model = model.to(dtype)
    return Task(
        model=model,
        params0={k: v.detach().clone() for k, v in model.named_parameters()},
        train=(x[:n], y[:n]),
        desired=(x[:8], y[:8]),  # seen in training: the desired loss can fall
        test=(x[n + 8 :], y[n + 8 :]),
        loss_fn=per_example,
        vocab_size=3,
        name="cnn",
    )


def _with_running_stats(model: SmallCNN) -> SmallCNN:
    """Give BatchNorm non-trivial running statistics (as after some training), then eval()."""
    torch.manual_seed(1)
    with torch.no_grad():
        model(torch.randn(64, 1, 12, 12, dtype=next(model.parameters()).dtype))
    return model.eval()


def test_dropout_in_training_mode_is_refused_naming_the_module_and_the_fix():
    torch.manual_seed(0)
    with pytest.raises(
        ValueError, match=r"not deterministic.*Dropout \(module 'drop'\).*model\.eval\(\)"
    ):
        cnn_task(SmallCNN(dropout=0.2))


def test_batchnorm_in_training_mode_is_refused_naming_the_module_and_the_fix():
    torch.manual_seed(0)
    model = SmallCNN(batchnorm=True).double()
    stats = {n: b.clone() for n, b in model.named_buffers()}
    with pytest.raises(
        ValueError,
        match=r"changes its buffers.*BatchNorm2d \(module 'norm'\).*model\.eval\(\).*LayerNorm",
    ):
        cnn_task(model)
    for n, b in model.named_buffers():  # the check leaves the model as it found it
        assert torch.equal(b, stats[n]), n


def test_the_check_is_skipped_on_the_meta_device():
    from learnlaw.analysis.cost import meta_transformer_task
    from learnlaw.tasks.lm_task import CPU_SCALE, TASK_KEYS

    task = meta_transformer_task(**{k: CPU_SCALE[k] for k in TASK_KEYS})
    assert task.device.type == "meta"


def test_check_model_false_accepts_a_stochastic_model():
    torch.manual_seed(0)
    model = SmallCNN(dropout=0.2).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 12, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    task = Task(
        model=model,
        params0={k: v.detach().clone() for k, v in model.named_parameters()},
        train=(x, y),
        desired=(x, y),
        test=(x, y),
        loss_fn=per_example,
        vocab_size=3,
        check_model=False,
    )
    assert task.n_train == 8
    with pytest.raises(TypeError, match="check_model must be True or False"):
        task.with_(check_model="no")


def test_an_eval_mode_model_with_buffers_works_through_training_the_adjoint_and_online():
    torch.manual_seed(0)
    model = _with_running_stats(SmallCNN(batchnorm=True, dropout=0.2).double())
    task = cnn_task(model)
    steps, lr = 12, 0.2
    g = torch.Generator().manual_seed(2)
    policy = torch.softmax(torch.randn(steps, task.n_train, generator=g, dtype=torch.float64), 1)
    run = train(task, policy, lr)
    assert torch.isfinite(run.desired_loss).all()
    assert run.desired_loss[-1] < run.desired_loss[0]
    plain = policy_gradient(task, policy, lr)
    ckpt = policy_gradient(task, policy, lr, checkpoint_every=5)
    auto = policy_gradient(task, policy, lr, checkpoint_every="auto")
    j, grad = plain
    for j_other, grad_other in (ckpt, auto):
        assert abs(j_other - j) <= 1e-10 * abs(j)
        assert float((grad_other - grad).abs().max() / grad.abs().max()) <= 1e-10
    assert abs(j - float(run.desired_loss[1:].sum())) <= 1e-10 * abs(j)
    online = online_policy(task, steps, lr)
    assert online.policy.shape == (steps, task.n_train)
    assert torch.isfinite(online.run.desired_loss).all()
    assert torch.equal(uniform_policy(steps, task.n_train).sum(1), torch.ones(steps).double())
    for name, buf in model.named_buffers():  # running statistics stayed constants
        assert torch.isfinite(buf.double()).all(), name
