"""Optimizers: how a step turns the gradients of the mean loss into new parameters.

An optimizer object is a small frozen description (its hyperparameters). The arrays it carries
from step to step (a momentum buffer, Adam's two moment estimates) live in an ``OptimizerState``
that the training plan creates with ``initial_state`` and keeps on its backend. Each update is
exactly PyTorch's (``torch.optim.SGD`` with dampening 0, ``Adam``, ``AdamW``), with nnaccel's
penalties entering the weights' gradient g = dW + l2 W + l1 sign(W) (PyTorch's ``weight_decay`` is
the l2 term); biases are never regularised or decayed.

``update`` below runs on any backend through its update primitives, one call per array; backends
with fused kernels (the Numba plans) run the same formulas over every layer in one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hyperparameters:
    """The per-step settings of an update: this epoch's learning rate and the L1/L2 penalties on
    the weights."""

    lr: float
    l1: float = 0.0
    l2: float = 0.0


@dataclass
class OptimizerState:
    """What an optimizer carries from step to step, on the plan's backend.

    ``step`` counts the updates made; ``first`` holds [(W-like, b-like)] per layer, the momentum
    buffer of SGD or Adam's first moment; ``second`` Adam's second moment (both empty when unused).
    """

    step: int = 0
    first: list = field(default_factory=list)
    second: list = field(default_factory=list)


def _check_unit_interval(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) such as 0.9; got {value!r}")


def _check_non_negative(value, name: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 such as {example}; got {value!r}")


def _zeros_like(backend, params: list, dtype) -> list:
    return [(backend.zeros(tuple(W.shape), dtype), backend.zeros(tuple(b.shape), dtype)) for W, b in params]


@dataclass(frozen=True)
class SGD:
    """Gradient descent, with optional (Nesterov) momentum, as ``torch.optim.SGD`` (dampening 0):

    g = dW + l2 W + l1 sign(W);  buf = momentum buf + g;  W -= lr (g + momentum buf) with
    Nesterov, else W -= lr buf;  with momentum 0 the lecture's W -= lr g.
    """

    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self):
        if (
            isinstance(self.momentum, bool)
            or not isinstance(self.momentum, (int, float))
            or not (math.isfinite(self.momentum) and self.momentum >= 0)
        ):
            raise ValueError(f"momentum must be a finite number >= 0 such as 0.9; got {self.momentum!r}")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be True or False; got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum needs a momentum > 0, such as SGD(momentum=0.9, nesterov=True)")

    @property
    def name(self) -> str:
        if self.nesterov:
            return "nesterov"
        return "momentum" if self.momentum else "sgd"

    def initial_state(self, backend, params: list, dtype) -> OptimizerState:
        """Zeros shaped like ``params`` (NumPy ``dtype``) on ``backend``: the momentum buffers."""
        return OptimizerState(first=_zeros_like(backend, params, dtype) if self.momentum else [])

    def update(self, backend, params: list, grads: list, state: OptimizerState, hyper: Hyperparameters) -> None:
        """In place, every layer: [(W, b)] from the mean-loss gradients [(dW, db)]."""
        state.step += 1
        if not self.momentum:
            for (W, b), (dW, db) in zip(params, grads):
                backend.update(W, dW, hyper.lr, hyper.l1, hyper.l2)  # W -= lr (dW + l1 sign(W) + l2 W)
                backend.update(b, db, hyper.lr, 0.0, 0.0)  # b -= lr db
            return
        for (W, b), (dW, db), (buffer_W, buffer_b) in zip(params, grads, state.first):
            backend.momentum_update(W, dW, buffer_W, hyper.lr, self.momentum, self.nesterov, hyper.l1, hyper.l2)
            backend.momentum_update(b, db, buffer_b, hyper.lr, self.momentum, self.nesterov, 0.0, 0.0)


@dataclass(frozen=True)
class Adam:
    """Adam as ``torch.optim.Adam``: g = dW + l2 W + l1 sign(W); m += (1 - beta1) (g - m);
    v = beta2 v + (1 - beta2) g^2; W -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        _check_unit_interval(self.beta1, "beta1")
        _check_unit_interval(self.beta2, "beta2")
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)) or not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a finite number > 0 such as 1e-8; got {self.eps!r}")

    name = "adam"
    weight_decay = 0.0  # decoupled decay: AdamW's only

    def initial_state(self, backend, params: list, dtype) -> OptimizerState:
        """Zeros shaped like ``params`` (NumPy ``dtype``) on ``backend``: both moments."""
        return OptimizerState(first=_zeros_like(backend, params, dtype), second=_zeros_like(backend, params, dtype))

    def coefficients(self, lr: float, step: int) -> tuple[float, float, float]:
        """(step_size, bias_correction2_sqrt, decay) of update ``step`` (counted from 1), as PyTorch
        computes them: lr / (1 - beta1^t), sqrt(1 - beta2^t) and the weights' factor 1 - lr wd."""
        return lr / (1 - self.beta1**step), math.sqrt(1 - self.beta2**step), 1.0 - lr * self.weight_decay

    def update(self, backend, params: list, grads: list, state: OptimizerState, hyper: Hyperparameters) -> None:
        """In place, every layer: [(W, b)] from the mean-loss gradients [(dW, db)]."""
        state.step += 1
        step_size, bias2_sqrt, decay = self.coefficients(hyper.lr, state.step)
        for (W, b), (dW, db), (m_W, m_b), (v_W, v_b) in zip(params, grads, state.first, state.second):
            backend.adam_update(
                W, dW, m_W, v_W, step_size, self.beta1, self.beta2, self.eps, bias2_sqrt, decay, hyper.l1, hyper.l2
            )
            backend.adam_update(b, db, m_b, v_b, step_size, self.beta1, self.beta2, self.eps, bias2_sqrt, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW as ``torch.optim.AdamW``: the weights first shrink, W *= 1 - lr weight_decay, then the
    Adam step (``l2`` still enters the gradient); biases are not decayed."""

    weight_decay: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        _check_non_negative(self.weight_decay, "weight_decay", "0.01")

    name = "adamw"


Optimizer = SGD | Adam  # AdamW is an Adam
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "sgd": SGD,
    "momentum": lambda: SGD(momentum=0.9),
    "nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "adam": Adam,
    "adamw": AdamW,
}


def resolve_optimizer(optimizer) -> Optimizer:
    """An optimizer object from a name (``sgd``, ``momentum``, ``nesterov``, ``adam``, ``adamw``),
    an object of this module, or None (plain SGD)."""
    if optimizer is None:
        return SGD()
    if isinstance(optimizer, (SGD, Adam)):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(
        f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)} or an object of nnaccel.optim "
        "(SGD(momentum=0.9), Adam(), AdamW(weight_decay=0.01))"
    )
