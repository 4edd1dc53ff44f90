"""Checkpoints hold CPU tensors only, and load on a CPU-only machine; kept policies are on the CPU.

Without a GPU the "written on a GPU" side is shown two ways: a state holding tensors on
PyTorch's ``meta`` device (a non-CPU device that exists everywhere) goes through the public save
path and lands on disk as CPU tensors; and a file whose storages are tagged ``cuda:0`` (a CPU
file with its pickled storage location rewritten, byte for byte what a GPU-written file records)
cannot be read by a plain ``torch.load`` here but loads through :func:`load_file`.
"""

import io
import zipfile
from pathlib import Path

import pytest
import torch

import learnlaw as ll
from learnlaw.core.checkpoint import atomic_save, load_file, load_state, save_state, to_cpu

F64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return ll.perceptron_task(dim=8, n_train=40, n_desired=20, n_test=20, dtype=F64, seed=2)


def tensors(obj) -> list[torch.Tensor]:
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors(v)]
    return []


def saved_tensors(path: Path) -> list[torch.Tensor]:
    """The tensors of a file as stored: no map_location, so each keeps its saved device."""
    return tensors(torch.load(path, map_location=None, weights_only=False))


def test_search_checkpoints_and_kept_policies_are_on_the_cpu(task, tmp_path):
    res = ll.optimize_policy(
        task, 12, 0.5, 0.05, 3, keep=(0, 2, 3), checkpoint_dir=tmp_path, progress=False
    )
    files = sorted(tmp_path.glob("*.pt"))
    assert [f.name for f in files] == ["policy_0.pt", "policy_2.pt", "policy_3.pt", "state.pt"]
    for f in files:
        found = saved_tensors(f)
        assert found, f
        assert all(t.device.type == "cpu" for t in found), f
        loaded = load_file(f, "cpu")
        assert all(t.device.type == "cpu" for t in tensors(loaded))
    state = load_state(tmp_path, None, "cpu")
    assert state["epoch"] == 3 and state["params"]["policy"].device.type == "cpu"
    torch.testing.assert_close(state["params"]["policy"], res.policy, rtol=0, atol=0)
    assert sorted(res.kept) == [0, 2, 3]
    assert all(p.device.type == "cpu" for p in res.kept.values())
    # a kept policy is a copy: the search's later updates did not change it
    assert not torch.equal(res.kept[0], res.kept[3])
    torch.testing.assert_close(res.kept[3], res.policy, rtol=0, atol=0)
    assert all(isinstance(v, (int, float)) for h in res.history for v in h.values())


def test_resume_from_the_cpu_checkpoint(task, tmp_path):
    full = ll.optimize_policy(task, 12, 0.5, 0.05, 4, keep=(1, 4), progress=False)
    ll.optimize_policy(task, 12, 0.5, 0.05, 2, keep=(1,), checkpoint_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    state["config"]["epochs"] = 4  # the first two epochs of the 4-epoch search (constant ε)
    atomic_save(state, tmp_path / "state.pt")
    resumed = ll.optimize_policy(
        task, 12, 0.5, 0.05, 4, keep=(1, 4), checkpoint_dir=tmp_path, resume=True, progress=False
    )
    torch.testing.assert_close(resumed.policy, full.policy, rtol=0, atol=0)
    assert sorted(resumed.kept) == [1, 4]
    assert all(p.device.type == "cpu" for p in resumed.kept.values())
    torch.testing.assert_close(resumed.kept[1], full.kept[1], rtol=0, atol=0)


def test_device_tensors_are_saved_as_cpu_tensors(tmp_path):
    """A state on a non-CPU device (meta here; cuda on a GPU) is written as CPU tensors."""
    state = dict(
        epoch=1,
        config={"steps": 3},
        policy=torch.empty(3, 5, device="meta"),
        history=[{"J": 1.5, "curve": torch.zeros(4, device="meta")}],
        kept=[0],
        pair=(torch.ones(2, device="meta"), 7),
    )
    save_state(tmp_path, state, None)
    found = saved_tensors(tmp_path / "state.pt")
    assert len(found) == 3 and all(t.device.type == "cpu" for t in found)
    loaded = load_state(tmp_path, None, "cpu")
    assert loaded["policy"].shape == (3, 5) and loaded["policy"].device.type == "cpu"
    assert isinstance(loaded["pair"], tuple) and loaded["pair"][1] == 7
    assert loaded["history"][0]["J"] == 1.5 and loaded["world"] == 1
    # the state passed in is not modified
    assert state["policy"].device.type == "meta" and "world" not in state
    # to_cpu keeps CPU tensors as they are (no copy)
    x = torch.ones(3)
    assert to_cpu({"x": x})["x"] is x


def gpu_tagged_copy(src: Path, dst: Path) -> None:
    """A copy of ``src`` whose storages say they were saved from ``cuda:0``."""
    with zipfile.ZipFile(src) as zin:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.endswith("data.pkl"):
                    assert b"X\x03\x00\x00\x00cpu" in data
                    data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
                zout.writestr(info.filename, data)
    dst.write_bytes(buf.getvalue())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_written_file_loads_on_a_cpu_only_machine(tmp_path):
    policy = torch.rand(4, 6, dtype=F64)
    torch.save({"epoch": 2, "policy": policy}, tmp_path / "cpu.pt")
    gpu_tagged_copy(tmp_path / "cpu.pt", tmp_path / "gpu.pt")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(tmp_path / "gpu.pt", weights_only=False)  # what a naive load does here
    loaded = load_file(tmp_path / "gpu.pt", "cpu")
    assert loaded["policy"].device.type == "cpu"
    torch.testing.assert_close(loaded["policy"], policy, rtol=0, atol=0)
