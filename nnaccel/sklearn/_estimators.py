"""``NNClassifier`` and ``NNRegressor``: scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on
nnaccel networks (see the package's docstring for the mapping)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..optim import OptimizerState, ScheduleState
from ._params import STOCHASTIC_SOLVERS, check_params
from ._solvers import StochasticRun, fit_lbfgs

# scikit-learn's output activations, as nnaccel names its output layers
_OUTPUTS = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}
_DATA_TYPES = (np.float64, np.float32)


def _partial_fit_available(estimator) -> bool:
    """scikit-learn offers partial_fit only for the stochastic solvers."""
    if estimator.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {estimator.solver} is not stochastic.")
    return True


class _NNBase(BaseEstimator):
    """What both estimators share: the hyperparameters, the initial weights, the solvers, the
    fitted attributes and the forward pass."""

    # The stochastic solvers' fitted attributes and carried state (declared for the type checker;
    # set by ``_initialize`` and ``_ensure_stochastic_attributes``).
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    best_loss_: float | None
    _shuffle_seed: int | None
    _optimizer_state: OptimizerState | None
    _schedule_state: ScheduleState | None

    def _store(self, params: dict) -> None:
        # scikit-learn's rule: __init__ only stores its arguments; fit checks them
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # ----- fit --------------------------------------------------------------------------------------
    def _fit(self, X, y, *, incremental: bool, classes=None):
        """scikit-learn's ``_fit``: check, initialise on the first pass, run the solver."""
        settings = check_params(self)
        self._check_loss()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, y = self._validate_input(X, y, incremental=incremental, reset=first_pass, classes=classes)
        layer_units = [X.shape[1], *settings.hidden, Y.shape[1]]
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, settings, random_state)
        network = self._training_network(layer_units, settings)
        if self.solver == "lbfgs":
            fit_lbfgs(self, network, X, Y)
        else:
            self._fit_stochastic(network, settings, X, Y, y, random_state, incremental)
        self._keep(network, settings)
        return self

    def _initialize(self, layer_units: list[int], settings, random_state) -> None:
        """scikit-learn's ``_initialize``: its counters, and its initial weights drawn from
        ``random_state`` in its order (Glorot uniform, biases too), so the same random_state starts
        both libraries from the same numbers."""
        self.n_iter_, self.t_ = 0, 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation(layer_units[-1])
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(settings.init_factor / (fan_in + fan_out))
            self.coefs_.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
            self.intercepts_.append(random_state.uniform(-bound, bound, fan_out))
        self._best_params = self._nnaccel_params()
        self._network = None
        self._optimizer_state = self._schedule_state = self._state_optimizer = None
        self._shuffle_seed, self._epochs_run = None, 0
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _fit_stochastic(self, network, settings, X, Y, y, random_state, incremental: bool) -> None:
        """The sgd and adam solvers: the early-stopping split, the optimizer's state carried over
        by partial_fit (a fit, warm-started or not, starts a new one, as scikit-learn's does), then
        the epochs."""
        self._ensure_stochastic_attributes()
        validation = None
        if self.early_stopping:
            X, Y, validation = self._validation_split(X, Y, y, random_state)
        if not incremental or self._state_optimizer != settings.optimizer:
            self._optimizer_state = self._schedule_state = None
            self._state_optimizer = settings.optimizer
        if not incremental or self._shuffle_seed is None:
            # drawn after the initial weights and the split, from the same random_state
            self._shuffle_seed, self._epochs_run = int(random_state.randint(np.iinfo(np.int32).max)), 0
        StochasticRun(
            self,
            network,
            settings,
            X,
            Y,
            validation=validation,
            seed=self._shuffle_seed,
            start_epoch=self._epochs_run,
            incremental=incremental,
        ).run()

    def _ensure_stochastic_attributes(self) -> None:
        """The stochastic solvers' attributes, also after a first fit with lbfgs (warm start)."""
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_, self._no_improvement_count = [], 0
            self.best_loss_, self.validation_scores_, self.best_validation_score_ = np.inf, None, None
        if self.early_stopping:
            if self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        elif self.best_loss_ is None:
            self.best_loss_ = np.inf

    def _validation_split(self, X, Y, y, random_state):
        """(X_train, Y_train, (X_val, y_val)): scikit-learn's split of validation_fraction,
        stratified by class for a classifier."""
        stratify = y if isinstance(self, ClassifierMixin) else None
        X_train, X_val, Y_train, _, _, y_val = train_test_split(
            X, Y, y, random_state=random_state, test_size=self.validation_fraction, stratify=stratify
        )
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
        return X_train, Y_train, (X_val, y_val)

    # ----- the network ------------------------------------------------------------------------------
    def _nnaccel_params(self) -> list:
        """``coefs_``/``intercepts_`` in nnaccel's orientation: [(W (fan_out, fan_in), b (fan_out, 1))]."""
        return [(W.T, b.reshape(-1, 1)) for W, b in zip(self.coefs_, self.intercepts_)]

    def _build_network(self, layer_units: list[int], activation: str, dtype=None):
        """A network holding ``coefs_``; ``dtype`` None is the ``dtype`` parameter's."""
        import nnaccel as nna

        network = nna.Network(
            layer_units,
            activation=activation,
            output=_OUTPUTS[self.out_activation_],
            backend=self.backend,
            dtype=dtype or self.dtype,
        )
        network.set_params(self._nnaccel_params())
        return network

    def _training_network(self, layer_units: list[int], settings):
        """The network to train: the fitted one while backend, dtype and activation stay the same,
        else one rebuilt from ``coefs_``; a warm start or partial_fit keeps the layer sizes."""
        fitted = [W.shape[0] for W in self.coefs_] + [self.coefs_[-1].shape[1]]
        if fitted != layer_units:
            raise ValueError(
                f"the fitted network has layers {fitted} but this fit needs {layer_units} (inputs, "
                "hidden_layer_sizes, outputs); fit with warm_start=False to start a new network"
            )
        from ..backends import resolve
        from ..core.validation import resolve_dtype

        network = getattr(self, "_network", None)
        if (
            network is None
            or network.activations != [settings.activation] * len(settings.hidden)
            or network.dtype != resolve_dtype(self.dtype)
            or network.backend is not resolve(self.backend)
        ):
            network = self._build_network(layer_units, settings.activation)
        return network

    def _keep(self, network, settings) -> None:
        """The fitted attributes from the trained network (scikit-learn's orientation)."""
        params = network.get_params()
        self.coefs_ = [W.T.copy() for W, _ in params]
        self.intercepts_ = [b.ravel().copy() for _, b in params]
        self._fitted_activation = settings.activation
        self._network = network

    @property
    def network_(self):
        """The fitted ``nnaccel.Network`` (rebuilt from ``coefs_`` after unpickling)."""
        check_is_fitted(self, "coefs_")
        if getattr(self, "_network", None) is None:
            layer_units = [self.coefs_[0].shape[0]] + [W.shape[1] for W in self.coefs_]
            self._network = self._build_network(layer_units, self._fitted_activation, self.coefs_[0].dtype)
        return self._network

    @property
    def params_(self) -> list:
        """The fitted parameters in nnaccel's orientation, [(W (fan_out, fan_in), b (fan_out, 1))]
        (``coefs_`` and ``intercepts_`` are scikit-learn's)."""
        check_is_fitted(self, "coefs_")
        return [(W.T.copy(), b.reshape(-1, 1).copy()) for W, b in zip(self.coefs_, self.intercepts_)]

    def _forward(self, X) -> np.ndarray:
        """The output layer's activations, (m, outputs), for X (m, n)."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=_DATA_TYPES, ensure_min_samples=1)
        return self.network_.forward(np.ascontiguousarray(X.T)).T.astype(np.float64)

    # ----- state ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _unchanged_on_failure(self):
        """A fit that raises leaves the estimator as it was (its classes, weights, counters and
        n_features_in_ together), never half refitted."""
        network = self.__dict__.get("_network")
        saved = copy.deepcopy({name: value for name, value in self.__dict__.items() if name != "_network"})
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            self._network = network
            if network is not None:
                network.set_params(self._nnaccel_params())  # a failed run may have moved them
            raise

    def __getstate__(self):
        # the network holds backend arrays (GPU memory with CuPy); coefs_ rebuilds it
        state = dict(super().__getstate__())  # Python 3.11's is the live __dict__
        state.pop("_network", None)
        return state

    def _check_loss(self) -> None:
        """Only MLPRegressor has a ``loss`` parameter."""


class NNClassifier(ClassifierMixin, _NNBase):
    """``MLPClassifier`` on an nnaccel network: a logistic output for two classes, softmax for
    more; the same parameters, defaults and fitted attributes (see ``nnaccel.sklearn``), plus
    ``backend`` (numpy, numba, cupy, auto; None for the current one) and ``dtype`` (float64 or
    float32)."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        dtype="float64",
    ):
        self._store(locals())

    def fit(self, X, y):
        """X (m, n), y (m,) class labels of any type."""
        with self._unchanged_on_failure():
            return self._fit(X, y, incremental=False)

    @available_if(_partial_fit_available)
    def partial_fit(self, X, y, classes=None):
        """One epoch over X, y, continuing the weights and the optimizer's state; ``classes`` (all
        the labels there will be) is needed on the first call."""
        with self._unchanged_on_failure():
            return self._fit(X, y, incremental=True, classes=classes)

    def _validate_input(self, X, y, *, incremental, reset, classes):
        """(X rows, Y (m, outputs) of 0/1, y labels); sets ``classes_`` when the labels start anew."""
        X, y = validate_data(self, X, y, dtype=_DATA_TYPES, ensure_min_samples=1, reset=reset)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if incremental and not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._set_classes(np.asarray(classes))
        elif incremental and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on the first call to partial_fit, {self.classes_!r}.")
        elif reset or not hasattr(self, "classes_"):
            self._set_classes(y)
        labels = unique_labels(y)
        if self.warm_start and not incremental and set(labels) != set(self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                f"Previously got {self.classes_}, `y` has {labels}"
            )
        if len(np.setdiff1d(labels, self.classes_)):
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {labels}.")
        Y = self._binarizer.transform(y).astype(np.float64)  # (m, 1) of 0/1, or (m, classes) one-hot
        return X, Y, y

    def _set_classes(self, labels: np.ndarray) -> None:
        binarizer = LabelBinarizer().fit(labels)
        if len(binarizer.classes_) < 2:
            raise ValueError(f"the data has one class ({binarizer.classes_[0]!r}); a classifier needs at least 2 classes")
        self._binarizer, self.classes_ = binarizer, binarizer.classes_

    def _out_activation(self, n_outputs: int) -> str:
        return "logistic" if n_outputs == 1 else "softmax"

    def _score_outputs(self, H: np.ndarray, y) -> float:
        """Accuracy of the outputs H (m, outputs) on labels y (the early-stopping score)."""
        if not np.isfinite(H).all():
            return np.nan
        return accuracy_score(y, self._labels(H))

    def _labels(self, H: np.ndarray) -> np.ndarray:
        index = (H[:, 0] > 0.5).astype(int) if H.shape[1] == 1 else np.argmax(H, axis=1)
        return self.classes_[index]

    def predict_proba(self, X) -> np.ndarray:
        """(m, classes): each class's probability, in the order of ``classes_``."""
        H = self._forward(X)
        return np.hstack([1.0 - H, H]) if H.shape[1] == 1 else H

    def predict_log_proba(self, X) -> np.ndarray:
        """log(predict_proba(X))."""
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """(m,) class labels."""
        return self._labels(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class NNRegressor(RegressorMixin, _NNBase):
    """``MLPRegressor`` on an nnaccel network: identity output, half the mean squared error, one
    output unit per target column; the same parameters, defaults and fitted attributes (see
    ``nnaccel.sklearn``), plus ``backend`` and ``dtype``. ``loss`` takes "squared_error" only."""

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        dtype="float64",
    ):
        self._store(locals())

    def fit(self, X, y):
        """X (m, n), y (m,) or (m, targets)."""
        with self._unchanged_on_failure():
            return self._fit(X, y, incremental=False)

    @available_if(_partial_fit_available)
    def partial_fit(self, X, y):
        """One epoch over X, y, continuing the weights and the optimizer's state."""
        with self._unchanged_on_failure():
            return self._fit(X, y, incremental=True)

    def _check_loss(self) -> None:
        if self.loss != "squared_error":
            raise ValueError(
                f"loss must be 'squared_error' (nnaccel's identity output trains half the mean squared error); got {self.loss!r}"
            )

    def _validate_input(self, X, y, *, incremental, reset, classes):
        """(X rows, Y (m, targets), y as given)."""
        X, y = validate_data(self, X, y, dtype=_DATA_TYPES, y_numeric=True, multi_output=True, ensure_min_samples=1, reset=reset)
        if reset:
            self._targets = y.ndim
        return X, np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1), y

    def _out_activation(self, n_outputs: int) -> str:
        return "identity"

    def _score_outputs(self, H: np.ndarray, y) -> float:
        """R^2 of the outputs H (m, targets) on targets y (the early-stopping score)."""
        if not np.isfinite(H).all():
            return np.nan
        return r2_score(y, H[:, 0] if np.ndim(y) == 1 else H)

    def predict(self, X) -> np.ndarray:
        """(m,) predictions, or (m, targets) when fitted on a 2-D y."""
        H = self._forward(X)
        return H[:, 0] if self._targets == 1 else H

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
