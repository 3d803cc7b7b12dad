"""The hyperparameters of ``MLPClassifier``/``MLPRegressor``, checked at fit and turned into
nnaccel's terms (a hidden activation name, an optimizer of ``nnaccel.optim``).

Each check raises a ValueError naming the parameter, what it takes and what it got, before any
work; the estimator's parameters are never changed.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.activations import HIDDEN_ACTIVATIONS
from ..core.validation import resolve_dtype
from ..optim import SGD, Adam

SOLVERS = ("sgd", "adam", "lbfgs")
STOCHASTIC_SOLVERS = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
# scikit-learn's activation names, as nnaccel spells them; nnaccel's own names are taken as well
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
_SCIKIT_LEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
ACTIVATIONS = _SCIKIT_LEARN_ACTIVATIONS + tuple(name for name in HIDDEN_ACTIVATIONS if name not in _SCIKIT_LEARN_ACTIVATIONS)


@dataclass(frozen=True)
class Settings:
    """What fit needs beyond the raw parameters: the hidden layer sizes as a tuple, nnaccel's name
    of the hidden activation, scikit-learn's Glorot factor for it, and the optimizer (None for
    lbfgs)."""

    hidden: tuple[int, ...]
    activation: str
    init_factor: float
    optimizer: SGD | Adam | None


def check_params(estimator) -> Settings:
    """Check every hyperparameter of ``estimator`` (as scikit-learn's ``_parameter_constraints``
    do, whatever the solver) and return the derived ``Settings``."""
    _check_choice(estimator, "solver", SOLVERS)
    _check_choice(estimator, "learning_rate", LEARNING_RATES)
    _check_number(estimator, "alpha", 0.0, math.inf, "[0, inf)", "1e-4")
    _check_number(estimator, "learning_rate_init", 0.0, math.inf, "(0, inf)", "0.001", low_closed=False)
    _check_number(estimator, "power_t", 0.0, math.inf, "[0, inf)", "0.5")
    _check_number(estimator, "tol", 0.0, math.inf, "[0, inf)", "1e-4")
    _check_number(estimator, "momentum", 0.0, 1.0, "[0, 1]", "0.9", high_closed=True)
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
        _check_boolean(estimator, name)
    _check_number(estimator, "validation_fraction", 0.0, 1.0, "[0, 1)", "0.1")
    if estimator.early_stopping:  # an empty validation set would be no set at all
        _check_number(estimator, "validation_fraction", 0.0, 1.0, "(0, 1) with early_stopping=True", "0.1", low_closed=False)
    for name in ("beta_1", "beta_2"):
        _check_number(estimator, name, 0.0, 1.0, "[0, 1)", "0.9" if name == "beta_1" else "0.999")
    _check_number(estimator, "epsilon", 0.0, math.inf, "(0, inf)", "1e-8", low_closed=False)
    _check_integer(estimator, "max_iter", "200")
    _check_integer(estimator, "max_fun", "15000")
    if estimator.n_iter_no_change != np.inf:
        _check_integer(estimator, "n_iter_no_change", "10 (or numpy.inf)")
    _check_verbose(estimator.verbose)
    _check_batch_size(estimator.batch_size)
    resolve_dtype(estimator.dtype)
    return Settings(hidden_layers(estimator.hidden_layer_sizes), *_activation(estimator.activation), _optimizer(estimator))


def hidden_layers(sizes) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints (one int is one hidden layer; an empty
    tuple is logistic or linear regression)."""
    layers = [sizes] if isinstance(sizes, numbers.Integral) else sizes
    try:
        layers = list(layers)
    except TypeError:
        layers = None
    if layers is None or any(isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1 for size in layers):
        raise ValueError(f"hidden_layer_sizes must be positive integers, e.g. (100,) or (6, 6); got {sizes!r}")
    return tuple(int(size) for size in layers)


def batch_size(value, n_samples: int) -> int:
    """The examples per step for ``n_samples`` training examples: "auto" (or None) is
    min(200, n_samples) as scikit-learn; a larger size is clipped to n_samples, with its warning."""
    if value is None or value == "auto":
        return min(200, n_samples)
    if value > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=3)
    return min(int(value), n_samples)


# ----- the checks ------------------------------------------------------------------------------------
def _check_choice(estimator, name: str, options: tuple[str, ...]) -> None:
    value = getattr(estimator, name)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")


def _check_number(estimator, name, low, high, interval, example, *, low_closed=True, high_closed=False) -> None:
    value = getattr(estimator, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if ok:
        ok = (value >= low if low_closed else value > low) and (value <= high if high_closed else value < high)
    if not ok:
        raise ValueError(f"{name} must be a finite number in {interval} such as {example}; got {value!r}")


def _check_integer(estimator, name: str, example: str) -> None:
    value = getattr(estimator, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1 such as {example}; got {value!r}")


def _check_boolean(estimator, name: str) -> None:
    value = getattr(estimator, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")


def _check_verbose(value) -> None:
    if isinstance(value, (bool, np.bool_)):
        return
    if not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"verbose must be True, False or a whole number >= 0; got {value!r}")


def _check_batch_size(value) -> None:
    if value is None or value == "auto":
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"batch_size must be a positive integer or 'auto'; got {value!r}")


def _activation(name) -> tuple[str, float]:
    """(nnaccel's name, scikit-learn's Glorot factor: 2 for the logistic function, else 6)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; got {name!r}")
    nnaccel_name = _ACTIVATION_ALIASES.get(name, name)
    return nnaccel_name, 2.0 if nnaccel_name == "sigmoid" else 6.0


def _optimizer(estimator) -> SGD | Adam | None:
    """nnaccel's optimizer for the solver: PyTorch's SGD (with Nesterov momentum only when there
    is momentum, as scikit-learn's momentum 0 is plain SGD whatever nesterovs_momentum says) or
    Adam; None for lbfgs."""
    if estimator.solver == "sgd":
        momentum = float(estimator.momentum)
        return SGD(momentum=momentum, nesterov=bool(estimator.nesterovs_momentum) and momentum > 0)
    if estimator.solver == "adam":
        return Adam(beta1=float(estimator.beta_1), beta2=float(estimator.beta_2), eps=float(estimator.epsilon))
    return None
