"""Training: it learns the Playground's problems, recovers known models, and follows its formulas.

Oracles: known separating planes and regression coefficients, ``numpy.linalg.lstsq``, a hand-written
mini-batch loop built from ``Network.gradients`` (itself checked against finite differences), the
update formula of one regularised step computed by hand, and hand-built parameters for ``predict``.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna
from nnaccel.data.playground import make_dataset, train_test_split
from nnaccel.nn.training import EpochOrders, epoch_order


@pytest.mark.parametrize("dataset", ["xor", "circle"])
def test_training_separates_playground_data(backend_name, dataset):
    X, Y = make_dataset(dataset, samples=400, noise=0.0, seed=1)
    X_train, Y_train, X_test, Y_test = train_test_split(X, Y, ratio=0.5, seed=1)
    net = nna.Network([2, 8, 8, 1], activation="tanh", output="sigmoid", seed=0, backend=backend_name)
    history = net.fit(X_train, Y_train, epochs=100, lr=1.0, validation=(X_test, Y_test))
    assert len(history["loss"]) == len(history["val_loss"]) == 100
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert history["val_loss"][-1] < 0.2
    assert np.mean(net.predict(X_test) == Y_test) >= 0.95
    assert np.mean(net.predict(X_train) == Y_train) >= 0.97


def test_mini_batch_training_separates_xor(backend_name):
    X, Y = make_dataset("xor", samples=300, noise=0.0, seed=2)
    net = nna.Network([2, 6, 6, 1], activation="relu", output="sigmoid", seed=0, backend=backend_name)
    history = net.fit(X / 5.0, Y, epochs=20, lr=0.5, batch_size=30, seed=1)
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    assert np.mean(net.predict(X / 5.0) == Y) >= 0.95


def test_logistic_regression_separates_a_linearly_separable_set(backend_name):
    rng = np.random.default_rng(0)
    w_true, c_true = np.array([2.0, -3.0, 1.0]), 0.5
    X = rng.uniform(-1, 1, size=(3, 600))
    margin = w_true @ X + c_true
    X = X[:, np.abs(margin) > 0.3]  # a margin around the plane: separable by construction
    Y = (w_true @ X + c_true > 0).astype(float).reshape(1, -1)
    net = nna.Network([3, 1], output="sigmoid", seed=0, backend=backend_name)
    net.fit(X, Y, epochs=400, lr=2.0)
    np.testing.assert_array_equal(net.predict(X), Y)
    ((W, b),) = net.get_params()
    direction = np.append(W[0], b[0, 0])
    cosine = direction @ np.append(w_true, c_true) / np.linalg.norm(direction) / np.linalg.norm(np.append(w_true, c_true))
    assert cosine > 0.95


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-8), ("float32", 2e-4)])
def test_linear_regression_recovers_known_coefficients(backend_name, dtype, tolerance):
    rng = np.random.default_rng(1)
    W_true = np.array([[1.5, -2.0, 0.5], [0.0, 3.0, -1.0]])
    b_true = np.array([[0.7], [-0.3]])
    X = rng.normal(size=(3, 200))
    Y = W_true @ X + b_true
    net = nna.Network([3, 2], output="identity", seed=0, backend=backend_name, dtype=dtype)
    history = net.fit(X, Y, epochs=100, lr=0.9)
    ((W, b),) = net.get_params()
    np.testing.assert_allclose(W, W_true, atol=tolerance)
    np.testing.assert_allclose(b, b_true, atol=tolerance)
    assert history["loss"][-1] < 1e-6


def test_linear_regression_with_noise_reaches_least_squares(backend_name):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4, 300))
    Y = np.array([[0.5, -1.0, 2.0, 0.0]]) @ X + 1.0 + 0.3 * rng.normal(size=(1, 300))
    design = np.vstack([X, np.ones((1, 300))]).T  # rows as examples, a column of ones for b
    solution, *_ = np.linalg.lstsq(design, Y[0], rcond=None)
    net = nna.Network([4, 1], output="identity", seed=0, backend=backend_name, dtype="float64")
    net.fit(X, Y, epochs=120, lr=0.9)
    ((W, b),) = net.get_params()
    np.testing.assert_allclose(np.append(W[0], b[0, 0]), solution, atol=1e-8)


# --- the training loop's formulas -----------------------------------------------------------------
def _reference_training(net, X, Y, epochs, lr, batch_size, shuffle, seed):
    """Mini-batch gradient descent by hand: each epoch's columns in ``epoch_order`` (or in order),
    W -= lr dW per batch, the epoch's loss the mean of the batch losses taken before each update."""
    m = X.shape[1]
    batch = m if batch_size is None else batch_size
    history = []
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, m) if (shuffle and batch < m) else np.arange(m)
        total = 0.0
        for start in range(0, m, batch):
            columns = order[start : start + batch]
            loss, grads = net.gradients(X[:, columns], Y[:, columns])
            total += loss * len(columns)
            net.set_params([(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(net.get_params(), grads)])
        history.append(total / m)
    return history


@pytest.mark.parametrize("batch_size, shuffle", [(None, True), (7, False), (7, True), (1, True), (30, True)])
def test_fit_equals_hand_written_mini_batch_descent(backend_name, batch_size, shuffle):
    X, Y = make_dataset("gauss", samples=24, noise=0.2, seed=3)
    net, reference = (
        nna.Network([2, 5, 1], activation="tanh", output="sigmoid", seed=2, backend=backend_name, dtype="float64")
        for _ in range(2)
    )
    history = net.fit(X, Y, epochs=4, lr=0.2, batch_size=batch_size, shuffle=shuffle, seed=9)
    expected = _reference_training(reference, X, Y, 4, 0.2, batch_size, shuffle, seed=9)
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-11)
    for (W, b), (W_ref, b_ref) in zip(net.get_params(), reference.get_params()):
        np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-13)


def test_seeded_shuffling_is_reproducible(backend_name):
    X, Y = make_dataset("spiral", samples=60, noise=0.1, seed=0)

    def train(seed):
        net = nna.Network([2, 6, 1], activation="tanh", output="sigmoid", seed=1, backend=backend_name)
        history = net.fit(X, Y, epochs=5, lr=0.1, batch_size=8, seed=seed)
        return history["loss"], net.get_params()

    loss_a, params_a = train(seed=4)
    loss_b, params_b = train(seed=4)
    loss_c, params_c = train(seed=5)
    assert loss_a == loss_b
    for (W_a, b_a), (W_b, b_b) in zip(params_a, params_b):
        np.testing.assert_array_equal(W_a, W_b)
        np.testing.assert_array_equal(b_a, b_b)
    assert loss_a != loss_c and not np.array_equal(params_a[0][0], params_c[0][0])
    # Every epoch visits each column exactly once.
    for epoch in range(3):
        np.testing.assert_array_equal(np.sort(epoch_order(4, epoch, 60)), np.arange(60))
    assert not np.array_equal(epoch_order(4, 0, 60), epoch_order(4, 1, 60))


@pytest.mark.parametrize("m", [1, 2, 60, 1001, 70_000])
def test_epoch_order_is_numpys_permutation_held_in_int32(m):
    """The int32 order is the permutation earlier releases drew with ``Generator.permutation``
    (int64), so a run draws the same batches as before, in half the memory."""
    for seed, epoch in [(0, 0), (4, 3)]:
        order = epoch_order(seed, epoch, m)
        assert order.dtype == np.int32
        np.testing.assert_array_equal(order, np.random.default_rng([seed, epoch]).permutation(m))


@pytest.mark.parametrize("limit", [None, 10])
def test_epoch_orders_drawn_ahead_are_each_epochs_order(monkeypatch, limit):
    """The orders a run uses (the next one drawn on a background thread, or not beyond the limit)
    are ``epoch_order``'s, whatever epoch the run starts at or repeats; nothing is drawn after the
    last epoch."""
    if limit is not None:
        monkeypatch.setattr(EpochOrders, "PREFETCH_LIMIT", limit)
    orders = EpochOrders(seed=4, m=60, epochs=6)
    for epoch in [3, 4, 4, 5, 0, 1]:
        np.testing.assert_array_equal(orders(epoch), epoch_order(4, epoch, 60))
        assert (orders.lookahead.pending is not None) == (limit is None and epoch + 1 < 6)


def test_background_work_runs_in_a_forked_child():
    """A child forked after the parent used the background threads starts its own."""
    import multiprocessing

    from nnaccel.core import background

    assert background.submit(sum, [1, 2]).result() == 3

    def child():
        raise SystemExit(0 if background.submit(sum, [3, 4]).result(timeout=10) == 7 else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0


def test_validation_loss_is_taken_after_each_epoch(backend_name):
    X, Y = make_dataset("circle", samples=80, noise=0.1, seed=5)
    X_train, Y_train, X_val, Y_val = train_test_split(X / 5.0, Y, ratio=0.5, seed=0)
    net = nna.Network([2, 4, 1], activation="tanh", output="sigmoid", seed=0, backend=backend_name, dtype="float64")
    snapshots = []
    history = net.fit(
        X_train,
        Y_train,
        epochs=3,
        lr=0.5,
        validation=(X_val, Y_val),
        on_epoch_end=lambda epoch, history: snapshots.append(net.get_params()),
    )
    expected = []  # the validation loss of each epoch's final parameters, by hand
    for (W1, b1), (W2, b2) in snapshots:
        A = W2 @ np.tanh(W1 @ X_val + b1) + b2
        expected.append(np.mean(np.logaddexp(0.0, A) - Y_val * A))  # BCE from A
    np.testing.assert_allclose(history["val_loss"], expected, rtol=1e-12)


def test_a_failed_validation_leaves_the_parameters_from_the_epochs_start():
    # the validation data unreadable, or the Dask cluster measuring it gone: the epoch is unrecorded
    from nnaccel.nn.training import RunSettings, full_batch_step, run_epochs
    from nnaccel.optim import Hyperparameters

    X, Y = make_dataset("xor", samples=40, noise=0.0, seed=1)
    X = X / 5.0
    net = nna.Network([2, 3, 1], activation="tanh", output="sigmoid", seed=0, backend="numpy", dtype="float64")
    after_epoch, history = [], {"loss": []}

    def measure_validation() -> float:
        if len(after_epoch) == 2:
            raise OSError("the validation file is unreadable")
        return 0.5

    with pytest.raises(OSError, match="unreadable"):
        run_epochs(
            net,
            lambda epoch, hyper: (full_batch_step(net, X, Y, hyper.lr), X.shape[1]),
            measure_validation,
            RunSettings(Hyperparameters(0.5), net.plan(None)),
            epochs=5,
            history=history,
            on_epoch_end=lambda epoch, history: after_epoch.append(net.get_params()),
        )
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    for (W, b), (W_last, b_last) in zip(net.get_params(), after_epoch[-1]):
        np.testing.assert_array_equal(W, W_last)
        np.testing.assert_array_equal(b, b_last)


def test_l1_and_l2_update_formula(backend_name):
    # One full-batch step: W -= lr (dW + l1 sign(W) + l2 W); biases are not regularised.
    X, Y = make_dataset("xor", samples=30, noise=0.0, seed=7)
    net = nna.Network([2, 3, 1], activation="tanh", output="sigmoid", seed=3, backend=backend_name, dtype="float64")
    params = [(W - 0.05, b + 0.1) for W, b in net.get_params()]  # weights of both signs, non-zero biases
    net.set_params(params)
    _, grads = net.gradients(X / 5.0, Y)
    lr, l1, l2 = 0.3, 0.02, 0.05
    net.fit(X / 5.0, Y, epochs=1, lr=lr, l1=l1, l2=l2)
    for (W, b), (dW, db), (W_new, b_new) in zip(params, grads, net.get_params()):
        expected_W = W.copy()
        for index in np.ndindex(W.shape):
            sign = 1.0 if W[index] > 0 else -1.0 if W[index] < 0 else 0.0
            expected_W[index] = W[index] - lr * (dW[index] + l1 * sign + l2 * W[index])
        np.testing.assert_allclose(W_new, expected_W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b_new, b - lr * db, rtol=1e-12, atol=1e-15)


def test_regularisation_shrinks_weights(backend_name):
    X, Y = make_dataset("gauss", samples=100, noise=0.0, seed=0)
    norms = {}
    for name, kwargs in [("none", {}), ("l1", {"l1": 0.01}), ("l2", {"l2": 0.05})]:
        net = nna.Network([2, 4, 1], activation="tanh", output="sigmoid", seed=0, backend=backend_name)
        net.fit(X, Y, epochs=50, lr=0.5, **kwargs)
        norms[name] = sum(np.abs(W).sum() for W, _ in net.get_params())
    assert norms["l1"] < norms["none"] and norms["l2"] < norms["none"]


def test_matches_the_numpy_reference(backend_name):
    if backend_name == "numpy":
        pytest.skip("the NumPy backend is the reference")
    X, Y = make_dataset("circle", samples=200, noise=0.1, seed=0)
    runs = {}
    for name in ("numpy", backend_name):
        net = nna.Network([2, 6, 6, 1], activation="tanh", output="sigmoid", seed=3, backend=name)
        history = net.fit(X, Y, epochs=20, lr=0.1, batch_size=32)
        runs[name] = history["loss"], net.get_params()
    np.testing.assert_allclose(runs[backend_name][0], runs["numpy"][0], rtol=1e-4)
    for (W, b), (W_ref, b_ref) in zip(runs[backend_name][1], runs["numpy"][1]):
        np.testing.assert_allclose(W, W_ref, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(b, b_ref, rtol=1e-3, atol=1e-5)


# --- divergence -----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("batch_size", [None, 16])
def test_divergence_raises_and_keeps_the_last_finite_parameters(backend_name, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 50))
    Y = np.array([[1.0, -2.0, 0.5]]) @ X + 0.3
    net = nna.Network([3, 1], output="identity", seed=0, backend=backend_name)
    after_epoch = [net.get_params()]
    with pytest.raises(nna.TrainingDiverged) as raised:
        net.fit(
            X,
            Y,
            epochs=500,
            lr=50.0,
            batch_size=batch_size,
            on_epoch_end=lambda epoch, history: after_epoch.append(net.get_params()),
        )
    error = raised.value
    assert error.epoch == len(after_epoch) - 1  # the first epoch that did not finish
    assert f"epoch {error.epoch + 1}" in str(error) and "smaller learning rate" in str(error)
    kept = net.get_params()
    assert all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in kept)
    for (W, b), (W_last, b_last) in zip(kept, after_epoch[-1]):
        np.testing.assert_array_equal(W, W_last)
        np.testing.assert_array_equal(b, b_last)


# --- prediction -----------------------------------------------------------------------------------
def test_predict_for_a_sigmoid_output(backend_name):
    net = nna.Network([1, 1], output="sigmoid", backend=backend_name)
    net.set_params([(np.array([[1.0]]), np.array([[0.0]]))])  # A = x
    X = np.array([[-3.0, -0.1, 0.2, 5.0, -20.0]])
    labels = net.predict(X)
    assert labels.shape == (1, 5) and labels.dtype.kind == "i"
    np.testing.assert_array_equal(labels, (X > 0).astype(int))
    proba = net.predict_proba(X)
    assert proba.shape == (1, 5)
    np.testing.assert_allclose(proba, 1.0 / (1.0 + np.exp(-X)), rtol=1e-6, atol=1e-7)


def test_predict_for_a_softmax_output(backend_name):
    net = nna.Network([3, 3], output="softmax", backend=backend_name, dtype="float64")
    net.set_params([(np.eye(3), np.zeros((3, 1)))])  # A = X
    X = np.random.default_rng(0).normal(size=(3, 9))
    labels = net.predict(X)
    assert labels.shape == (1, 9)
    np.testing.assert_array_equal(labels[0], np.argmax(X, axis=0))
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba, np.exp(X) / np.exp(X).sum(axis=0), rtol=1e-12)


def test_predict_for_an_identity_output(backend_name):
    net = nna.Network([2, 3], output="identity", backend=backend_name, dtype="float64")
    W, b = np.arange(6.0).reshape(3, 2), np.array([[1.0], [-1.0], [0.5]])
    net.set_params([(W, b)])
    X = np.random.default_rng(0).normal(size=(2, 4))
    np.testing.assert_allclose(net.predict(X), W @ X + b, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), net.predict_proba(X))
    assert net.predict(X).shape == (3, 4)


def test_set_params_copies_the_callers_arrays():
    net = nna.Network([2, 3, 1], backend="numpy")
    params = net.get_params()
    net.set_params(params)
    before = [W.copy() for W, _ in params]
    X, Y = make_dataset("xor", samples=20, seed=0)
    net.fit(X, Y, epochs=2, lr=0.5)
    for (W, _), original in zip(params, before):
        np.testing.assert_array_equal(W, original)
