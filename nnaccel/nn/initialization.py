"""Initial weights, drawn on the host from the seed so every backend starts from the same numbers."""

from __future__ import annotations

import numpy as np

from ..core.architecture import Architecture

# He for the relu family (Kaiming et al. 2015), LeCun for selu (Klambauer et al. 2017),
# Glorot for the saturating and linear ones (Glorot and Bengio 2010).
_HE = ("relu", "leaky_relu", "elu")


def initial_params(architecture: Architecture, seed: int, dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b)] per layer: W (p_i, p_{i-1}) from the activation's scheme, b (p_i, 1) zeros."""
    rng = np.random.default_rng(seed)
    params = []
    for index in range(architecture.depth):
        fan_in, fan_out = architecture.layers[index], architecture.layers[index + 1]
        activation = architecture.layer_activation(index)
        if activation in _HE:
            W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))
        elif activation == "selu":
            W = rng.normal(0.0, np.sqrt(1.0 / fan_in), size=(fan_out, fan_in))
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, size=(fan_out, fan_in))
        params.append((W.astype(dtype), np.zeros((fan_out, 1), dtype=dtype)))
    return params
