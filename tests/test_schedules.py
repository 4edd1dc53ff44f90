"""learnlaw.policies.schedules: the classic step-size schedules (constant, linear, cosine, warm-up)."""

import math

import pytest
import torch

import learnlaw as ll
from learnlaw.policies.schedules import SCHEDULE_KINDS, classic_schedule

F64 = torch.float64


def _by_hand(kind, steps, lr, warmup, final):
    """η_t from the documented formulas, one step at a time (the cosine as (1 + cos)/2)."""
    w = round(warmup * steps)
    d = steps - w
    out = []
    for t in range(steps):
        if t < w:
            out.append(lr * (t + 1) / w)
            continue
        s = t - w
        if kind == "constant":
            shape = 1.0
        elif kind == "linear":
            shape = final + (1 - final) * (d - s) / d
        else:
            shape = final + (1 - final) * (1 + math.cos(math.pi * s / d)) / 2
        out.append(lr * shape)
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
@pytest.mark.parametrize("steps,warmup,final", [(10, 0.0, 0.0), (10, 0.2, 0.0), (37, 0.1, 0.25)])
def test_schedule_matches_the_formulas_at_every_step(kind, steps, warmup, final):
    eta = classic_schedule(kind, steps, 0.3, warmup=warmup, final=final)
    assert eta.shape == (steps,) and eta.dtype == F64
    torch.testing.assert_close(eta, _by_hand(kind, steps, 0.3, warmup, final), rtol=1e-14, atol=0)


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_schedule_at_start_warmup_end_and_last_step(kind):
    lr, steps, warmup, final = 0.5, 20, 0.25, 0.1  # W = 5 warm-up steps, D = 15 decay steps
    eta = classic_schedule(kind, steps, lr, warmup=warmup, final=final)
    assert eta[0] == pytest.approx(lr / 5, rel=1e-15)
    assert eta[4] == pytest.approx(lr, rel=1e-15)  # t = W − 1: end of the warm-up
    assert eta[5] == pytest.approx(lr, rel=1e-15)  # t = W: the decay starts at lr
    last = {
        "constant": lr,
        "linear": lr * (final + (1 - final) / 15),
        "cosine": lr * (final + (1 - final) * math.sin(math.pi / 30) ** 2),
    }[kind]
    assert eta[-1] == pytest.approx(last, rel=1e-13)


def test_linear_to_zero_is_lr_times_remaining_steps_over_T():
    steps, lr = 50, 0.2
    t = torch.arange(steps, dtype=F64)
    torch.testing.assert_close(
        classic_schedule("linear", steps, lr), lr * (steps - t) / steps, rtol=1e-15, atol=0
    )


def test_constant_equals_lr_and_final_one_is_constant():
    assert bool((classic_schedule("constant", 7, 0.123) == 0.123).all())
    for kind in SCHEDULE_KINDS:
        torch.testing.assert_close(
            classic_schedule(kind, 9, 0.4, final=1.0), torch.full((9,), 0.4, dtype=F64)
        )


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("steps", [1, 2, 3, 1000, 200_000])
def test_every_step_size_is_positive_and_the_decay_never_rises(kind, dtype, steps):
    eta = classic_schedule(kind, steps, 1e-3, warmup=0.1 if steps > 2 else 0.0, dtype=dtype)
    assert eta.dtype == dtype and bool((eta > 0).all()), float(eta.min())
    w = round((0.1 if steps > 2 else 0.0) * steps)
    assert bool((eta[w:].diff() <= 0).all()) and bool((eta[:w].diff() > 0).all())


def test_warmup_steps_round_half_to_even():
    eta = classic_schedule("constant", 10, 1.0, warmup=0.25)  # round(2.5) = 2
    torch.testing.assert_close(eta[:3], torch.tensor([0.5, 1.0, 1.0], dtype=F64))
    eta = classic_schedule("constant", 10, 1.0, warmup=0.35)  # round(3.5) = 4
    torch.testing.assert_close(eta[:5], torch.tensor([0.25, 0.5, 0.75, 1.0, 1.0], dtype=F64))


def test_schedule_device_and_export():
    assert ll.policies.classic_schedule is classic_schedule
    eta = classic_schedule("cosine", 5, 0.1, device="meta", dtype=torch.float32)
    assert eta.device.type == "meta" and eta.shape == (5,) and eta.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kind="step"), r"unknown kind 'step'; expected one of \('constant', 'linear', 'cos"),
        (dict(warmup=-0.1), r"warmup must be a number in \[0, 1\)"),
        (dict(warmup=1.0), r"warmup must be a number in \[0, 1\)"),
        (dict(warmup=0.9, steps=3), "round\\(warmup·T\\) = 3 warm-up steps, leaving none"),
        (dict(steps=0), "steps must be an int T ≥ 1"),
        (dict(steps=2.0), "steps must be an int T ≥ 1"),
        (dict(lr=0.0), "lr must be a positive finite number"),
        (dict(final=1.5), "final must be"),
        (dict(final=-0.5), "final must be"),
        (dict(dtype=torch.int64), "dtype must be a floating-point torch.dtype"),
    ],
)
def test_schedule_refuses_bad_inputs(kwargs, match):
    args = dict(kind="linear", steps=10, lr=0.1) | kwargs
    with pytest.raises(ValueError, match=match):
        classic_schedule(**args)


def test_an_underflowing_step_size_is_refused():
    # float32's smallest subnormal is 1.4e-45: lr = 1e-40 times the last cosine factor
    # sin²(π/2000) ≈ 2.5e-6 underflows to 0
    with pytest.raises(ValueError, match="underflows to 0 in torch.float32"):
        classic_schedule("cosine", 1000, 1e-40, dtype=torch.float32)
