"""The Numba kernels' building blocks: compile options, the activation table compiled for the CPU,
and the row helpers that run one row segment at a time inside the parallel and serial kernels.

The scalar math comes from ``kernels/activations.py``, compiled here with ``numba.njit``. The
``fast`` flag (set for float32 data) selects the library-free tanh, sigmoid and cross-entropy,
which LLVM vectorises; float64 uses the exact libm functions. The row helpers allocate nothing
and take 1-D views whose loops start at 0, so LLVM vectorises them.
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

import numba

from . import activations as act


class JitOptions(TypedDict, total=False):
    """The ``numba.njit`` options the kernels pass (typed, so that mypy checks each against Numba's stubs)."""

    cache: bool
    error_model: Literal["python", "numpy"]
    nogil: bool
    fastmath: set[str]


# error_model="numpy": division gives inf/nan instead of a Python-style ZeroDivisionError check,
# which would stop LLVM from vectorising any loop with a division in it.
# Contraction fuses a * b + c into one FMA instruction (one rounding instead of two): half the
# arithmetic of the products and polynomials, and the same result on every run.
OPTIONS: JitOptions = {"cache": True, "error_model": "numpy", "nogil": True, "fastmath": {"contract"}}
# Reassociation lets LLVM vectorise a floating-point sum (several partial sums in the vector lanes);
# only the functions that return a sum get it (sums over a tile then differ from a sequential sum
# in the last bits, the same on every run).
SUM_OPTIONS: JitOptions = {**OPTIONS, "fastmath": {"reassoc", "contract", "nsz"}}
# The row helpers below run inside the parallel loops and allocate nothing, so they are compiled
# without Numba's reference counting (``_nrt=False``, as Numba compiles its own non-allocating
# helpers). With it, every call and every row view increments and decrements its array's counter
# with an atomic instruction, about 200 times per block in the fused pass, and the counters of the
# shared X and theta bounce between the cores: the fused 2-6-6-1 pass measured 3-5% faster without.
# (Numba's stubs leave out the private ``_nrt`` option that njit accepts, hence the two ignores.)
ROW_OPTIONS: JitOptions = {**OPTIONS, "_nrt": False}  # type: ignore[typeddict-unknown-key]
ROW_SUM_OPTIONS: JitOptions = {**SUM_OPTIONS, "_nrt": False}  # type: ignore[typeddict-unknown-key]


def _jit(function):
    return numba.njit(**OPTIONS)(function)


def case_kernel(function, case: str, options: JitOptions):
    """``numba.njit(**options)(function)`` for a function that a factory makes once per ``case``
    (an activation, say), with cache files of its own. Numba names a function's cache files after
    its qualified name, which every function of one factory shares; in one shared index file,
    processes that compile different cases at once (pytest-xdist workers, two first runs) can
    overwrite each other's entries, so that a case later loads another case's code."""
    function.__qualname__ = f"{function.__qualname__}_{case}"
    return numba.njit(**options)(function)


sigmoid = _jit(act.sigmoid)
sigmoid_derivative = _jit(act.sigmoid_derivative)
tanh = _jit(act.tanh)
tanh_derivative = _jit(act.tanh_derivative)
relu = _jit(act.relu)
relu_derivative = _jit(act.relu_derivative)
leaky_relu = _jit(act.leaky_relu)
leaky_relu_derivative = _jit(act.leaky_relu_derivative)
elu = _jit(act.elu)
elu_derivative = _jit(act.elu_derivative)
selu = _jit(act.selu)
selu_derivative = _jit(act.selu_derivative)
identity = _jit(act.identity)
identity_derivative = _jit(act.identity_derivative)
tanh_rational = _jit(act.tanh_rational)
exp_negative = _jit(act.exp_negative)
exp_negative_float32 = _jit(act.exp_negative_float32)
log1p_unit_float32 = _jit(act.log1p_unit_float32)
sigmoid_cross_entropy = _jit(act.sigmoid_cross_entropy)
half_squared_error = _jit(act.half_squared_error)
softmax_probability = _jit(act.softmax_probability)
softmax_cross_entropy = _jit(act.softmax_cross_entropy)

SIGMOID, TANH, RELU, LEAKY_RELU, ELU, SELU, IDENTITY = (
    act.SIGMOID,
    act.TANH,
    act.RELU,
    act.LEAKY_RELU,
    act.ELU,
    act.SELU,
    act.IDENTITY,
)
OUTPUT_SIGMOID, OUTPUT_IDENTITY, OUTPUT_SOFTMAX = act.OUTPUT_SIGMOID, act.OUTPUT_IDENTITY, act.OUTPUT_SOFTMAX
ZERO, ONE = act.ZERO, act.ONE  # float32 constants: keep float32 arithmetic in float32


@numba.njit(inline="always", **OPTIONS)
def sigmoid_from_exp(a, t):
    """sigmoid(a) from t = e^-|a|: 1 / (1 + t) for a >= 0, t / (1 + t) below; no cancellation in
    either tail (float32 kernels, with t from ``exp_negative_float32``)."""
    return (ONE if a >= ZERO else t) / (ONE + t)


@numba.njit(inline="always", **OPTIONS)
def sigmoid_float32(a):
    """sigmoid(a) from the library-free float32 e^-|a| (``fast``): vectorised by LLVM."""
    return sigmoid_from_exp(a, exp_negative_float32(abs(a)))


# ----- one row segment at a time: the branch on the activation sits outside each inner loop ----------
def _activation_row(activation):
    """A row helper for one activation: row = activation(row + bias) in place, ``activation``
    compiled into the loop. One compiled helper per activation, so that a kernel whose activation
    is a constant compiles its own only (see ``activate_row``)."""

    def activate(row, bias):
        for j in range(row.size):
            row[j] = activation(row[j] + bias)

    return case_kernel(activate, activation.__name__, ROW_OPTIONS)


_tanh_row = _activation_row(tanh)
_tanh_float32_row = _activation_row(tanh_rational)
_sigmoid_row = _activation_row(sigmoid)
_sigmoid_float32_row = _activation_row(sigmoid_float32)
_relu_row = _activation_row(relu)
_leaky_relu_row = _activation_row(leaky_relu)
_elu_row = _activation_row(elu)
_selu_row = _activation_row(selu)
_identity_row = _activation_row(identity)


@numba.njit(inline="always", **ROW_OPTIONS)
def activate_row(row, bias, code, fast):
    """In place: row = act(row + bias); row is a 1-D view (its loops start at 0, so LLVM knows
    every index is non-negative, skips Numba's wraparound check and vectorises). Inlined: where
    ``code`` is a constant of the caller (the epoch kernels), Numba prunes the other branches and
    compiles that activation's helper only."""
    if code == TANH:
        if fast:
            _tanh_float32_row(row, bias)
        else:
            _tanh_row(row, bias)
    elif code == SIGMOID:
        if fast:
            _sigmoid_float32_row(row, bias)
        else:
            _sigmoid_row(row, bias)
    elif code == RELU:
        _relu_row(row, bias)
    elif code == LEAKY_RELU:
        _leaky_relu_row(row, bias)
    elif code == ELU:
        _elu_row(row, bias)
    elif code == SELU:
        _selu_row(row, bias)
    else:
        _identity_row(row, bias)


def _derivative_row(derivative):
    """A row helper for one activation: H = dH * act'(A) in place, ``derivative`` (act' written
    from H) compiled into the loop; returns total + the sum of the new H. One compiled helper per
    activation, as ``_activation_row``."""

    def backward(dH, H, total):
        for j in range(H.size):
            H[j] = dH[j] * derivative(H[j])
            total += H[j]
        return total

    return case_kernel(backward, derivative.__name__, ROW_SUM_OPTIONS)


_tanh_derivative_row = _derivative_row(tanh_derivative)
_sigmoid_derivative_row = _derivative_row(sigmoid_derivative)
_relu_derivative_row = _derivative_row(relu_derivative)
_leaky_relu_derivative_row = _derivative_row(leaky_relu_derivative)
_elu_derivative_row = _derivative_row(elu_derivative)
_selu_derivative_row = _derivative_row(selu_derivative)
_identity_derivative_row = _derivative_row(identity_derivative)


@numba.njit(inline="always", **ROW_SUM_OPTIONS)
def derivative_row(dH, H, code, start=0.0):
    """In place: H becomes dA = dH * act'(A), act' written from H; returns start + the sum of dA.
    dH and H are 1-D views of the same length. The sum has start's type: float64 (the default) for
    long rows; the fused pass passes ``ZERO`` to sum a block in the data's dtype, like its other
    block sums (for float32, 4% faster than converting every entry to float64). Inlined, as
    ``activate_row``, so that a constant ``code`` compiles its own activation's helper only."""
    if code == TANH:
        return _tanh_derivative_row(dH, H, start)
    if code == SIGMOID:
        return _sigmoid_derivative_row(dH, H, start)
    if code == RELU:
        return _relu_derivative_row(dH, H, start)
    if code == LEAKY_RELU:
        return _leaky_relu_derivative_row(dH, H, start)
    if code == ELU:
        return _elu_derivative_row(dH, H, start)
    if code == SELU:
        return _selu_derivative_row(dH, H, start)
    return _identity_derivative_row(dH, H, start)


@numba.njit(inline="always", **OPTIONS)
def activate_value(a, code, fast):
    """act(a) for hidden activation ``code``, one value: the dispatch of ``activate_row`` for
    code that handles one example at a time (the row versions keep the branch outside their loops)."""
    if code == TANH:
        return tanh_rational(a) if fast else tanh(a)
    if code == SIGMOID:
        return sigmoid_float32(a) if fast else sigmoid(a)
    if code == RELU:
        return relu(a)
    if code == LEAKY_RELU:
        return leaky_relu(a)
    if code == ELU:
        return elu(a)
    if code == SELU:
        return selu(a)
    return a


@numba.njit(inline="always", **OPTIONS)
def derivative_value(h, code):
    """act'(A) written from h = act(A), one value: the dispatch of ``derivative_row``."""
    if code == TANH:
        return tanh_derivative(h)
    if code == SIGMOID:
        return sigmoid_derivative(h)
    if code == RELU:
        return relu_derivative(h)
    if code == LEAKY_RELU:
        return leaky_relu_derivative(h)
    if code == ELU:
        return elu_derivative(h)
    if code == SELU:
        return selu_derivative(h)
    return identity_derivative(h)


# The output rows: one compiled helper per output and precision, behind an inlined dispatcher (as
# ``activate_row``). Each views rows of A and Y as 1-D slices: contiguous vector loads (no
# wraparound checks); each returns the row's summed loss, dA = H - Y left in A's row.
@numba.njit(**ROW_SUM_OPTIONS)
def _sigmoid_float32_output_row(row, bias, labels):
    loss = 0.0
    for j in range(row.size):
        a = row[j] + bias
        y = labels[j]
        t = exp_negative_float32(abs(a))
        loss += max(a, ZERO) - a * y + log1p_unit_float32(t)  # BCE = max(a, 0) - a y + log(1 + e^-|a|)
        row[j] = sigmoid_from_exp(a, t) - y  # dA = sigmoid(a) - y
    return loss


@numba.njit(**ROW_SUM_OPTIONS)
def _sigmoid_output_row(row, bias, labels):
    loss = 0.0
    for j in range(row.size):
        a = row[j] + bias
        y = labels[j]
        loss += sigmoid_cross_entropy(a, y)
        row[j] = sigmoid(a) - y
    return loss


@numba.njit(**ROW_SUM_OPTIONS)
def _identity_output_row(row, bias, labels):
    loss = 0.0
    for j in range(row.size):
        h = row[j] + bias
        y = labels[j]
        loss += half_squared_error(h, y)
        row[j] = h - y
    return loss


@numba.njit(inline="always", **ROW_SUM_OPTIONS)
def output_row(A, a_row, a_col, bias, Y, y_row, y_col, width, code, fast):
    """A sigmoid or identity output row: A[a_row, a_col:a_col+width] holds W H without the bias and
    becomes dA = H - Y, with H = out(A + bias) and Y[y_row, y_col:y_col+width]; returns the loss
    sum. Inlined, so that a caller whose ``code`` and ``fast`` are constants compiles one helper."""
    row = A[a_row, a_col : a_col + width]
    labels = Y[y_row, y_col : y_col + width]
    if code == OUTPUT_SIGMOID:
        if fast:
            return _sigmoid_float32_output_row(row, bias, labels)
        return _sigmoid_output_row(row, bias, labels)
    return _identity_output_row(row, bias, labels)


@numba.njit(**ROW_OPTIONS)
def _softmax_normalise(A, a_row, a_col, bias, bias_index, classes, width, fast, shift, normaliser):
    """shift[j] = max over classes of a = A + bias; normaliser[j] = log(sum(e^(a - shift))) for the
    columns a_col:a_col+width of rows a_row:a_row+classes (float64 scratch vectors)."""
    first = A[a_row, a_col : a_col + width]
    for j in range(width):
        shift[j] = first[j] + bias[bias_index]
    for i in range(1, classes):
        row = A[a_row + i, a_col : a_col + width]
        b = bias[bias_index + i]
        for j in range(width):
            shift[j] = max(shift[j], row[j] + b)
    for j in range(width):
        normaliser[j] = 0.0
    for i in range(classes):
        row = A[a_row + i, a_col : a_col + width]
        b = bias[bias_index + i]
        if fast:
            for j in range(width):
                normaliser[j] += exp_negative(shift[j] - (row[j] + b))  # e^(a - max a)
        else:
            for j in range(width):
                normaliser[j] += math.exp((row[j] + b) - shift[j])
    for j in range(width):
        normaliser[j] = math.log(normaliser[j])


@numba.njit(**ROW_SUM_OPTIONS)
def softmax_block(A, a_row, a_col, bias, bias_index, Y, y_col, classes, width, fast, shift, normaliser):
    """Softmax output: A[a_row:a_row+classes, a_col:a_col+width] holds W H without the bias (bias[
    bias_index:bias_index+classes]) and becomes dA = H - Y, Y[:, y_col:y_col+width]; returns the
    cross-entropy sum. ``shift`` and ``normaliser`` are float64 scratch vectors of >= width entries."""
    _softmax_normalise(A, a_row, a_col, bias, bias_index, classes, width, fast, shift, normaliser)
    loss = 0.0
    for i in range(classes):
        row = A[a_row + i, a_col : a_col + width]
        labels = Y[i, y_col : y_col + width]
        b = bias[bias_index + i]
        for j in range(width):
            shifted = (row[j] + b) - shift[j]  # a - max a
            loss += softmax_cross_entropy(shifted, normaliser[j], labels[j])
            row[j] = shifted - normaliser[j]  # log h
        if fast:
            for j in range(width):
                row[j] = exp_negative(-row[j]) - labels[j]  # dA = h - y
        else:
            for j in range(width):
                row[j] = math.exp(row[j]) - labels[j]
    return loss


@numba.njit(**ROW_OPTIONS)
def softmax_forward_block(A, a_row, a_col, bias, bias_index, classes, width, shift, normaliser):
    """Softmax in place: A[a_row:a_row+classes, a_col:a_col+width] (W H without the bias) becomes H."""
    _softmax_normalise(A, a_row, a_col, bias, bias_index, classes, width, False, shift, normaliser)
    for i in range(classes):
        row = A[a_row + i, a_col : a_col + width]
        b = bias[bias_index + i]
        for j in range(width):
            row[j] = softmax_probability((row[j] + b) - shift[j], normaliser[j])


@numba.njit(**ROW_SUM_OPTIONS)
def row_sum(row, start=0.0):
    """start + the sum of a 1-D row, accumulated in start's type (as in ``derivative_row``): float64
    by default; the fused pass passes ``ZERO`` to sum a block in the data's dtype. The loop starts
    at the row's first entry, aligned (see ``add_products``)."""
    total = start
    for j in range(row.size):
        total += row[j]
    return total
