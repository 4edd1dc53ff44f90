"""The paper's teacher–student perceptron task (Sec. 4.2, App. D), with planted example kinds.

Inputs z ∈ R^D; a teacher T ~ N(0, √D·I) labels them y = 1[T·z > 0]. Training inputs come from
N(0, 3I), desired and test inputs from the shifted N(0.5·1, I). The student is a bias-free linear
model with a sigmoid output and the binary cross-entropy (MLE) loss, so a perceptron is a
one-token language model over |V| = 2 labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnlaw.core import checks
from learnlaw.core.checks import ArgumentValueError
from learnlaw.core.task import Task

__all__ = ["perceptron_task", "bce_loss"]


def bce_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-example BCE with logits, ``(B, 1)`` or ``(B,)`` logits vs ``(B,)`` 0/1 targets, nats."""
    return F.binary_cross_entropy_with_logits(
        logits.reshape(-1), targets.to(logits.dtype), reduction="none"
    )


def _count(value: float | int, n: int, name: str) -> int:
    """A planted-kind size given as a count (int) or a fraction of N (float in [0, 1))."""
    if isinstance(value, bool) or value < 0:
        raise ArgumentValueError(f"{name} must be a non-negative count or fraction, got {value!r}")
    if isinstance(value, float) and value < 1:
        return int(round(value * n))
    if float(value) != int(value):
        raise ArgumentValueError(
            f"{name} must be an int count or a fraction below 1, got {value!r}"
        )
    return int(value)


def perceptron_task(
    dim: int = 128,
    n_train: int = 4096,
    n_desired: int = 512,
    n_test: int = 512,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    *,
    train_std: float = math.sqrt(3.0),
    desired_mean: float = 0.5,
    noisy: float | int = 0,
    duplicates: float | int = 0,
    combinations: float | int = 0,
    easy: float | int = 0,
    easy_margin: float = 50.0,
    desired_noise: float = 0.0,
    desired_pool: int | None = None,
    kernels: str = "logistic",
) -> Task:
    """Build the paper's perceptron task, optionally with planted example kinds.

    Planted kinds (each a count, or a fraction of N if a float below 1), placed at random
    distinct positions of the training set and recorded in ``task.kinds`` as ``(N,)`` masks:

    * ``noisy``: the label is flipped (mislabelled examples; paper Property 4.1).
    * ``duplicates``: an exact copy (input and label) of another, clean example (Property 4.3).
    * ``combinations``: the input is a random linear combination of 2–4 clean inputs, labelled
      by the teacher (linearly dependent inputs; Property 4.3).
    * ``easy``: the input is pushed along the teacher direction so that the margin is about
      ``easy_margin`` and the example is learned perfectly early (Property 4.2).

    ``kinds["clean"]`` marks the rest. Note that with D < N every training set is already
    linearly dependent; the planted ones are dependent on purpose and by construction.

    One generator draws, in order, the teacher, the training inputs, the desired inputs and the
    test inputs, so the test set of a task with K desired examples *is* desired examples
    K … K + n_test − 1 of a task with a larger K. Never pair the test set of one task with the
    desired set of another; to compare several K on one test set, give every task the same
    ``desired_pool`` ≥ max K: the desired sets are then the first K of one pool of draws
    (nested), and the teacher, training set, test set and θ₀ are identical for every K.

    Args:
        dim: D, the input dimension (= P, the number of parameters).
        n_train, n_desired, n_test: N, K and the test-set size.
        seed: seeds the data, the teacher and θ₀ (one ``torch.Generator``).
        dtype, device: of every tensor of the task.
        train_std: std of the training inputs (paper: √3, i.e. covariance 3I).
        desired_mean: mean of every coordinate of the desired/test inputs (paper: 0.5).
        desired_noise: probability of flipping a desired-set label (test labels stay clean).
        desired_pool: draw this many desired inputs (and label flips) and keep the first K;
            ``None`` means K. Costs nothing but the extra draws.
        kernels: ``"logistic"`` (closed-form fast path) or ``"autodiff"`` (torch.func).

    Returns:
        A :class:`~learnlaw.Task` with ``vocab_size = 2``.
    """
    checks.check_int(dim, "dim", minimum=1)
    checks.check_int(n_train, "n_train", minimum=1)
    checks.check_int(n_desired, "n_desired", minimum=1)
    checks.check_int(n_test, "n_test", minimum=1)
    checks.check_int(seed, "seed")
    checks.check_number(train_std, "train_std", minimum=0.0, strict=True)
    checks.check_number(desired_mean, "desired_mean")
    for name, v in (
        ("noisy", noisy),
        ("duplicates", duplicates),
        ("combinations", combinations),
        ("easy", easy),
    ):
        checks.check_number(v, name, minimum=0.0, expected="a non-negative count or fraction")
    checks.check_number(easy_margin, "easy_margin", minimum=0.0, strict=True)
    checks.check_number(desired_noise, "desired_noise", minimum=0.0)
    checks.check_int(desired_pool, "desired_pool", minimum=1, allow_none=True)
    for name, v in (
        ("dim", dim),
        ("n_train", n_train),
        ("n_desired", n_desired),
        ("n_test", n_test),
    ):
        if not (isinstance(v, int) and v >= 1):
            raise ArgumentValueError(f"{name} must be a positive int, got {v!r}")
    pool = n_desired if desired_pool is None else desired_pool
    if not (isinstance(pool, int) and pool >= n_desired):
        raise ArgumentValueError(
            f"desired_pool must be an int ≥ n_desired = {n_desired}, got {desired_pool!r}"
        )
    if not 0 <= desired_noise <= 1:
        raise ArgumentValueError(f"desired_noise is a probability in [0, 1], got {desired_noise!r}")
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    teacher = torch.randn(dim, generator=g, dtype=f64) * dim**0.25  # N(0, √D I)
    z_trn = torch.randn(n_train, dim, generator=g, dtype=f64) * train_std
    z_dsr = torch.randn(pool, dim, generator=g, dtype=f64)[:n_desired] + desired_mean
    z_tst = torch.randn(n_test, dim, generator=g, dtype=f64) + desired_mean

    counts = {
        k: _count(v, n_train, k)
        for k, v in (
            ("noisy", noisy),
            ("duplicates", duplicates),
            ("combinations", combinations),
            ("easy", easy),
        )
    }
    total = sum(counts.values())
    if total >= n_train:
        raise ArgumentValueError(f"planted kinds {counts} need {total} examples but N = {n_train}")
    order = torch.randperm(n_train, generator=g)
    kinds: dict[str, Tensor] = {}
    pos = 0
    for name, c in counts.items():
        mask = torch.zeros(n_train, dtype=torch.bool)
        mask[order[pos : pos + c]] = True
        kinds[name] = mask
        pos += c
    clean_idx = order[pos:]
    kinds["clean"] = torch.zeros(n_train, dtype=torch.bool)
    kinds["clean"][clean_idx] = True

    unit = teacher / teacher.norm()
    for i in kinds["combinations"].nonzero()[:, 0].tolist():
        m = int(torch.randint(2, 5, (1,), generator=g))
        src = clean_idx[torch.randint(len(clean_idx), (m,), generator=g)]
        alpha = torch.randn(m, generator=g, dtype=f64)
        z_trn[i] = alpha @ z_trn[src] / alpha.norm()
    for i in kinds["easy"].nonzero()[:, 0].tolist():
        side = 1.0 if bool(torch.rand(1, generator=g) < 0.5) else -1.0
        z_trn[i] = z_trn[i] - (z_trn[i] @ unit) * unit + side * easy_margin * unit
    y_trn = (z_trn @ teacher > 0).to(f64)
    for i in kinds["duplicates"].nonzero()[:, 0].tolist():
        j = clean_idx[int(torch.randint(len(clean_idx), (1,), generator=g))]
        z_trn[i], y_trn[i] = z_trn[j], y_trn[j]
    y_trn[kinds["noisy"]] = 1 - y_trn[kinds["noisy"]]
    y_dsr = (z_dsr @ teacher > 0).to(f64)
    flip = torch.rand(pool, generator=g, dtype=f64)[:n_desired] < desired_noise
    y_dsr[flip] = 1 - y_dsr[flip]
    y_tst = (z_tst @ teacher > 0).to(f64)

    # θ₀ as nn.Linear's default init, U(−1/√D, 1/√D), drawn from the same generator.
    bound = 1 / math.sqrt(dim)
    w0 = (torch.rand(1, dim, generator=g, dtype=f64) * 2 - 1) * bound
    model = nn.Linear(dim, 1, bias=False).to(device=device, dtype=dtype)

    def put(x: Tensor) -> Tensor:
        return x.to(device=device, dtype=dtype)

    return Task(
        model=model,
        params0={"weight": put(w0)},
        train=(put(z_trn), put(y_trn)),
        desired=(put(z_dsr), put(y_dsr)),
        test=(put(z_tst), put(y_tst)),
        loss_fn=bce_loss,
        vocab_size=2,
        name="perceptron",
        kinds={k: v.to(device) for k, v in kinds.items()},
        kernels=kernels,
        info=dict(
            dim=dim,
            n_train=n_train,
            n_desired=n_desired,
            n_test=n_test,
            seed=seed,
            desired_pool=pool,
            train_std=train_std,
            desired_mean=desired_mean,
            planted=counts,
            desired_noise=desired_noise,
            teacher=put(teacher),
        ),
    )
