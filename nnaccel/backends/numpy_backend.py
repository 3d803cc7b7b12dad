"""The NumPy backend: the reference every other backend is tested against.

Every operation writes into a buffer it is given (``out=``), so a training step allocates no
(p, m) arrays; the matmuls go to NumPy's BLAS.
"""

from __future__ import annotations

import numpy as np

from ..nn.activations import ELU_ALPHA, LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from .base import Backend


class NumpyBackend(Backend):
    name = "numpy"

    # ----- moving arrays ---------------------------------------------------------------------------
    def asarray(self, array, dtype) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        return np.asarray(array)

    def to_float(self, scalar) -> float:
        return float(scalar)

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
        return np.take(X, indices, axis=1, out=out)

    def all_finite(self, array) -> bool:
        return bool(np.isfinite(array).all())

    # ----- activations -----------------------------------------------------------------------------
    def bias_activation(self, A, b, activation, scratch):
        A += b  # A = W H + b
        return activate(A, activation, scratch)

    def activation_backward(self, dH, H, activation):
        derivative_from_output(H, activation)  # H becomes act'(A), written in terms of H
        dH *= H  # dA = dH * act'(A)
        return dH

    # ----- output layer ----------------------------------------------------------------------------
    def output_activation(self, A, b, output):
        A += b
        if output == "softmax":
            return softmax_inplace(A)
        return activate(A, output, None)

    def output_loss_gradient(self, A, b, Y, output):
        A += b
        if output == "sigmoid":
            # BCE from A: max(A, 0) - A Y + log(1 + e^-|A|), stable for any |A|.
            loss = np.sum(np.logaddexp(0.0, A)) - np.vdot(A, Y)
            activate(A, "sigmoid", None)
        elif output == "softmax":
            # CE from A: sum over classes of Y (logsumexp(A) - A); Y columns sum to 1.
            shift = A.max(axis=0, keepdims=True)
            A -= shift
            log_normaliser = np.log(np.sum(np.exp(A), axis=0, keepdims=True))
            loss = np.sum(log_normaliser * Y.sum(axis=0, keepdims=True)) - np.vdot(A, Y)
            A -= log_normaliser
            np.exp(A, out=A)
        else:  # identity: half the squared error
            A -= Y
            loss = 0.5 * np.vdot(A, A)
            return loss
        A -= Y  # dA = H - Y
        return loss

    # ----- parameters ------------------------------------------------------------------------------
    def update(self, W, dW, lr, l1, l2):
        if l2:
            dW += l2 * W  # d/dW of (l2/2) ||W||^2
        if l1:
            dW += l1 * np.sign(W)  # d/dW of l1 |W|
        W -= lr * dW


def activate(A: np.ndarray, activation: str, scratch) -> np.ndarray:
    """In place: A (p, m) becomes act(A). ``scratch`` (p, m) is needed by elu and selu only."""
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
        np.maximum(A, LEAKY_RELU_SLOPE * A, out=A)
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
