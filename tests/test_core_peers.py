"""Peer libraries as oracles: PyTorch autograd for the gradients, scikit-learn's MLP for training.

Both are optional (the ``peers`` extra); each test skips when its library is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity"]
OUTPUTS = ["sigmoid", "identity", "softmax"]


# --- PyTorch autograd -----------------------------------------------------------------------------
def _torch_activation(torch, name):
    functional = torch.nn.functional
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": functional.relu,
        "leaky_relu": lambda a: functional.leaky_relu(a, negative_slope=0.01),
        "elu": lambda a: functional.elu(a, alpha=1.0),
        "selu": functional.selu,
        "identity": lambda a: a,
    }[name]


def _torch_loss_and_gradients(params, activations, output, X, Y):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    tensors = [
        (torch.tensor(W, dtype=torch.float64, requires_grad=True), torch.tensor(b, dtype=torch.float64, requires_grad=True))
        for W, b in params
    ]
    H = torch.tensor(X, dtype=torch.float64)
    Y_t = torch.tensor(Y, dtype=torch.float64)
    m = X.shape[1]
    for layer, (W, b) in enumerate(tensors):
        A = W @ H + b
        H = _torch_activation(torch, activations[layer])(A) if layer < len(tensors) - 1 else A
    if output == "sigmoid":
        loss = functional.binary_cross_entropy_with_logits(A, Y_t, reduction="sum") / m
    elif output == "softmax":
        loss = functional.cross_entropy(A.T, Y_t.T, reduction="sum") / m  # probability targets
    else:
        loss = 0.5 * functional.mse_loss(A, Y_t, reduction="sum") / m
    loss.backward()
    return loss.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in tensors]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_pytorch_autograd(backend_name, activation, output):
    pytest.importorskip("torch")
    rng = np.random.default_rng(len(activation) * 7 + len(output))
    outputs = 3 if output == "softmax" else 2
    layers = [4, 6, 5, outputs]
    net = nna.Network(layers, activation=activation, output=output, seed=11, backend=backend_name, dtype="float64")
    params = [(W, 0.2 * rng.normal(size=b.shape)) for W, b in net.get_params()]
    net.set_params(params)
    X = rng.normal(size=(4, 23))
    if output == "sigmoid":
        Y = (rng.random((outputs, 23)) < 0.5).astype(float)
    elif output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, 23)].T
    else:
        Y = rng.normal(size=(outputs, 23))

    loss_torch, grads_torch = _torch_loss_and_gradients(params, [activation, activation], output, X, Y)
    loss, grads = net.gradients(X, Y)
    assert loss == pytest.approx(loss_torch, rel=1e-12)
    for (dW, db), (dW_torch, db_torch) in zip(grads, grads_torch):
        np.testing.assert_allclose(dW, dW_torch, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, db_torch, rtol=1e-10, atol=1e-14)


def test_float32_gradients_stay_close_to_pytorch_float64(backend_name):
    # The default dtype is float32: its gradients agree with the float64 oracle to float32 accuracy.
    pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    net = nna.Network([2, 6, 6, 1], activation="tanh", output="sigmoid", seed=0, backend=backend_name)
    assert net.dtype == np.float32
    X = rng.normal(size=(2, 200))
    Y = (X[0:1] * X[1:2] > 0).astype(float)
    loss_torch, grads_torch = _torch_loss_and_gradients(net.get_params(), ["tanh", "tanh"], "sigmoid", X, Y)
    loss, grads = net.gradients(X, Y)
    assert loss == pytest.approx(loss_torch, rel=1e-5)
    for (dW, db), (dW_torch, db_torch) in zip(grads, grads_torch):
        assert dW.dtype == np.float32
        np.testing.assert_allclose(dW, dW_torch, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(db, db_torch, rtol=1e-3, atol=1e-6)


# --- scikit-learn's MLP, trained from the same start ----------------------------------------------
SKLEARN_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "sigmoid": "logistic", "identity": "identity"}
EPOCHS = 25


def _sklearn_mlp(kind, activation, hidden, lr, alpha=0.0):
    neural_network = pytest.importorskip("sklearn.neural_network")
    estimator = neural_network.MLPClassifier if kind == "classifier" else neural_network.MLPRegressor
    return estimator(
        hidden_layer_sizes=hidden,
        activation=SKLEARN_ACTIVATIONS[activation],
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=lr,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=alpha,
        batch_size=10_000,  # more than m: full-batch gradient descent
        shuffle=False,
        tol=0.0,
        n_iter_no_change=10 * EPOCHS,
        random_state=0,
    )


def _train_sklearn_from(mlp, params, X_rows, y, epochs, **first_call):
    """One partial_fit initialises sklearn's model; then its weights are overwritten (in place,
    since its optimiser holds references) with ours and each further partial_fit is one epoch."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # batch_size > m is clipped, with a warning
        mlp.partial_fit(X_rows, y, **first_call)
        for (W, b), coef, intercept in zip(params, mlp.coefs_, mlp.intercepts_):
            coef[...] = W.T  # sklearn stores (fan_in, fan_out), rows as examples
            intercept[...] = b[:, 0]
        mlp.loss_curve_ = []
        for _ in range(epochs):
            mlp.partial_fit(X_rows, y)
    return mlp


@pytest.mark.parametrize("activation", list(SKLEARN_ACTIVATIONS))
def test_training_matches_sklearn_mlp_classifier(backend_name, activation):
    from nnaccel.data.playground import make_dataset

    X, Y = make_dataset("circle", samples=120, noise=0.1, seed=4)
    X = X / 5.0
    net = nna.Network([2, 5, 4, 1], activation=activation, output="sigmoid", seed=5, backend=backend_name, dtype="float64")
    params = net.get_params()
    mlp = _train_sklearn_from(_sklearn_mlp("classifier", activation, (5, 4), 0.5), params, X.T, Y[0], EPOCHS, classes=[0.0, 1.0])
    history = net.fit(X, Y, epochs=EPOCHS, lr=0.5)

    np.testing.assert_allclose(history["loss"], mlp.loss_curve_, rtol=1e-9)
    assert history["loss"][-1] < history["loss"][0]  # the run actually trained
    for (W, b), coef, intercept in zip(net.get_params(), mlp.coefs_, mlp.intercepts_):
        np.testing.assert_allclose(W, coef.T, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(b[:, 0], intercept, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(net.predict_proba(X)[0], mlp.predict_proba(X.T)[:, 1], rtol=1e-8)
    np.testing.assert_array_equal(net.predict(X)[0], mlp.predict(X.T))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_training_matches_sklearn_mlp_regressor(backend_name, activation):
    # sklearn's squared loss is half the mean squared error, as ours.
    from nnaccel.data.playground import make_dataset

    X, Y = make_dataset("reg-gauss", samples=150, noise=0.0, seed=2)
    X = X / 6.0
    net = nna.Network([2, 6, 1], activation=activation, output="identity", seed=8, backend=backend_name, dtype="float64")
    params = net.get_params()
    mlp = _train_sklearn_from(_sklearn_mlp("regressor", activation, (6,), 0.1), params, X.T, Y[0], EPOCHS)
    history = net.fit(X, Y, epochs=EPOCHS, lr=0.1)

    np.testing.assert_allclose(history["loss"], mlp.loss_curve_, rtol=1e-9)
    assert history["loss"][-1] < history["loss"][0]
    for (W, b), coef, intercept in zip(net.get_params(), mlp.coefs_, mlp.intercepts_):
        np.testing.assert_allclose(W, coef.T, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(b[:, 0], intercept, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(net.predict(X)[0], mlp.predict(X.T), rtol=1e-8, atol=1e-12)


def test_l2_matches_sklearn_alpha(backend_name):
    # sklearn adds alpha/m * W to dW (alpha/(2m) ||W||^2 in its loss); ours adds l2 * W, so
    # l2 = alpha / m gives the same parameters (sklearn's loss curve includes the penalty, ours not).
    from nnaccel.data.playground import make_dataset

    X, Y = make_dataset("xor", samples=100, noise=0.0, seed=6)
    X = X / 5.0
    m, alpha = X.shape[1], 2.0
    net = nna.Network([2, 5, 1], activation="tanh", output="sigmoid", seed=1, backend=backend_name, dtype="float64")
    params = net.get_params()
    mlp = _train_sklearn_from(
        _sklearn_mlp("classifier", "tanh", (5,), 0.5, alpha=alpha), params, X.T, Y[0], EPOCHS, classes=[0.0, 1.0]
    )
    net.fit(X, Y, epochs=EPOCHS, lr=0.5, l2=alpha / m)
    unregularised = nna.Network([2, 5, 1], activation="tanh", output="sigmoid", seed=1, backend=backend_name, dtype="float64")
    unregularised.fit(X, Y, epochs=EPOCHS, lr=0.5)
    for (W, b), (W0, _), coef, intercept in zip(net.get_params(), unregularised.get_params(), mlp.coefs_, mlp.intercepts_):
        np.testing.assert_allclose(W, coef.T, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(b[:, 0], intercept, rtol=1e-8, atol=1e-12)
        assert np.abs(W - W0).max() > 1e-4  # the penalty made a difference
