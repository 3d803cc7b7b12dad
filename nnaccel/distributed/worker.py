"""What runs on the Dask workers: checking and placing data chunks, and one chunk's gradients.

Everything here is a plain function of its arguments (shipped by reference: nnaccel must be
installed on the workers), so Dask can rerun any task on another worker after a failure.
"""

from __future__ import annotations

import threading

import numpy as np

from ..backends import load_backend
from ..core.validation import check_X, check_Y

# Each worker thread keeps the step buffers of the chunk widths it has seen, so a step allocates
# no (p, m) arrays; per thread, because a worker may run several tasks at once.
_buffers = threading.local()
_CACHED_WIDTHS = 4


def place_chunk(X: np.ndarray, Y: np.ndarray, architecture, backend_name: str, dtype: str | np.dtype, start: int) -> tuple:
    """Check one chunk, X (n, w) and Y (outputs, w) starting at column ``start``, and return it as
    a pair of the worker's backend arrays (CuPy arrays on a GPU worker) in ``dtype``."""
    where = f" (columns {start}:{start + X.shape[1]})"
    X = check_X(X, architecture, "X" + where)
    Y = check_Y(Y, architecture, X.shape[1], "Y" + where)
    backend = load_backend(backend_name)
    return backend.asarray(X, np.dtype(dtype)), backend.asarray(Y, np.dtype(dtype))


def chunk_gradients(params: list, chunk: tuple, architecture, backend_name: str, dtype: str | np.dtype, scale: float) -> tuple:
    """(summed loss, [(dW, db)] as NumPy arrays) of one chunk (X (n, w), Y (outputs, w)) at
    ``params`` [(W, b)] (NumPy), the gradients multiplied by ``scale`` (1/m for the mean loss)."""
    X, Y = chunk
    backend = load_backend(backend_name)
    dtype = np.dtype(dtype)
    params = [(backend.asarray(W, dtype), backend.asarray(b, dtype)) for W, b in params]
    grads = [(backend.empty(W.shape, dtype), backend.empty(b.shape, dtype)) for W, b in params]
    workspace = _workspace(backend, architecture, X.shape[1], dtype)
    loss = backend.loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)
    return backend.to_float(loss), [(backend.to_numpy(dW), backend.to_numpy(db)) for dW, db in grads]


def chunk_loss(params: list, chunk: tuple, architecture, backend_name: str, dtype: str | np.dtype) -> float:
    """The summed loss of one chunk (X, Y) at ``params`` (NumPy [(W, b)])."""
    X, Y = chunk
    backend = load_backend(backend_name)
    dtype = np.dtype(dtype)
    params = [(backend.asarray(W, dtype), backend.asarray(b, dtype)) for W, b in params]
    workspace = _workspace(backend, architecture, X.shape[1], dtype)
    return backend.to_float(backend.loss_sum(architecture, params, X, Y, workspace))


def add(*parts: tuple) -> tuple:
    """The sum of (loss, [(dW, db)]) partial results, in the order given: a node of the reduction tree."""
    loss, grads = parts[0][0], [(dW.copy(), db.copy()) for dW, db in parts[0][1]]
    for part_loss, part_grads in parts[1:]:
        loss += part_loss
        for (dW, db), (dW_part, db_part) in zip(grads, part_grads):
            dW += dW_part
            db += db_part
    return loss, grads


def add_losses(*losses: float) -> float:
    total = losses[0]
    for loss in losses[1:]:
        total += loss
    return total


def _workspace(backend, architecture, width: int, dtype):
    cache = getattr(_buffers, "workspaces", None)
    if cache is None:
        cache = _buffers.workspaces = {}
    key = (backend.name, architecture, width, dtype.name)
    if key not in cache:
        if len(cache) >= _CACHED_WIDTHS:
            cache.clear()
        cache[key] = backend.workspace(architecture, width, dtype)
    return cache[key]
