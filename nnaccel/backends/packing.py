"""The Numba kernels' packed parameters: every layer's W (row-major) then b in one flat vector.

``PackedLayout`` says where each layer sits (the offsets of ``numba_network.pack_layout``) and
gives per-layer views into any vector laid out that way: the parameters theta, their gradients,
an optimizer's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.architecture import Architecture
from ..kernels import activations as scalar
from ..kernels import numba_network as network


@dataclass(frozen=True)
class PackedLayout:
    """Where each layer's W (row-major) and b sit in the flat parameter vector (see
    ``numba_network.pack_layout``), the layer sizes and the activation codes (hidden layers, then
    the output)."""

    sizes: np.ndarray
    weight_offsets: np.ndarray
    bias_offsets: np.ndarray
    row_offsets: np.ndarray
    count: int
    codes: np.ndarray

    @classmethod
    def of(cls, architecture: Architecture) -> PackedLayout:
        sizes, weight_offsets, bias_offsets, row_offsets, count = network.pack_layout(architecture.layers)
        codes = [scalar.activation_code(name) for name in architecture.activations]
        codes.append(scalar.output_code(architecture.output))
        return cls(sizes, weight_offsets, bias_offsets, row_offsets, count, np.asarray(codes, dtype=np.int64))

    def arrays(self) -> tuple:
        """(sizes, weight_offsets, bias_offsets, row_offsets, codes): the kernels' layout arguments."""
        return self.sizes, self.weight_offsets, self.bias_offsets, self.row_offsets, self.codes

    def views(self, flat: np.ndarray) -> list:
        """[(W, b)] views into ``flat``: W (p_i, p_{i-1}), b (p_i, 1)."""
        views = []
        for index in range(self.sizes.size - 1):
            fan_in, fan_out = int(self.sizes[index]), int(self.sizes[index + 1])
            weights, bias = int(self.weight_offsets[index]), int(self.bias_offsets[index])
            views.append((flat[weights:bias].reshape(fan_out, fan_in), flat[bias : bias + fan_out].reshape(fan_out, 1)))
        return views


def pack(params: list, views: list) -> None:
    """Copy the network's [(W, b)] into the flat vector behind ``views``."""
    for (W, b), (W_flat, b_flat) in zip(params, views):
        W_flat[...] = W
        b_flat[...] = b


def unpack(views: list, params: list) -> None:
    """Copy the flat vector behind ``views`` into [(W, b)] in place, cast to their dtype."""
    for (W, b), (W_flat, b_flat) in zip(params, views):
        W[...] = W_flat
        b[...] = b_flat
