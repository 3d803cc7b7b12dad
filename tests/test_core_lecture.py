"""The lecture's math, checked against the lecture itself.

Oracles: the worked forward pass with NOTES.md's corrected values, and the lecture's per-example
loop ("for i in range(1, m+1): a = W x + b, h = act(a)"), written here independently of the library:
one column at a time, derivatives taken from the pre-activation a (the library writes them in
terms of H), backpropagation per example, then the average over the m examples.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna

# --- the worked example (NOTES.md item 1) ---------------------------------------------------------
X_LECTURE = np.array([[0.2], [0.5], [-0.9]])
W1_LECTURE = np.array([[1.2, 0.9, 0.3], [0.2, 0.3, 0.1], [1.3, 1.9, 0.1]])
W2_LECTURE = np.array([[0.2, 0.6, 0.2]])
BIAS = 0.1
# The corrected values of NOTES.md, to the digits it prints.
A1 = [0.52, 0.20, 1.22]
H1 = [0.62715, 0.54983, 0.77206]
A2 = 0.70974
H2 = 0.67034
PRINTED = 5e-6  # half a unit in the fifth decimal


def _lecture_network(layers, output, backend_name, dtype):
    """The lecture's network cut after ``len(layers) - 1`` layers, all sigmoid, biases 0.1."""
    weights = [W1_LECTURE, W2_LECTURE][: len(layers) - 1]
    net = nna.Network(layers, activation="sigmoid", output=output, backend=backend_name, dtype=dtype)
    net.set_params([(W, np.full((W.shape[0], 1), BIAS)) for W in weights])
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lecture_worked_forward_pass(backend_name, dtype):
    tolerance = PRINTED + (1e-6 if dtype == "float32" else 1e-12)
    # A1: the first layer with an identity output is W1 x + b1.
    A1_net = _lecture_network([3, 3], "identity", backend_name, dtype).forward(X_LECTURE)
    np.testing.assert_allclose(A1_net[:, 0], A1, rtol=0, atol=tolerance)
    # H1: the same layer with a sigmoid output.
    H1_net = _lecture_network([3, 3], "sigmoid", backend_name, dtype).forward(X_LECTURE)
    np.testing.assert_allclose(H1_net[:, 0], H1, rtol=0, atol=tolerance)
    # A2: the whole network with an identity output layer.
    A2_net = _lecture_network([3, 3, 1], "identity", backend_name, dtype).forward(X_LECTURE)
    assert A2_net.shape == (1, 1)
    assert abs(A2_net[0, 0] - A2) <= tolerance
    # H2: the lecture's network as printed (sigmoid everywhere).
    H2_net = _lecture_network([3, 3, 1], "sigmoid", backend_name, dtype).forward(X_LECTURE)
    assert abs(H2_net[0, 0] - H2) <= tolerance
    # The slide's own numbers come from the slip NOTES.md corrects; the library must not reproduce them.
    assert abs(H1_net[1, 0] - 0.63) > 0.05 and abs(H2_net[0, 0] - 0.68) > 0.005


# --- the per-example loop -------------------------------------------------------------------------
SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. (2017)
SELU_SCALE = 1.0507009873554804934193349852946


def _act(name, a):
    """act(a) for one column a, from each function's textbook definition."""
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "tanh":
        return (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))
    if name == "relu":
        return np.where(a > 0, a, 0.0)
    if name == "leaky_relu":
        return np.where(a > 0, a, 0.01 * a)
    if name == "elu":
        return np.where(a > 0, a, np.exp(a) - 1.0)
    if name == "selu":
        return SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * (np.exp(a) - 1.0))
    assert name == "identity"
    return a.copy()


def _act_derivative(name, a):
    """act'(a), differentiated by hand from the definitions above (in terms of a, not h)."""
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if name == "tanh":
        return 4.0 / (np.exp(a) + np.exp(-a)) ** 2
    if name == "relu":
        return np.where(a > 0, 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(a > 0, 1.0, 0.01)
    if name == "elu":
        return np.where(a > 0, 1.0, np.exp(a))
    if name == "selu":
        return SELU_SCALE * np.where(a > 0, 1.0, SELU_ALPHA * np.exp(a))
    assert name == "identity"
    return np.ones_like(a)


def _output_and_loss(output, a, y):
    """(h, loss) of one example's output layer."""
    if output == "sigmoid":
        h = 1.0 / (1.0 + np.exp(-a))
        return h, float(np.sum(-y * np.log(h) - (1.0 - y) * np.log(1.0 - h)))
    if output == "softmax":
        e = np.exp(a)
        h = e / e.sum()
        return h, float(-np.sum(y * np.log(h)))
    return a.copy(), float(0.5 * np.sum((a - y) ** 2))


def lecture_loop(params, activations, output, X, Y):
    """Forward pass and backpropagation one example at a time, averaged: (H, loss, grads)."""
    m = X.shape[1]
    grads = [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
    H_out, total = [], 0.0
    for i in range(m):
        x, y = X[:, i : i + 1], Y[:, i : i + 1]
        a_list, h_list = [], [x]
        for layer, (W, b) in enumerate(params):
            a = W @ h_list[-1] + b  # a = W x + b
            a_list.append(a)
            if layer < len(params) - 1:
                h_list.append(_act(activations[layer], a))  # h = act(a)
        h, loss = _output_and_loss(output, a_list[-1], y)
        H_out.append(h)
        total += loss
        dA = h - y  # dA_L = h_L - y for every output (NOTES.md, the contract)
        for layer in reversed(range(len(params))):
            W, _ = params[layer]
            grads[layer][0][...] += dA @ h_list[layer].T
            grads[layer][1][...] += dA
            if layer > 0:
                dA = (W.T @ dA) * _act_derivative(activations[layer - 1], a_list[layer - 1])
    return np.hstack(H_out), total / m, [(dW / m, db / m) for dW, db in grads]


def _data(output, n, outputs, m, rng):
    X = rng.normal(size=(n, m))
    if output == "sigmoid":
        Y = (rng.random((outputs, m)) < 0.5).astype(float)
    elif output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, m)].T
    else:
        Y = rng.normal(size=(outputs, m))
    return X, Y


CASES = [
    ([3, 4, 1], "sigmoid", "sigmoid"),
    ([3, 4, 1], "tanh", "sigmoid"),
    ([3, 5, 4, 1], ["relu", "leaky_relu"], "sigmoid"),
    ([2, 5, 3], ["elu"], "softmax"),
    ([2, 4, 4, 3], ["selu", "tanh"], "softmax"),
    ([3, 4, 2], "identity", "identity"),
    ([3, 6, 5, 4, 2], ["sigmoid", "elu", "relu"], "identity"),
    ([4, 1], [], "sigmoid"),  # logistic regression
    ([4, 2], [], "identity"),  # multivariate linear regression
]


@pytest.mark.parametrize("layers, activation, output", CASES)
def test_vectorised_pass_equals_the_lecture_loop(backend_name, layers, activation, output):
    rng = np.random.default_rng(len(layers) * 10 + len(output))
    net = nna.Network(layers, activation=activation, output=output, seed=3, backend=backend_name, dtype="float64")
    params = [(W + 0.1 * rng.normal(size=W.shape), 0.1 * rng.normal(size=b.shape)) for W, b in net.get_params()]
    net.set_params(params)
    X, Y = _data(output, layers[0], layers[-1], 13, rng)

    H_loop, loss_loop, grads_loop = lecture_loop(params, net.activations, output, X, Y)
    np.testing.assert_allclose(net.forward(X), H_loop, rtol=1e-12, atol=1e-13)
    loss, grads = net.gradients(X, Y)
    assert loss == pytest.approx(loss_loop, rel=1e-12, abs=1e-13)
    assert net.loss(X, Y) == pytest.approx(loss_loop, rel=1e-12, abs=1e-13)
    for (dW, db), (dW_loop, db_loop) in zip(grads, grads_loop):
        assert dW.shape == dW_loop.shape and db.shape == db_loop.shape
        np.testing.assert_allclose(dW, dW_loop, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(db, db_loop, rtol=1e-10, atol=1e-13)


def test_one_training_step_is_the_lecture_update(backend_name):
    # The lecture's "repeat: W = W - alpha dW, b = b - alpha db", with dW from the loop above.
    rng = np.random.default_rng(5)
    net = nna.Network([3, 4, 1], activation="tanh", output="sigmoid", seed=1, backend=backend_name, dtype="float64")
    X, Y = _data("sigmoid", 3, 1, 17, rng)
    params = net.get_params()
    _, loss_loop, grads_loop = lecture_loop(params, net.activations, "sigmoid", X, Y)
    history = net.fit(X, Y, epochs=1, lr=0.7)
    assert history["loss"][0] == pytest.approx(loss_loop, rel=1e-12)
    for (W, b), (W_new, b_new), (dW, db) in zip(params, net.get_params(), grads_loop):
        np.testing.assert_allclose(W_new, W - 0.7 * dW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b_new, b - 0.7 * db, rtol=1e-12, atol=1e-14)
