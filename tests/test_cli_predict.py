"""``nnaccel predict`` and ``nnaccel info``: predictions match the model's own, through the saved
preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import cli, write_csv

import nnaccel as nna
from nnaccel.data.playground import expand_features


def blobs(m, classes):
    """m points around ``classes`` centres on a circle of radius 3: (points (2, m), labels (m,))."""
    rng = np.random.default_rng(0)
    labels = np.arange(m) % classes
    centres = np.stack([np.cos(2 * np.pi * labels / classes), np.sin(2 * np.pi * labels / classes)]) * 3
    return centres + rng.normal(0, 0.7, (2, m)), labels


@pytest.fixture
def spiral_model(tmp_path):
    path = tmp_path / "spiral.npz"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--dataset",
        "spiral",
        "--features",
        "x1,x2,x1sq,sinx1",
        "--hidden",
        "6",
        "--epochs",
        "3",
        "--quiet",
        "--save",
        path,
    )
    assert code == 0, err
    return path


def read_predictions(text: str) -> tuple[list[str], np.ndarray]:
    lines = text.strip().splitlines()
    return lines[0].split(","), np.array([[float(value) for value in line.split(",")] for line in lines[1:]])


def test_playground_model_expands_features_itself(tmp_path, spiral_model):
    points = np.random.default_rng(0).uniform(-6, 6, (2, 25))
    data = write_csv(tmp_path / "points.csv", ["x1", "x2"], zip(*points))
    code, out, err = cli("predict", "--model", spiral_model, "--data", data, "--backend", "numpy")
    assert code == 0, err
    header, table = read_predictions(out)
    assert header == ["prediction", "p_0", "p_1"]
    network = nna.Network.load(spiral_model, backend="numpy")
    H = network.forward(expand_features(points, ["x1", "x2", "x1sq", "sinx1"]))[0]
    np.testing.assert_allclose(table[:, 2], H, rtol=1e-5)
    np.testing.assert_array_equal(table[:, 0], (H >= 0.5).astype(float))


def test_out_file_csv_and_npy_written_atomically(tmp_path, spiral_model):
    points = np.random.default_rng(1).uniform(-6, 6, (2, 10))
    data = tmp_path / "points.npy"
    np.save(data, points.T)
    code, out, err = cli("predict", "--model", spiral_model, "--data", data, "--out", tmp_path / "p.csv", "--backend", "numpy")
    assert code == 0 and out == "", err
    _, table = read_predictions((tmp_path / "p.csv").read_text())
    code, _, err = cli("predict", "--model", spiral_model, "--data", data, "--out", tmp_path / "p.npy", "--backend", "numpy")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), table[:, 0])
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "p.csv",
        "p.npy",
        "points.npy",
        "spiral.npz",
    ]  # no temporary files


def test_csv_model_selects_columns_by_name_and_returns_text_classes(tmp_path):
    points, labels = blobs(150, classes=3)
    names = np.array(["red", "green", "blue"])[labels]
    data = write_csv(tmp_path / "train.csv", ["u", "v", "colour"], zip(points[0], points[1], names))
    model = tmp_path / "m.npz"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--data",
        data,
        "--hidden",
        "6",
        "--epochs",
        "40",
        "--lr",
        "0.1",
        "--quiet",
        "--save",
        model,
    )
    assert code == 0, err
    # the same rows with columns reordered and the label still present: matched by name
    reordered = write_csv(tmp_path / "new.csv", ["colour", "v", "u"], zip(names, points[1], points[0]))
    code, out, err = cli("predict", "--model", model, "--data", reordered, "--backend", "numpy")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "prediction,p_blue,p_green,p_red"
    predicted = np.array([line.split(",")[0] for line in lines[1:]])
    assert np.mean(predicted == names) > 0.9


def test_regression_predictions_are_in_the_labels_units(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (2, 200))
    target = 100 + 40 * X[0] - 10 * X[1]
    data = write_csv(tmp_path / "r.csv", ["a", "b", "t"], zip(X[0], X[1], target))
    model = tmp_path / "r.npz"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--data",
        data,
        "--hidden",
        "0",
        "--epochs",
        "60",
        "--lr",
        "0.05",
        "--quiet",
        "--save",
        model,
    )
    assert code == 0, err
    code, out, err = cli("predict", "--model", model, "--data", data, "--backend", "numpy")
    assert code == 0, err
    header, table = read_predictions(out)
    assert header == ["prediction"]
    np.testing.assert_allclose(table[:, 0], target, atol=1.0)  # a linear target, learnt by a linear model


def test_model_saved_from_python_takes_inputs_as_they_are(tmp_path):
    network = nna.Network([3, 4, 2], output="identity", seed=1, backend="numpy")
    network.save(tmp_path / "plain.npz")
    X = np.random.default_rng(4).normal(size=(3, 7))
    np.save(tmp_path / "x.npy", X.T)
    code, out, err = cli("predict", "--model", tmp_path / "plain.npz", "--data", tmp_path / "x.npy", "--backend", "numpy")
    assert code == 0, err
    header, table = read_predictions(out)
    assert header == ["prediction_1", "prediction_2"]
    np.testing.assert_allclose(table, network.forward(X).T, rtol=1e-6, atol=1e-7)


def test_info_lists_backends_devices_and_threads():
    code, out, _ = cli("info")
    assert code == 0
    for word in ("numpy", "numba", "cupy", "devices:", "threads:", "BLAS"):
        assert word in out
    code, out, _ = cli("info", "--json")
    report = json.loads(out)
    assert report["backends"]["numpy"] == "available"
    assert report["devices"][0]["kind"] == "cpu"
    assert set(report["backends"]) == {"numpy", "numba", "cupy"}
