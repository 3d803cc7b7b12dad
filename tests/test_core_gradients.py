"""Gradients against central finite differences (float64), and the loss's stability for large |A|.

Oracles: the finite-difference quotient (L(p + e) - L(p - e)) / 2e of the network's own mean loss,
and a float64 log-sum-exp written here for the losses at A = +-1000.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity"]
OUTPUTS = ["sigmoid", "identity", "softmax"]
EPSILON = 1e-6


def _data(output, n, outputs, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    if output == "sigmoid":
        Y = rng.random((outputs, m))  # soft labels in [0, 1] are valid cross-entropy targets
        Y[:, ::2] = np.round(Y[:, ::2])
    elif output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, m)].T
    else:
        Y = rng.normal(size=(outputs, m))
    return X, Y


def finite_difference_gradients(net, X, Y):
    """Central differences of net.loss over every weight and bias, in the shape of get_params."""
    params = net.get_params()
    grads = []
    for W, b in params:
        pair = []
        for array in (W, b):
            estimate = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                values = []
                for step in (EPSILON, -EPSILON):
                    original = array[index]
                    array[index] = original + step
                    net.set_params(params)
                    values.append(net.loss(X, Y))
                    array[index] = original
                estimate[index] = (values[0] - values[1]) / (2 * EPSILON)
            pair.append(estimate)
        grads.append(tuple(pair))
    net.set_params(params)
    return grads


def _check_against_finite_differences(net, X, Y):
    loss, grads = net.gradients(X, Y)
    assert loss == pytest.approx(net.loss(X, Y), rel=1e-12)
    estimates = finite_difference_gradients(net, X, Y)
    for layer, ((dW, db), (dW_fd, db_fd)) in enumerate(zip(grads, estimates)):
        assert dW.dtype == np.float64
        np.testing.assert_allclose(dW, dW_fd, rtol=1e-5, atol=1e-8, err_msg=f"dW of layer {layer + 1}")
        np.testing.assert_allclose(db, db_fd, rtol=1e-5, atol=1e-8, err_msg=f"db of layer {layer + 1}")
    # The check itself must be able to fail: the estimates are not all zero.
    assert max(np.abs(dW_fd).max() for dW_fd, _ in estimates) > 1e-3


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [[4], [4, 3]], ids=["depth2", "depth3"])
def test_gradients_match_finite_differences(backend_name, activation, output, hidden):
    outputs = 3 if output == "softmax" else 2
    layers = [3, *hidden, outputs]
    net = nna.Network(layers, activation=activation, output=output, seed=7, backend=backend_name, dtype="float64")
    # Non-zero biases, so every term of the gradient is exercised and no relu sits on its kink (a
    # unit whose inputs are all 0 has A = b).
    net.set_params([(W, np.linspace(-0.1, 0.3, b.shape[0]).reshape(-1, 1)) for W, b in net.get_params()])
    X, Y = _data(output, 3, outputs, 11, seed=len(activation) + len(output))
    _check_against_finite_differences(net, X, Y)


@pytest.mark.parametrize("output", OUTPUTS)
def test_single_layer_gradients_match_finite_differences(backend_name, output):
    # Logistic regression, (multivariate) linear regression and multinomial logistic regression.
    outputs = {"sigmoid": 1, "identity": 2, "softmax": 3}[output]
    net = nna.Network([4, outputs], output=output, seed=2, backend=backend_name, dtype="float64")
    X, Y = _data(output, 4, outputs, 9, seed=1)
    _check_against_finite_differences(net, X, Y)


def test_deep_mixed_network_gradients(backend_name):
    activations = ["selu", "leaky_relu", "elu", "sigmoid", "tanh"]
    net = nna.Network(
        [2, 5, 4, 4, 3, 3, 2], activation=activations, output="softmax", seed=4, backend=backend_name, dtype="float64"
    )
    X, Y = _data("softmax", 2, 2, 8, seed=9)
    _check_against_finite_differences(net, X, Y)


# --- stable losses at large |A| -------------------------------------------------------------------
def _logsumexp(values):
    top = np.max(values, axis=0)
    return top + np.log(np.sum(np.exp(values - top), axis=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_loss_is_stable_for_large_pre_activations(backend_name, dtype):
    # A = W x with W = 1000 and x = +-1: the naive -y log(sigmoid(A)) is log(0) = -inf.
    net = nna.Network([1, 1], output="sigmoid", backend=backend_name, dtype=dtype)
    net.set_params([(np.array([[1000.0]]), np.array([[0.0]]))])
    X = np.array([[1.0, 1.0, -1.0, -1.0, 0.001]])
    Y = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]])
    A = 1000.0 * X[0]
    # BCE = log(1 + e^A) - y A, with log(1 + e^A) = logsumexp(0, A) in float64
    expected = np.mean(_logsumexp(np.stack([np.zeros_like(A), A])) - Y[0] * A)
    loss, grads = net.gradients(X, Y)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    assert net.loss(X, Y) == pytest.approx(expected, rel=1e-6)
    # dA = H - Y: (0, 1, -1, 0, sigmoid(1) - 1) per column; dW = mean(dA x)
    H = np.exp(-np.logaddexp(0.0, -A))  # sigmoid(A) = 1 / (1 + e^-A), without overflow
    np.testing.assert_allclose(grads[0][0], [[np.mean((H - Y[0]) * X[0])]], rtol=1e-5)
    proba = net.predict_proba(X)
    assert np.isfinite(proba).all() and proba.min() >= 0.0 and proba.max() <= 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_loss_is_stable_for_large_pre_activations(backend_name, dtype):
    net = nna.Network([1, 3], output="softmax", backend=backend_name, dtype=dtype)
    net.set_params([(np.array([[1000.0], [-1000.0], [0.0]]), np.array([[0.0], [0.0], [0.0]]))])
    X = np.array([[1.0, 1.0, -1.0, -1.0]])
    Y = np.eye(3)[[0, 1, 0, 2]].T
    A = np.array([[1000.0], [-1000.0], [0.0]]) * X
    expected = np.mean(_logsumexp(A) - np.sum(Y * A, axis=0))  # CE = logsumexp(A) - y . A
    loss, grads = net.gradients(X, Y)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    assert all(np.isfinite(dW).all() and np.isfinite(db).all() for dW, db in grads)
    proba = net.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, rtol=1e-6)


def test_loss_over_many_columns_matches_a_float64_oracle():
    # More columns than one evaluation/loss chunk, so the chunked paths are covered.
    rng = np.random.default_rng(0)
    m = 70_001
    net = nna.Network([2, 1], output="sigmoid", backend="numpy", dtype="float64")
    X = rng.normal(size=(2, m)) * 3
    Y = (rng.random((1, m)) < 0.5).astype(float)
    W, b = net.get_params()[0]
    A = (W @ X + b)[0]
    expected = np.mean(np.logaddexp(0.0, A) - Y[0] * A)
    loss, grads = net.gradients(X, Y)
    assert loss == pytest.approx(expected, rel=1e-12)
    assert net.loss(X, Y) == pytest.approx(expected, rel=1e-12)
    H = 1.0 / (1.0 + np.exp(-A))
    np.testing.assert_allclose(grads[0][0], ((H - Y[0]) @ X.T / m).reshape(1, 2), rtol=1e-10)
    np.testing.assert_allclose(net.forward(X)[0], H, rtol=1e-12)
