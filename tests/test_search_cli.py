"""The launcher ``python -m learnlaw.search``: flags, files, resume, clean errors, torchrun."""

import json
import os
import subprocess
import sys

import pytest
import torch

import learnlaw as ll
from learnlaw import search

SMALL = [
    "--task",
    "perceptron",
    "--set",
    "n_train=24",
    "--set",
    "dim=5",
    "--set",
    "n_desired=8",
    "--set",
    "n_test=8",
    "--steps",
    "12",
    "--lr",
    "0.5",
    "--outer-lr",
    "0.3",
    "--epochs",
    "3",
    "--dtype",
    "float64",
    "--quiet",
]


def reference():
    task = ll.perceptron_task(n_train=24, dim=5, n_desired=8, n_test=8, dtype=torch.float64)
    return ll.optimize_policy(task, 12, 0.5, 0.3, 3, checkpoint_every="auto", progress=False)


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "learnlaw.search", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})),
    )


def test_help_documents_every_flag():
    text = search.build_parser().format_help()
    for flag in (
        "--task",
        "--scale",
        "--set",
        "--steps",
        "--lr",
        "--outer-lr",
        "--epochs",
        "--schedule",
        "--checkpoint-every",
        "--dtype",
        "--device",
        "--out",
        "--resume",
    ):
        assert flag in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "gpt"], "invalid choice: 'gpt'"),
        (["--outer-lr", "-0.1"], "--outer-lr must be a positive"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--lr", "nan"], "--lr must be a positive"),
        (["--epochs", "-2"], "--epochs must be 0 or more"),
        (["--set", "width=3"], "has no keyword 'width'"),
        (["--set", "n_train"], "KEY=VALUE"),
        (["--checkpoint-every", "0"], "positive int or 'auto'"),
        (["--schedule", "cosine"], "invalid choice: 'cosine'"),
    ],
)
def test_bad_values_are_clean_errors(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        search.main([*SMALL, "--out", str(tmp_path / "o"), *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_files_resume_and_errors(tmp_path, capsys):
    out = tmp_path / "run"
    assert search.main([*SMALL, "--out", str(out)]) == 0
    ref = reference()
    policy = torch.load(out / "policy.pt")
    assert policy.shape == (12, 24)
    torch.testing.assert_close(policy, ref.policy, rtol=0, atol=0)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert [r["J"] for r in rows] == pytest.approx(ref.column("J"), rel=1e-12)
    assert all(r["seconds"] >= 0 for r in rows) and all("cr_test" in r for r in rows)
    # an existing --out without --resume, and a resume with other settings
    for extra, message in (
        ([], "already exists"),
        (["--resume", "--epochs", "4"], "other settings"),
    ):
        with pytest.raises(SystemExit):
            search.main([*SMALL, "--out", str(out), *extra])
        assert message in capsys.readouterr().err
    # a truncated checkpoint: an error naming the file, no traceback
    state = out / "checkpoints" / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    assert search.main([*SMALL, "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert str(state) in err and "truncated or corrupted" in err and "Traceback" not in err


def test_interrupted_search_resumes_to_the_same_policy(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    from learnlaw.core import engine

    real = engine.save_state

    def save_then_stop(ckdir, state, shard):
        real(ckdir, state, shard)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_state", save_then_stop)
    assert search.main([*SMALL, "--out", str(out)]) == 130
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(engine, "save_state", real)
    assert search.main([*SMALL, "--out", str(out), "--resume"]) == 0
    torch.testing.assert_close(torch.load(out / "policy.pt"), reference().policy, rtol=0, atol=0)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]


def test_torchrun_two_processes_write_the_same_files(tmp_path):
    out = tmp_path / "run2"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = subprocess.run(
        [*torchrun, "--nproc-per-node", "2", "-m", "learnlaw.search", *SMALL, "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref = reference()
    policy = torch.load(out / "policy.pt")
    err = float((policy - ref.policy).abs().max() / ref.policy.abs().max())
    assert err <= 1e-10
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["J"] for r in rows] == pytest.approx(ref.column("J"), rel=1e-10)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "state.r0.e3.pt",
        "state.r1.e3.pt",
    ]
    # one process cannot resume what two wrote
    proc = cli(*SMALL, "--out", str(out), "--resume")
    assert proc.returncode == 1
    assert "written by 2 process(es)" in proc.stderr and "Traceback" not in proc.stderr
