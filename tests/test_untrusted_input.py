"""Untrusted model files and API values: refused cheaply with a clear ValueError, before any work."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from support import cli

import nnaccel as nna


def _model_file(path, config, arrays):
    np.savez(path, config=np.array(json.dumps(config)), **arrays)
    return path


def test_a_crafted_config_with_huge_layers_allocates_nothing(tmp_path):
    net = nna.Network([2, 3, 1], backend="numpy")
    config = {**net.config(), "layers": [100000, 100000, 1]}
    arrays = {f"{kind}{index}": array for index, (W, b) in enumerate(net.get_params()) for kind, array in (("W", W), ("b", b))}
    path = _model_file(tmp_path / "huge.npz", config, arrays)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"huge.npz.*layer 1: expected W of shape \(100000, 100000\)"):
            nna.Network.load(path, backend="numpy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, peak


@pytest.mark.parametrize("damage", ["list", "no-activations", "no-dtype", "no-output", "layers-text", "activation-number"])
def test_crafted_model_configs_are_one_line_errors(tmp_path, damage):
    net = nna.Network([2, 3, 1], backend="numpy")
    config = net.config()
    arrays = {f"{kind}{index}": array for index, (W, b) in enumerate(net.get_params()) for kind, array in (("W", W), ("b", b))}
    if damage == "list":
        config = [config]
    elif damage.startswith("no-"):
        del config[{"no-activations": "activations", "no-dtype": "dtype", "no-output": "output"}[damage]]
    elif damage == "layers-text":
        config["layers"] = "2,3,1"
    else:
        config["activations"] = [7]
    path = _model_file(tmp_path / "crafted.npz", config, arrays)
    with pytest.raises(ValueError, match="crafted.npz"):
        nna.Network.load(path, backend="numpy")
    code, _, err = cli("predict", "--model", path, "--data", path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_loading_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        nna.Network.load(tmp_path)


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": "0"}, "seed must be a whole number"),
        ({"layers": None}, "layers must list"),
        ({"activation": None}, "activation must be a name"),
    ],
)
def test_network_arguments_are_clear_value_errors(arguments, words):
    with pytest.raises(ValueError, match=words):
        nna.Network(**{"layers": [2, 3, 1], **arguments}, backend="numpy")


def _xor():
    X = np.random.default_rng(0).uniform(-1, 1, (2, 40))
    return X, (X[0] * X[1] > 0).astype(float).reshape(1, -1)


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"seed": None, "batch_size": 10}, "seed must be"),
        ({"l1": np.inf}, "l1 must be a finite"),
        ({"l2": np.inf}, "l2 must be a finite"),
    ],
)
def test_fit_arguments_are_clear_value_errors(arguments, words):
    X, Y = _xor()
    with pytest.raises(ValueError, match=words):
        nna.Network([2, 3, 1], backend="numpy").fit(X, Y, epochs=1, lr=0.1, **arguments)


def test_values_float32_cannot_hold_are_refused():
    X, Y = _xor()
    net = nna.Network([2, 3, 1], backend="numpy", dtype="float32")
    with pytest.raises(ValueError, match=r"X holds [0-9.]+e\+299 at index \(0, 0\).*float32"):
        net.fit(X * 1e300, Y, epochs=1, lr=0.1)
    with pytest.raises(ValueError, match=r"X holds .*float32"):
        net.predict(X * 1e300)
    wide = nna.Network([2, 3, 1], backend="numpy", dtype="float64")
    assert np.isfinite(wide.predict_proba(X * 1e300)).all()  # float64 holds it


def test_a_csv_column_float32_cannot_hold_is_refused_by_name(tmp_path):
    data = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    data.write_text("small,huge,y\n" + "".join(f"{a},{b * 1e300},{int(a > 0)}\n" for a, b in rng.normal(size=(30, 2))))
    code, _, err = cli("train", "--backend", "numpy", "--epochs", "1", "--quiet", "--data", data)
    assert code == 2 and "column 'huge'" in err and len(err.strip().splitlines()) == 1, err


def test_loading_from_an_unsearchable_folder_says_permission(tmp_path, monkeypatch):
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(folder) else real_access(path, mode))
    monkeypatch.setattr(os.path, "isfile", lambda path: False)  # what stat gives inside a folder without x
    with pytest.raises(PermissionError, match="no permission to search"):
        nna.Network.load(folder / "model.npz")
