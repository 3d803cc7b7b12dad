"""Bad input to ``nnaccel train`` and ``nnaccel predict``: one line on stderr naming the problem,
exit status 2, and every output file left exactly as it was."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import cli

import nnaccel as nna

SENTINEL = b"previous contents\n"


@pytest.fixture
def outputs(tmp_path):
    """Existing output files that a failed command must not touch."""
    paths = {name: tmp_path / f"existing.{name}" for name in ("npz", "json", "png", "csv")}
    for path in paths.values():
        path.write_bytes(SENTINEL)
    return paths


def refused(arguments, outputs, *words) -> str:
    code, out, err = cli(*arguments)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnaccel: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    for path in outputs.values():
        assert path.read_bytes() == SENTINEL, f"{path} was overwritten"
    return lines[0]


def train_arguments(outputs, *arguments):
    return [
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "2",
        *arguments,
        "--save",
        outputs["npz"],
        "--json",
        outputs["json"],
        "--plot",
        outputs["png"],
        "--checkpoint",
        outputs["csv"],
    ]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.npz"
    code, _, err = cli("train", "--backend", "numpy", "--epochs", "1", "--quiet", "--save", path)
    assert code == 0, err
    return path


# ----- train ---------------------------------------------------------------------------------------
def test_missing_data_file(tmp_path, outputs):
    refused(train_arguments(outputs, "--data", tmp_path / "nowhere.csv"), outputs, "nowhere.csv", "does not exist")


def test_unreadable_data_files(tmp_path, outputs):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    refused(train_arguments(outputs, "--data", binary), outputs, "binary.csv")
    refused(train_arguments(outputs, "--data", tmp_path), outputs, "directory")
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.csv"
        locked.write_text("a,y\n1,0\n")
        locked.chmod(0)
        refused(train_arguments(outputs, "--data", locked), outputs, "not readable")


def test_unsupported_extension(tmp_path, outputs):
    path = tmp_path / "data.txt"
    path.write_text("a,y\n1,0\n")
    refused(train_arguments(outputs, "--data", path), outputs, ".csv", ".npy")


def test_csv_with_a_non_numeric_column(tmp_path, outputs):
    path = tmp_path / "d.csv"
    path.write_text("a,colour,y\n1,2,0\n2,red,1\n3,4,0\n")
    refused(train_arguments(outputs, "--data", path), outputs, "line 3", "'colour'", "'red'", "not a number")


def test_csv_with_an_empty_cell(tmp_path, outputs):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n2,,1\n3,4,0\n")
    refused(train_arguments(outputs, "--data", path), outputs, "line 3", "'b'", "empty")


def test_csv_with_a_missing_label(tmp_path, outputs):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n2,3,\n3,4,1\n")
    refused(train_arguments(outputs, "--data", path), outputs, "line 3", "label", "'y'")
    refused(train_arguments(outputs, "--data", path, "--label", "target"), outputs, "no column named 'target'", "a, b, y")
    only_label = tmp_path / "only.csv"
    only_label.write_text("y\n0\n1\n")
    refused(train_arguments(outputs, "--data", only_label), outputs, "only the label column")


def test_csv_with_a_ragged_row_or_no_header(tmp_path, outputs):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,y\n1,2,0\n2,3\n")
    refused(train_arguments(outputs, "--data", ragged), outputs, "line 3", "2 fields")
    headless = tmp_path / "headless.csv"
    headless.write_text("1,2,0\n2,3,1\n")
    refused(train_arguments(outputs, "--data", headless), outputs, "header row")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused(train_arguments(outputs, "--data", empty), outputs, "empty")


def test_bad_npy(tmp_path, outputs):
    path = tmp_path / "d.npy"
    np.save(path, np.zeros((4, 3)))
    path.write_bytes(path.read_bytes()[:90])  # truncated
    refused(train_arguments(outputs, "--data", path), outputs, "d.npy")
    np.save(path, np.array(["a", "b"]))
    refused(train_arguments(outputs, "--data", path), outputs, "expected numbers")


def test_unknown_dataset_feature_activation_and_bad_numbers(outputs):
    refused(train_arguments(outputs, "--dataset", "moons"), outputs, "moons", "circle")
    refused(train_arguments(outputs, "--features", "x1,cosx1"), outputs, "cosx1", "sinx1")
    refused(train_arguments(outputs, "--activation", "swish"), outputs, "swish")
    refused(train_arguments(outputs, "--noise", "80"), outputs, "--noise")
    refused(train_arguments(outputs, "--ratio", "0"), outputs, "--ratio")
    refused(train_arguments(outputs, "--hidden", "6,x"), outputs, "--hidden")
    refused(train_arguments(outputs, "--lr", "-1"), outputs, "--lr")
    refused(train_arguments(outputs, "--reg-rate", "0.1"), outputs, "--regularization")
    refused(train_arguments(outputs, "--samples", "abc"), outputs, "--samples")


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--optimizer", "rmsprop"], ["rmsprop", "adamw"]),
        (["--momentum", "0.5"], ["--momentum", "momentum or nesterov", "sgd"]),
        (["--optimizer", "adam", "--momentum", "0.5"], ["--momentum", "not to adam"]),
        (["--optimizer", "momentum", "--momentum", "-0.1"], ["--momentum", "> 0"]),
        (["--optimizer", "nesterov", "--momentum", "0"], ["--momentum", "> 0"]),
        (["--optimizer", "momentum", "--momentum", "nan"], ["--momentum", "finite"]),
        (["--optimizer", "sgd", "--beta1", "0.8"], ["--beta1", "adam or adamw"]),
        (["--optimizer", "adam", "--beta1", "1"], ["--beta1", "[0, 1)"]),
        (["--optimizer", "adamw", "--beta2", "-0.5"], ["--beta2", "[0, 1)"]),
        (["--optimizer", "adam", "--eps", "0"], ["--eps", "> 0"]),
        (["--optimizer", "adam", "--weight-decay", "0.1"], ["--weight-decay", "adamw", "not to adam"]),
        (["--optimizer", "adamw", "--weight-decay", "-1"], ["--weight-decay", ">= 0"]),
        (["--optimizer", "adamw", "--weight-decay", "inf"], ["--weight-decay", "finite"]),
        (["--lr-schedule", "warmup"], ["--lr-schedule", "warmup", "cosine"]),
        (["--lr-schedule", "step:x"], ["--lr-schedule", "numbers"]),
        (["--lr-schedule", "step"], ["--lr-schedule", "step_size"]),
        (["--lr-schedule", "plateau:speed=2"], ["--lr-schedule", "speed", "factor"]),
        (["--lr-schedule", "exponential:-1"], ["--lr-schedule", "gamma"]),
        (["--early-stopping", "0"], ["--early-stopping", ">= 1"]),
        (["--early-stopping", "five"], ["--early-stopping", "invalid int"]),
        (["--early-stopping", "5", "--ratio", "100"], ["--early-stopping", "--ratio 100"]),
        (["--early-stopping", "5", "--samples", "10", "--ratio", "99"], ["--early-stopping", "no test examples"]),
    ],
)
def test_bad_optimizer_schedule_and_stopping_values(outputs, arguments, words):
    refused(train_arguments(outputs, *arguments), outputs, *words)


def test_conflicting_flags(tmp_path, outputs):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,0\n2,1\n")
    refused(train_arguments(outputs, "--dataset", "xor", "--data", path), outputs, "--dataset", "--data")
    refused(train_arguments(outputs, "--data", path, "--noise", "10"), outputs, "--noise")
    refused(train_arguments(outputs, "--label", "y"), outputs, "--label")
    three = tmp_path / "three.csv"
    three.write_text("a,b,c,y\n1,2,3,0\n2,3,4,1\n")
    refused(train_arguments(outputs, "--data", three, "--features", "x1,x1sq"), outputs, "two input columns")


def test_output_folder_missing_or_output_is_the_input(tmp_path, outputs):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    before = path.read_bytes()
    refused(["train", "--data", path, "--json", tmp_path / "no" / "r.json", "--save", outputs["npz"]], outputs, "does not exist")
    code, _, err = cli("train", "--backend", "numpy", "--data", path, "--epochs", "1", "--save", path)
    assert code == 2 and "overwrite the input" in err and path.read_bytes() == before


# ----- predict -------------------------------------------------------------------------------------
def predict_arguments(outputs, model, data):
    return ["predict", "--model", model, "--data", data, "--out", outputs["csv"], "--backend", "numpy"]


@pytest.fixture
def points(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x1,x2\n0,0\n1,2\n")
    return path


def test_predict_missing_files(tmp_path, outputs, model, points):
    refused(predict_arguments(outputs, tmp_path / "none.npz", points), outputs, "none.npz", "does not exist")
    refused(predict_arguments(outputs, model, tmp_path / "none.csv"), outputs, "none.csv", "does not exist")


def test_predict_model_from_another_program(tmp_path, outputs, points):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones((2, 2)))
    refused(predict_arguments(outputs, other, points), outputs, "other.npz", "not an nnaccel model")
    text = tmp_path / "text.npz"
    text.write_text("layers: 2-6-1\n")
    refused(predict_arguments(outputs, text, points), outputs, "text.npz")
    single = tmp_path / "array.npy"
    np.save(single, np.ones(3))
    refused(predict_arguments(outputs, single, points), outputs, "array.npy")


def test_predict_truncated_model(tmp_path, outputs, model, points):
    truncated = tmp_path / "truncated.npz"
    content = model.read_bytes()
    truncated.write_bytes(content[: len(content) // 2])
    refused(predict_arguments(outputs, truncated, points), outputs, "truncated.npz")


def test_predict_features_not_matching_the_model(tmp_path, outputs, model):
    three = tmp_path / "three.csv"
    three.write_text("a,b,c\n1,2,3\n")
    refused(predict_arguments(outputs, model, three), outputs, "3 column", "takes 2 input")
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((4, 5)))
    refused(predict_arguments(outputs, model, wide), outputs, "5 column", "takes 2 input")
    plain = tmp_path / "plain.npz"
    nna.Network([4, 1], backend="numpy").save(plain)
    refused(predict_arguments(outputs, plain, tmp_path / "three.csv"), outputs, "3 column", "takes 4 input")


def test_predict_non_numeric_input(tmp_path, outputs, model):
    path = tmp_path / "bad.csv"
    path.write_text("x1,x2\n1,2\nthree,4\n")
    refused(predict_arguments(outputs, model, path), outputs, "line 3", "'x1'", "'three'")


def test_predict_refuses_to_overwrite_its_input(tmp_path, outputs, model, points):
    before = points.read_bytes()
    code, _, err = cli("predict", "--model", model, "--data", points, "--out", points)
    assert code == 2 and "overwrite" in err and points.read_bytes() == before


# ----- issue 15: refused before any work, one line ------------------------------------------------
def test_an_unwritable_output_is_refused_before_training(tmp_path, outputs, monkeypatch):
    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("ro") else real_access(path, mode))
    monkeypatch.setattr(nna.Network, "fit", lambda *a, **k: pytest.fail("trained before checking the outputs"))
    for option in ("--save", "--checkpoint", "--json"):
        arguments = ["train", "--backend", "numpy", "--epochs", "2", option, tmp_path / "ro" / "out.npz"]
        refused(arguments, outputs, f"{option} ", "ro/out.npz", "cannot be written")


def test_malformed_csv_and_empty_npy_are_one_line(tmp_path, outputs):
    wide = tmp_path / "wide.csv"
    wide.write_text("a," + "x" * (200 * 1024) + ",y\n1,2,3\n")
    refused(train_arguments(outputs, "--data", wide), outputs, "wide.csv", "cannot be read as CSV")
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((5, 0)))
    refused(train_arguments(outputs, "--data", empty), outputs, "empty.npy", "(5, 0)")


def test_a_header_only_csv_prints_no_warning(tmp_path, outputs):
    header_only = tmp_path / "header.csv"
    header_only.write_text("x1,x2,label\n")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refused(train_arguments(outputs, "--data", header_only), outputs, "header.csv", "no data rows")
    assert not [str(warning.message) for warning in caught]


def test_a_prediction_csv_quotes_labels_with_commas(tmp_path):
    import csv

    data = tmp_path / "labels.csv"
    rng = np.random.default_rng(0)
    quoted = '"yes, sir"'
    rows = ["x1,x2,answer"] + [f"{a:.3f},{b:.3f},{quoted if a > 0 else 'no'}" for a, b in rng.normal(size=(40, 2))]
    data.write_text("\n".join(rows) + "\n")
    model = tmp_path / "model.npz"
    code, _, err = cli("train", "--backend", "numpy", "--epochs", "2", "--quiet", "--data", data, "--save", model)
    assert code == 0, err
    code, out, err = cli("predict", "--model", model, "--data", data)
    assert code == 0, err
    table = list(csv.reader(out.splitlines()))
    assert "p_yes, sir" in table[0] and len(table[0]) == 3
    assert all(len(row) == 3 for row in table[1:])
    assert {row[0] for row in table[1:]} <= {"yes, sir", "no"}


def test_make_data_with_infinite_gb_is_one_line(tmp_path, outputs):
    refused(["make-data", "--gb", "inf", "--out", tmp_path / "big"], outputs, "--gb")
    assert not list(tmp_path.glob("big*"))


def test_an_unavailable_backend_is_bad_input(outputs, monkeypatch):
    from nnaccel import backends

    monkeypatch.setattr(backends, "unavailable_reason", lambda name: f"{name} cannot run in this test")
    monkeypatch.setattr(backends, "_instances", {})  # none loaded yet: the check runs
    refused(["train", "--backend", "numba", "--epochs", "1", "--quiet"], outputs, "numba")


def test_a_cuda_runtime_without_any_driver_says_there_is_no_gpu():
    from nnaccel.backends import _cuda_hint

    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")
    assert "no usable NVIDIA GPU or driver" in _cuda_hint(error, driver_present=False)
    assert "nnaccel[cuda12]" not in _cuda_hint(error, driver_present=False)
    assert "older than the CUDA" in _cuda_hint(error, driver_present=True)
