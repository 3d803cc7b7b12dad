"""Save and load: round trips across backends, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import nnaccel as nna
from nnaccel.io import atomic_write

NOT_A_MODEL = r"is not a(n| readable) nnaccel model file"


def _trained(backend_name, dtype="float32", layers=(2, 5, 4, 3), activation=("relu", "selu"), output="softmax"):
    net = nna.Network(list(layers), activation=list(activation), output=output, seed=3, backend=backend_name, dtype=dtype)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(layers[0], 30))
    Y = (
        np.eye(layers[-1])[rng.integers(0, layers[-1], 30)].T
        if output == "softmax"
        else (rng.random((layers[-1], 30)) < 0.5) * 1.0
    )
    net.fit(X, Y, epochs=3, lr=0.1)
    return net, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_across_backends(backend_name, tmp_path, dtype):
    net, X = _trained(backend_name, dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind
    for target in sorted({"numpy", backend_name}):
        loaded = nna.Network.load(path, backend=target)
        assert loaded.backend.name == target
        assert (loaded.layers, loaded.activations, loaded.output) == (net.layers, net.activations, net.output)
        assert loaded.dtype == np.dtype(dtype)
        for (W, b), (W_loaded, b_loaded) in zip(net.get_params(), loaded.get_params()):
            assert W_loaded.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(W_loaded, W)
            np.testing.assert_array_equal(b_loaded, b)
        np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


@pytest.mark.parametrize(
    "layers, activation, output", [((3, 1), (), "sigmoid"), ((2, 2), (), "identity"), ((2, 4, 1), ("elu",), "sigmoid")]
)
def test_round_trip_of_single_layer_and_other_outputs(tmp_path, layers, activation, output):
    net, X = _trained("numpy", "float64", layers, activation, output)
    net.save(tmp_path / "model.npz")
    loaded = nna.Network.load(tmp_path / "model.npz")
    assert loaded.layers == list(layers) and loaded.output == output and loaded.activations == list(activation)
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-13)


def test_load_uses_the_current_backend_by_default(tmp_path):
    net, _ = _trained("numpy")
    net.save(tmp_path / "model.npz")
    with nna.use_backend("numpy"):
        assert nna.Network.load(tmp_path / "model.npz").backend.name == "numpy"


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "model.npz"
    first, X = _trained("numpy")
    first.save(path)
    second = nna.Network(first.layers, activation=first.activations, output=first.output, seed=99, backend="numpy")
    second.save(str(path))  # str or PathLike
    np.testing.assert_array_equal(nna.Network.load(path).get_params()[0][0], second.get_params()[0][0])
    assert os.listdir(tmp_path) == ["model.npz"]


# --- atomic writes --------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch, failure):
    path = tmp_path / "model.npz"
    old, X = _trained("numpy")
    old.save(path)
    old_bytes = path.read_bytes()

    def half_written_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half of a zip file")
        raise failure

    monkeypatch.setattr(np, "savez", half_written_savez)
    new = nna.Network(old.layers, activation=old.activations, output=old.output, seed=7, backend="numpy")
    with pytest.raises(type(failure)):
        new.save(path)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(nna.Network.load(path).get_params()[0][0], old.get_params()[0][0])


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def failing_replace(source, destination):
        raise PermissionError("read-only destination")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "out.bin", lambda handle: handle.write(b"data"))
    assert os.listdir(tmp_path) == []


def test_atomic_write_writes_the_whole_content(tmp_path):
    atomic_write(tmp_path / "out.bin", lambda handle: handle.write(b"x" * 100_000))
    assert (tmp_path / "out.bin").read_bytes() == b"x" * 100_000
    assert os.listdir(tmp_path) == ["out.bin"]


def test_saving_into_a_missing_directory_is_a_clear_error(tmp_path):
    net = nna.Network([2, 1], backend="numpy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "missing" / "model.npz")
    assert os.listdir(tmp_path) == []


# --- bad files ------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model file .*nothing.npz.* does not exist"):
        nna.Network.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, fraction):
    net, _ = _trained("numpy")
    net.save(tmp_path / "model.npz")
    data = (tmp_path / "model.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        nna.Network.load(tmp_path / "cut.npz")


def test_corrupt_bytes_never_load_wrong_parameters(tmp_path):
    # Flip one byte at a time across the file: the load fails with a ValueError, or (where the byte
    # does not matter, e.g. a timestamp) returns exactly the saved network.
    net, X = _trained("numpy")
    net.save(tmp_path / "model.npz")
    data = (tmp_path / "model.npz").read_bytes()
    failures = 0
    for position in range(0, len(data), 23):
        corrupt = bytearray(data)
        corrupt[position] ^= 0xFF
        (tmp_path / "corrupt.npz").write_bytes(bytes(corrupt))
        try:
            loaded = nna.Network.load(tmp_path / "corrupt.npz")
        except ValueError as error:
            assert "corrupt.npz" in str(error)
            failures += 1
            continue
        for (W, b), (W_loaded, b_loaded) in zip(net.get_params(), loaded.get_params()):
            np.testing.assert_array_equal(W_loaded, W)
            np.testing.assert_array_equal(b_loaded, b)
    assert failures > 0


def test_foreign_files(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match=r"is not an nnaccel model file \(no config entry\)"):
        nna.Network.load(tmp_path / "other.npz")

    np.savez(tmp_path / "format.npz", config=np.array(json.dumps({"format": "keras"})))
    with pytest.raises(ValueError, match=r"is not an nnaccel model file"):
        nna.Network.load(tmp_path / "format.npz")

    np.save(tmp_path / "array.npy", np.arange(4.0))
    os.replace(tmp_path / "array.npy", tmp_path / "array.npz")  # a .npy under a .npz name
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        nna.Network.load(tmp_path / "array.npz")

    (tmp_path / "text.npz").write_text("layers: 2, 6, 1\n")
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        nna.Network.load(tmp_path / "text.npz")


def test_inconsistent_model_files(tmp_path):
    net = nna.Network([2, 3, 1], backend="numpy")
    config = net.config()
    params = net.get_params()

    np.savez(tmp_path / "newer.npz", config=np.array(json.dumps({**config, "version": 99})), W0=params[0][0])
    with pytest.raises(ValueError, match=r"written by a newer nnaccel \(format 99\); upgrade nnaccel"):
        nna.Network.load(tmp_path / "newer.npz")

    np.savez(tmp_path / "missing.npz", config=np.array(json.dumps(config)), W0=params[0][0], b0=params[0][1])
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        nna.Network.load(tmp_path / "missing.npz")

    arrays = {"W0": np.ones((4, 2)), "b0": params[0][1], "W1": params[1][0], "b1": params[1][1]}
    np.savez(tmp_path / "shape.npz", config=np.array(json.dumps(config)), **arrays)
    with pytest.raises(ValueError, match=r"layer 1: expected W of shape \(3, 2\)"):
        nna.Network.load(tmp_path / "shape.npz")

    np.savez(tmp_path / "pickled.npz", config=np.array([{"format": "nnaccel-model"}], dtype=object))
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        nna.Network.load(tmp_path / "pickled.npz")
