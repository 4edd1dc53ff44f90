"""The simplex projection and policy validation."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import learnlaw as ll
from learnlaw.core.policy import PolicyError


def brute_force_projection(v: np.ndarray) -> np.ndarray:
    """Solve min ||x - v||² s.t. x ≥ 0, Σx = 1 by enumerating supports (tiny N only)."""
    n = len(v)
    best, best_val = None, np.inf
    for k in range(1, n + 1):
        for support in itertools.combinations(range(n), k):
            s = list(support)
            x = np.zeros(n)
            x[s] = v[s] - (v[s].sum() - 1) / k  # projection onto the affine hull of the face
            if (x >= -1e-12).all():
                val = ((x - v) ** 2).sum()
                if val < best_val:
                    best, best_val = x, val
    return best


def test_matches_brute_force_on_small_inputs():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5, 7):
        for _ in range(20):
            v = rng.normal(size=n) * rng.choice([0.1, 1, 10])
            got = ll.project_simplex(torch.tensor(v)).numpy()
            np.testing.assert_allclose(got, brute_force_projection(v), atol=1e-12)


def test_matches_a_general_qp_solver():
    v = np.random.default_rng(1).normal(size=12)
    res = minimize(
        lambda x: ((x - v) ** 2).sum(),
        np.full(12, 1 / 12),
        method="SLSQP",
        bounds=[(0, None)] * 12,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
        tol=1e-14,
    )
    got = ll.project_simplex(torch.tensor(v)).numpy()
    np.testing.assert_allclose(got, res.x, atol=1e-6)


def test_kkt_conditions_batched():
    torch.manual_seed(0)
    v = torch.randn(64, 300, dtype=torch.float64) * 0.3
    x = ll.project_simplex(v)
    assert x.shape == v.shape
    torch.testing.assert_close(x.sum(1), torch.ones(64, dtype=torch.float64))
    assert bool((x >= 0).all())
    # x = max(v − τ, 0): on the support v − x is the same τ; off it v ≤ τ.
    for row_v, row_x in zip(v, x):
        s = row_x > 0
        tau = (row_v - row_x)[s]
        assert float(tau.max() - tau.min()) < 1e-12
        assert bool((row_v[~s] <= tau[0] + 1e-12).all())


def test_idempotent_and_fixed_points():
    torch.manual_seed(1)
    x = ll.project_simplex(torch.randn(10, 50, dtype=torch.float64))
    torch.testing.assert_close(ll.project_simplex(x), x, rtol=0, atol=1e-15)
    u = ll.uniform_policy(4, 9, dtype=torch.float64)
    torch.testing.assert_close(ll.project_simplex(u), u, rtol=0, atol=1e-16)
    onehot = torch.eye(5, dtype=torch.float64)
    torch.testing.assert_close(ll.project_simplex(onehot), onehot)


def test_ties_huge_and_tiny_values():
    ties = torch.tensor([[2.0, 2.0, 2.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(
        ll.project_simplex(ties), torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0.0]], dtype=torch.float64)
    )
    huge = torch.tensor([[1e30, 1e30 - 1e15, -1e30]], dtype=torch.float64)
    out = ll.project_simplex(huge)
    assert torch.isfinite(out).all() and abs(float(out.sum()) - 1) < 1e-12
    assert out[0, 0] == 1 and out[0, 2] == 0
    tiny = torch.full((3, 1000), 1e-300, dtype=torch.float64)
    torch.testing.assert_close(
        ll.project_simplex(tiny), ll.uniform_policy(3, 1000, dtype=torch.float64)
    )


def test_float32_any_leading_shape_and_the_sort_fallback():
    torch.manual_seed(2)
    v = torch.randn(2, 3, 40)
    x = ll.project_simplex(v)
    assert x.shape == v.shape and x.dtype == torch.float32
    torch.testing.assert_close(x.sum(-1), torch.ones(2, 3))
    # max_iter=0 forces the sort-based threshold: same answer.
    torch.testing.assert_close(ll.project_simplex(v, max_iter=0), x)


def test_bad_inputs():
    with pytest.raises(TypeError):
        ll.project_simplex(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="non-finite"):
        ll.project_simplex(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError):
        ll.project_simplex(torch.empty(3, 0))


def test_uniform_policy():
    p = ll.uniform_policy(3, 4, dtype=torch.float64)
    assert p.shape == (3, 4) and bool((p == 0.25).all())
    with pytest.raises(ValueError):
        ll.uniform_policy(0, 4)


@pytest.mark.parametrize(
    ("policy", "kwargs", "message"),
    [
        ([[0.5, 0.5]], {}, "torch.Tensor"),
        (torch.ones(4) / 4, {}, r"shape \(T, N\)"),
        (torch.ones(2, 3, dtype=torch.int64), {}, "floating-point"),
        (torch.full((2, 3), 1 / 3), {"n": 4}, "N = 4"),
        (torch.full((2, 3), 1 / 3), {"steps": 5}, "5 training steps"),
        (torch.tensor([[0.5, float("nan")]]), {}, "not finite"),
        (torch.tensor([[1.5, -0.5]]), {}, "negative"),
        (torch.tensor([[0.5, 0.5], [0.5, 0.43]]), {}, "row 1 sums to 0.93"),
    ],
)
def test_validation_errors_say_what_and_how(policy, kwargs, message):
    with pytest.raises(PolicyError, match=message):
        ll.policies.validate_policy(policy, **kwargs)


def test_row_sum_message_suggests_the_fix():
    with pytest.raises(PolicyError, match="learnlaw.project_simplex"):
        ll.policies.validate_policy(torch.tensor([[0.5, 0.43]]))
