"""``nnaccel.sklearn``: scikit-learn's own estimator checks, and the documented mapping from
MLPClassifier/MLPRegressor (plain SGD) checked step for step against scikit-learn."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnaccel as nna  # noqa: E402
from nnaccel.sklearn import NNClassifier, NNRegressor, expected_failed_checks  # noqa: E402


@parametrize_with_checks(
    [NNClassifier(backend="numpy"), NNRegressor(backend="numpy"),
     NNClassifier(backend="numpy", dtype="float32"), NNRegressor(backend="numpy", dtype="float32")],
    expected_failed_checks=expected_failed_checks,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# The checks that run the network (fit, predict, their consistency), for the other backends: the
# rest of the suite tests the estimator's Python layer, which is the same on every backend.
NUMERIC_CHECKS = {
    "check_classifiers_train", "check_regressors_train", "check_regressor_multioutput",
    "check_methods_subset_invariance", "check_fit_idempotent",
}


@pytest.mark.slow
@pytest.mark.parametrize("Estimator", [NNClassifier, NNRegressor])
def test_scikit_learn_numeric_checks_on_other_backends(Estimator, backend_name):
    from sklearn.utils.estimator_checks import estimator_checks_generator

    if backend_name == "numpy":
        pytest.skip("numpy runs the whole suite in test_scikit_learn_estimator_checks")
    ran = set()
    for estimator, check in estimator_checks_generator(Estimator(backend=backend_name), mark=None):
        name = getattr(check, "func", check).__name__
        if name in NUMERIC_CHECKS:
            check(estimator)
            ran.add(name)
    assert len(ran) >= 3


def test_expected_failures_are_only_float32_tolerance_checks():
    assert expected_failed_checks(NNClassifier()) == {}
    assert set(expected_failed_checks(NNRegressor(dtype="float32"))) == {
        "check_methods_subset_invariance", "check_methods_sample_order_invariance"}


def classification_data(classes, m=120, n=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(m) % classes
    X = rng.normal(size=(m, n)) + y[:, None] * 1.5
    return X, y


@pytest.mark.parametrize("classes", [2, 3])
def test_classifier_is_nnaccels_network_on_transposed_data(classes):
    """The estimator is a thin layer: the same seed and settings give the Network API's result."""
    X, y = classification_data(classes)
    names = np.array(["ant", "bee", "cat"])[y]
    model = NNClassifier((5,), "tanh", lr=0.05, epochs=4, batch_size=16, l2=1e-3, random_state=3, backend="numpy").fit(X, names)
    seed = int(np.random.RandomState(3).randint(np.iinfo(np.int32).max))
    output = "sigmoid" if classes == 2 else "softmax"
    network = nna.Network([4, 5, 1 if classes == 2 else classes], "tanh", output, seed=seed, backend="numpy", dtype="float64")
    Y = y.reshape(1, -1).astype(float) if classes == 2 else np.eye(classes)[:, y]
    history = network.fit(X.T, Y, epochs=4, lr=0.05, batch_size=16, l2=1e-3, seed=seed)
    for (W, b), (W_fit, b_fit) in zip(network.get_params(), model.params_):
        np.testing.assert_array_equal(W, W_fit)
        np.testing.assert_array_equal(b, b_fit)
    assert model.loss_curve_ == history["loss"] and model.n_iter_ == 4
    assert list(model.classes_) == sorted(set(names))
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(X), classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    H = network.forward(X.T)
    np.testing.assert_allclose(probabilities[:, -1], H[-1], rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(probabilities, axis=1)])


def test_regressor_single_and_multi_output():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = NNRegressor((), "identity", lr=0.05, epochs=60, batch_size=20, random_state=0, backend="numpy").fit(X, y)
    assert model.predict(X).shape == (200,)
    assert model.score(X, y) > 0.999
    np.testing.assert_allclose(model.params_[0][0][0], [1.0, -2.0, 0.5], atol=0.02)
    both = NNRegressor((8,), "tanh", lr=0.05, epochs=30, random_state=0, backend="numpy").fit(X, np.column_stack([y, -y]))
    assert both.predict(X).shape == (200, 2)


def test_pickle_round_trip_keeps_predictions():
    X, y = classification_data(3)
    model = NNClassifier((6,), epochs=5, random_state=0, backend="numpy").fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    assert "_network" not in again.__dict__
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_bad_hyperparameters_are_named_at_fit():
    X, y = classification_data(2)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        NNClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="swish"):
        NNClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        NNRegressor(batch_size=-1).fit(X, y.astype(float))


# ----- the mapping from scikit-learn's MLP, one epoch at a time --------------------------------------
def one_sgd_epoch_of_mlp(mlp_class, X, y, **settings):
    """(weights before, weights after) one full-batch plain-SGD epoch of scikit-learn's MLP, in
    nnaccel's orientation [(W, b)]."""
    mlp = mlp_class(solver="sgd", momentum=0.0, nesterovs_momentum=False, learning_rate="constant", max_iter=1,
                    batch_size=len(X), shuffle=False, warm_start=True, random_state=0, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
        before = [(W.T.copy(), b.reshape(-1, 1).copy()) for W, b in zip(mlp.coefs_, mlp.intercepts_)]
        mlp.fit(X, y)  # warm start: one more epoch from ``before``
    after = [(W.T.copy(), b.reshape(-1, 1).copy()) for W, b in zip(mlp.coefs_, mlp.intercepts_)]
    return before, after


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_one_epoch_matches_scikit_learn_with_alpha_as_l2(kind):
    """With the same starting weights, nnaccel's step is scikit-learn's: same loss conventions, and
    ``alpha`` is ``l2 = alpha / batch_size``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    alpha, lr = 0.5, 0.1
    if kind == "regression":
        y = X @ np.array([1.0, -1.0, 2.0])
        before, after = one_sgd_epoch_of_mlp(MLPRegressor, X, y, hidden_layer_sizes=(5,), activation="tanh",
                                             alpha=alpha, learning_rate_init=lr)
        output, Y = "identity", y.reshape(1, -1)
    else:
        classes = 2 if kind == "binary" else 3
        y = np.arange(64) % classes
        before, after = one_sgd_epoch_of_mlp(MLPClassifier, X, y, hidden_layer_sizes=(5,), activation="tanh",
                                             alpha=alpha, learning_rate_init=lr)
        output = "sigmoid" if classes == 2 else "softmax"
        Y = y.reshape(1, -1).astype(float) if classes == 2 else np.eye(classes)[:, y]
    network = nna.Network([3, 5, Y.shape[0]], "tanh", output, backend="numpy", dtype="float64")
    network.set_params(before)
    network.fit(X.T, Y, epochs=1, lr=lr, l2=alpha / len(X), shuffle=False)
    for (W, b), (W_mlp, b_mlp) in zip(network.get_params(), after):
        np.testing.assert_allclose(W, W_mlp, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, b_mlp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("refit", ["one class", "negative lr"])
def test_a_failed_refit_leaves_the_classifier_as_it_was(refit):
    from nnaccel.sklearn import NNClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    model = NNClassifier(hidden_layer_sizes=(4,), epochs=3, random_state=0, backend="numpy").fit(X, y)
    before = (model.classes_.copy(), [(W.copy(), b.copy()) for W, b in model.params_], model.predict_proba(X))
    if refit == "one class":
        arguments = (X, np.full(60, 7))
    else:
        model.set_params(lr=-1)
        arguments = (rng.normal(size=(60, 5)), np.arange(60) % 3)
    with pytest.raises(ValueError):
        model.fit(*arguments)
    np.testing.assert_array_equal(model.classes_, before[0])
    assert model.n_features_in_ == 2
    for (W, b), (W_old, b_old) in zip(model.params_, before[1]):
        np.testing.assert_array_equal(W, W_old)
        np.testing.assert_array_equal(b, b_old)
    np.testing.assert_array_equal(model.predict_proba(X), before[2])
    assert set(model.predict(X)) <= {0, 1}
