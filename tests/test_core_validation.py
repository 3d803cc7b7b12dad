"""Bad input gets a ValueError that names the problem and the expected value, before any work.

"Before any work" is checked two ways: the parameters are unchanged, and the backend is never
asked to do anything (its array operations are replaced by ones that fail the test).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnaccel as nna

M = 10


def _good_data(output="sigmoid", n=2, outputs=1):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, M))
    if output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, M)].T
    elif output == "sigmoid":
        Y = (rng.random((outputs, M)) < 0.5).astype(float)
    else:
        Y = rng.normal(size=(outputs, M))
    return X, Y


@pytest.fixture
def idle_backend(monkeypatch):
    """A network whose backend fails the test if any work reaches it."""
    net = nna.Network([2, 3, 1], activation="tanh", output="sigmoid", backend="numpy")

    def refuse(*args, **kwargs):
        raise AssertionError("the backend was asked to work before the input was checked")

    for name in ("asarray", "loss_and_gradients", "forward", "loss_sum", "workspace", "take_columns"):
        monkeypatch.setattr(net.backend, name, refuse)
    return net


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


X_GOOD, Y_GOOD = _good_data()

# (id, X, Y, expected message as a regex): the data checks every entry point shares.
BAD_DATA = [
    ("X 1-D", X_GOOD[0], Y_GOOD, r"X must be 2-D with shape \(n features, m examples\).*1-D.*reshape\(1, -1\)"),
    ("X 3-D", X_GOOD.reshape(2, M, 1), Y_GOOD, r"X must be 2-D .*got 3-D shape \(2, 10, 1\)"),
    (
        "n mismatch",
        np.ones((3, M)),
        Y_GOOD,
        r"X has 3 rows but the network's input layer has 2 features; X must be \(n, m\) = \(2, m\)",
    ),
    ("X transposed", X_GOOD.T, Y_GOOD, r"X has 10 rows .* 2 features.*transposed: pass X.T"),
    ("m = 0", np.ones((2, 0)), np.ones((1, 0)), r"X has no examples \(m = 0\)"),
    ("different m", X_GOOD, np.ones((1, M + 1)), r"X has m = 10 examples \(columns\) but Y has 11; they must match"),
    ("Y rows", X_GOOD, np.ones((2, M)), r"Y has 2 rows but the network has 1 outputs; Y must be \(1, m\)"),
    ("Y 3-D", X_GOOD, np.ones((1, M, 1)), r"Y must be 2-D with shape \(1, m\)"),
    ("NaN in X", _with(X_GOOD, (1, 3), np.nan), Y_GOOD, r"X contains NaN or infinite values \(the first at row 1, column 3\)"),
    ("inf in X", _with(X_GOOD, (0, 0), -np.inf), Y_GOOD, r"X contains NaN or infinite values \(the first at row 0, column 0\)"),
    ("NaN in Y", X_GOOD, _with(Y_GOOD, (0, 7), np.nan), r"Y contains NaN or infinite values \(the first at row 0, column 7\)"),
    ("inf in Y", X_GOOD, _with(Y_GOOD, (0, 2), np.inf), r"Y contains NaN or infinite values"),
    (
        "label 2",
        X_GOOD,
        _with(Y_GOOD, (0, 4), 2.0),
        r"Y has labels outside \[0, 1\] \(min 0, max 2\); a sigmoid output needs labels in \[0, 1\]",
    ),
    ("labels -1/1", X_GOOD, 2 * Y_GOOD - 1, r"labels outside \[0, 1\].*\(Y \+ 1\) / 2"),
    ("string X", np.array([["a"] * M, ["b"] * M]), Y_GOOD, r"X has dtype <U1; expected numbers \(float32 or float64\)"),
    ("object X", np.array([[object()] * M] * 2), Y_GOOD, r"X has dtype object; expected numbers"),
    ("complex X", X_GOOD + 1j, Y_GOOD, r"X has dtype complex128; expected numbers"),
    ("string Y", X_GOOD, np.array([["yes"] * M]), r"Y has dtype <U3; expected numbers"),
    ("ragged X", [[1.0, 2.0], [3.0]], Y_GOOD, r"X could not be read as a numeric array"),
]


@pytest.mark.parametrize("X, Y, message", [case[1:] for case in BAD_DATA], ids=[case[0] for case in BAD_DATA])
def test_fit_rejects_bad_data_before_any_work(idle_backend, X, Y, message):
    net = idle_backend
    before = net.get_params()
    with pytest.raises(ValueError, match=message):
        net.fit(X, Y, epochs=1, lr=0.1)
    with pytest.raises(ValueError, match=message):
        net.gradients(X, Y)
    with pytest.raises(ValueError, match=message):
        net.loss(X, Y)
    as_validation = re.sub(r"\b([XY])\b", r"(validation )?\1", message)  # the message names "validation X"
    with pytest.raises(ValueError, match=as_validation):
        net.fit(X_GOOD, Y_GOOD, epochs=1, lr=0.1, validation=(X, Y))
    for (W, b), (W0, b0) in zip(net.get_params(), before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


X_ONLY = [
    case for case in BAD_DATA if case[0] in ("X 1-D", "X 3-D", "n mismatch", "X transposed", "m = 0", "NaN in X", "string X")
]


@pytest.mark.parametrize("X, message", [(case[1], case[3]) for case in X_ONLY], ids=[case[0] for case in X_ONLY])
def test_prediction_rejects_bad_X(idle_backend, X, message):
    for method in (idle_backend.forward, idle_backend.predict, idle_backend.predict_proba):
        with pytest.raises(ValueError, match=message):
            method(X)


def test_checks_of_large_data_read_it_in_blocks(monkeypatch):
    """The NaN and range checks go through X a block of columns at a time (several blocks here),
    still name the first bad entry in row-major order, and allocate no temporary array of the
    size of X (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    from nnaccel.core import validation

    monkeypatch.setattr(validation, "FINITE_BLOCK", 64)
    net = nna.Network([3, 2, 1], seed=0)
    X = np.random.default_rng(0).normal(size=(3, 1000))
    X[2, 40], X[0, 900] = np.nan, np.inf  # the row-major first is (0, 900), in a later block
    with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(the first at row 0, column 900\)"):
        validation.check_X(X, net.architecture)
    X = np.random.default_rng(0).normal(size=(3, 1000))
    X[1, 999] = 1e300
    with pytest.raises(ValueError, match=r"X holds 1e\+300 at index \(1, 999\), beyond what float32"):
        validation.check_representable(X, np.float32, "X")

    monkeypatch.undo()
    X = np.random.default_rng(0).normal(size=(2, 1_000_000))
    architecture = nna.Network([2, 2, 1], seed=0).architecture
    for check in (lambda: validation.check_X(X, architecture), lambda: validation.check_representable(X, np.float32, "X")):
        tracemalloc.start()
        try:
            check()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # the booleans of all of X alone would take X.size bytes
        assert peak < X.size / 2, f"a check of X ({X.size} entries) allocated {peak} bytes at once"


def test_softmax_labels_must_be_one_hot():
    net = nna.Network([2, 3], output="softmax", backend="numpy")
    X, Y = _good_data("softmax", outputs=3)
    with pytest.raises(ValueError, match=r"each column of Y must be one-hot \(or sum to 1\).*np.eye\(classes\)\[labels\].T"):
        net.fit(X, Y * 0.5, epochs=1, lr=0.1)
    with pytest.raises(ValueError, match=r"labels outside \[0, 1\].*softmax"):
        net.fit(X, Y * 2 - 0.5, epochs=1, lr=0.1)
    with pytest.raises(ValueError, match=r"Y has 1 rows but the network has 3 outputs"):
        net.fit(X, np.zeros((1, M)), epochs=1, lr=0.1)


def test_identity_output_takes_any_finite_labels():
    net = nna.Network([2, 1], output="identity", backend="numpy")
    X, _ = _good_data()
    net.fit(X, np.full((1, M), -250.0), epochs=1, lr=0.01)
    net.fit(X, np.full(M, 3.0), epochs=1, lr=0.01)  # a 1-D Y is taken as (1, m) for one output


# --- hyperparameters ------------------------------------------------------------------------------
BAD_HYPERPARAMETERS = [
    ({"lr": 0}, r"lr \(the learning rate\) must be a positive number; got 0"),
    ({"lr": -0.5}, r"lr \(the learning rate\) must be a positive number; got -0.5"),
    ({"lr": float("nan")}, r"lr \(the learning rate\) must be a positive number; got nan"),
    ({"lr": float("inf")}, r"lr \(the learning rate\) must be finite; got inf"),
    ({"lr": "0.1"}, r"lr \(the learning rate\) must be a positive number; got '0.1'"),
    ({"epochs": 0}, r"epochs must be a positive integer; got 0"),
    ({"epochs": -5}, r"epochs must be a positive integer; got -5"),
    ({"epochs": 2.5}, r"epochs must be a positive integer; got 2.5"),
    ({"epochs": True}, r"epochs must be a positive integer; got True"),
    ({"batch_size": 0}, r"batch_size must be a positive integer; got 0"),
    ({"batch_size": -1}, r"batch_size must be a positive integer; got -1"),
    ({"batch_size": 3.0}, r"batch_size must be a positive integer; got 3.0"),
    ({"l1": -0.1}, r"l1 must be a number >= 0; got -0.1"),
    ({"l2": float("nan")}, r"l2 must be a number >= 0; got nan"),
    ({"validation": X_GOOD}, r"validation must be a pair \(X_validation, Y_validation\)"),
    ({"validation": (np.ones((3, 4)), np.ones((1, 4)))}, r"validation X has 3 rows but the network's input layer has 2 features"),
    ({"validation": (X_GOOD, np.ones((1, 3)))}, r"X has m = 10 examples \(columns\) but validation Y has 3"),
]


@pytest.mark.parametrize("kwargs, message", BAD_HYPERPARAMETERS, ids=[str(case[0])[:40] for case in BAD_HYPERPARAMETERS])
def test_fit_rejects_bad_hyperparameters_before_any_work(idle_backend, kwargs, message):
    net = idle_backend
    before = net.get_params()
    arguments = {"epochs": 3, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        net.fit(X_GOOD, Y_GOOD, **arguments)
    for (W, b), (W0, b0) in zip(net.get_params(), before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_numpy_scalars_are_accepted_as_hyperparameters():
    net = nna.Network([2, 1], backend="numpy")
    history = net.fit(X_GOOD, Y_GOOD, epochs=np.int64(2), lr=np.float32(0.1), batch_size=np.int32(4), l2=np.float64(0.0))
    assert len(history["loss"]) == 2


# --- the network's definition ---------------------------------------------------------------------
BAD_DEFINITIONS = [
    (
        {"activation": "swish"},
        r"unknown activation 'swish'; expected one of sigmoid, tanh, relu, leaky_relu, elu, selu, identity",
    ),
    ({"activation": ["tanh", "gelu"]}, r"unknown activation 'gelu'; expected one of"),
    ({"activation": "softmax"}, r"unknown activation 'softmax'"),
    ({"activation": ["tanh"]}, r"activation lists 1 names but the network has 2 hidden layers; give one name per hidden layer"),
    ({"output": "tanh"}, r"unknown output 'tanh'; expected one of sigmoid, identity, softmax"),
    ({"output": "linear"}, r"unknown output 'linear'"),
    ({"layers": [2]}, r"layers must list at least two sizes, input and output \(e.g. \[2, 6, 6, 1\]\)"),
    ({"layers": "2-6-1"}, r"layers must list at least two sizes"),
    ({"layers": [2, 0, 1]}, r"layer sizes must be positive integers; got 0 in \[2, 0, 1\]"),
    ({"layers": [2, 3.5, 1]}, r"layer sizes must be positive integers; got 3.5"),
    ({"layers": [2, 3, 1], "output": "softmax"}, r"a softmax output needs at least 2 units"),
    ({"dtype": "float16"}, r"unsupported dtype 'float16'; expected one of float32, float64"),
    ({"dtype": "wide"}, r"unsupported dtype 'wide'; expected one of float32, float64"),
]


@pytest.mark.parametrize("kwargs, message", BAD_DEFINITIONS, ids=[str(case[0])[:40] for case in BAD_DEFINITIONS])
def test_network_rejects_bad_definitions(kwargs, message):
    arguments = {"layers": [2, 4, 3, 1], "backend": "numpy", **kwargs}
    with pytest.raises(ValueError, match=message):
        nna.Network(**arguments)


def test_set_params_rejects_bad_parameters():
    net = nna.Network([2, 3, 1], backend="numpy")
    good = net.get_params()
    cases = [
        (good[:1], r"expected 2 \(W, b\) pairs, one per layer; got 1"),
        ([(good[0][0].T, good[0][1]), good[1]], r"layer 1: expected W of shape \(3, 2\) and b of shape \(3, 1\); got \(2, 3\)"),
        ([good[0], (good[1][0], np.zeros((2, 1)))], r"layer 2: expected W of shape \(1, 3\) and b of shape \(1, 1\)"),
        ([(np.full((3, 2), np.nan), good[0][1]), good[1]], r"layer 1: parameters contain NaN or infinite values"),
        ([(np.full((3, 2), "x"), good[0][1]), good[1]], r"layer 1: parameters must be numeric"),
    ]
    for params, message in cases:
        with pytest.raises(ValueError, match=message):
            net.set_params(params)
        np.testing.assert_array_equal(net.get_params()[0][0], good[0][0])
    net.set_params([(W, b[:, 0]) for W, b in good])  # b may be given as a 1-D vector
