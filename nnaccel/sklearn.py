"""scikit-learn estimators on nnaccel networks: ``NNClassifier`` and ``NNRegressor``.

They take X as (m, n), rows as examples, as scikit-learn does, and hand nnaccel its (n, m), one
column per example. Training is nnaccel's plain (mini-batch) gradient descent on any backend.

Mapping from ``MLPClassifier``/``MLPRegressor`` with ``solver="sgd", momentum=0,
nesterovs_momentum=False, learning_rate="constant"``: ``hidden_layer_sizes`` and ``batch_size`` are
the same, ``activation="logistic"`` is nnaccel's ``"sigmoid"``, ``learning_rate_init`` is ``lr``,
``max_iter`` is ``epochs``, and ``alpha`` is ``l2 = alpha / batch_size`` (scikit-learn adds
``alpha * W`` to the summed, not the mean, gradient of a batch). scikit-learn's initial weights
differ (Glorot uniform for every activation), so the two reach similar, not identical, scores.

Requires scikit-learn (the ``sklearn`` extra). With the default ``dtype="float64"`` every check of
``sklearn.utils.estimator_checks.check_estimator`` passes (checked on NumPy and Numba). With
``dtype="float32"`` two checks are expected to fail; ``expected_failed_checks(estimator)`` lists them
with the reason, in the form ``check_estimator(..., expected_failed_checks=...)`` takes. Two checks
skip themselves unless their optional parts are there: ``check_array_api_input`` (needs
``SCIPY_ARRAY_API=1``; these estimators take NumPy input) and ``check_*_data_not_an_array`` (needs
pandas).
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .core.activations import HIDDEN_ACTIVATIONS

_FLOAT32_REASON = (
    "float32 predictions of a batch and of a subset (or a reordering) of it differ in the last bits, "
    "because BLAS sums in a different order for different m; the check asks for 1e-7 relative agreement, "
    "float32 keeps about 1e-7"
)


def expected_failed_checks(estimator) -> dict[str, str]:
    """The checks ``estimator`` is expected to fail, with the reason: none in float64."""
    if str(getattr(estimator, "dtype", "float64")) != "float32":
        return {}
    return {"check_methods_subset_invariance": _FLOAT32_REASON, "check_methods_sample_order_invariance": _FLOAT32_REASON}


# Activation names scikit-learn's MLP uses, as nnaccel spells them.
_ALIASES = {"logistic": "sigmoid"}


class _NNBase(BaseEstimator):
    """What both estimators share: the hyperparameters, the checks, fit and the forward pass."""

    _output = "identity"

    def _store(self, hidden_layer_sizes, activation, lr, epochs, batch_size, l1, l2, shuffle, random_state, backend, dtype):
        # scikit-learn's rule: __init__ only stores its arguments; fit checks them
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.l1 = l1
        self.l2 = l2
        self.shuffle = shuffle
        self.random_state = random_state
        self.backend = backend
        self.dtype = dtype

    # ----- checks ----------------------------------------------------------------------------------
    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1 for size in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, e.g. (100,) or (6, 6); got {self.hidden_layer_sizes!r}")
        return [int(size) for size in sizes]

    def _activation(self) -> str:
        name = _ALIASES.get(self.activation, self.activation)
        if name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected one of {', '.join(HIDDEN_ACTIVATIONS)} (or 'logistic')")
        return name

    def _batch(self, m: int) -> int | None:
        if self.batch_size in (None, "auto"):
            return min(200, m)  # scikit-learn's "auto"
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, 'auto' or None; got {self.batch_size!r}")
        return min(int(self.batch_size), m)

    def _check_X(self, X, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, dtype=(np.float64, np.float32), ensure_min_samples=1)

    # ----- training ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _unchanged_on_failure(self):
        """A fit that raises leaves the estimator as it was (its old classes, parameters and
        n_features_in_ together), never half refitted."""
        state = self.__dict__.copy()
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    def _fit_network(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Train on X (m, n) and targets Y (outputs, m) and keep the fitted attributes."""
        import nnaccel as nna

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        network = nna.Network(
            [X.shape[1], *self._hidden(), Y.shape[0]],
            activation=self._activation(),
            output=self._output,
            seed=seed,
            backend=self.backend,
            dtype=self.dtype,
        )
        history = network.fit(
            np.ascontiguousarray(X.T), Y, epochs=self.epochs, lr=self.lr, batch_size=self._batch(X.shape[0]),
            l1=self.l1, l2=self.l2, shuffle=self.shuffle, seed=seed,
        )
        self.params_ = network.get_params()
        self.loss_curve_ = list(history["loss"])
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = len(self.loss_curve_)
        self._network = network

    @property
    def network_(self):
        """The fitted ``nnaccel.Network`` (rebuilt from ``params_`` after unpickling)."""
        check_is_fitted(self, "params_")
        network = getattr(self, "_network", None)
        if network is None:
            import nnaccel as nna

            layers = [self.params_[0][0].shape[1]] + [W.shape[0] for W, _ in self.params_]
            network = nna.Network(layers, activation=self._activation(), output=self._output,
                                  backend=self.backend, dtype=self.params_[0][0].dtype)
            network.set_params(self.params_)
            self._network = network
        return network

    def __getstate__(self):
        # the network holds backend arrays (GPU memory with CuPy); params_ rebuilds it
        state = self.__dict__.copy()
        state.pop("_network", None)
        return state

    def _forward(self, X) -> np.ndarray:
        """The output layer's activations, (m, outputs), for X (m, n)."""
        check_is_fitted(self, "params_")
        X = self._check_X(X, reset=False)
        return self.network_.forward(np.ascontiguousarray(X.T)).T.astype(np.float64)


class NNClassifier(ClassifierMixin, _NNBase):
    """A classifier on an nnaccel network: a sigmoid output for two classes, softmax for more.

    Parameters: ``hidden_layer_sizes`` (tuple of ints), ``activation`` (sigmoid/logistic, tanh,
    relu, leaky_relu, elu, selu, identity), ``lr`` (learning rate), ``epochs``, ``batch_size``
    (int, or "auto"/None for min(200, m) as scikit-learn), ``l1``/``l2`` (penalties on the
    weights), ``shuffle``, ``random_state`` (int seed, RandomState or None), ``backend`` (numpy,
    numba, cupy, auto or None for the current one), ``dtype`` (float64 or float32).

    Fitted attributes: ``classes_``, ``n_features_in_``, ``params_`` ([(W, b)] per layer, nnaccel's
    orientation), ``loss_curve_``, ``loss_``, ``n_iter_``, ``network_``.
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        lr=0.01,
        epochs=200,
        batch_size=32,
        l1=0.0,
        l2=0.0,
        shuffle=True,
        random_state=None,
        backend=None,
        dtype="float64",
    ):
        self._store(hidden_layer_sizes, activation, lr, epochs, batch_size, l1, l2, shuffle, random_state, backend, dtype)


    def fit(self, X, y):
        """X (m, n), y (m,) class labels of any type."""
        with self._unchanged_on_failure():
            X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), ensure_min_samples=1)
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            self._hidden(), self._activation()  # checked before the labels are encoded
            binarizer = LabelBinarizer().fit(y)
            self.classes_ = binarizer.classes_
            if len(self.classes_) < 2:
                raise ValueError(f"the data has one class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
            self._output = "sigmoid" if len(self.classes_) == 2 else "softmax"
            Y = binarizer.transform(y).T.astype(np.float64)  # (1, m) of 0/1, or (classes, m) one-hot
            self._fit_network(X, Y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(m, classes): each class's probability, in the order of ``classes_``."""
        H = self._forward(X)
        return np.hstack([1.0 - H, H]) if H.shape[1] == 1 else H

    def predict(self, X) -> np.ndarray:
        """(m,) class labels."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "classes_" in state:
            self._output = "sigmoid" if len(state["classes_"]) == 2 else "softmax"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class NNRegressor(RegressorMixin, _NNBase):
    """A regressor on an nnaccel network: identity output, half the mean squared error, one output
    unit per target column. Parameters and attributes as ``NNClassifier`` (without ``classes_``);
    the default ``lr`` is smaller, because the squared error's gradient grows with the target's
    scale (standardise y, e.g. with TransformedTargetRegressor, to use larger rates)."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        lr=0.001,
        epochs=200,
        batch_size=32,
        l1=0.0,
        l2=0.0,
        shuffle=True,
        random_state=None,
        backend=None,
        dtype="float64",
    ):
        self._store(hidden_layer_sizes, activation, lr, epochs, batch_size, l1, l2, shuffle, random_state, backend, dtype)


    def fit(self, X, y):
        """X (m, n), y (m,) or (m, targets)."""
        with self._unchanged_on_failure():
            X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), y_numeric=True, multi_output=True, ensure_min_samples=1)
            self._hidden(), self._activation()
            self._targets = y.ndim
            Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1).T
            self._fit_network(X, Y)
        return self

    def predict(self, X) -> np.ndarray:
        """(m,) predictions, or (m, targets) when fitted on a 2-D y."""
        H = self._forward(X)
        return H[:, 0] if self._targets == 1 else H

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
