"""``nnaccel train``: every flag, checked against the Python API doing the same thing by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import cli, write_csv

import nnaccel as nna
from nnaccel.data.playground import expand_features, make_dataset, train_test_split


def train(tmp_path, *arguments, name="model") -> tuple[dict, list, str, str]:
    """Train with --save and --json: (the JSON report, the saved parameters, stdout, stderr)."""
    model, report = tmp_path / f"{name}.npz", tmp_path / f"{name}.json"
    code, out, err = cli("train", "--backend", "numpy", *arguments, "--save", model, "--json", report)
    assert code == 0, err
    return json.loads(report.read_text()), nna.Network.load(model, backend="numpy").get_params(), out, err


def by_hand(
    dataset,
    *,
    samples=500,
    noise=0.0,
    ratio=50.0,
    features=("x1", "x2"),
    hidden=(4, 2),
    activation="tanh",
    lr=0.03,
    epochs=500,
    batch_size=10,
    l1=0.0,
    l2=0.0,
    seed=0,
    optimizer="sgd",
    lr_schedule=None,
    early_stopping=None,
):
    """The oracle: the same run written with the Python API."""
    points, Y = make_dataset(dataset, samples, noise / 100, seed)
    X = expand_features(points, features)
    X_train, Y_train, X_test, Y_test = train_test_split(X, Y, ratio / 100, seed)
    output = "sigmoid" if dataset in ("circle", "xor", "gauss", "spiral") else "identity"
    network = nna.Network([X.shape[0], *hidden, 1], activation=activation, output=output, seed=seed, backend="numpy")
    history = network.fit(
        X_train,
        Y_train,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size or None,
        l1=l1,
        l2=l2,
        validation=(X_test, Y_test) if X_test.shape[1] else None,
        seed=seed,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
        early_stopping=early_stopping,
    )
    return network.get_params(), history, (X_train, Y_train, X_test, Y_test)


def assert_same_params(first, second):
    assert len(first) == len(second)
    for (W1, b1), (W2, b2) in zip(first, second):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


# Every training flag, in combinations, against the Python API: the CLI must wire each one through.
CASES = [
    (
        [
            "--dataset",
            "xor",
            "--hidden",
            "5",
            "--activation",
            "relu",
            "--lr",
            "0.1",
            "--epochs",
            "7",
            "--batch-size",
            "16",
            "--seed",
            "3",
        ],
        dict(dataset="xor", hidden=(5,), activation="relu", lr=0.1, epochs=7, batch_size=16, seed=3),
    ),
    (
        [
            "--dataset",
            "gauss",
            "--noise",
            "20",
            "--samples",
            "300",
            "--ratio",
            "70",
            "--features",
            "x1,x2,x1x2",
            "--regularization",
            "l2",
            "--reg-rate",
            "0.01",
            "--batch-size",
            "0",
            "--epochs",
            "9",
            "--hidden",
            "3,3,2",
        ],
        dict(
            dataset="gauss",
            noise=20,
            samples=300,
            ratio=70,
            features=("x1", "x2", "x1x2"),
            l2=0.01,
            batch_size=0,
            epochs=9,
            hidden=(3, 3, 2),
        ),
    ),
    (
        [
            "--dataset",
            "reg-plane",
            "--regularization",
            "l1",
            "--reg-rate",
            "0.001",
            "--hidden",
            "0",
            "--epochs",
            "5",
            "--lr",
            "0.01",
        ],
        dict(dataset="reg-plane", l1=0.001, hidden=(), epochs=5, lr=0.01),
    ),
    (
        ["--dataset", "spiral", "--features", "sinx1,sinx2,x1sq,x2sq", "--activation", "elu", "--epochs", "4", "--ratio", "100"],
        dict(dataset="spiral", features=("sinx1", "sinx2", "x1sq", "x2sq"), activation="elu", epochs=4, ratio=100),
    ),
    (
        ["--dataset", "xor", "--optimizer", "nesterov", "--momentum", "0.8", "--batch-size", "16", "--epochs", "6"],
        dict(dataset="xor", optimizer=nna.optim.SGD(momentum=0.8, nesterov=True), batch_size=16, epochs=6),
    ),
    (
        ["--dataset", "circle", "--optimizer", "momentum", "--epochs", "5", "--batch-size", "0", "--lr", "0.1"],
        dict(dataset="circle", optimizer=nna.optim.SGD(momentum=0.9), batch_size=0, epochs=5, lr=0.1),
    ),
    (
        [
            "--dataset",
            "gauss",
            "--optimizer",
            "adamw",
            "--beta1",
            "0.85",
            "--beta2",
            "0.99",
            "--eps",
            "1e-7",
            "--weight-decay",
            "0.05",
            "--lr-schedule",
            "step:3,0.5",
            "--regularization",
            "l2",
            "--reg-rate",
            "0.001",
            "--epochs",
            "7",
            "--lr",
            "0.01",
        ],
        dict(
            dataset="gauss",
            optimizer=nna.optim.AdamW(0.85, 0.99, 1e-7, 0.05),
            lr_schedule=nna.optim.StepLR(3, 0.5),
            l2=0.001,
            epochs=7,
            lr=0.01,
        ),
    ),
    (
        [
            "--dataset",
            "xor",
            "--noise",
            "30",
            "--samples",
            "200",
            "--optimizer",
            "adam",
            "--lr",
            "0.05",
            "--epochs",
            "40",
            "--early-stopping",
            "3",
            "--lr-schedule",
            "plateau:factor=0.5,patience=1",
            "--batch-size",
            "8",
            "--seed",
            "5",
            "--hidden",
            "6,4",
        ],
        dict(
            dataset="xor",
            noise=30,
            samples=200,
            optimizer=nna.optim.Adam(),
            lr=0.05,
            epochs=40,
            early_stopping=3,
            lr_schedule=nna.optim.ReduceLROnPlateau(factor=0.5, patience=1),
            batch_size=8,
            seed=5,
            hidden=(6, 4),
        ),
    ),
]
CASE_IDS = ["xor", "gauss", "reg-plane", "spiral", "nesterov", "momentum-full-batch", "adamw-step", "adam-early-stopping"]


@pytest.mark.parametrize("arguments, same", CASES, ids=CASE_IDS)
def test_flags_match_the_python_api(tmp_path, arguments, same):
    report, params, _, _ = train(tmp_path, *arguments)
    expected, history, (X_train, _, X_test, _) = by_hand(**same)
    assert_same_params(params, expected)
    assert report["history"]["train_loss"] == history["loss"]
    assert report["history"]["test_loss"] == history.get("val_loss", [])
    assert report["history"]["lr"] == history["lr"]
    assert report["history"].get("best_epoch") == history.get("best_epoch")
    assert report["history"].get("last_epoch") == history.get("last_epoch")
    assert report["metrics"]["train_examples"] == X_train.shape[1]
    assert report["metrics"]["test_examples"] == X_test.shape[1]
    assert report["metrics"]["layers"][0] == len(same.get("features", ("x1", "x2")))


def test_defaults_are_the_playgrounds(tmp_path):
    report, params, _, _ = train(tmp_path, "--epochs", "3")
    expected, _, _ = by_hand("circle", epochs=3)
    assert_same_params(params, expected)
    settings = report["settings"]
    assert (settings["lr"], settings["activation"], settings["hidden"], settings["batch_size"], settings["ratio"]) == (
        0.03,
        "tanh",
        [4, 2],
        10,
        50.0,
    )


def test_progress_bar_and_summary(tmp_path):
    report, _, out, err = train(tmp_path, "--dataset", "circle", "--hidden", "6,6", "--epochs", "20", "--lr", "0.1")
    progress = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert progress and progress[-1].startswith("epoch 20/20 [")
    last = progress[-1]
    assert f"training loss {report['history']['train_loss'][-1]:.5f}" in last
    assert f"test loss {report['history']['test_loss'][-1]:.5f}" in last
    metrics = report["metrics"]
    assert f"training loss {metrics['train_loss']:.4f}" in out and f"test loss {metrics['test_loss']:.4f}" in out
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in out
    assert "examples/s" in out and "on numpy" in out
    assert metrics["examples_per_second"] == pytest.approx(20 * metrics["train_examples"] / metrics["seconds"])


def test_quiet_has_no_progress_bar(tmp_path):
    _, _, out, err = train(tmp_path, "--epochs", "3", "--quiet")
    assert "epoch" not in err and "training loss" in out


def test_json_metrics_agree_with_the_saved_model(tmp_path):
    report, _, _, _ = train(tmp_path, "--dataset", "xor", "--epochs", "30", "--lr", "0.3", "--hidden", "8")
    network = nna.Network.load(tmp_path / "model.npz", backend="numpy")
    _, _, (X_train, Y_train, X_test, Y_test) = by_hand("xor", epochs=1)
    metrics = report["metrics"]
    assert metrics["train_loss"] == pytest.approx(network.loss(X_train, Y_train), rel=1e-6)
    assert metrics["test_loss"] == pytest.approx(network.loss(X_test, Y_test), rel=1e-6)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(network.predict(X_test) == Y_test))
    assert report["history"]["epoch"] == list(range(1, 31))


def test_regression_reports_r2(tmp_path):
    report, _, out, _ = train(tmp_path, "--dataset", "reg-plane", "--epochs", "20", "--hidden", "0", "--lr", "0.01")
    network = nna.Network.load(tmp_path / "model.npz", backend="numpy")
    _, _, (_, _, X_test, Y_test) = by_hand("reg-plane", epochs=1)
    predicted = network.predict(X_test)
    r2 = 1 - np.sum((Y_test - predicted) ** 2) / np.sum((Y_test - Y_test.mean()) ** 2)
    assert report["metrics"]["test_r2"] == pytest.approx(r2, rel=1e-5)
    assert "R^2" in out and report["metrics"]["task"] == "regression"


def test_backend_flag_is_obeyed(tmp_path, backend_name):
    report, _, out, _ = train(tmp_path, "--epochs", "2", "--quiet", "--backend", backend_name)
    assert report["metrics"]["backend"] == backend_name and f"on {backend_name}" in out


def test_unknown_backend_is_refused(tmp_path):
    code, _, err = cli("train", "--backend", "tpu", "--epochs", "1")
    assert code == 2 and "tpu" in err and "numpy" in err


def test_plot_is_a_png_with_both_panels(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.png"
    code, _, err = cli(
        "train",
        "--backend",
        "numpy",
        "--dataset",
        "circle",
        "--hidden",
        "6,6",
        "--epochs",
        "60",
        "--lr",
        "0.1",
        "--plot",
        path,
        "--quiet",
    )
    assert code == 0, err
    from matplotlib.image import imread

    image = imread(path)
    height, width = image.shape[:2]
    assert width > 1.8 * height  # the output panel beside the loss curves
    left = image[:, : width // 2, :3]
    # a trained circle classifier's heat map: the Playground's orange outside, its blue inside
    red, green, blue = left[..., 0], left[..., 1], left[..., 2]
    orange = (red > 0.9) & (green > 0.55) & (green < 0.85) & (blue < 0.65)
    blueish = (blue > 0.6) & (red < 0.6)
    assert orange.mean() > 0.1 and blueish.mean() > 0.05


@pytest.mark.parametrize("dataset", ["reg-gauss", "xor"])
def test_plot_for_each_kind_of_data(tmp_path, dataset):
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.svg"
    code, _, err = cli("train", "--backend", "numpy", "--dataset", dataset, "--epochs", "2", "--plot", path, "--quiet")
    assert code == 0, err
    assert path.read_text().lstrip().startswith("<?xml")


# ----- user data ----------------------------------------------------------------------------------
def blobs(m=120, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % classes
    centres = np.stack([np.cos(2 * np.pi * labels / classes), np.sin(2 * np.pi * labels / classes)]) * 3
    return centres + rng.normal(0, 0.7, (2, m)), labels


def test_csv_binary_labels_train_a_sigmoid_classifier(tmp_path):
    points, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["u", "v", "y"], zip(points[0], points[1], labels))
    report, params, _, _ = train(tmp_path, "--data", data, "--epochs", "30", "--hidden", "4", "--lr", "0.1")
    assert report["metrics"]["output"] == "sigmoid" and report["metrics"]["layers"] == [2, 4, 1]
    assert report["metrics"]["test_accuracy"] > 0.9
    assert report["metrics"]["train_examples"] == 96  # --ratio defaults to 80 % for --data
    # oracle: standardise with the training part's statistics, then the Python API
    X_train, Y_train, _, _ = train_test_split(points, labels.reshape(1, -1).astype(float), 0.8, 0)
    mean, std = X_train.mean(axis=1, keepdims=True), X_train.std(axis=1, keepdims=True)
    network = nna.Network([2, 4, 1], activation="tanh", output="sigmoid", seed=0, backend="numpy")
    network.fit((X_train - mean) / std, Y_train, epochs=30, lr=0.1, batch_size=10, seed=0)
    for (W, b), (W_cli, b_cli) in zip(network.get_params(), params):
        np.testing.assert_allclose(W_cli, W, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b_cli, b, rtol=1e-5, atol=1e-6)


def test_scale_none_uses_raw_inputs(tmp_path):
    points, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["u", "v", "y"], zip(points[0], points[1], labels))
    _, params, _, _ = train(tmp_path, "--data", data, "--epochs", "3", "--scale", "none", "--ratio", "50")
    X_train, Y_train, _, _ = train_test_split(points, labels.reshape(1, -1).astype(float), 0.5, 0)
    network = nna.Network([2, 4, 2, 1], activation="tanh", output="sigmoid", seed=0, backend="numpy")
    network.fit(X_train, Y_train, epochs=3, lr=0.03, batch_size=10, seed=0)
    for (W, _), (W_cli, _) in zip(network.get_params(), params):
        np.testing.assert_allclose(W_cli, W, rtol=1e-5, atol=1e-6)


def test_label_flag_picks_another_column(tmp_path):
    points, labels = blobs()
    data = write_csv(tmp_path / "d.csv", ["y", "u", "v"], zip(labels, points[0], points[1]))
    report, _, _, _ = train(tmp_path, "--data", data, "--label", "y", "--epochs", "20", "--lr", "0.1")
    assert report["metrics"]["layers"][0] == 2 and report["metrics"]["test_accuracy"] > 0.9


def test_integer_classes_train_softmax_and_text_labels_work(tmp_path):
    points, labels = blobs(150, classes=3)
    names = np.array(["red", "green", "blue"])[labels]
    for label_values, name in ((labels, "ints"), (names, "text")):
        data = write_csv(tmp_path / f"{name}.csv", ["u", "v", "colour"], zip(points[0], points[1], label_values))
        report, _, _, _ = train(tmp_path, "--data", data, "--epochs", "40", "--hidden", "6", "--lr", "0.1", name=name)
        assert report["metrics"]["output"] == "softmax" and report["metrics"]["layers"][-1] == 3
        assert report["metrics"]["test_accuracy"] > 0.9


def test_real_valued_labels_are_regression_and_task_overrides(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (2, 100))
    data = write_csv(tmp_path / "r.csv", ["a", "b", "t"], zip(X[0], X[1], 3 * X[0] - X[1] + 0.5))
    report, _, _, _ = train(tmp_path, "--data", data, "--epochs", "40", "--hidden", "0", "--lr", "0.05")
    assert report["metrics"]["output"] == "identity" and report["metrics"]["test_r2"] > 0.99
    counts = write_csv(tmp_path / "c.csv", ["a", "b", "n"], zip(X[0], X[1], np.arange(100) % 4))
    as_classes, _, _, _ = train(tmp_path, "--data", counts, "--epochs", "1", name="classes")
    as_numbers, _, _, _ = train(tmp_path, "--data", counts, "--epochs", "1", "--task", "regression", name="numbers")
    assert as_classes["metrics"]["output"] == "softmax" and as_numbers["metrics"]["output"] == "identity"


def test_npy_data_and_features_from_two_columns(tmp_path):
    points, labels = blobs()
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([points.T, labels]))
    report, _, _, _ = train(tmp_path, "--data", path, "--features", "x1,x2,x1x2", "--epochs", "20", "--lr", "0.1")
    assert report["metrics"]["layers"][0] == 3 and report["metrics"]["test_accuracy"] > 0.9
    report, _, _, _ = train(tmp_path, "--data", path, "--label", "0", "--epochs", "1", "--task", "regression", name="first")
    assert report["metrics"]["layers"][0] == 2


def test_plot_of_many_inputs(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 80))
    for name, target in (("class", (X[0] + X[1] > 0).astype(int)), ("value", X[0] - 2 * X[2])):
        data = write_csv(tmp_path / f"{name}.csv", ["a", "b", "c", "d", "e", "y"], zip(*X, target))
        code, _, err = cli(
            "train", "--backend", "numpy", "--data", data, "--epochs", "2", "--plot", tmp_path / f"{name}.png", "--quiet"
        )
        assert code == 0, err
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_json_has_each_epochs_rate_and_the_best_and_last_epoch(tmp_path):
    report, _, out, _ = train(
        tmp_path,
        "--dataset",
        "xor",
        "--noise",
        "30",
        "--samples",
        "200",
        "--optimizer",
        "adam",
        "--lr",
        "0.05",
        "--epochs",
        "40",
        "--early-stopping",
        "3",
        "--batch-size",
        "8",
        "--seed",
        "5",
        "--hidden",
        "6,4",
        "--lr-schedule",
        "exponential:0.9",
    )
    history, metrics = report["history"], report["metrics"]
    last, best = metrics["last_epoch"], metrics["best_epoch"]
    assert 3 < last < 40 and best == last - 3 and (history["best_epoch"], history["last_epoch"]) == (best, last)
    assert len(history["lr"]) == len(history["train_loss"]) == last
    assert history["lr"] == pytest.approx([0.05 * 0.9**epoch for epoch in range(last)], rel=1e-12)
    assert min(history["test_loss"]) == history["test_loss"][best - 1]
    assert metrics["optimizer"] == "adam" and metrics["epochs_this_run"] == last
    assert f"after epoch {last} of 40" in out and f"parameters of epoch {best}" in out
    settings = report["settings"]
    assert (settings["optimizer"], settings["beta1"], settings["beta2"], settings["eps"]) == ("adam", 0.9, 0.999, 1e-8)
    assert settings["momentum"] is None and settings["weight_decay"] is None and settings["early_stopping"] == 3


def test_without_early_stopping_the_history_has_no_best_epoch(tmp_path):
    report, _, _, _ = train(tmp_path, "--epochs", "4", "--quiet")
    assert report["history"]["lr"] == [0.03] * 4 and "best_epoch" not in report["history"]
    assert report["metrics"]["best_epoch"] is None and report["metrics"]["last_epoch"] == 4
    assert report["settings"]["optimizer"] == "sgd" and report["settings"]["lr_schedule"] is None


def test_info_shows_what_trained_the_model(tmp_path):
    train(
        tmp_path,
        "--dataset",
        "xor",
        "--optimizer",
        "adamw",
        "--weight-decay",
        "0.02",
        "--lr-schedule",
        "cosine:10",
        "--early-stopping",
        "5",
        "--epochs",
        "8",
        "--quiet",
    )
    code, out, err = cli("info", "--model", tmp_path / "model.npz")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("trained by:"))
    for shown in (
        "optimizer=adamw",
        "beta1=0.9",
        "beta2=0.999",
        "eps=1e-08",
        "weight_decay=0.02",
        "lr_schedule=cosine:10",
        "early_stopping=5",
        "best_epoch=",
        "last_epoch=",
    ):
        assert shown in line, (shown, line)
    assert "momentum=" not in line


def test_help_explains_the_optimizer_flags():
    code, out, _ = cli("train", "--help")
    assert code == 0
    text = " ".join(out.split())
    for flag in (
        "--optimizer",
        "--momentum",
        "--beta1",
        "--beta2",
        "--eps",
        "--weight-decay",
        "--lr-schedule",
        "--early-stopping",
    ):
        assert flag in text
    assert "step:30,0.1" in text and "plateau:factor=0.5,patience=5" in text and "cosine" in text
    assert "without a lower test loss" in text and "held-out part" in text
