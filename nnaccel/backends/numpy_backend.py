"""The NumPy backend: the reference every other backend is tested against.

Every operation writes into a buffer it is given (``out=``), so a training step allocates no
(p, m) arrays; the matmuls go to NumPy's BLAS.
"""

from __future__ import annotations

import numpy as np

from ..core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from . import array_updates
from .base import Backend

# Columns per chunk of the output layer's loss (bounds its temporaries; a chunk fits in cache).
LOSS_CHUNK = 1 << 16


class NumpyBackend(Backend):
    name = "numpy"

    # ----- moving arrays ---------------------------------------------------------------------------
    def asarray(self, array, dtype) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        return np.asarray(array)

    def to_float(self, value) -> float:
        return float(value)

    def empty(self, shape, dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def copy(self, array) -> np.ndarray:
        return array.copy()

    # ----- linear algebra --------------------------------------------------------------------------
    def matmul(self, A, B, out):
        return np.matmul(A, B, out=out)

    def row_sums(self, dA, out):
        return np.sum(dA, axis=1, keepdims=True, out=out)

    def take_columns(self, X, indices, out):
        return np.take(X, indices, axis=1, out=out, mode="clip")  # "raise" would buffer the copy

    def take_rows(self, rows, indices, out):
        return np.take(rows, indices, axis=0, out=out, mode="clip")

    def all_finite(self, array) -> bool:
        return bool(np.isfinite(array).all())

    # ----- activations -----------------------------------------------------------------------------
    def bias_activation(self, A, b, activation, scratch):
        A += b  # A = W H + b
        return activate(A, activation, scratch)

    # dA is written into H's buffer, so the backward pass needs one scratch buffer, not two.
    activation_backward_into_H = True

    def activation_backward(self, dH, H, activation):
        derivative_from_output(H, activation)  # H becomes act'(A), written in terms of H
        H *= dH  # dA = dH * act'(A)
        return H

    # ----- output layer ----------------------------------------------------------------------------
    def output_activation(self, A, b, output):
        A += b
        if output == "softmax":
            return softmax_inplace(A)
        return activate(A, output, None)

    def output_loss_gradient(self, A, b, Y, output):
        # Column chunks bound the loss's temporaries (logaddexp, exp) to one chunk instead of
        # (p, m); the chunk sums are added in float64.
        loss = 0.0
        for start in range(0, A.shape[1], LOSS_CHUNK):
            columns = slice(start, start + LOSS_CHUNK)
            loss += float(_output_loss_gradient_chunk(A[:, columns], b, Y[:, columns], output))
        return loss

    # ----- parameters ------------------------------------------------------------------------------
    def update(self, W, dW, lr, l1, l2):
        if l2:
            dW += l2 * W  # d/dW of (l2/2) ||W||^2
        if l1:
            dW += l1 * np.sign(W)  # d/dW of l1 |W|
        W -= lr * dW

    def momentum_update(self, W, dW, buffer, lr, momentum, nesterov, l1, l2):
        array_updates.momentum_update(np, W, dW, buffer, lr, momentum, nesterov, l1, l2)

    def adam_update(self, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
        array_updates.adam_update(np, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2)


def _output_loss_gradient_chunk(A: np.ndarray, b: np.ndarray, Y: np.ndarray, output: str):
    """In place: A (p, k) becomes dA = H - Y with H = out(A + b); returns the summed loss."""
    A += b
    if output == "sigmoid":
        # BCE from A: log(1 + e^A) - A Y, with log(1 + e^A) = max(A, 0) + log(1 + e^-|A|), stable for
        # any |A| (and ~8x faster than np.logaddexp, which has no SIMD loop).
        softplus = np.abs(A)
        np.negative(softplus, out=softplus)
        np.exp(softplus, out=softplus)
        np.log1p(softplus, out=softplus)
        loss = np.sum(softplus) + np.sum(np.maximum(A, 0.0)) - np.sum(A * Y)
        activate(A, "sigmoid", None)
    elif output == "softmax":
        # CE from A: sum over classes of Y (logsumexp(A) - A); Y columns sum to 1.
        A -= A.max(axis=0, keepdims=True)
        log_normaliser = np.log(np.sum(np.exp(A), axis=0, keepdims=True))
        loss = np.sum(log_normaliser * Y.sum(axis=0, keepdims=True)) - np.sum(A * Y)
        A -= log_normaliser
        np.exp(A, out=A)
    else:  # identity: half the squared error
        A -= Y
        return 0.5 * np.sum(A * A)
    A -= Y  # dA = H - Y
    return loss


def activate(A: np.ndarray, activation: str, scratch) -> np.ndarray:
    """In place: A (p, m) becomes act(A). ``scratch`` (p, m) is a temporary for leaky_relu, elu and selu
    (allocated when None)."""
    if activation == "sigmoid":
        # sigmoid(A) = (1 + tanh(A/2)) / 2: no overflow for large |A|.
        A *= 0.5
        np.tanh(A, out=A)
        A += 1.0
        A *= 0.5
    elif activation == "tanh":
        np.tanh(A, out=A)
    elif activation == "relu":
        np.maximum(A, 0.0, out=A)
    elif activation == "leaky_relu":
        if scratch is None:
            scratch = np.empty_like(A)
        np.multiply(A, LEAKY_RELU_SLOPE, out=scratch)  # in scratch: slope * A would allocate a (p, m) temporary
        np.maximum(A, scratch, out=A)
    elif activation in ("elu", "selu"):
        alpha, scale = (ELU_ALPHA, 1.0) if activation == "elu" else (SELU_ALPHA, SELU_SCALE)
        if scratch is None:
            scratch = np.empty_like(A)
        # act(A) = scale * (max(A, 0) + alpha * (e^min(A, 0) - 1))
        np.minimum(A, 0.0, out=scratch)
        np.expm1(scratch, out=scratch)
        scratch *= alpha
        np.maximum(A, 0.0, out=A)
        A += scratch
        if scale != 1.0:
            A *= scale
    elif activation != "identity":
        raise ValueError(f"unknown activation {activation!r}")
    return A


def derivative_from_output(H: np.ndarray, activation: str) -> np.ndarray:
    """In place: H = act(A) (p, m) becomes act'(A)."""
    if activation == "sigmoid":
        # H (1 - H) = 1/4 - (H - 1/2)^2
        H -= 0.5
        np.square(H, out=H)
        np.subtract(0.25, H, out=H)
    elif activation == "tanh":
        np.square(H, out=H)  # 1 - H^2
        np.subtract(1.0, H, out=H)
    elif activation == "relu":
        np.greater(H, 0.0, out=H)
    elif activation == "leaky_relu":
        np.greater(H, 0.0, out=H)  # 1 where A > 0, else slope
        H *= 1.0 - LEAKY_RELU_SLOPE
        H += LEAKY_RELU_SLOPE
    elif activation in ("elu", "selu"):
        alpha, scale = (ELU_ALPHA, 1.0) if activation == "elu" else (SELU_ALPHA, SELU_SCALE)
        # A > 0: scale; A <= 0: scale * alpha * e^A = H + scale * alpha
        positive = H > 0.0
        H += scale * alpha
        H[positive] = scale
    elif activation == "identity":
        H.fill(1.0)
    else:
        raise ValueError(f"unknown activation {activation!r}")
    return H


def softmax_inplace(A: np.ndarray) -> np.ndarray:
    """In place over each column of A (classes, m)."""
    A -= A.max(axis=0, keepdims=True)
    np.exp(A, out=A)
    A /= A.sum(axis=0, keepdims=True)
    return A
