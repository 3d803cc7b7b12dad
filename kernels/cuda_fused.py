"""A fully fused forward + loss + backward pass for small networks on a CUDA GPU (numba.cuda).

In the spirit of tiny-cuda-nn's fully fused MLP: for a network whose layers are all narrow, one
kernel reads each example's column of X and Y once, runs the whole forward pass, the loss and the
whole backward pass with the example's activations in registers, and adds the example's weight and
bias gradients to per-thread sums, also in registers. The weights sit in shared memory. At the end
each block sums its threads' partial gradients (through shared memory, in a fixed order) into one
row of ``partials`` (blocks, parameters + 1; the last column is the loss), and a second kernel sums
that over the blocks, scales it and writes it into the gradient arrays. A layer-by-layer pass reads
and writes every (p, m) activation several times; this one touches only X and Y.

The kernels are specialised for one architecture: the layer sizes, activations and offsets are
constants of a closure, so every loop over units has a fixed trip count that the compiler unrolls,
which is what keeps the per-example arrays in registers (see ``tests/test_cuda_fused.py``, which
checks with ``ptxas`` that the 2-6-6-1 kernel uses no local memory).

The activations are the scalar functions of ``kernels/activations.py``, compiled as CUDA device
functions. The kernels run unchanged under ``NUMBA_ENABLE_CUDASIM=1`` (the CPU simulator the tests
use); on a GPU the CuPy backend launches them on CuPy arrays.

Shapes: X (n, m) and Y (p_L, m), C-contiguous, one column per example; params and grads are
tuples (W1, b1, ..., WL, bL) with W_i (p_i, p_{i-1}) and b_i (p_i, 1).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import cuda

from . import activations as scalar

THREADS_PER_BLOCK = 128
# Per-thread gradient sums live in registers, so the fused kernel is for small networks only: at
# most this many float32 parameters (half as many float64) and this many units in any layer.
FUSED_MAX_PARAMETERS = 96
FUSED_MAX_WIDTH = 16
FUSED_MAX_DEPTH = 6  # layers with weights
# The block reduction moves this many parameters' sums through shared memory at a time.
REDUCTION_CHUNK = 32


def device(function):
    """A scalar function of kernels/activations.py as a CUDA device function."""
    return cuda.jit(device=True)(function)


_sigmoid = device(scalar.sigmoid)
_tanh = device(scalar.tanh)
_relu = device(scalar.relu)
_leaky_relu = device(scalar.leaky_relu)
_elu = device(scalar.elu)
_selu = device(scalar.selu)
_identity = device(scalar.identity)
_sigmoid_derivative = device(scalar.sigmoid_derivative)
_tanh_derivative = device(scalar.tanh_derivative)
_relu_derivative = device(scalar.relu_derivative)
_leaky_relu_derivative = device(scalar.leaky_relu_derivative)
_elu_derivative = device(scalar.elu_derivative)
_selu_derivative = device(scalar.selu_derivative)
_identity_derivative = device(scalar.identity_derivative)
_output_gradient = device(scalar.output_gradient)
_sigmoid_cross_entropy = device(scalar.sigmoid_cross_entropy)
_half_squared_error = device(scalar.half_squared_error)
_softmax_probability = device(scalar.softmax_probability)
_softmax_cross_entropy = device(scalar.softmax_cross_entropy)


@cuda.jit(device=True)
def activate(a, code):
    """H = act(A) for activation ``code`` (a compile-time constant in the fused kernel)."""
    if code == scalar.SIGMOID:
        return _sigmoid(a)
    if code == scalar.TANH:
        return _tanh(a)
    if code == scalar.RELU:
        return _relu(a)
    if code == scalar.LEAKY_RELU:
        return _leaky_relu(a)
    if code == scalar.ELU:
        return _elu(a)
    if code == scalar.SELU:
        return _selu(a)
    return _identity(a)


@cuda.jit(device=True)
def derivative(h, code):
    """act'(A) written from H = act(A), for activation ``code``."""
    if code == scalar.SIGMOID:
        return _sigmoid_derivative(h)
    if code == scalar.TANH:
        return _tanh_derivative(h)
    if code == scalar.RELU:
        return _relu_derivative(h)
    if code == scalar.LEAKY_RELU:
        return _leaky_relu_derivative(h)
    if code == scalar.ELU:
        return _elu_derivative(h)
    if code == scalar.SELU:
        return _selu_derivative(h)
    return _identity_derivative(h)


@dataclass(frozen=True)
class Layout:
    """Where each layer's numbers live in the kernel's packed vectors.

    Parameters are packed W1 (row-major), b1, W2, b2, ...: ``weight_offsets[i]`` and
    ``bias_offsets[i]`` index layer i's; ``parameter_count`` is their total. Activations of one
    example are packed x, H1, ..., H_L: ``unit_offsets[i]`` indexes layer i's (0 is the input).
    """

    layers: tuple
    weight_offsets: tuple
    bias_offsets: tuple
    unit_offsets: tuple
    parameter_count: int
    unit_count: int

    @classmethod
    def of(cls, layers) -> Layout:
        layers = tuple(int(size) for size in layers)
        weight_offsets, bias_offsets, unit_offsets = [], [], [0]
        offset = 0
        for fan_in, fan_out in zip(layers[:-1], layers[1:]):
            weight_offsets.append(offset)
            offset += fan_out * fan_in
            bias_offsets.append(offset)
            offset += fan_out
            unit_offsets.append(unit_offsets[-1] + fan_in)
        return cls(layers, tuple(weight_offsets), tuple(bias_offsets), tuple(unit_offsets), offset, sum(layers))


def fits_fused(layers, itemsize: int = 4) -> bool:
    """Whether the fused kernel takes a network of these layer sizes and element size in bytes:
    its per-thread gradient sums must fit in registers. ptxas for sm_90 finds no local memory for
    2-6-6-1, 3-8-6-1 (93 parameters) and 1-16-1 in float32 and 2-4-4-1 in float64, and spills from
    about 120 float32 parameters (2-6-6-1 in float64, 3-8-8-2) or 32 units in a layer."""
    layout = Layout.of(layers)
    return (
        layout.parameter_count * itemsize <= 4 * FUSED_MAX_PARAMETERS
        and max(layers) <= FUSED_MAX_WIDTH
        and len(layers) - 1 <= FUSED_MAX_DEPTH
    )


def grid_blocks(m: int, multiprocessors: int, threads: int = THREADS_PER_BLOCK) -> int:
    """Blocks for m examples: enough to fill the GPU (8 per multiprocessor), never more than needed.

    Each thread loops over examples with a grid stride, so this fixes the order of every sum.
    """
    return max(1, min(-(-m // threads), 8 * multiprocessors))


class Kernel(Protocol):
    """A compiled numba.cuda kernel: ``kernel[blocks, threads, stream](*arrays)`` launches it."""

    def __getitem__(self, launch: tuple[int, int, object], /) -> Callable[..., None]: ...


@dataclass(frozen=True)
class FusedKernels:
    layout: Layout
    threads: int
    fused_pass: Kernel  # fused_pass[blocks, threads, stream](X, Y, params, partials)
    reduce_partials: Kernel  # reduce_partials[blocks, threads, stream](partials, grads, loss, scale)


@functools.lru_cache(maxsize=32)
def fused_kernels(layers: tuple, hidden: tuple, output: str, dtype_name: str, threads: int = THREADS_PER_BLOCK) -> FusedKernels:
    """Compile (lazily, on first launch) the two kernels for one architecture and dtype.

    ``layers``: sizes from input to output; ``hidden``: one activation name per hidden layer;
    ``output``: sigmoid, identity or softmax; ``dtype_name``: float32 or float64.
    """
    dtype = np.dtype(dtype_name)
    if not fits_fused(layers, dtype.itemsize):
        raise ValueError(
            f"layers {list(layers)} in {dtype.name} are too large for the fused kernel (at most "
            f"{FUSED_MAX_PARAMETERS} float32 parameters, {FUSED_MAX_WIDTH} units per layer, "
            f"{FUSED_MAX_DEPTH} layers); use the layer-by-layer pass"
        )
    layout = Layout.of(layers)
    return FusedKernels(layout, threads, _build_fused_pass(layout, hidden, output, dtype, threads), _build_reduce(layout))


def _build_fused_pass(layout: Layout, hidden: tuple, output: str, dtype, threads: int):
    # Everything below is a closure constant, frozen into the compiled kernel.
    LAYERS = layout.layers
    PARAMETERS = layout.parameter_count
    UNITS = layout.unit_count
    WIDEST = max(LAYERS)
    THREADS = threads
    CHUNK = min(REDUCTION_CHUNK, threads)
    ROWS = PARAMETERS + 1  # the partial gradients, then the loss
    REDUCTION_SHAPE = (CHUNK, THREADS + 1)  # +1: no shared-memory bank conflicts
    DTYPE = dtype
    codes = tuple(scalar.activation_code(name) for name in hidden) + (scalar.IDENTITY,)
    depth = len(LAYERS) - 1
    # One device function per layer step, with that layer's sizes and offsets as constants, so
    # each loop has a fixed trip count the compiler unrolls; steps past the depth do nothing.
    load_0, load_1, load_2, load_3, load_4, load_5 = (
        _load_step(layout, layer) if layer < depth else _no_load for layer in range(FUSED_MAX_DEPTH)
    )
    forward_0, forward_1, forward_2, forward_3, forward_4, forward_5 = (
        _forward_step(layout, layer, codes[layer]) if layer < depth else _no_forward for layer in range(FUSED_MAX_DEPTH)
    )
    backward_0, backward_1, backward_2, backward_3, backward_4, backward_5 = (
        _backward_step(layout, layer, codes[layer - 1] if layer else scalar.IDENTITY) if layer < depth else _no_backward
        for layer in range(FUSED_MAX_DEPTH)
    )
    output_step = _output_step(layout, scalar.output_code(output))

    @cuda.jit
    def fused_pass(X, Y, params, partials):
        weights = cuda.shared.array(PARAMETERS, DTYPE)  # W1, b1, W2, b2, ... packed
        load_0(params, weights)
        load_1(params, weights)
        load_2(params, weights)
        load_3(params, weights)
        load_4(params, weights)
        load_5(params, weights)
        cuda.syncthreads()

        gradient = cuda.local.array(PARAMETERS, DTYPE)  # this thread's sums of dW, db
        for q in range(PARAMETERS):
            gradient[q] = 0
        loss = 0.0
        H = cuda.local.array(UNITS, DTYPE)  # x, H1, ..., and the output layer's A, of one example
        dA = cuda.local.array(WIDEST, DTYPE)
        dA_previous = cuda.local.array(WIDEST, DTYPE)

        for column in range(cuda.grid(1), X.shape[1], cuda.gridsize(1)):
            for k in range(LAYERS[0]):
                H[k] = X[k, column]
            forward_0(H, weights)
            forward_1(H, weights)
            forward_2(H, weights)
            forward_3(H, weights)
            forward_4(H, weights)
            forward_5(H, weights)
            loss += output_step(H, Y, column, dA)
            backward_5(H, weights, gradient, dA, dA_previous)
            backward_4(H, weights, gradient, dA, dA_previous)
            backward_3(H, weights, gradient, dA, dA_previous)
            backward_2(H, weights, gradient, dA, dA_previous)
            backward_1(H, weights, gradient, dA, dA_previous)
            backward_0(H, weights, gradient, dA, dA_previous)

        # block sum of the per-thread sums, CHUNK parameters at a time, in a fixed order
        thread = cuda.threadIdx.x
        shared = cuda.shared.array(REDUCTION_SHAPE, DTYPE)
        for first in range(0, ROWS, CHUNK):
            for c in range(CHUNK):
                if first + c < PARAMETERS:
                    shared[c, thread] = gradient[first + c]
                elif first + c == PARAMETERS:
                    shared[c, thread] = loss
            cuda.syncthreads()
            if thread < CHUNK and first + thread < ROWS:
                total = shared[thread, 0]
                for t in range(1, THREADS):
                    total += shared[thread, t]
                partials[cuda.blockIdx.x, first + thread] = total
            cuda.syncthreads()

    return fused_pass


# Layer steps past the network's depth.
@cuda.jit(device=True, inline="always")
def _no_load(params, weights):
    pass


@cuda.jit(device=True, inline="always")
def _no_forward(H, weights):
    pass


@cuda.jit(device=True, inline="always")
def _no_backward(H, weights, gradient, dA, dA_previous):
    pass


def _load_step(layout: Layout, layer: int):
    """Copy layer ``layer``'s W and b into the block's shared weights (all threads share the work)."""
    FAN_IN, FAN_OUT = layout.layers[layer], layout.layers[layer + 1]
    W0, B0 = layout.weight_offsets[layer], layout.bias_offsets[layer]
    W_INDEX, B_INDEX = 2 * layer, 2 * layer + 1

    @cuda.jit(device=True, inline="always")
    def load(params, weights):
        W = params[W_INDEX]
        b = params[B_INDEX]
        for index in range(cuda.threadIdx.x, FAN_OUT * FAN_IN, cuda.blockDim.x):
            weights[W0 + index] = W[index // FAN_IN, index % FAN_IN]
        for index in range(cuda.threadIdx.x, FAN_OUT, cuda.blockDim.x):
            weights[B0 + index] = b[index, 0]

    return load


def _forward_step(layout: Layout, layer: int, code: int):
    """A = W H_prev + b, H = act(A) for one example; the output layer (code identity) keeps A."""
    FAN_IN, FAN_OUT = layout.layers[layer], layout.layers[layer + 1]
    W0, B0 = layout.weight_offsets[layer], layout.bias_offsets[layer]
    IN0, OUT0 = layout.unit_offsets[layer], layout.unit_offsets[layer + 1]
    CODE = code

    @cuda.jit(device=True, inline="always")
    def forward(H, weights):
        for i in range(FAN_OUT):
            a = weights[B0 + i]
            for k in range(FAN_IN):
                a += weights[W0 + i * FAN_IN + k] * H[IN0 + k]  # A = W H_prev + b
            H[OUT0 + i] = activate(a, CODE)  # H = act(A)

    return forward


def _output_step(layout: Layout, code: int):
    """The example's loss from the output layer's A, and dA = H - Y; returns the loss."""
    OUTPUTS = layout.layers[-1]
    OFFSET = layout.unit_offsets[-1]
    CODE = code

    @cuda.jit(device=True, inline="always")
    def output_step(H, Y, column, dA):
        loss = 0.0
        if CODE == scalar.OUTPUT_SOFTMAX:
            shift = H[OFFSET]
            for i in range(1, OUTPUTS):
                shift = max(shift, H[OFFSET + i])
            total = 0.0
            for i in range(OUTPUTS):
                total += math.exp(H[OFFSET + i] - shift)
            log_normaliser = math.log(total)
            for i in range(OUTPUTS):
                y = Y[i, column]
                shifted = H[OFFSET + i] - shift
                loss += _softmax_cross_entropy(shifted, log_normaliser, y)
                dA[i] = _output_gradient(_softmax_probability(shifted, log_normaliser), y)
        elif CODE == scalar.OUTPUT_SIGMOID:
            for i in range(OUTPUTS):
                a, y = H[OFFSET + i], Y[i, column]
                loss += _sigmoid_cross_entropy(a, y)
                dA[i] = _output_gradient(_sigmoid(a), y)
        else:
            for i in range(OUTPUTS):
                a, y = H[OFFSET + i], Y[i, column]
                loss += _half_squared_error(a, y)
                dA[i] = _output_gradient(a, y)
        return loss

    return output_step


def _backward_step(layout: Layout, layer: int, previous_code: int):
    """dW += dA H_prev^T, db += dA; then (below the first layer) dA = (W^T dA) * act'(A_prev)."""
    FAN_IN, FAN_OUT = layout.layers[layer], layout.layers[layer + 1]
    W0, B0, IN0 = layout.weight_offsets[layer], layout.bias_offsets[layer], layout.unit_offsets[layer]
    PROPAGATE = layer > 0
    CODE = previous_code

    @cuda.jit(device=True, inline="always")
    def backward(H, weights, gradient, dA, dA_previous):
        for i in range(FAN_OUT):
            gradient[B0 + i] += dA[i]  # db += dA
            for k in range(FAN_IN):
                gradient[W0 + i * FAN_IN + k] += dA[i] * H[IN0 + k]  # dW += dA H_prev^T
        if PROPAGATE:
            for k in range(FAN_IN):
                dH = weights[W0 + k] * dA[0]
                for i in range(1, FAN_OUT):
                    dH += weights[W0 + i * FAN_IN + k] * dA[i]  # dH_prev = W^T dA
                dA_previous[k] = dH * derivative(H[IN0 + k], CODE)  # dA_prev = dH_prev * act'
            for k in range(FAN_IN):
                dA[k] = dA_previous[k]

    return backward


def _build_reduce(layout: Layout):
    LAYERS = layout.layers
    DEPTH = len(LAYERS) - 1
    WEIGHT_OFFSETS, BIAS_OFFSETS = layout.weight_offsets, layout.bias_offsets
    PARAMETERS = layout.parameter_count

    @cuda.jit
    def reduce_partials(partials, grads, loss, scale):
        q = cuda.grid(1)
        if q > PARAMETERS:
            return
        total = partials[0, q]
        for block in range(1, partials.shape[0]):
            total += partials[block, q]
        if q == PARAMETERS:
            loss[0] = total  # the summed loss, unscaled
            return
        for layer in range(DEPTH):
            fan_in = LAYERS[layer]
            if WEIGHT_OFFSETS[layer] <= q < BIAS_OFFSETS[layer]:
                index = q - WEIGHT_OFFSETS[layer]
                grads[2 * layer][index // fan_in, index % fan_in] = total * scale
            elif BIAS_OFFSETS[layer] <= q < BIAS_OFFSETS[layer] + LAYERS[layer + 1]:
                grads[2 * layer + 1][q - BIAS_OFFSETS[layer], 0] = total * scale

    return reduce_partials


def fused_loss_and_gradients(
    layers, hidden, output, params, X, Y, partials, grads, loss, scale: float, stream=0, threads: int = THREADS_PER_BLOCK
) -> None:
    """Launch the fused pass: ``grads`` = scale * the summed gradients, ``loss[0]`` = the summed loss.

    ``params``/``grads``: lists of (W, b) pairs; ``partials``: (blocks, parameters + 1), its row
    count sets the grid; ``loss``: a 1-element array. The arrays are whatever numba.cuda launches
    on (device arrays; NumPy arrays under the simulator). Nothing is copied or synchronised.
    ``threads`` per block (the tests use small blocks, which the simulator runs faster).
    """
    kernels = fused_kernels(tuple(layers), tuple(hidden), output, np.dtype(X.dtype).name, threads)
    flat_params = tuple(array for pair in params for array in pair)
    flat_grads = tuple(array for pair in grads for array in pair)
    blocks = partials.shape[0]
    kernels.fused_pass[blocks, kernels.threads, stream](X, Y, flat_params, partials)
    rows = kernels.layout.parameter_count + 1
    kernels.reduce_partials[-(-rows // kernels.threads), kernels.threads, stream](partials, flat_grads, loss, X.dtype.type(scale))


def partials_shape(layers, blocks: int) -> tuple[int, int]:
    """The shape of the per-block partial-sum buffer for ``blocks`` blocks."""
    return (blocks, Layout.of(layers).parameter_count + 1)
