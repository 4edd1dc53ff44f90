"""scripts/gpu_check.py --small --device cpu: the record has every section and CPU agrees with itself."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("agreement", "host_syncs", "paper_shapes", "epoch_extrapolation", "launcher")


def test_gpu_check_small_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, TQDM_DISABLE="1")
    proc = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--small", "--device", "cpu", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    for key in ("torch", "device", "git_commit", "date", "seconds"):
        assert key in record
    assert record["device"] and record["small"] is True
    for name in SECTIONS:
        assert name in record, name
        assert "error" not in record[name], (name, record[name].get("traceback"))
        assert record[name]["seconds"] >= 0

    agree = record["agreement"]["max_rel_err"]
    kernels = {key.split("/")[1] for key in agree}
    assert {"autodiff", "autodiff_rr", "logistic"} <= kernels
    for item in ("train", "contributions", "online_policy[relu]", "policy_gradient[auto]/grad"):
        assert any(key.endswith(item) for key in agree), item
    assert all(math.isfinite(v) and v == 0.0 for v in agree.values())  # CPU against the CPU

    syncs = record["host_syncs"]
    assert set(syncs["per_step"]) >= {"transformer/train", "perceptron/online_policy[relu]"}
    assert all(math.isfinite(v) and v >= 0 for v in syncs["per_step"].values())
    assert syncs["mixed_device_ops"] == 0

    calls = record["paper_shapes"]["calls"]
    assert set(calls) == {"train_step", "reverse_step[autodiff]", "reverse_step[autodiff_rr]"}
    for entry in calls.values():
        assert entry["flops"] > 0 and entry["tf32_rel_err"] == 0.0  # TF32 is a no-op on CPU
        for label in ("float32", "tf32"):
            assert entry[label]["seconds"] > 0 and entry[label]["achieved_tflops"] > 0
            # on the CPU the tracker measures the same tensors that meta predicts
            assert entry[label]["peak_bytes"] == entry["meta_peak_bytes"]

    epoch = record["epoch_extrapolation"]
    assert epoch["extrapolated_epoch_seconds_4000"] > epoch["epoch_seconds"] > 0
    assert epoch["counted_epoch_flops_4000"] > epoch["epoch_flops"]

    launcher = record["launcher"]
    assert launcher["resumed"]["rc"] == 0
    assert launcher["first"]["rc"] in (0, 130)
    if launcher["first"]["interrupted"] and launcher["first"]["rc"] == 130:
        assert launcher["continued"] is True
