"""base.py's generic passes on ``array-api-strict``: nothing NumPy-only in the paths CuPy takes.

``ArrayApiBackend`` implements the primitives with standard array API calls only, and
``array_api_strict`` raises on anything outside the standard (flat indexing of a 2-D array,
NumPy-only functions, ``out=``). Gradients, losses, predictions and whole training runs are compared
with the NumPy backend, which shares none of the primitive code.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna

array_api_strict = pytest.importorskip("array_api_strict")

from support import labels  # noqa: E402

from nnaccel.backends.array_api_backend import ArrayApiBackend  # noqa: E402

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity")
OUTPUT_UNITS = {"sigmoid": 1, "identity": 2, "softmax": 3}


@pytest.fixture(scope="module")
def strict_backend():
    return ArrayApiBackend(array_api_strict)


def test_strict_arrays_reach_the_passes(strict_backend):
    network = nna.Network([2, 3, 1], backend=strict_backend)
    W, _ = network.parameters[0]
    assert type(W).__module__.startswith("array_api_strict")
    with pytest.raises(IndexError):  # the strictness the tests rely on: no flat indexing of 2-D
        W[:1]


@pytest.mark.parametrize("output", list(OUTPUT_UNITS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradients_match_numpy(strict_backend, activation, output):
    rng = np.random.default_rng(0)
    k = OUTPUT_UNITS[output]
    X, Y = rng.normal(size=(3, 23)), labels(output, k, 23, rng)
    layers = [3, 5, 4, k]
    strict = nna.Network(layers, activation, output, backend=strict_backend, dtype="float64", seed=1)
    reference = nna.Network(layers, activation, output, backend="numpy", dtype="float64", seed=1)
    for network in (strict, reference):  # nonzero biases, so every term of A = W H + b is used
        network.set_params([(W, b + 0.1) for W, b in network.get_params()])
    loss, grads = strict.gradients(X, Y)
    expected_loss, expected_grads = reference.gradients(X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for (dW, db), (expected_dW, expected_db) in zip(grads, expected_grads):
        assert isinstance(dW, np.ndarray)
        np.testing.assert_allclose(dW, expected_dW, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(db, expected_db, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(strict.forward(X), reference.forward(X), rtol=1e-12, atol=1e-14)


def test_gradients_match_finite_differences(strict_backend):
    """An oracle independent of both backends: central differences of the strict backend's loss."""
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(2, 9)), (rng.random((1, 9)) > 0.5).astype(float)
    network = nna.Network([2, 3, 1], "elu", "sigmoid", backend=strict_backend, dtype="float64", seed=3)
    _, grads = network.gradients(X, Y)
    params = network.get_params()
    step = 1e-6
    for layer, (W, _) in enumerate(params):
        for index in np.ndindex(W.shape):
            shifted = [(w.copy(), c.copy()) for w, c in params]
            shifted[layer][0][index] += step
            network.set_params(shifted)
            up = network.loss(X, Y)
            shifted[layer][0][index] -= 2 * step
            network.set_params(shifted)
            down = network.loss(X, Y)
            assert grads[layer][0][index] == pytest.approx((up - down) / (2 * step), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_run_matches_numpy(strict_backend, dtype):
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (2, 150))
    Y = (X[0] * X[1] > 0).astype(float).reshape(1, -1)
    X_validation = rng.uniform(-1, 1, (2, 40))
    Y_validation = (X_validation[0] * X_validation[1] > 0).astype(float).reshape(1, -1)
    settings = dict(epochs=15, lr=0.5, batch_size=32, l1=1e-4, l2=1e-3, validation=(X_validation, Y_validation), seed=5)
    strict = nna.Network([2, 6, 6, 1], "tanh", "sigmoid", backend=strict_backend, dtype=dtype)
    reference = nna.Network([2, 6, 6, 1], "tanh", "sigmoid", backend="numpy", dtype=dtype)
    history = strict.fit(X, Y, **settings)
    expected = reference.fit(X, Y, **settings)
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=tolerance)
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=tolerance)
    assert history["loss"][-1] < history["loss"][0]
    for (W, b), (expected_W, expected_b) in zip(strict.get_params(), reference.get_params()):
        np.testing.assert_allclose(W, expected_W, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(b, expected_b, rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(strict.predict(X), reference.predict(X))


def test_softmax_training_run_matches_numpy(strict_backend):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 90))
    Y = np.eye(3)[:, np.argmax(X[:3], axis=0)]
    strict = nna.Network([4, 8, 3], "relu", "softmax", backend=strict_backend, dtype="float64")
    reference = nna.Network([4, 8, 3], "relu", "softmax", backend="numpy", dtype="float64")
    history = strict.fit(X, Y, epochs=10, lr=0.2)
    expected = reference.fit(X, Y, epochs=10, lr=0.2)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-10)
