"""Optimizers: how a step turns gradients into new parameters.

An optimizer object is a small description (its hyperparameters); the arrays it needs across steps
(none for plain SGD) are created by ``initial_state`` and carried by the training plan that runs
the steps, on the plan's backend. Backends with their own fused update kernels (the Numba plans)
recognise the optimizer's type and run the same formula inside their kernels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hyperparameters:
    """The per-run settings of an update: the learning rate and the L1/L2 penalties on weights."""

    lr: float
    l1: float = 0.0
    l2: float = 0.0


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent, the lecture's update: W -= lr (dW + l1 sign(W) + l2 W), b -= lr db
    (biases are not regularised)."""

    name = "sgd"

    def initial_state(self, backend, params: list) -> tuple:
        """Arrays carried from step to step: none for plain SGD."""
        return ()

    def update(self, backend, params: list, grads: list, state: tuple, hyper: Hyperparameters) -> None:
        """In place, every layer: [(W, b)] from the gradients [(dW, db)] of the mean loss."""
        for (W, b), (dW, db) in zip(params, grads):
            backend.update(W, dW, hyper.lr, hyper.l1, hyper.l2)  # W -= lr (dW + l1 sign(W) + l2 W)
            backend.update(b, db, hyper.lr, 0.0, 0.0)  # b -= lr db

