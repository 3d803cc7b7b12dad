"""The optimizers' per-array updates written once in array operations, for every backend whose
arrays follow the Python array API (NumPy, array-api-strict; CuPy has fused kernels instead).

Each updates its arrays in place and matches PyTorch's formulas (see ``nnaccel.optim``).
"""

from __future__ import annotations


def penalised_gradient(xp, W, dW, l1: float, l2: float):
    """g = dW + l2 W + l1 sign(W): the gradient of the data loss plus the penalties (dW itself,
    not a copy, when both are 0)."""
    if l2:
        dW = dW + l2 * W
    if l1:
        dW = dW + l1 * xp.sign(W)
    return dW


def momentum_update(xp, W, dW, buffer, lr: float, momentum: float, nesterov: bool, l1: float, l2: float) -> None:
    """buf = momentum buf + g;  W -= lr (g + momentum buf) (Nesterov) or W -= lr buf."""
    g = penalised_gradient(xp, W, dW, l1, l2)
    buffer *= momentum
    buffer += g
    if nesterov:
        W -= lr * (g + momentum * buffer)
    else:
        W -= lr * buffer


def adam_update(
    xp,
    W,
    dW,
    m,
    v,
    step_size: float,
    beta1: float,
    beta2: float,
    eps: float,
    bias2_sqrt: float,
    decay: float,
    l1: float,
    l2: float,
) -> None:
    """W *= decay (AdamW); m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g^2;
    W -= step_size m / (sqrt(v) / bias2_sqrt + eps)."""
    g = penalised_gradient(xp, W, dW, l1, l2)
    if decay != 1.0:
        W *= decay
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    W -= step_size * (m / (xp.sqrt(v) / bias2_sqrt + eps))
