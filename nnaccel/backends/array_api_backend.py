"""A backend written only in the Python array API standard, for any conforming array library.

It exists to keep the backend-generic code honest: ``base.py``'s passes run on it unchanged with
``array-api-strict`` (which rejects anything outside the standard), so nothing NumPy-only hides in
the paths the CuPy backend takes. It also runs nnaccel on other conforming libraries
(``ArrayApiBackend(cupy)``, ``ArrayApiBackend(array_api_strict)``; pass it as ``backend=``).

The standard has no ``out=`` arguments, so each primitive computes a new array and writes it into
its buffer with ``out[...] = ...``; it allocates per step and is for checking, not for speed.
"""

from __future__ import annotations

import numpy as np

from ..core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from . import array_updates
from .base import Backend


class ArrayApiBackend(Backend):
    """Backend over ``xp``, an array API namespace (default: ``array_api_strict``)."""

    name = "array-api"

    def __init__(self, xp=None):
        if xp is None:
            import array_api_strict as xp
        self.xp = xp

    def settings(self) -> dict:
        return {"xp": getattr(self.xp, "__name__", type(self.xp).__name__)}

    def _dtype(self, dtype):
        return getattr(self.xp, np.dtype(dtype).name)  # float32 / float64 by name

    # ----- moving arrays -----------------------------------------------------------------------------
    def asarray(self, array, dtype):
        return self.xp.asarray(array, dtype=self._dtype(dtype))

    def to_numpy(self, array) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array
        return np.from_dlpack(array)

    def to_float(self, value) -> float:
        return float(value)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self._dtype(dtype))

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self._dtype(dtype))

    def copy(self, array):
        return self.xp.asarray(array, copy=True)

    # ----- linear algebra ----------------------------------------------------------------------------
    def matmul(self, A, B, out):
        out[...] = A @ B
        return out

    def row_sums(self, dA, out):
        out[...] = self.xp.sum(dA, axis=1, keepdims=True)
        return out

    def take_columns(self, X, indices, out):
        out[...] = self.xp.take(X, self.xp.asarray(indices), axis=1)
        return out

    def take_rows(self, rows, indices, out):
        out[...] = self.xp.take(rows, self.xp.asarray(indices), axis=0)
        return out

    def all_finite(self, array) -> bool:
        return bool(self.xp.all(self.xp.isfinite(array)))

    # ----- activations -------------------------------------------------------------------------------
    def bias_activation(self, A, b, activation, scratch):
        A[...] = self.activate(A + b, activation)  # H = act(A + b)
        return A

    def activation_backward(self, dH, H, activation):
        dH[...] = dH * self.derivative_from_output(H, activation)  # dA = dH * act'(A)
        return dH

    def activate(self, A, activation: str):
        """act(A), a new array."""
        xp = self.xp
        if activation == "sigmoid":
            return 0.5 + 0.5 * xp.tanh(0.5 * A)  # no overflow for large |A|
        if activation == "tanh":
            return xp.tanh(A)
        if activation == "relu":
            return xp.where(A > 0, A, 0.0 * A)
        if activation == "leaky_relu":
            return xp.where(A > 0, A, LEAKY_RELU_SLOPE * A)
        if activation in ("elu", "selu"):
            alpha, scale = (ELU_ALPHA, 1.0) if activation == "elu" else (SELU_ALPHA, SELU_SCALE)
            # scale * (A if A > 0 else alpha (e^A - 1)); expm1 of min(A, 0) never overflows
            return scale * xp.where(A > 0, A, alpha * xp.expm1(xp.minimum(A, 0.0)))
        if activation == "identity":
            return A
        raise ValueError(f"unknown activation {activation!r}")

    def derivative_from_output(self, H, activation: str):
        """act'(A) written from H = act(A), a new array."""
        xp = self.xp
        if activation == "sigmoid":
            return H * (1.0 - H)
        if activation == "tanh":
            return 1.0 - H * H
        if activation == "relu":
            return xp.where(H > 0, 1.0, 0.0 * H)
        if activation == "leaky_relu":
            return xp.where(H > 0, 1.0, LEAKY_RELU_SLOPE + 0.0 * H)
        if activation in ("elu", "selu"):
            alpha, scale = (ELU_ALPHA, 1.0) if activation == "elu" else (SELU_ALPHA, SELU_SCALE)
            return xp.where(H > 0, scale + 0.0 * H, H + scale * alpha)
        if activation == "identity":
            return 1.0 + 0.0 * H
        raise ValueError(f"unknown activation {activation!r}")

    # ----- output layer ------------------------------------------------------------------------------
    def output_activation(self, A, b, output):
        xp = self.xp
        A_b = A + b
        if output == "softmax":
            shifted = A_b - xp.max(A_b, axis=0, keepdims=True)
            exponentials = xp.exp(shifted)
            A[...] = exponentials / xp.sum(exponentials, axis=0, keepdims=True)
        else:
            A[...] = self.activate(A_b, output)
        return A

    def output_loss_gradient(self, A, b, Y, output):
        xp = self.xp
        A_b = A + b
        if output == "sigmoid":
            # BCE from A: max(A, 0) - A Y + log(1 + e^-|A|)
            loss = xp.sum(xp.maximum(A_b, 0.0) - A_b * Y + xp.log1p(xp.exp(-xp.abs(A_b))))
            H = self.activate(A_b, "sigmoid")
        elif output == "softmax":
            shifted = A_b - xp.max(A_b, axis=0, keepdims=True)
            log_normaliser = xp.log(xp.sum(xp.exp(shifted), axis=0, keepdims=True))
            loss = xp.sum(Y * (log_normaliser - shifted))  # -sum Y log(H)
            H = xp.exp(shifted - log_normaliser)
        else:
            H = A_b
            loss = 0.5 * xp.sum((H - Y) ** 2)
        A[...] = H - Y  # dA = H - Y
        return loss

    # ----- parameters --------------------------------------------------------------------------------
    def update(self, W, dW, lr, l1, l2):
        step = dW
        if l2:
            step = step + l2 * W
        if l1:
            step = step + l1 * self.xp.sign(W)
        W -= lr * step

    def momentum_update(self, W, dW, buffer, lr, momentum, nesterov, l1, l2):
        array_updates.momentum_update(self.xp, W, dW, buffer, lr, momentum, nesterov, l1, l2)

    def adam_update(self, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
        array_updates.adam_update(self.xp, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2)
