"""TF32 matmuls: the flags of ``matmul_precision``, exactness off the GPU, and the error on one.

The device of the last part comes from ``LEARNLAW_TEST_DEVICE`` (default ``"cpu"``); the TF32
error is measured only when it is ``"cuda"`` (a GPU check runs
``LEARNLAW_TEST_DEVICE=cuda pytest -s tests/test_precision.py``, ``-s`` to see the measured
errors). The bounds, for a small Transformer task (P = 16,160, T = 10, η = 0.5, float32):

* J: relative error |J_tf32 − J| / |J| < ``J_BOUND`` = 1e-2;
* ∂J/∂γ: max-abs-relative error max|g_tf32 − g| / max|g| < ``GRAD_BOUND`` = 1e-2.

They were set from an emulation on the CPU (``test_emulated_tf32_error_is_within_the_bounds``:
every float32 input of ``mm``/``bmm``/``addmm``/``baddbmm`` rounded to TF32's 10-bit mantissa):
J 1.4e-4 and the gradient 2.4e-3 with truncation, J 3.9e-6 and the gradient 6.6e-4 with
round-to-nearest — 4× or more below the bounds. The error grows where training is unstable: at
T = 40 and the same η (the loss rises again after t ≈ 20) the emulated gradient error is 0.15–0.2
while J's stays below 1e-4; at T = 40, η = 0.2 (a monotone loss curve) it is 1.9e-3.
"""

import os

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

import learnlaw as ll
from learnlaw.core.kernels import resolve_kernels
from learnlaw.core.precision import matmul_precision

DEVICE = os.environ.get("LEARNLAW_TEST_DEVICE", "cpu")
J_BOUND = 1e-2
GRAD_BOUND = 1e-2
STEPS, LR = 10, 0.5
TINY = dict(n_train=16, n_desired=8, n_test=8, max_len=16, vocab_size=300, d_model=16)
TINY.update(n_heads=2, n_layers=2, seed=0)


def flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.fixture(autouse=True)
def _restore_flags():
    before = flags()
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One CPU thread: much steadier on a machine shared with other jobs (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_transformer():
    return ll.transformer_task(**TINY, device=DEVICE)


@pytest.mark.parametrize("start", [(False, True), (True, False), (True, True), (False, False)])
@pytest.mark.parametrize("tf32", [True, False])
def test_flags_are_set_inside_and_restored_after(start, tf32):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = start
    with matmul_precision(tf32):
        assert flags() == (tf32, tf32)
        with matmul_precision(not tf32):  # nested: the inner block wins, then gives back
            assert flags() == (not tf32, not tf32)
        assert flags() == (tf32, tf32)
    assert flags() == start


def test_flags_are_restored_after_an_exception():
    start = flags()
    with pytest.raises(KeyError, match="boom"):
        with matmul_precision(not start[0]):
            assert flags()[0] is (not start[0])
            raise KeyError("boom")
    assert flags() == start


def test_tf32_must_be_a_bool():
    with pytest.raises(TypeError, match="tf32 must be True .* got 1 of type int"):
        with matmul_precision(1):
            pass
    task = ll.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4)
    with pytest.raises(TypeError, match="tf32 must be"):
        ll.train(task, ll.uniform_policy(3, 8), 0.1, tf32="yes")


def test_every_run_of_a_search_sees_the_flag():
    """optimize_policy passes tf32 to its baseline run, every sweep and the final run."""
    task = ll.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4, dtype=torch.float64)
    seen = []

    def spy(logits, targets):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return task.loss_fn(logits, targets)

    spied = task.with_(loss_fn=spy, kernels="autodiff")
    seen.clear()  # the task's construction checks its loss once
    start = flags()
    ll.optimize_policy(spied, 4, 0.1, 0.01, 2, progress=False, tf32=True)
    assert seen and all(seen)
    assert flags() == start
    seen.clear()
    torch.backends.cuda.matmul.allow_tf32 = True  # tf32=False overrides the global setting
    ll.train(spied, ll.uniform_policy(4, 8, dtype=torch.float64), 0.1)
    assert seen and not any(seen)
    assert torch.backends.cuda.matmul.allow_tf32 is True


def test_fits_accept_tf32():
    task = ll.perceptron_task(dim=4, n_train=8, n_desired=4, n_test=4, dtype=torch.float64)
    a = ll.fit.fit_block_policy(task, 6, 0.1, 2, 0.01, 2, progress=False)
    b = ll.fit.fit_block_policy(task, 6, 0.1, 2, 0.01, 2, progress=False, tf32=True)
    assert torch.equal(a.policy, b.policy)
    a = ll.fit.fit_feature_policy(task, 6, 0.1, epochs=2, progress=False)
    b = ll.fit.fit_feature_policy(task, 6, 0.1, epochs=2, progress=False, tf32=True)
    assert torch.equal(a.policy, b.policy)


@pytest.mark.skipif(DEVICE == "cuda", reason="TF32 changes the results on a CUDA device")
def test_tf32_changes_nothing_off_the_gpu(tiny_transformer):
    """On the CPU (or in float64) the flags are ignored: results are bit-identical."""
    task = tiny_transformer
    policy = ll.uniform_policy(STEPS, task.n_train, device=task.device)
    a = ll.train(task, policy, LR)
    b = ll.train(task, policy, LR, tf32=True)
    assert torch.equal(a.desired_loss, b.desired_loss)
    assert torch.equal(a.test_loss, b.test_loss)
    j0, g0 = ll.policy_gradient(task, policy, LR)
    j1, g1 = ll.policy_gradient(task, policy, LR, tf32=True)
    assert j0 == j1
    assert torch.equal(g0, g1)


def relative_errors(j: float, g: Tensor, j_ref: float, g_ref: Tensor) -> tuple[float, float]:
    """|J − J_ref| / |J_ref| and max|g − g_ref| / max|g_ref|."""
    j_err = abs(j - j_ref) / abs(j_ref)
    g_err = float((g.double() - g_ref.double()).abs().max() / g_ref.double().abs().max())
    return j_err, g_err


@pytest.mark.skipif(DEVICE != "cuda", reason="TF32 is measured on a CUDA device only")
def test_tf32_error_is_within_the_bounds(tiny_transformer):
    task = tiny_transformer
    assert task.dtype == torch.float32
    policy = ll.uniform_policy(STEPS, task.n_train, device=task.device)
    j_ref, g_ref = ll.policy_gradient(task, policy, LR)
    j, g = ll.policy_gradient(task, policy, LR, tf32=True)
    j_err, g_err = relative_errors(j, g, j_ref, g_ref)
    name = torch.cuda.get_device_name(task.device)
    print(
        f"\nTF32 vs float32 on {name}, tiny Transformer (P={task.n_params}, T={STEPS}, "
        f"η={LR}, kernels {resolve_kernels(task.kernels, task.device)}): J relative error "
        f"{j_err:.3e} (bound {J_BOUND:g}), ∂J/∂γ max-abs-relative error {g_err:.3e} "
        f"(bound {GRAD_BOUND:g})"
    )
    assert j_err < J_BOUND
    assert g_err < GRAD_BOUND


aten = torch.ops.aten
_MATMULS = {aten.mm.default, aten.bmm.default, aten.addmm.default, aten.baddbmm.default}


def _to_tf32(x):
    """Truncate a float32 tensor's mantissa to TF32's 10 bits (the larger error of the two
    roundings; round-to-nearest gives less)."""
    if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32):
        return x
    bits = x.contiguous().view(torch.int32) & ~0x1FFF
    return bits.view(torch.float32)


class EmulatedTF32(TorchDispatchMode):
    """Every float32 matmul on TF32 inputs (accumulation in float32), on any device."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _MATMULS:
            self.calls += 1
            first = 1 if func in (aten.addmm.default, aten.baddbmm.default) else 0
            rounded = tuple(_to_tf32(a) for a in args[first : first + 2])
            args = args[:first] + rounded + args[first + 2 :]
        return func(*args, **(kwargs or {}))


def test_emulated_tf32_error_is_within_the_bounds():
    task = ll.transformer_task(**TINY)
    policy = ll.uniform_policy(STEPS, task.n_train)
    j_ref, g_ref = ll.policy_gradient(task, policy, LR)
    mode = EmulatedTF32()
    with mode:
        j, g = ll.policy_gradient(task, policy, LR)
    assert mode.calls > 1000  # every matmul of the sweep went through the rounding
    j_err, g_err = relative_errors(j, g, j_ref, g_ref)
    print(f"\nemulated TF32 (truncation): J {j_err:.3e}, ∂J/∂γ max-abs-relative {g_err:.3e}")
    assert 0 < j_err < J_BOUND
    assert 0 < g_err < GRAD_BOUND


SEARCH = ["--task", "perceptron", "--set", "n_train=12", "--set", "dim=4", "--set", "n_desired=6"]
SEARCH += ["--set", "n_test=6", "--steps", "6", "--lr", "0.5", "--outer-lr", "0.3"]
SEARCH += ["--epochs", "2", "--dtype", "float64", "--quiet"]


def test_search_flag_is_recorded_and_resumes(tmp_path, capsys):
    import json

    from learnlaw import search

    assert "--tf32" in search.build_parser().format_help()
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    assert search.main([*SEARCH, "--out", str(plain)]) == 0
    assert search.main([*SEARCH, "--tf32", "--out", str(fast)]) == 0
    assert json.loads((fast / "config.json").read_text())["tf32"] is True
    assert json.loads((plain / "config.json").read_text())["tf32"] is False
    assert torch.equal(torch.load(plain / "policy.pt"), torch.load(fast / "policy.pt"))
    with pytest.raises(SystemExit):  # a resume must repeat --tf32
        search.main([*SEARCH, "--out", str(fast), "--resume"])
    assert "other settings" in capsys.readouterr().err
    # a search recorded before --tf32 existed resumes without it (exact float32)
    config = json.loads((plain / "config.json").read_text())
    del config["tf32"]
    (plain / "config.json").write_text(json.dumps(config))
    assert search.main([*SEARCH, "--out", str(plain), "--resume"]) == 0


def test_bench_records_the_flag():
    from learnlaw import bench

    task = ll.perceptron_task(dim=4, n_train=16, n_desired=4, n_test=4)
    assert bench.bench_case(task, 5, 0.1, None, 1, tf32=True)["tf32"] is True
    assert bench.bench_case(task, 5, 0.1, None, 1)["tf32"] is False
    assert bench.bench_online(task, 5, 0.1, "relu", 1, tf32=True)["tf32"] is True
    with pytest.raises(SystemExit):
        bench.main(["--distributed", "--tf32"])
