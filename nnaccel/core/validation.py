"""Checks on user input, run before any work starts; each error names the problem and the fix."""

from __future__ import annotations

import numbers
import os

import numpy as np

from .architecture import Architecture

DTYPES = {"float32": np.float32, "float64": np.float64}
DTYPE_VARIABLE = "NNACCEL_DTYPE"


def resolve_dtype(dtype=None) -> np.dtype:
    """``dtype`` if given, else ``NNACCEL_DTYPE``, else float32."""
    source = ""
    if dtype is None:
        dtype = os.environ.get(DTYPE_VARIABLE) or "float32"
        source = f" (from {DTYPE_VARIABLE})"
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}{source}; expected one of {', '.join(DTYPES)}")
    return resolved


def _numeric(array, name: str) -> np.ndarray:
    try:
        array = np.asarray(array)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} could not be read as a numeric array ({error})") from error
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {array.dtype}; expected numbers (float32 or float64)")
    return array


# Entries of X or Y checked for NaN and infinity at a time: the check of a large X then needs no
# temporary as large as X (the booleans of 1e7 examples of 2 features are 20 MB), and its blocks
# stay in the cache.
FINITE_BLOCK = 1 << 16


def _column_blocks(array: np.ndarray):
    """``array`` in blocks of whole columns (along its last axis) of at most ``FINITE_BLOCK``
    entries each (one column at least)."""
    if array.ndim == 0 or array.size == 0:
        yield array
        return
    columns = max(1, FINITE_BLOCK * array.shape[-1] // array.size)
    for start in range(0, array.shape[-1], columns):
        yield array[..., start : start + columns]


def _all_finite(array: np.ndarray) -> bool:
    """``np.isfinite(array).all()``, a block of columns at a time."""
    return all(np.isfinite(block).all() for block in _column_blocks(array))


def _finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f" and not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (the first at row {bad[0]}, column {bad[1]}); "
            "remove or impute them before training"
        )


def check_seed(seed, name: str = "seed") -> None:
    """A seed is a whole number >= 0 (NumPy's generators take no other)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a whole number >= 0 such as 0 or 42; got {seed!r}")


def check_representable(array, dtype, name: str) -> None:
    """Refuse finite values the network's dtype cannot hold (1e300 becomes inf in float32)."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or np.dtype(dtype).itemsize >= array.dtype.itemsize:
        return
    limit = np.finfo(dtype).max
    if not any(_too_large(block, limit).any() for block in _column_blocks(array)):
        return
    position = tuple(int(index) for index in np.argwhere(_too_large(array, limit))[0])
    raise ValueError(
        f"{name} holds {float(array[position]):g} at index {position}, beyond what {np.dtype(dtype).name} "
        f"can hold (about {limit:.3g}); rescale it, or use dtype='float64'"
    )


def _too_large(array: np.ndarray, limit: float) -> np.ndarray:
    """Where ``array`` holds finite values beyond +-limit (NaN and inf: ``_finite`` names them)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(array) & (np.abs(array) > limit)


def check_X(X, architecture: Architecture, name: str = "X") -> np.ndarray:
    """X as a 2-D numeric NumPy array of shape (n, m), n the network's input size, m >= 1."""
    X = _numeric(X, name)
    n = architecture.n_inputs
    if X.ndim != 2:
        hint = f" (for one feature use {name}.reshape(1, -1))" if X.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D with shape (n features, m examples), one column per example; "
            f"got {X.ndim}-D shape {X.shape}{hint}"
        )
    if X.shape[0] != n:
        hint = " (it looks transposed: pass X.T)" if X.shape[1] == n else ""
        raise ValueError(
            f"{name} has {X.shape[0]} rows but the network's input layer has {n} features; {name} must be (n, m) = ({n}, m){hint}"
        )
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no examples (m = 0); pass at least one column")
    _finite(X, name)
    return X


def check_Y(Y, architecture: Architecture, m: int, name: str = "Y") -> np.ndarray:
    """Y as a 2-D numeric array (outputs, m) with labels that suit the output layer."""
    Y = _numeric(Y, name)
    outputs = architecture.n_outputs
    if Y.ndim == 1 and outputs == 1:
        Y = Y.reshape(1, -1)
    if Y.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape ({outputs}, m); got {Y.ndim}-D shape {Y.shape}")
    if Y.shape[1] != m:
        raise ValueError(f"X has m = {m} examples (columns) but {name} has {Y.shape[1]}; they must match")
    if Y.shape[0] != outputs:
        hint = " (it looks transposed: pass Y.T)" if Y.shape == (m, outputs) else ""
        raise ValueError(
            f"{name} has {Y.shape[0]} rows but the network has {outputs} outputs; {name} must be ({outputs}, m){hint}"
        )
    _finite(Y, name)
    if architecture.output in ("sigmoid", "softmax") and Y.size and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(
            f"{name} has labels outside [0, 1] (min {Y.min():g}, max {Y.max():g}); "
            f"a {architecture.output} output needs labels in [0, 1]"
            + (" (map -1/1 labels with (Y + 1) / 2)" if Y.min() == -1 else "")
        )
    if architecture.output == "softmax" and not np.allclose(Y.sum(axis=0), 1.0, atol=1e-3):
        raise ValueError(
            f"each column of {name} must be one-hot (or sum to 1) for a softmax output; "
            "convert class indices with np.eye(classes)[labels].T"
        )
    return Y


def check_positive(value, name: str, kind: type = numbers.Real) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:  # type: ignore[operator]  # kind is a number type
        expected = "a positive integer" if kind is numbers.Integral else "a positive number"
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def check_non_negative(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real)) or not float(value) >= 0:
        raise ValueError(f"{name} must be a number >= 0; got {value!r}")
