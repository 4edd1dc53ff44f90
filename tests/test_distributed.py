"""Data parallelism: 2 gloo processes (spawned here, on CPU) give the single-process results.

One spawn computes everything (process start-up dominates): for a small perceptron, the MLP and
a tiny Transformer, with N not divisible by 2 (uneven shards), the policy gradient J and ∂J/∂γ,
training and ∂J/∂η_t (schedule_gradient) under a (T,) step-size schedule,
3 epochs of optimize_policy, the same search interrupted after one epoch and resumed, and the
contributions; plus the divergence error and the world-size checks on resume. Every number must
equal the single-process one to a relative error of 1e-10 (float64).
"""

from pathlib import Path

import pytest
import torch
from helpers import random_policy, tiny_transformer

import learnlaw as ll
from learnlaw.core.checkpoint import CheckpointError
from learnlaw.core.distributed import project_simplex_sharded, shard_of, spawn
from learnlaw.tasks.toy import mlp_task

F64 = torch.float64
RTOL = 1e-10
CASES = {  # name: (steps, lr, outer_lr)
    "perceptron": (12, 0.5, 0.5),
    "mlp": (8, 0.3, 0.5),
    "transformer": (5, 0.5, 0.5),
}


def make_task(name):
    if name == "perceptron":
        return ll.perceptron_task(dim=6, n_train=21, n_desired=9, n_test=7, dtype=F64, seed=3)
    if name == "mlp":
        return mlp_task(
            dim=4, hidden=6, classes=3, n_train=15, n_desired=6, n_test=5, dtype=F64, chunk_size=4
        )
    return tiny_transformer(n_train=7, chunk_size=3)


class Interrupt(Exception):
    pass


def compute(name, ckdir: Path) -> dict:
    """Everything compared, for one case; the same code in one process and in two."""
    task = make_task(name)
    steps, lr, outer = CASES[name]
    J, grad = ll.policy_gradient(task, random_policy(steps, task.n_train), lr, checkpoint_every=3)
    sched = lr * (0.5 + torch.rand(steps, generator=torch.Generator().manual_seed(2), dtype=F64))
    sJ, sgrad = ll.schedule_gradient(task, random_policy(steps, task.n_train), sched, 3)
    srun = ll.train(task, random_policy(steps, task.n_train), sched)
    search = ll.optimize_policy(task, steps, lr, outer, 3, keep=(1, 3), progress=False)

    def stop_after_first(entry):
        if entry["epoch"] == 0:
            raise Interrupt

    args = dict(steps=steps, lr=lr, outer_lr=outer, epochs=3, checkpoint_dir=ckdir, progress=False)
    try:
        ll.optimize_policy(task, **args, callback=stop_after_first)
    except Interrupt:
        pass
    resumed = ll.optimize_policy(task, **args, resume=True)
    return dict(
        J=J,
        grad=grad,
        policy=search.policy,
        search_J=torch.tensor(search.column("J")),
        zero_fraction=search.history[-1]["zero_fraction"],
        kept1=search.kept[1],
        resumed_policy=resumed.policy,
        resumed_J=torch.tensor(resumed.column("J")),
        contributions=ll.contributions(task),
        sched_J=sJ,
        sched_grad=sgrad,
        sched_desired=srun.desired_loss,
        sched_test=srun.test_loss,
    )


def worker(out: Path, single_ckdir: Path) -> None:
    r = torch.distributed.get_rank()
    results = {name: compute(name, out / f"ck_{name}") for name in CASES}
    task = make_task("perceptron")
    results["shard"] = shard_of(task)
    try:  # divergence while finite, reported on every rank
        ll.train(task, ll.uniform_policy(10, task.n_train, dtype=F64), 1e307)
    except ll.training.DivergenceError as err:
        results["divergence"] = str(err)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(5, 21, generator=g, dtype=F64) * 3
    results["projection"] = project_simplex_sharded(v[:, shard_of(task).slice()], shard_of(task))
    steps, lr, outer = CASES["perceptron"]
    try:  # a checkpoint written by one process
        ll.optimize_policy(
            task, steps, lr, outer, 3, checkpoint_dir=single_ckdir, resume=True, progress=False
        )
    except CheckpointError as err:
        results["mismatch"] = str(err)
    torch.save(results, out / f"rank{r}.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    single_ckdir = out / "single"
    steps, lr, outer = CASES["perceptron"]
    ll.optimize_policy(
        make_task("perceptron"), steps, lr, outer, 1, checkpoint_dir=single_ckdir, progress=False
    )
    spawn(worker, 2, out, single_ckdir)
    single = {name: compute(name, out / f"single_{name}") for name in CASES}
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return single, ranks, out


def close(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.shape == b.shape
    scale = b.abs().max().clamp_min(1e-300)
    err = float((a - b).abs().max() / scale)
    assert err <= RTOL, err


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one(runs, name):
    single, ranks, _ = runs
    ref = single[name]
    for res in ranks:
        got = res[name]
        close(got["J"], ref["J"])
        close(got["grad"], ref["grad"])
        close(got["policy"], ref["policy"])
        close(got["search_J"], ref["search_J"])
        close(got["kept1"], ref["kept1"])
        close(got["resumed_policy"], ref["policy"])
        close(got["resumed_J"], ref["search_J"])
        close(got["contributions"], ref["contributions"])
        for key in ("sched_J", "sched_grad", "sched_desired", "sched_test"):  # a (T,) schedule
            close(got[key], ref[key])
        assert got["zero_fraction"] == ref["zero_fraction"]
    # the search moved the policy, and the projection set weights to zero (the threshold
    # iteration across shards was exercised)
    assert not torch.allclose(ref["policy"], ll.uniform_policy(*ref["policy"].shape, dtype=F64))
    assert ref["zero_fraction"] > 0


def test_shards_are_contiguous_and_uneven(runs):
    _, ranks, _ = runs
    assert [r["shard"].bounds["train"] for r in ranks] == [(0, 10), (10, 21)]
    assert [r["shard"].bounds["test"] for r in ranks] == [(0, 3), (3, 7)]


def test_sharded_projection_is_exact(runs):
    _, ranks, _ = runs
    g = torch.Generator().manual_seed(1)
    v = torch.randn(5, 21, generator=g, dtype=F64) * 3
    full = torch.cat([r["projection"] for r in ranks], dim=1)
    close(full, ll.project_simplex(v))


def test_divergence_is_reported_on_every_rank(runs):
    _, ranks, _ = runs
    for r in ranks:
        assert "step 1 " in r["divergence"] and "lr=1e+307" in r["divergence"]


def test_world_size_mismatch_is_a_clear_error(runs):
    _, ranks, out = runs
    for r in ranks:
        assert "written by 1 process(es)" in r["mismatch"] and "runs on 2" in r["mismatch"]
    steps, lr, outer = CASES["perceptron"]
    with pytest.raises(CheckpointError, match=r"written by 2 process\(es\).*--nproc-per-node 2"):
        ll.optimize_policy(
            make_task("perceptron"),
            steps,
            lr,
            outer,
            3,
            checkpoint_dir=out / "ck_perceptron",
            resume=True,
            progress=False,
        )
