"""``nnaccel.sklearn``: scikit-learn's own estimator checks; MLPClassifier's and MLPRegressor's
parameters, defaults and fitted attributes; trajectories against scikit-learn's MLP started from the
same ``random_state`` (so the same initial weights) with the same batches (``shuffle=False``);
early stopping, partial_fit and warm starts; and the errors for bad parameters."""

from __future__ import annotations

import inspect
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnaccel as nna  # noqa: E402
from nnaccel.sklearn import NNClassifier, NNRegressor, expected_failed_checks  # noqa: E402

PAIRS = {"classifier": (NNClassifier, MLPClassifier), "regressor": (NNRegressor, MLPRegressor)}


@parametrize_with_checks(
    [
        NNClassifier(backend="numpy"),
        NNRegressor(backend="numpy"),
        NNClassifier(backend="numpy", dtype="float32"),
        NNRegressor(backend="numpy", dtype="float32"),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# The checks that run the network (fit, predict, their consistency), for the other backends: the
# rest of the suite tests the estimator's Python layer, which is the same on every backend.
NUMERIC_CHECKS = {
    "check_classifiers_train",
    "check_regressors_train",
    "check_regressor_multioutput",
    "check_methods_subset_invariance",
    "check_fit_idempotent",
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
        "check_methods_subset_invariance",
        "check_methods_sample_order_invariance",
    }


# ----- the same parameters, defaults and attributes as scikit-learn's MLP ---------------------------
@pytest.mark.parametrize("kind", PAIRS)
def test_parameter_names_defaults_and_order_are_scikit_learns(kind):
    ours, theirs = PAIRS[kind]
    mine, mlp = ours().get_params(), theirs().get_params()
    assert set(mine) - set(mlp) == {"backend", "dtype"}  # nnaccel's own, the only additions
    assert set(mlp) <= set(mine)
    assert {name: mine[name] for name in mlp} == mlp
    signature = [(p.name, p.kind) for p in inspect.signature(ours).parameters.values()]
    expected = [(p.name, p.kind) for p in inspect.signature(theirs).parameters.values()]
    assert signature[: len(expected)] == expected  # positional ones in the same order


@pytest.mark.parametrize("old", [{"lr": 0.01}, {"epochs": 10}, {"l2": 1e-4}, {"l1": 1e-4}])
def test_the_old_names_are_gone(old):
    with pytest.raises(TypeError, match=next(iter(old))):
        NNClassifier(**old)


def data(kind: str, m: int = 96, seed: int = 0):
    """X (m, 4) and y: two or three classes (ints) or one real target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    if kind == "binary":
        return X, (X[:, 0] + X[:, 1] > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.5])
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + np.sin(3 * X[:, 3])


def both(kind: str, **settings):
    """scikit-learn's MLP and nnaccel's estimator fitted with the same settings on ``data(kind)``."""
    X, y = data(kind)
    ours, theirs = PAIRS["regressor" if kind == "regression" else "classifier"]
    backend = settings.pop("backend", "numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return theirs(**settings).fit(X, y), ours(backend=backend, **settings).fit(X, y)


def assert_same_weights(mlp, model, rtol=1e-9, atol=1e-12):
    assert len(model.coefs_) == len(mlp.coefs_)
    for ours, theirs in zip(model.coefs_ + model.intercepts_, mlp.coefs_ + mlp.intercepts_):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_fitted_attributes_are_scikit_learns(kind, solver):
    mlp, model = both(kind, hidden_layer_sizes=(5, 3), solver=solver, max_iter=5, random_state=0)
    public = lambda estimator: {name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")}  # noqa: E731
    assert public(model) == public(mlp)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_", "n_features_in_"):
        assert getattr(model, name) == getattr(mlp, name), name
    assert [W.shape for W in model.coefs_] == [W.shape for W in mlp.coefs_]  # (fan_in, fan_out)
    if kind != "regression":
        np.testing.assert_array_equal(model.classes_, mlp.classes_)
    if solver != "lbfgs":
        assert len(model.loss_curve_) == len(mlp.loss_curve_) == 5
        assert model.validation_scores_ is None and model.best_validation_score_ is None


# ----- trajectories: the same weights as scikit-learn from the same start ----------------------------
SOLVERS = {
    "sgd nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05),
    "sgd momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.05),
    "sgd invscaling": dict(solver="sgd", momentum=0.0, learning_rate="invscaling", power_t=0.25, learning_rate_init=0.2),
    # scikit-learn's epsilon sits outside Adam's bias correction; a negligible one removes the difference
    "adam": dict(solver="adam", learning_rate_init=0.01, epsilon=1e-14),
    "lbfgs": dict(solver="lbfgs"),
}
FIXED = dict(
    hidden_layer_sizes=(5, 4),
    activation="tanh",
    alpha=0.01,
    shuffle=False,
    random_state=3,
    max_iter=8,
    tol=0.0,
    n_iter_no_change=1000,
)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_same_weights_as_scikit_learn_with_the_same_batches(kind, solver):
    mlp, model = both(kind, **FIXED, batch_size=24, **SOLVERS[solver])
    assert_same_weights(mlp, model)
    assert model.n_iter_ == mlp.n_iter_ and model.t_ == mlp.t_
    np.testing.assert_allclose(model.loss_, mlp.loss_, rtol=1e-3)  # its L2 term: see the full-batch test


def test_adams_epsilon_is_the_only_difference_with_the_default_epsilon():
    mlp, model = both("binary", **FIXED, batch_size=24, solver="adam", learning_rate_init=0.01)
    assert_same_weights(mlp, model, rtol=0, atol=1e-4)  # weights of order 1; epsilon matters where |g| is small


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_full_batch_loss_curve_and_stop_on_training_loss_are_scikit_learns(kind):
    """With one batch per epoch, the loss with its L2 term is exact, so training stops at the same
    epoch (tol on the training loss, n_iter_no_change epochs) with the same weights."""
    mlp, model = both(
        kind,
        **{**FIXED, "max_iter": 500, "tol": 1e-3, "n_iter_no_change": 3},
        batch_size="auto",
        solver="sgd",
        momentum=0.5,
        learning_rate_init=0.05,
    )
    assert model.n_iter_ == mlp.n_iter_ < 500
    np.testing.assert_allclose(model.loss_curve_, mlp.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(model.best_loss_, mlp.best_loss_, rtol=1e-10)
    assert_same_weights(mlp, model)


def test_adaptive_divides_the_rate_by_5_until_it_stops_as_scikit_learn():
    # tol 100: no epoch counts as an improvement, so the rate falls every n_iter_no_change + 1 epochs
    mlp, model = both(
        "binary",
        **{**FIXED, "max_iter": 60, "tol": 100.0, "n_iter_no_change": 1},
        batch_size="auto",
        solver="sgd",
        momentum=0.0,
        learning_rate="adaptive",
        learning_rate_init=0.1,
    )
    assert model.n_iter_ == mlp.n_iter_ < 60
    assert model._schedule_state.lr == pytest.approx(mlp._optimizer.learning_rate, rel=1e-12)
    assert_same_weights(mlp, model)


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_early_stopping_is_scikit_learns(kind):
    """The same split (both draw it from random_state after the initial weights; stratified for
    two classes), the same validation scores, the same stopping epoch and the same restored weights."""
    settings = dict(
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="sgd",
        momentum=0.9,
        alpha=1e-3,
        batch_size=24,
        shuffle=False,
        random_state=2,
        max_iter=300,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=5,
        learning_rate_init=0.05,
    )
    mlp, model = both(kind, **settings)
    assert model.n_iter_ == mlp.n_iter_ < 300
    np.testing.assert_allclose(model.validation_scores_, mlp.validation_scores_, rtol=1e-10)
    assert model.best_validation_score_ == pytest.approx(mlp.best_validation_score_, rel=1e-10)
    assert model.best_loss_ is None
    assert_same_weights(mlp, model)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_early_stopping_ends_with_the_weights_of_the_best_validation_score(kind):
    """Independent of scikit-learn: a second fit that ends at the best epoch of the first ends with
    the weights the first one restored."""
    settings = dict(
        hidden_layer_sizes=(16,),
        solver="adam",
        learning_rate_init=0.03,
        batch_size=16,
        random_state=5,
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=4,
        max_iter=300,
    )
    X, y = data(kind, m=150, seed=1)
    y = y + np.random.default_rng(2).normal(0, 1.0, len(y)) if kind == "regression" else y
    Estimator = NNRegressor if kind == "regression" else NNClassifier
    model = Estimator(backend="numpy", **settings).fit(X, y)
    scores = model.validation_scores_
    best = int(np.argmax(scores)) + 1
    assert model.n_iter_ == len(scores) > best  # it trained past the best epoch, then stopped
    assert model.best_validation_score_ == max(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        at_best = Estimator(backend="numpy", **{**settings, "max_iter": best}).fit(X, y)
    assert at_best.validation_scores_ == scores[:best]
    for ours, theirs in zip(model.coefs_ + model.intercepts_, at_best.coefs_ + at_best.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


# ----- partial_fit and warm starts ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd nesterov"])
def test_partial_fit_epochs_equal_one_fit(kind, solver):
    """partial_fit keeps the optimizer's state and continues the shuffled order of the epochs."""
    X, y = data(kind)
    settings = {
        **SOLVERS[solver],
        "hidden_layer_sizes": (6,),
        "batch_size": 20,
        "random_state": 4,
        "n_iter_no_change": np.inf,
        "backend": "numpy",
    }
    Estimator = NNRegressor if kind == "regression" else NNClassifier
    extra = {} if kind == "regression" else {"classes": np.unique(y)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = Estimator(max_iter=5, **settings).fit(X, y)
    stepped = Estimator(**settings)
    for _ in range(5):
        stepped.partial_fit(X, y, **extra)
    assert stepped.n_iter_ == 1 and stepped.t_ == fitted.t_ == 5 * len(X)  # n_iter_: scikit-learn's count per call
    assert stepped.loss_curve_ == fitted.loss_curve_
    for ours, theirs in zip(stepped.coefs_ + stepped.intercepts_, fitted.coefs_ + fitted.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("solver", ["adam", "sgd nesterov"])
def test_partial_fit_and_warm_start_are_scikit_learns(solver):
    """scikit-learn keeps its optimizer across partial_fit calls and starts a new one for each
    warm-started fit."""
    X, y = data("binary")
    settings = {**FIXED, **SOLVERS[solver], "batch_size": 24, "max_iter": 3}
    mlp, model = MLPClassifier(**settings), NNClassifier(backend="numpy", **settings)
    for _ in range(3):
        mlp.partial_fit(X, y, classes=[0, 1])
        model.partial_fit(X, y, classes=[0, 1])
    assert_same_weights(mlp, model)
    assert model.loss_curve_ == pytest.approx(mlp.loss_curve_, rel=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(**settings, warm_start=True).fit(X, y).fit(X, y)
        model = NNClassifier(backend="numpy", **settings, warm_start=True).fit(X, y).fit(X, y)
    assert_same_weights(mlp, model)
    assert model.n_iter_ == 3 and model.t_ == 6 * len(X) and len(model.loss_curve_) == 6


def test_partial_fit_continues_after_pickling():
    X, y = data("multiclass")
    model = NNClassifier((6,), batch_size=16, random_state=0, backend="numpy")
    for _ in range(2):
        model.partial_fit(X, y, classes=[0, 1, 2])
    again = pickle.loads(pickle.dumps(model))
    assert "_network" not in again.__dict__
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    model.partial_fit(X, y)
    again.partial_fit(X, y)
    for ours, theirs in zip(again.coefs_, model.coefs_):
        np.testing.assert_array_equal(ours, theirs)


def test_partial_fit_refusals_are_scikit_learns():
    X, y = data("binary")
    assert not hasattr(NNClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(NNRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="classes"):
        NNClassifier(backend="numpy").partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        NNClassifier(early_stopping=True, backend="numpy").partial_fit(X, y, classes=[0, 1])
    model = NNClassifier((3,), backend="numpy").partial_fit(X, y, classes=[0, 1, 2])  # y need not hold every class
    assert list(model.classes_) == [0, 1, 2] and model.predict_proba(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match="classes not in"):
        model.partial_fit(X, np.full(len(X), 5))


# ----- bad parameters: a clear error at fit, the estimator unchanged --------------------------------------
BAD = [
    ("solver", "newton"),
    ("momentum", -0.1),
    ("momentum", 1.5),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("learning_rate", "cyclic"),
    ("learning_rate_init", 0.0),
    ("alpha", -1.0),
    ("activation", "swish"),
    ("hidden_layer_sizes", (0,)),
    ("batch_size", 0),
    ("max_iter", 0),
    ("n_iter_no_change", 0),
    ("epsilon", 0.0),
    ("tol", -1.0),
    ("power_t", -0.5),
    ("max_fun", 0),
    ("shuffle", "yes"),
    ("validation_fraction", 1.0),
    ("dtype", "float16"),
]


@pytest.mark.parametrize("name, value", BAD, ids=[f"{name}={value!r}" for name, value in BAD])
def test_a_bad_parameter_is_named_at_fit_and_changes_nothing(name, value):
    X, y = data("binary")
    model = NNClassifier((4,), max_iter=3, random_state=0, backend="numpy").fit(X, y)
    before = (model.get_params(), [W.copy() for W in model.coefs_], model.loss_curve_[:], model.predict_proba(X))
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=name):
        model.fit(X, y)
    after = model.get_params()
    assert after == {**before[0], name: value}
    for W, W_before in zip(model.coefs_, before[1]):
        np.testing.assert_array_equal(W, W_before)
    assert model.loss_curve_ == before[2]
    np.testing.assert_array_equal(model.predict_proba(X), before[3])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_early_stopping_needs_a_validation_fraction_inside_0_1(fraction):
    X, y = data("regression")
    with pytest.raises(
        ValueError,
        match=r"validation_fraction must be a finite number in \(0, 1\)" if 0 <= fraction < 1 else "validation_fraction",
    ):
        NNRegressor(early_stopping=True, validation_fraction=fraction, backend="numpy").fit(X, y)


def test_divergence_is_scikit_learns_value_error_and_changes_nothing():
    X, y = data("regression")
    model = NNRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0, backend="numpy").fit(X, y * 1e3)
    before = [W.copy() for W in model.coefs_]
    model.set_params(solver="sgd", learning_rate_init=10.0, max_iter=50)
    with pytest.raises(ValueError, match="non-finite parameter weights"), np.errstate(all="ignore"):
        model.fit(X, y * 1e3)
    for W, W_before in zip(model.coefs_, before):
        np.testing.assert_array_equal(W, W_before)


def test_regressor_loss_is_squared_error_only():
    X, y = data("regression")
    with pytest.raises(ValueError, match="squared_error"):
        NNRegressor(loss="poisson", backend="numpy").fit(X, y)


@pytest.mark.parametrize("refit", ["one class", "bad learning rate"])
def test_a_failed_refit_leaves_the_classifier_as_it_was(refit):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    model = NNClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, backend="numpy").fit(X, y)
    before = (model.classes_.copy(), [W.copy() for W in model.coefs_], model.predict_proba(X))
    if refit == "one class":
        arguments = (X, np.full(60, 7))
    else:
        model.set_params(learning_rate_init=-1)
        arguments = (rng.normal(size=(60, 5)), np.arange(60) % 3)
    with pytest.raises(ValueError):
        model.fit(*arguments)
    np.testing.assert_array_equal(model.classes_, before[0])
    assert model.n_features_in_ == 2
    for W, W_old in zip(model.coefs_, before[1]):
        np.testing.assert_array_equal(W, W_old)
    np.testing.assert_array_equal(model.predict_proba(X), before[2])
    assert set(model.predict(X)) <= {0, 1}


# ----- the estimator on the Network API -----------------------------------------------------------------
@pytest.mark.parametrize("classes", [2, 3])
def test_classifier_predicts_with_its_network_on_transposed_data(classes):
    X, y = data("binary" if classes == 2 else "multiclass")
    names = np.array(["ant", "bee", "cat"])[y]
    model = NNClassifier((5,), "tanh", max_iter=4, random_state=3, backend="numpy").fit(X, names)
    assert list(model.classes_) == sorted(set(names))
    assert model.network_.layers == [4, 5, 1 if classes == 2 else classes]
    for (W, b), coef, intercept in zip(model.network_.get_params(), model.coefs_, model.intercepts_):
        np.testing.assert_array_equal(W, coef.T)  # nnaccel's (fan_out, fan_in)
        np.testing.assert_array_equal(b[:, 0], intercept)
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(X), classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[:, -1], model.network_.forward(X.T)[-1], rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(probabilities, axis=1)])
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(probabilities))


def test_regressor_single_and_multi_output():
    X, y = data("regression", m=200)
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = NNRegressor(
        hidden_layer_sizes=(), activation="identity", solver="lbfgs", alpha=0.0, random_state=0, backend="numpy"
    ).fit(X, y)
    assert model.predict(X).shape == (200,)
    assert model.score(X, y) > 0.999
    np.testing.assert_allclose(model.coefs_[0][:3, 0], [1.0, -2.0, 0.5], atol=1e-3)
    both_targets = NNRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=30, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        both_targets.fit(X, np.column_stack([y, -y]))
    assert both_targets.predict(X).shape == (200, 2) and both_targets.n_outputs_ == 2


def test_verbose_prints_scikit_learns_lines(capsys):
    X, y = data("binary")
    NNClassifier((3,), max_iter=2, verbose=True, random_state=0, backend="numpy", early_stopping=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"Iteration 1, loss = \d\.\d{8}", lines[0]) and lines[1].startswith("Validation score: ")


# ----- the mapping from scikit-learn's MLP on the bare network, one epoch at a time ------------------------
def one_sgd_epoch_of_mlp(mlp_class, X, y, **settings):
    """(weights before, weights after) one full-batch plain-SGD epoch of scikit-learn's MLP, in
    nnaccel's orientation [(W, b)]."""
    mlp = mlp_class(
        solver="sgd",
        momentum=0.0,
        nesterovs_momentum=False,
        learning_rate="constant",
        max_iter=1,
        batch_size=len(X),
        shuffle=False,
        warm_start=True,
        random_state=0,
        **settings,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
        before = [(W.T.copy(), b.reshape(-1, 1).copy()) for W, b in zip(mlp.coefs_, mlp.intercepts_)]
        mlp.fit(X, y)  # warm start: one more epoch from ``before``
    after = [(W.T.copy(), b.reshape(-1, 1).copy()) for W, b in zip(mlp.coefs_, mlp.intercepts_)]
    return before, after


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_one_epoch_of_the_network_matches_scikit_learn_with_alpha_as_l2(kind):
    """With the same starting weights, nnaccel's step is scikit-learn's: same loss conventions, and
    ``alpha`` is ``l2 = alpha / batch_size``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    alpha, lr = 0.5, 0.1
    if kind == "regression":
        y = X @ np.array([1.0, -1.0, 2.0])
        before, after = one_sgd_epoch_of_mlp(
            MLPRegressor, X, y, hidden_layer_sizes=(5,), activation="tanh", alpha=alpha, learning_rate_init=lr
        )
        output, Y = "identity", y.reshape(1, -1)
    else:
        classes = 2 if kind == "binary" else 3
        y = np.arange(64) % classes
        before, after = one_sgd_epoch_of_mlp(
            MLPClassifier, X, y, hidden_layer_sizes=(5,), activation="tanh", alpha=alpha, learning_rate_init=lr
        )
        output = "sigmoid" if classes == 2 else "softmax"
        Y = y.reshape(1, -1).astype(float) if classes == 2 else np.eye(classes)[:, y]
    network = nna.Network([3, 5, Y.shape[0]], "tanh", output, backend="numpy", dtype="float64")
    network.set_params(before)
    network.fit(X.T, Y, epochs=1, lr=lr, l2=alpha / len(X), shuffle=False)
    for (W, b), (W_mlp, b_mlp) in zip(network.get_params(), after):
        np.testing.assert_allclose(W, W_mlp, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, b_mlp, rtol=1e-10, atol=1e-12)


# ----- every backend ------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd nesterov", "adam", "lbfgs"])
def test_same_weights_as_scikit_learn_on_every_backend(solver, backend_name):
    mlp, model = both("multiclass", **FIXED, batch_size=24, **SOLVERS[solver], backend=backend_name)
    assert model.network_.backend.name == backend_name
    assert_same_weights(mlp, model, rtol=1e-8, atol=1e-10)


def test_readme_and_docs_blocks_run_as_written():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    start = readme.index("## scikit-learn estimators")
    end = readme.find("\n## ", start + 1)
    pages = {
        "README.md": readme[start : end if end != -1 else None],
        "docs/sklearn.md": (root / "docs" / "sklearn.md").read_text(),
    }
    for page, text in pages.items():
        blocks = re.findall(r"```python\n(.*?)```", text, re.S)
        assert blocks, page
        for code in blocks:
            # as written, on the backend that starts quickest (a block's backend=None is the current one)
            with nna.use_backend("numpy"), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                exec(compile(code, page, "exec"), {})
