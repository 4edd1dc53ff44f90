"""Unrolled autograd through the training loop against the adjoint sweep, and its memory budget."""

import json

import pytest
import torch

import learnlaw as ll
from learnlaw import bench
from learnlaw.analysis.unrolled import MemoryBudgetError, unrolled_policy_gradient
from learnlaw.tasks.lm_task import transformer_task
from learnlaw.tasks.perceptron import perceptron_task
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64


CASES = {
    "perceptron": (
        lambda: perceptron_task(dim=8, n_train=32, n_desired=8, n_test=8, dtype=F64),
        12,
        0.1,
    ),
    "mlp": (lambda: mlp_task(n_train=32, n_desired=8, n_test=8, dtype=F64), 9, 0.1),
    "transformer": (lambda: transformer_task(**bench.TRANSFORMER_QUICK, dtype=F64), 4, 0.5),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unrolled_autograd_matches_the_adjoint(case):
    build, steps, lr = CASES[case]
    task = build()
    gen = torch.Generator().manual_seed(len(case))
    policy = torch.softmax(torch.randn(steps, task.n_train, generator=gen, dtype=F64), 1)
    j_adj, g_adj = ll.policy_gradient(task, policy, lr, checkpoint_every="auto")
    j_unr, g_unr = unrolled_policy_gradient(task, policy, lr)
    assert g_unr.shape == (steps, task.n_train)
    assert abs(j_adj - j_unr) <= 1e-12 * abs(j_unr)
    assert float((g_adj - g_unr).abs().max() / g_unr.abs().max()) <= 1e-8


def test_memory_budget_stops_the_unrolled_baseline():
    task = mlp_task(n_train=512, dtype=F64)
    policy = ll.uniform_policy(400, task.n_train, dtype=F64)
    with pytest.raises(MemoryBudgetError, match=r"stopped after \d+ of T = 400 steps") as err:
        unrolled_policy_gradient(task, policy, 0.1, memory_budget_gb=0.002)
    assert 1 <= err.value.steps_done < 400
    assert "--memory-budget" in str(err.value) and "checkpoint_every='auto'" in str(err.value)
    with pytest.raises(ValueError, match="memory_budget_gb must be positive"):
        unrolled_policy_gradient(task, policy, 0.1, memory_budget_gb=0)


def test_over_budget_is_a_line_not_a_crash(capsys, tmp_path):
    rows = bench.main(
        [
            "--measure-one",
            "mlp",
            "autograd",
            "400",
            str(tmp_path / "g.pt"),
            "--quick",
            "--memory-budget",
            "0.001",
        ]
    )
    (row,) = rows
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == row
    assert row["status"] == "over_budget" and 1 <= row["T_reached"] < 400
    assert row["seconds"] is None and not (tmp_path / "g.pt").exists()


def test_vs_autograd_lines(capsys, monkeypatch, tmp_path):
    # one T of the quick perceptron, two fresh processes
    monkeypatch.setattr(bench, "_vs_cases", lambda quick: {"perceptron": ({}, (20,), 0.1)})
    record = tmp_path / "rec.json"
    rows = bench.main(["--vs-autograd", "--quick", "--threads", "1", "--record", str(record)])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows
    assert [(r["case"], r["method"], r["T"]) for r in rows] == [
        ("perceptron", "adjoint", 20),
        ("perceptron", "autograd", 20),
    ]
    for r in rows:
        assert r["status"] == "ok" and r["seconds"] > 0 and r["peak_bytes"] >= 0
        assert r["grad_max_rel_err"] <= 1e-4  # float32
    saved = json.loads(record.read_text())
    assert saved["rows"] == rows and "loadavg_before" in saved and saved["torch"]
