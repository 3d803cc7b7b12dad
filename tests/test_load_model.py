"""``nnaccel.load_model``: a model file's network with its preprocessing, on raw rows, agreeing
with ``nnaccel predict`` (for CLI models) and ``Network.load`` (for plain files); damaged files and
bad rows are clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from support import cli, colour_points, write_csv

import nnaccel as nna


@pytest.fixture
def colour_model(tmp_path):
    """A CLI model of three text classes over columns u, v, standardised; and its training rows."""
    points, names = colour_points(120, radius=20, centre=50, noise=5)
    data = write_csv(tmp_path / "train.csv", ["u", "v", "colour"], zip(points[0], points[1], names))
    model = tmp_path / "m.npz"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--data",
        data,
        "--hidden",
        "5",
        "--epochs",
        "20",
        "--lr",
        "0.1",
        "--quiet",
        "--save",
        model,
    )
    assert code == 0, err
    return model, data, points.T, names


def cli_table(model, data):
    code, out, err = cli("predict", "--model", model, "--data", data, "--backend", "numpy")
    assert code == 0, err
    lines = out.strip().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def test_cli_model_equals_nnaccel_predict(colour_model):
    path, data, rows, _ = colour_model
    model = nna.load_model(path, backend="numpy")
    header, table = cli_table(path, data)
    assert header == ["prediction"] + [f"p_{name}" for name in model.classes]
    assert list(model.predict(rows)) == [row[0] for row in table]
    np.testing.assert_allclose(model.predict_proba(rows), np.array([row[1:] for row in table], dtype=float), rtol=1e-5)
    assert model.inputs == ["u", "v"] and model.task == "classification"


def test_playground_model_equals_nnaccel_predict(tmp_path):
    path = tmp_path / "spiral.npz"
    assert (
        cli(
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
            "4",
            "--epochs",
            "5",
            "--quiet",
            "--save",
            path,
        )[0]
        == 0
    )
    rows = np.random.default_rng(2).uniform(-6, 6, (30, 2))
    header, table = cli_table(path, write_csv(tmp_path / "p.csv", ["x1", "x2"], rows))
    model = nna.load_model(path, backend="numpy")
    np.testing.assert_allclose(model.predict_proba(rows)[:, 1], [float(row[2]) for row in table], rtol=1e-5)
    np.testing.assert_array_equal(model.predict(rows), [int(row[0]) for row in table])


def test_dataframe_columns_are_matched_by_name(colour_model):
    pandas = pytest.importorskip("pandas", reason="pandas is not installed")
    path, _, rows, names = colour_model
    model = nna.load_model(path, backend="numpy")
    frame = pandas.DataFrame({"colour": names, "v": rows[:, 1], "u": rows[:, 0]})  # reordered, label kept
    np.testing.assert_array_equal(model.predict_proba(frame), model.predict_proba(rows))
    with pytest.raises(ValueError, match="missing: v"):
        model.predict(frame[["u", "colour"]])
    with pytest.raises(ValueError, match="not numeric"):
        model.predict(pandas.DataFrame({"u": rows[:, 0], "v": names}))


def test_plain_file_equals_network_load(tmp_path):
    for output, k in (("sigmoid", 1), ("softmax", 3), ("identity", 2)):
        net = nna.Network([3, 4, k], activation="relu", output=output, seed=1, backend="numpy")
        net.save(tmp_path / "plain.npz")
        rows = np.random.default_rng(0).normal(size=(8, 3))
        loaded = nna.Network.load(tmp_path / "plain.npz", backend="numpy")
        model = nna.load_model(tmp_path / "plain.npz", backend="numpy")
        H = loaded.predict_proba(rows.T)
        if output == "identity":
            np.testing.assert_array_equal(model.predict(rows), H.T)
            with pytest.raises(ValueError, match="regression"):
                model.predict_proba(rows)
        else:
            np.testing.assert_array_equal(model.predict(rows), loaded.predict(rows.T)[0])
            expected = np.stack([1 - H[0], H[0]], axis=1) if k == 1 else H.T
            np.testing.assert_allclose(model.predict_proba(rows), expected)


def test_network_load_of_a_cli_model_points_to_load_model(colour_model, tmp_path):
    path = colour_model[0]
    with pytest.warns(nna.PreprocessingNotApplied, match="load_model"):
        nna.Network.load(path, backend="numpy")
    nna.Network([2, 1], backend="numpy").save(tmp_path / "plain.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nna.Network.load(tmp_path / "plain.npz", backend="numpy")


def test_bad_rows_are_clear_errors(colour_model):
    model = nna.load_model(colour_model[0], backend="numpy")
    for rows, message in (
        (np.zeros(2), "reshape"),
        (np.zeros((4, 3)), "3 column"),
        (np.array([[1.0, np.nan]]), "nan"),
        ([["a", "b"]], "numeric"),
    ):
        with pytest.raises(ValueError, match=message):
            model.predict(rows)


def crafted(tmp_path, pipeline):
    path = tmp_path / "crafted.npz"
    nna.Network([2, 3, 1], backend="numpy").save(path, records={"pipeline": pipeline})
    return path


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ({"inputs": ["a", "b", "c"], "task": "classification", "classes": [0, 1]}, "3 inputs for a 2-input"),
        ({"inputs": ["a", "b"], "task": "classification"}, "class list"),
        ({"inputs": ["a", "b"], "task": "classification", "classes": [0, 1, 2]}, "softmax"),
        ({"inputs": ["a", "b"], "task": "regression", "mean": [0.0], "scale": [1.0]}, "standardisation"),
        ({"inputs": ["a", "b"], "task": "classification", "classes": [0, 1], "mean": [0, 0], "scale": [1, 0]}, "standardisation"),
        ({"inputs": ["a", "b", "c"], "task": "classification", "classes": [0, 1], "features": ["x1", "x2"]}, "exactly 2"),
        ({"inputs": ["a", "b"], "task": "classification", "classes": [0, 1], "features": ["cosx1"]}, "features"),
        ({"inputs": ["a", "b"], "task": "dance"}, "task"),
        ("not a mapping", "mapping"),
    ],
)
def test_crafted_preprocessing_is_refused(tmp_path, pipeline, message):
    path = crafted(tmp_path, pipeline)
    with pytest.raises(ValueError, match=message):
        nna.load_model(path, backend="numpy")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    code, out, err = cli("predict", "--model", path, "--data", tmp_path / "x.csv", "--backend", "numpy")
    assert code == 2 and out == "" and err.count("\n") == 1 and "damaged" in err


def test_corrupt_file_is_a_clear_error(colour_model, tmp_path):
    data = colour_model[0].read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not an nnaccel model file|not a readable"):
        nna.load_model(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        nna.load_model(tmp_path / "absent.npz")


def test_info_model_and_summary_describe_the_file(colour_model):
    path = colour_model[0]
    network = nna.load_model(path, backend="numpy").network
    count = sum(W.size + b.size for W, b in network.get_params())  # the oracle: the arrays themselves
    code, out, err = cli("info", "--model", path)
    assert code == 0, err
    assert f"{count:,} parameters" in out and "2-5-3" in out and "softmax" in out
    assert "classes (3): blue, green, red" in out and "standardised" in out
    assert network.summary().splitlines()[0] in out
    assert "trained by: nnaccel=" in out and "epochs=20" in out and "lr=0.1" in out  # the fixture's run
