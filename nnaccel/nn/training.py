"""Gradient-descent training: full batch or seeded mini-batches, L1/L2, validation, divergence guard.

The loop reads one number from the backend per epoch (the epoch's loss), so on a GPU nothing
synchronises inside a step.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from typing import Callable

import numpy as np

from ..errors import TrainingDiverged, TrainingInterrupted
from .validation import check_non_negative, check_positive, check_X, check_Y


def epoch_order(seed: int, epoch: int, m: int) -> np.ndarray:
    """The shuffled column order of one epoch: a function of (seed, epoch) alone, so a resumed run
    draws exactly the batches an uninterrupted one would."""
    return np.random.default_rng([seed, epoch]).permutation(m)


def check_hyperparameters(epochs, lr, batch_size, l1, l2) -> None:
    check_positive(epochs, "epochs", numbers.Integral)
    check_positive(lr, "lr (the learning rate)")
    if not math.isfinite(lr):
        raise ValueError(f"lr (the learning rate) must be finite; got {lr!r}")
    if batch_size is not None:
        check_positive(batch_size, "batch_size", numbers.Integral)
    check_non_negative(l1, "l1")
    check_non_negative(l2, "l2")


def fit(
    network,
    X,
    Y,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    validation=None,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = False,
    start_epoch: int = 0,
    history: dict | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``network`` in place; see ``Network.fit``. Returns the history dict.

    ``start_epoch``, ``history`` and ``on_epoch_end(epoch, history)`` let a caller checkpoint and
    resume: epoch e's batches depend only on (seed, e).
    """
    check_hyperparameters(epochs, lr, batch_size, l1, l2)
    architecture = network.architecture
    X = check_X(X, architecture)
    Y = check_Y(Y, architecture, X.shape[1])
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError("validation must be a pair (X_validation, Y_validation)")
        X_validation = check_X(validation[0], architecture, "validation X")
        Y_validation = check_Y(validation[1], architecture, X_validation.shape[1], "validation Y")

    backend = network.backend
    dtype = network.dtype
    m = X.shape[1]
    batch = m if batch_size is None else min(int(batch_size), m)
    X_device, Y_device = backend.asarray(X, dtype), backend.asarray(Y, dtype)
    if validation is not None:
        X_validation = backend.asarray(X_validation, dtype)
        Y_validation = backend.asarray(Y_validation, dtype)
    params = network._params
    grads = network._gradient_buffers()
    history = history if history is not None else {"loss": []}
    if validation is not None:
        history.setdefault("val_loss", [])

    started = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        snapshot = [(backend.copy(W), backend.copy(b)) for W, b in params]
        try:
            if batch == m:
                total = full_batch_step(network, X_device, Y_device, grads, lr, l1, l2)
            else:
                order = epoch_order(seed, epoch, m) if shuffle else np.arange(m)
                total = _mini_batch_epoch(network, X_device, Y_device, order, batch, grads, lr, l1, l2)
            loss = backend.to_float(total) / m
        except KeyboardInterrupt:
            network._params = params = snapshot  # back to the epoch's start: a clean point to resume from
            raise TrainingInterrupted(epoch, history) from None
        if not math.isfinite(loss) or not all(backend.all_finite(W) and backend.all_finite(b) for W, b in params):
            network._params = snapshot
            raise TrainingDiverged(
                epoch,
                f"training diverged at epoch {epoch + 1}: the loss became {loss} (NaN or infinite); "
                f"the network keeps its parameters from before that epoch. Try a smaller learning rate "
                f"than lr={lr:g}",
            )
        history["loss"].append(loss)
        if validation is not None:
            history["val_loss"].append(network._mean_loss(X_validation, Y_validation))
        if progress:
            _print_progress(epoch, epochs, history, time.perf_counter() - started)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    if progress:
        print(file=sys.stderr)
    return history


def _apply_update(backend, params, grads, lr, l1, l2) -> None:
    for (W, b), (dW, db) in zip(params, grads):
        backend.update(W, dW, lr, l1, l2)  # W -= lr * (dW + l1 sign(W) + l2 W)
        backend.update(b, db, lr, 0.0, 0.0)  # b -= lr * db


def full_batch_step(network, X, Y, grads: list, lr: float, l1: float = 0.0, l2: float = 0.0):
    """One step of gradient descent on backend arrays X (n, m), Y (outputs, m): forward, backward,
    update. ``grads`` comes from ``network._gradient_buffers()``. Returns the summed loss as a
    backend scalar (nothing is read back to the host)."""
    backend = network.backend
    m = X.shape[1]
    workspace = network._workspace(m)
    total = backend.loss_and_gradients(network.architecture, network._params, X, Y, workspace, grads, 1.0 / m)
    _apply_update(backend, network._params, grads, lr, l1, l2)
    return total


def _mini_batch_epoch(network, X, Y, order: np.ndarray, batch: int, grads, lr, l1, l2):
    backend = network.backend
    architecture = network.architecture
    m = X.shape[1]
    total = 0.0
    for start in range(0, m, batch):
        indices = order[start : start + batch]
        size = len(indices)
        workspace = network._workspace(size)
        if "X_batch" not in workspace.extra:
            workspace.extra["X_batch"] = backend.empty((X.shape[0], size), network.dtype)
            workspace.extra["Y_batch"] = backend.empty((Y.shape[0], size), network.dtype)
        X_batch = backend.take_columns(X, indices, workspace.extra["X_batch"])
        Y_batch = backend.take_columns(Y, indices, workspace.extra["Y_batch"])
        total = total + backend.loss_and_gradients(
            architecture, network._params, X_batch, Y_batch, workspace, grads, 1.0 / size
        )
        _apply_update(backend, network._params, grads, lr, l1, l2)
    return total


def _print_progress(epoch: int, epochs: int, history: dict, elapsed: float) -> None:
    width = 24
    done = int(width * (epoch + 1) / epochs)
    line = f"\repoch {epoch + 1}/{epochs} [{'#' * done}{'.' * (width - done)}] loss {history['loss'][-1]:.5f}"
    if history.get("val_loss"):
        line += f"  val_loss {history['val_loss'][-1]:.5f}"
    line += f"  {elapsed:.1f}s"
    print(line, end="", file=sys.stderr, flush=True)
