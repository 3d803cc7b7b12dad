"""The roofline bound of one training step: the least time any implementation needs on a machine.

A step cannot finish faster than it can move the bytes it must move, nor faster than the machine
multiplies matrices, so its bound is max(bytes / bandwidth, FLOPs / GEMM rate), with the bandwidth
and GEMM rate measured in the same run (limits.py). ``roofline_fraction = bound / measured`` says
how close a backend comes: 1.0 would be perfect.

What is counted, for layers (p_0 = n, p_1, ..., p_L) and m examples:

- FLOPs: the matrix products alone, 2 FLOPs per multiply-add. Forward A_i = W_i H_{i-1}:
  2 m p_i p_{i-1} per layer; backward dW_i = dA_i H_{i-1}^T: the same again; dH_{i-1} = W_i^T dA_i:
  the same for every layer but the first (no gradient is needed for X). Elementwise work
  (activations, their derivatives, the loss) is left out: it is bound by memory, not arithmetic.
- Bytes: what must cross memory at least once: X (n, m) and Y (p_L, m) read, every parameter read
  and written once (the update). Hidden activations are not counted: a fused implementation keeps
  them in cache, so a layer-by-layer one that writes them to memory pays that above the bound.
"""

from __future__ import annotations

from collections.abc import Sequence


def step_flops(layers: Sequence[int], m: int) -> int:
    """Matrix-product FLOPs of one forward + backward pass over m examples."""
    products = [layers[index + 1] * layers[index] for index in range(len(layers) - 1)]
    forward = sum(2 * m * size for size in products)
    weight_gradients = forward
    input_gradients = sum(2 * m * size for size in products[1:])
    return forward + weight_gradients + input_gradients


def parameter_count(layers: Sequence[int]) -> int:
    """Weights and biases: sum of p_i (p_{i-1} + 1)."""
    return sum(layers[index + 1] * (layers[index] + 1) for index in range(len(layers) - 1))


def step_bytes(layers: Sequence[int], m: int, itemsize: int = 4) -> int:
    """Bytes one step must move at least: X and Y read once, the parameters read and written once."""
    return itemsize * ((layers[0] + layers[-1]) * m + 2 * parameter_count(layers))


def bound_seconds(flops: int, moved_bytes: int, gemm_gflops: float | None, stream_gbps: float | None) -> float | None:
    """max(bytes / bandwidth, FLOPs / GEMM rate); None when a limit was not measured."""
    if not gemm_gflops or not stream_gbps:
        return None
    return max(moved_bytes / (stream_gbps * 1e9), flops / (gemm_gflops * 1e9))
