"""The benchmark's command line runs and prints one JSON line per case (no timing is asserted)."""

import json

import torch

from learnlaw import bench


def test_quick_benchmark_lines(capsys):
    rows = bench.main(["--quick", "--repeat", "1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == rows
    online = [r for r in rows if r.get("case") == "online"]
    schedule = [r for r in rows if r.get("case") == "schedule"]
    rows = [r for r in rows if r.get("case") not in ("online", "schedule")]
    assert {r["task"] for r in schedule} == {"perceptron", "mlp"}
    for r in schedule:  # one schedule epoch: a forward and a reverse sweep, so more than a run
        assert r["epoch_s"] > 0 and r["ratio"] > 0
        assert abs(r["ratio"] - r["epoch_s"] / r["train_s"]) <= 0.1 * r["ratio"] + 0.01
    assert {(r["task"], r["rule"]) for r in online} == {
        ("perceptron", "relu"),
        ("perceptron", "quadratic"),
        ("mlp", "relu"),
    }
    for r in online:
        assert r["online_s"] > 0
        assert abs(r["ratio"] - r["online_s"] / r["train_s"]) <= 0.1 * r["ratio"] + 0.01
    cases = {(r["task"], r["kernels"], r["checkpoint_every"]) for r in rows}
    assert cases == {
        ("perceptron", "logistic", 1),
        ("perceptron", "logistic", 10),
        ("mlp", "autodiff", 1),
        ("mlp", "autodiff", 8),
        ("mlp", "autodiff_rr", 1),
        ("mlp", "autodiff_rr", 8),
        ("transformer", "autodiff", 1),
        ("transformer", "autodiff_rr", 1),
    }
    for r in rows:
        # (times are printed rounded to 0.1 ms, the ratio from the unrounded times)
        assert r["ratio"] > 0
        assert abs(r["ratio"] - r["epoch_s"] / r["train_s"]) <= 0.1 * r["ratio"] + 0.01
        # the counted floor (FlopCounterMode counts no matrix-vector product: none for the
        # perceptron); a policy epoch is more than one plain run of FLOPs
        if r["task"] == "perceptron":
            assert r["flop_ratio"] is None and r["ratio_over_flop_ratio"] is None
        else:
            assert r["flop_ratio"] > 1
            assert (
                abs(r["ratio_over_flop_ratio"] - r["ratio"] / r["flop_ratio"])
                <= 0.05 * (r["ratio_over_flop_ratio"]) + 0.01
            )
        # θ_0 … θ_T stored, or T/k checkpoints plus one segment of k
        k, steps, p = r["checkpoint_every"], r["T"], r["P"]
        if k == 1:
            assert r["trajectory_floats"] == (steps + 1) * p
        else:
            assert r["trajectory_floats"] <= 2.2 * steps**0.5 * p


def test_distributed_benchmark_lines(capsys):
    rows = bench.main(["--distributed", "--quick", "--case", "perceptron", "--case", "mlp"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == rows
    assert [r["case"] for r in rows] == ["perceptron", "mlp"]
    for r in rows:
        assert r["seconds_1"] > 0 and r["seconds_2"] > 0 and r["allreduce_ms"] > 0
        assert abs(r["scaling"] - r["seconds_2"] / r["seconds_1"]) <= 0.01 * r["scaling"] + 0.01


def test_time_call_warms_up_then_reports_median_and_minimum_of_the_timed_calls():
    import time as _time

    from learnlaw.bench import time_call

    calls = []
    delays = iter([0.05, 0.0, 0.02, 0.01])  # the warm-up is slow and not counted

    def fn():
        calls.append(1)
        _time.sleep(next(delays))
        return len(calls)

    t = time_call(fn, torch.device("cpu"), repeat=3)
    assert len(calls) == 4 and t.calls == 3 and t.result == 4
    assert 0 <= t.minimum < 0.01 <= t.median < 0.2  # the median of sleeps of (0, 0.02, 0.01) s
    calls.clear()
    t = time_call(lambda: calls.append(1), torch.device("cpu"), repeat=0)
    assert t.calls == 1 and len(calls) == 2  # at least one timed call
    calls.clear()
    slow = time_call(lambda: (calls.append(1), _time.sleep(0.02)), torch.device("cpu"), 50, 0.03)
    assert 1 <= slow.calls < 50  # the budget stops it early


def test_bench_case_times_a_run_and_an_epoch_in_turn_and_keeps_each_minimum():
    import time as _time

    from learnlaw.bench import _interleaved_minima

    order = []
    a_delays = iter([0.05, 0.03, 0.0, 0.02])  # warm-up first, then three timed rounds
    b_delays = iter([0.05, 0.02, 0.04, 0.01])

    def a():
        order.append("a")
        _time.sleep(next(a_delays))

    def b():
        order.append("b")
        _time.sleep(next(b_delays))

    best_a, best_b = _interleaved_minima([a, b], torch.device("cpu"), 3)
    assert order == ["a", "b"] * 4  # one warm-up each, then a and b alternate
    assert 0 <= best_a < 0.01 and 0.01 <= best_b < 0.02  # the least of the timed calls only
