"""Task's validation of a reader's own model and data (the errors the how-to chapter shows)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learnlaw import Task


def _task(loss_fn, desired_x=None, test_y=None):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    model = nn.Linear(5, 3)
    return Task(
        model=model,
        params0={k: v.detach().clone() for k, v in model.named_parameters()},
        train=(x, y),
        desired=(x[:4] if desired_x is None else desired_x, y[:4]),
        test=(x[:4], y[:4] if test_y is None else test_y),
        loss_fn=loss_fn,
        vocab_size=3,
    )


def per_example(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def test_a_valid_task_is_accepted():
    assert _task(per_example).n_train == 16


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_reduced_loss_is_refused_with_the_fix(reduction):
    with pytest.raises(ValueError, match=r"loss_fn returned \(\) .*reduction='none'"):
        _task(lambda logits, y: F.cross_entropy(logits, y, reduction=reduction))


def test_a_loss_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"loss_fn returned \(2, 3\)"):
        _task(lambda logits, y: logits)


def test_splits_of_different_kinds_are_refused():
    with pytest.raises(ValueError, match=r"Task.desired holds examples of input shape \(6,\)"):
        _task(per_example, desired_x=torch.randn(4, 6))
    with pytest.raises(ValueError, match=r"Task.test .* target shape \(3,\)"):
        _task(per_example, test_y=torch.zeros(4, 3))
