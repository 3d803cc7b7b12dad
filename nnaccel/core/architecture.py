"""The shape of a network: what every backend needs to know to run it."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .activations import check_activation, check_output


@dataclass(frozen=True)
class Architecture:
    """Layer sizes from input to output, one activation per hidden layer, and the output layer.

    ``layers = (n, p_1, ..., p_L)``; layer i (1-based) has weights W[i] of shape (p_i, p_{i-1}).
    ``activations`` has L - 1 names (one per hidden layer); the output layer uses ``output``.
    """

    layers: tuple[int, ...]
    activations: tuple[str, ...]
    output: str

    @classmethod
    def build(cls, layers: Sequence[int], activation: str | Sequence[str], output: str) -> Architecture:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise ValueError(f"layers must list at least two sizes, input and output (e.g. [2, 6, 6, 1]); got {layers!r}")
        layers = tuple(layers)
        if not isinstance(layers, tuple) or len(layers) < 2:
            raise ValueError(f"layers must list at least two sizes, input and output (e.g. [2, 6, 6, 1]); got {layers!r}")
        for size in layers:
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
                raise ValueError(f"layer sizes must be positive integers; got {size!r} in {list(layers)}")
        layers = tuple(int(size) for size in layers)
        hidden_count = len(layers) - 2
        if isinstance(activation, str):
            activations = (activation,) * hidden_count
        elif not isinstance(activation, Iterable):
            raise ValueError(
                f"activation must be a name or a list of names (one per hidden layer) such as 'tanh'; got {activation!r}"
            )
        else:
            activations = tuple(activation)
            if len(activations) != hidden_count:
                raise ValueError(
                    f"activation lists {len(activations)} names but the network has {hidden_count} "
                    "hidden layers; give one name per hidden layer, or a single name for all"
                )
        for name in activations:
            check_activation(name)
        check_output(output)
        if output == "softmax" and layers[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units (one per class); use output='sigmoid' for 1")
        return cls(layers, activations, output)

    @property
    def depth(self) -> int:
        """The number of layers with weights (the lecture's count)."""
        return len(self.layers) - 1

    @property
    def n_inputs(self) -> int:
        return self.layers[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1]

    def layer_activation(self, index: int) -> str:
        """The activation of layer ``index`` (0-based over the layers with weights)."""
        return self.activations[index] if index < self.depth - 1 else self.output
