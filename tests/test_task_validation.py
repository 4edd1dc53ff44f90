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


# --- what a new user's first Task meets ---------------------------------------------------------


def _parts():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    return model, params0, x, y


def _build(model, params0, x, y):
    return Task(
        model=model,
        params0=params0,
        train=(x, y),
        desired=(x[:4], y[:4]),
        test=(x[:4], y[:4]),
        loss_fn=per_example,
        vocab_size=3,
    )


def test_numpy_data_is_refused_with_the_conversion_to_make():
    from learnlaw import LearnlawError

    model, params0, x, y = _parts()
    with pytest.raises(
        LearnlawError, match=r"Task.train inputs is a numpy.ndarray.*torch.as_tensor"
    ):
        _build(model, params0, x.numpy(), y)
    with pytest.raises(TypeError, match=r"Task.train targets is a numpy.ndarray.*torch.long"):
        _build(model, params0, x, y.numpy())


def test_float64_data_for_a_float32_model_is_refused_when_the_task_is_built():
    model, params0, x, y = _parts()
    with pytest.raises(
        TypeError,
        match=r"inputs are torch.float64 but the parameters are "
        r"torch.float32.*\.to\(torch.float32\)",
    ):
        _build(model, params0, x.double(), y)
    assert _build(model.double(), {k: v.double() for k, v in params0.items()}, x.double(), y)


def test_params0_must_cover_every_parameter_of_the_model():
    model, params0, x, y = _parts()
    left_out = {k: v for k, v in params0.items() if not k.startswith("2.")}
    with pytest.raises(
        ValueError,
        match=r"no entry for the model's parameters \['2.weight', "
        r"'2.bias'\]: they would never train.*register_buffer",
    ):
        _build(model, left_out, x, y)
    with pytest.raises(ValueError, match=r"names \['extra'\], which the model does not have"):
        _build(model, {**params0, "extra": torch.zeros(1)}, x, y)


def test_the_divergence_message_is_whole_and_names_the_fix():
    from learnlaw.training import DivergenceError, check_divergence

    with pytest.raises(DivergenceError) as err:
        check_divergence(500.0, step=3, lr=2.0, initial=1.0, factor=100.0)
    msg = str(err.value)
    assert msg.endswith("(now 100.0; a factor > 1, or None to stop only on a non-finite loss)")
    assert "step 3" in msg and "lr=2" in msg and "500" in msg


def test_one_n_holdout_contract_for_holdout_split_and_validation_task():
    from learnlaw import LearnlawError, perceptron_task
    from learnlaw.core.task import holdout_split
    from learnlaw.fit import validation_task

    task = perceptron_task(dim=4, n_train=16, n_desired=8, n_test=4)
    assert validation_task(task).n_desired == 6  # default max(2, K // 4) = 2 held out
    for bad in (1, 7, 2.0, True):
        for fn in (holdout_split, validation_task):
            with pytest.raises(LearnlawError, match=r"n_holdout must be an int in \[2, K − 2\]"):
                fn(task, bad)
    assert holdout_split(task, 6).n_desired == validation_task(task, 6).n_desired == 2
