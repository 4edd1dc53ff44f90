"""The public entry points on the device named by ``$LEARNLAW_TEST_DEVICE`` (default "cpu").

    LEARNLAW_TEST_DEVICE=cuda pytest -q tests/test_device_mode.py

Every computation runs in float64 on that device, and its results are compared with the same
computation on the CPU (relative tolerance 1e-9). On the CPU itself (``make test``) that
comparison would compare a result with itself, so those tests skip, saying so; the two tests
that check a property of their own (a resumed search equals an uninterrupted one, on the
device and through the launcher) run everywhere. Tiny sizes: the whole file takes seconds.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_transformer

import learnlaw as ll
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
CPU = torch.device("cpu")
RTOL, ATOL = 1e-9, 1e-12
T, LR = 12, 0.5
ROOT = Path(__file__).resolve().parent.parent


def perceptron(device, kernels="logistic"):
    task = ll.perceptron_task(dim=6, n_train=24, n_desired=8, n_test=8, dtype=F64, seed=2)
    return _to(task, device).with_(kernels=kernels)


def mlp(device, kernels="autodiff"):
    task = mlp_task(dim=4, hidden=5, classes=3, n_train=16, n_desired=8, n_test=8, dtype=F64)
    return _to(task, device).with_(kernels=kernels)


def transformer(device, kernels="autodiff"):
    task = tiny_transformer(
        n_train=4, n_desired=2, n_test=2, max_len=6, vocab_size=270, device=device
    )
    return task.with_(kernels=kernels)


def _to(task, device):
    """The task with every tensor on ``device`` (the builders' ``device=`` does the same)."""
    move = lambda pair: tuple(z.to(device) for z in pair)  # noqa: E731
    return task.with_(
        model=task.model.to(device),
        params0={k: v.to(device) for k, v in task.params0.items()},
        train=move(task.train),
        desired=move(task.desired),
        test=move(task.test),
        kinds={k: v.to(device) for k, v in task.kinds.items()},
    )


def tensors(result) -> list[torch.Tensor]:
    """The tensors of a result (a tensor, float, Run, tuple, dict or dataclass), in order."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (int, float)):
        return [torch.tensor(float(result), dtype=F64)]
    if isinstance(result, dict):
        return [t for k in sorted(result, key=str) for t in tensors(result[k])]
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in tensors(r)]
    if isinstance(result, ll.Run):
        return tensors((result.desired_loss, result.test_loss, result.final_params))
    return []


def check(device, compute, *, on_device=True, checks_itself=False):
    """Run ``compute(device)`` and compare it with ``compute(cpu)``.

    On the CPU the comparison is empty: a test whose only check it is skips (``compute`` that
    asserts a property of its own, ``checks_itself=True``, still runs).
    """
    if device.type == "cpu" and not checks_itself:
        pytest.skip(
            "on the CPU this would compare a result with itself; run it on a device with "
            "LEARNLAW_TEST_DEVICE=cuda"
        )
    got = tensors(compute(device))
    assert got, "nothing to compare"
    if on_device:
        for t in got:
            assert t.device.type in (device.type, "cpu"), t.device
        assert any(t.device.type == device.type for t in got)
    ref = got if device.type == "cpu" else tensors(compute(CPU))
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.cpu(), b.cpu(), rtol=RTOL, atol=ATOL)


def uniform(task, steps=T):
    return ll.uniform_policy(steps, task.n_train, dtype=task.dtype, device=task.device)


# -- train and the policy gradient ------------------------------------------------------------
TASKS = {"perceptron": perceptron, "mlp": mlp, "transformer": transformer}
KERNELS = [("perceptron", k) for k in ("logistic", "autodiff", "autodiff_rr")]
KERNELS += [("mlp", "autodiff"), ("mlp", "autodiff_rr"), ("transformer", "autodiff")]
KERNELS += [("transformer", "autodiff_rr")]


@pytest.mark.parametrize("name", TASKS)
def test_train(test_device, name):
    def compute(dev):
        task = TASKS[name](dev)
        return ll.train(task, uniform(task), LR, keep_params=True).trajectory

    check(test_device, compute)


PG_CASES = [(name, k, c) for name, k in KERNELS for c in (None, "auto")]
PG_CASES.remove(("transformer", "autodiff_rr", "auto"))  # the slowest; the MLP covers it


@pytest.mark.parametrize("name, kernels, checkpoint_every", PG_CASES)
def test_policy_gradient(test_device, name, kernels, checkpoint_every):
    def compute(dev):
        task = TASKS[name](dev, kernels)
        return ll.policy_gradient(task, uniform(task), LR, checkpoint_every)

    check(test_device, compute)


# -- policy search, with a checkpoint directory and a resume ------------------------------------
class Interrupt(Exception):
    pass


def test_optimize_policy_checkpoint_and_resume(test_device, tmp_path):
    def search(dev, ckdir=None, resume=False, stop_at=None):
        def callback(entry):
            if entry["epoch"] == stop_at:
                raise Interrupt

        return ll.optimize_policy(
            perceptron(dev),
            T,
            LR,
            0.05,
            3,
            keep=(1, 3),
            checkpoint_every="auto",
            checkpoint_dir=ckdir,
            resume=resume,
            progress=False,
            callback=callback,
        )

    def compute(dev):
        ckdir = tmp_path / f"search-{dev.type}"
        with pytest.raises(Interrupt):
            search(dev, ckdir, stop_at=1)
        resumed = search(dev, ckdir, resume=True)
        whole = search(dev)
        for a, b in zip(
            tensors((resumed.policy, resumed.kept)), tensors((whole.policy, whole.kept))
        ):
            torch.testing.assert_close(a.cpu(), b.cpu(), rtol=RTOL, atol=ATOL)
        assert resumed.column("J") == pytest.approx(whole.column("J"), rel=RTOL)
        return resumed.policy, resumed.kept, resumed.column("J"), resumed.final

    check(test_device, compute, checks_itself=True)


# -- online policies, contributions, parametric policies ---------------------------------------
ONLINE = [("perceptron", "relu", {}), ("perceptron", "power", {"power": 2.0})]
ONLINE += [("perceptron", "quadratic", {}), ("mlp", "relu", {}), ("mlp", "quadratic", {})]


@pytest.mark.parametrize("name, rule, params", ONLINE)
def test_online_policy(test_device, name, rule, params):
    def compute(dev):
        res = ll.online_policy(TASKS[name](dev), T, LR, rule, keep_contributions=True, **params)
        return res.policy, res.contributions, res.run

    check(test_device, compute)


@pytest.mark.parametrize("name", ["perceptron", "mlp"])
def test_contributions(test_device, name):
    def compute(dev):
        task = TASKS[name](dev)
        run = ll.train(task, uniform(task), LR)
        return ll.contributions(task), ll.contributions(task, run.final_params, "test")

    check(test_device, compute)


def test_fit_block_policy(test_device):
    def compute(dev):
        res = ll.fit.fit_block_policy(perceptron(dev), T, LR, 3, 0.05, 3, progress=False)
        return res.policy, res.phi, res.run

    check(test_device, compute)


def test_fit_feature_policy(test_device):
    def compute(dev):
        res = ll.fit.fit_feature_policy(mlp(dev), T, LR, blocks=2, epochs=3, progress=False)
        return res.policy, res.phi, res.features, res.run

    check(test_device, compute)


# -- the launcher ---------------------------------------------------------------------------------
def launch(out: Path, device: str, *extra: str) -> None:
    cmd = [sys.executable, "-m", "learnlaw.search", "--task", "perceptron"]
    cmd += ["--set", "dim=6", "--set", "n_train=24", "--set", "n_desired=8", "--set", "n_test=8"]
    cmd += ["--steps", str(T), "--epochs", "2", "--lr", str(LR), "--outer-lr", "0.05"]
    cmd += ["--dtype", "float64", "--device", device, "--out", str(out), "--quiet", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_search_launcher_with_device_and_resume(test_device, tmp_path):
    if test_device.type not in ("cpu", "cuda"):
        pytest.skip(f"python -m learnlaw.search takes --device cpu or cuda, not {test_device}")

    def compute(dev):
        out = tmp_path / f"run-{dev.type}"
        launch(out, str(dev))
        first = torch.load(out / "policy.pt")
        launch(out, str(dev), "--resume")  # the saved search is complete: the same policy
        again = torch.load(out / "policy.pt")
        torch.testing.assert_close(again, first, rtol=0, atol=0)
        history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        assert [h["epoch"] for h in history] == [0, 1, 2]
        return first, [h["J"] for h in history]

    check(test_device, compute, on_device=False, checks_itself=True)  # policy.pt: CPU tensor
