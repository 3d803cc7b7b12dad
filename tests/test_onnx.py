"""ONNX export: onnxruntime, an independent runtime, on the exported graph gives what nnaccel gives:
``predict_proba`` for every activation and output, and ``nnaccel predict`` on raw rows for CLI
models with their preprocessing."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from support import cli, colour_points, write_csv

import nnaccel as nna
from nnaccel.core.activations import HIDDEN_ACTIVATIONS, OUTPUTS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def cli_predictions(model, data):
    code, out, err = cli("predict", "--model", model, "--data", data, "--backend", "numpy")
    assert code == 0, err
    lines = out.strip().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_onnxruntime_equals_predict_proba(tmp_path, activation, output):
    net = nna.Network([3, 5, 4, 3], activation=[activation, "tanh"], output=output, seed=2, backend="numpy")
    # weights large enough that every activation's negative and positive branches are used
    net.set_params([(W * 3, b + 0.5) for W, b in net.get_params()])
    net.to_onnx(tmp_path / "net.onnx")
    run = session(tmp_path / "net.onnx")
    (graph_input,), (graph_output,) = run.get_inputs(), run.get_outputs()
    assert (graph_input.name, graph_input.type, graph_input.shape) == ("input", "tensor(float)", ["batch", 3])
    assert (graph_output.name, graph_output.shape) == ("output", ["batch", 3])
    for m in (1, 17):  # a dynamic batch dimension
        rows = np.random.default_rng(m).normal(0, 2, (m, 3)).astype(np.float32)
        (H,) = run.run(None, {"input": rows})
        assert H.dtype == np.float32 and H.shape == (m, 3)
        np.testing.assert_allclose(H, net.predict_proba(rows.T).T, rtol=1e-5, atol=1e-5)


def test_float64_network_exports_as_float32(tmp_path):
    net = nna.Network([2, 4, 1], activation="selu", seed=1, backend="numpy", dtype="float64")
    net.to_onnx(tmp_path / "net.onnx")
    model = onnx.load(str(tmp_path / "net.onnx"))
    onnx.checker.check_model(model)
    assert all(tensor.data_type == onnx.TensorProto.FLOAT for tensor in model.graph.initializer)
    rows = np.random.default_rng(0).normal(size=(9, 2)).astype(np.float32)
    np.testing.assert_allclose(
        session(tmp_path / "net.onnx").run(None, {"input": rows})[0],
        net.predict_proba(rows.T.astype(np.float64)).T,
        rtol=1e-5,
        atol=1e-6,
    )


def test_cli_export_of_playground_model_equals_nnaccel_predict(tmp_path):
    model = tmp_path / "spiral.npz"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--dataset",
        "spiral",
        "--features",
        "x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2",
        "--scale",
        "standard",
        "--hidden",
        "8,8",
        "--epochs",
        "20",
        "--quiet",
        "--save",
        model,
    )
    assert code == 0, err
    code, out, err = cli("export", "--model", model, "--out", tmp_path / "spiral.onnx")
    assert (code, out, err) == (0, "", "")
    rows = np.random.default_rng(5).uniform(-6, 6, (40, 2))
    data = write_csv(tmp_path / "points.csv", ["x1", "x2"], rows)
    header, table = cli_predictions(model, data)
    assert header == ["prediction", "p_0", "p_1"]
    run = session(tmp_path / "spiral.onnx")
    probabilities, label = run.run(None, {"rows": rows.astype(np.float32)})
    np.testing.assert_allclose(probabilities, np.array([row[1:] for row in table], dtype=float), rtol=1e-5, atol=1e-5)
    sure = np.abs(probabilities[:, 1] - 0.5) > 1e-4  # float32 inputs may flip a point on the boundary
    np.testing.assert_array_equal(label[sure], np.array([int(row[0]) for row in table])[sure])
    metadata = run.get_modelmeta().custom_metadata_map
    assert metadata["nnaccel.classes"] == "[0, 1]" and '"sinx2"' in metadata["nnaccel.features"]


def test_cli_export_with_text_classes_and_scaling_equals_nnaccel_predict(tmp_path):
    points, names = colour_points(150, radius=30, centre=100, noise=7)
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
        "--activation",
        "elu",
        "--epochs",
        "30",
        "--lr",
        "0.1",
        "--quiet",
        "--save",
        model,
    )
    assert code == 0, err
    assert cli("export", "--model", model, "--out", tmp_path / "m.onnx")[0] == 0
    header, table = cli_predictions(model, data)
    run = session(tmp_path / "m.onnx")
    probabilities, label = run.run(None, {"rows": points.T.astype(np.float32)})
    assert header == ["prediction"] + [f"p_{name}" for name in eval(run.get_modelmeta().custom_metadata_map["nnaccel.classes"])]
    np.testing.assert_allclose(probabilities, np.array([row[1:] for row in table], dtype=float), rtol=1e-5, atol=1e-5)
    top = np.sort(probabilities, axis=1)
    sure = top[:, -1] - top[:, -2] > 1e-4
    np.testing.assert_array_equal(label.astype(str)[sure], np.array([row[0] for row in table])[sure])


def test_cli_export_of_regression_model_gives_the_labels_units(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (2, 200))
    target = 100 + 40 * X[0] - 10 * X[1]
    data = write_csv(tmp_path / "r.csv", ["a", "b", "t"], zip(X[0], X[1], target))
    model = tmp_path / "r.npz"
    assert (
        cli("train", "--backend", "numpy", "--data", data, "--hidden", "3", "--epochs", "20", "--quiet", "--save", model)[0] == 0
    )
    assert cli("export", "--model", model, "--out", tmp_path / "r.onnx")[0] == 0
    _, table = cli_predictions(model, data)
    (prediction,) = session(tmp_path / "r.onnx").run(None, {"rows": X.T.astype(np.float32)})
    np.testing.assert_allclose(prediction[:, 0], np.array(table, dtype=float)[:, 0], rtol=1e-5, atol=1e-4)


def test_export_refuses_bad_arguments_in_one_line(tmp_path):
    net = nna.Network([2, 1], backend="numpy")
    net.save(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases = [
        ("--model", tmp_path / "missing.npz", "--out", tmp_path / "m.onnx"),
        ("--model", tmp_path / "junk.npz", "--out", tmp_path / "m.onnx"),
        ("--model", tmp_path / "plain.npz", "--out", tmp_path / "no" / "m.onnx"),
        ("--model", tmp_path / "plain.npz", "--out", tmp_path / "plain.npz"),
    ]
    for arguments in cases:
        code, out, err = cli("export", *arguments)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("nnaccel: error:"), (arguments, err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["junk.npz", "plain.npz"]  # nothing written


def test_without_onnx_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"nnaccel\[onnx\]"):
        nna.Network([2, 1], backend="numpy").to_onnx(tmp_path / "m.onnx")
    nna.Network([2, 1], backend="numpy").save(tmp_path / "plain.npz")
    code, _, err = cli("export", "--model", tmp_path / "plain.npz", "--out", tmp_path / "m.onnx")
    assert code == 2 and "nnaccel[onnx]" in err
