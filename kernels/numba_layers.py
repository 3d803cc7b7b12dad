"""Numba CPU kernels for the layer-by-layer pass: each elementwise step of a layer in one pass.

The matmuls stay on BLAS (``np.matmul(..., out=)``); everything between them is one parallel pass
over the (p, m) array that the matmul just wrote:

* ``bias_activation``: A = W H + b and H = act(A) (the bias broadcast and the activation);
* ``activation_backward``: dA = dH * act'(A), act' written from H, into H's buffer, and the row
  sums of dA (the previous layer's db) on the way;
* ``output_loss_gradient``: the output activation, the loss (reduced on the way) and dA = H - Y;
* ``row_sums`` and ``update`` (W -= lr (dW + l1 sign(W) + l2 W) in one pass).

The scalar math comes from ``kernels/activations.py``, compiled here with ``numba.njit``. The
``fast`` flag (set for float32 data) selects the library-free tanh, sigmoid and cross-entropy,
which LLVM vectorises; float64 uses the exact libm functions.

Work is split into tiles of one row and ``COLUMNS`` columns, so a tile's sums, and hence every
result, are the same whatever the number of threads. Reductions write one partial per tile,
summed in order after the parallel loop (never a shared accumulator inside ``prange``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from . import activations as act

# error_model="numpy": division gives inf/nan instead of a Python-style ZeroDivisionError check,
# which would stop LLVM from vectorising any loop with a division in it.
# Contraction fuses a * b + c into one FMA instruction (one rounding instead of two): half the
# arithmetic of the products and polynomials, and the same result on every run.
OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True, "fastmath": {"contract"}}
# Reassociation lets LLVM vectorise a floating-point sum (several partial sums in the vector lanes);
# only the functions that return a sum get it (sums over a tile then differ from a sequential sum
# in the last bits, the same on every run).
SUM_OPTIONS = dict(OPTIONS, fastmath={"reassoc", "contract", "nsz"})
# The row helpers below run inside the parallel loops and allocate nothing, so they are compiled
# without Numba's reference counting (``_nrt=False``, as Numba compiles its own non-allocating
# helpers). With it, every call and every row view increments and decrements its array's counter
# with an atomic instruction, about 200 times per block in the fused pass, and the counters of the
# shared X and theta bounce between the cores: the fused 2-6-6-1 pass measured 3-5% faster without.
ROW_OPTIONS = dict(OPTIONS, _nrt=False)
ROW_SUM_OPTIONS = dict(SUM_OPTIONS, _nrt=False)
COLUMNS = 8192  # columns per tile of an elementwise kernel


def _jit(function):
    return numba.njit(**OPTIONS)(function)


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


# ----- one row segment at a time: the branch on the activation sits outside each inner loop ----------
@numba.njit(**ROW_OPTIONS)
def activate_row(row, bias, code, fast):
    """In place: row = act(row + bias); row is a 1-D view (its loops start at 0, so LLVM knows
    every index is non-negative, skips Numba's wraparound check and vectorises)."""
    if code == TANH:
        if fast:
            for j in range(row.size):
                row[j] = tanh_rational(row[j] + bias)
        else:
            for j in range(row.size):
                row[j] = tanh(row[j] + bias)
    elif code == SIGMOID:
        if fast:
            for j in range(row.size):
                a = row[j] + bias
                row[j] = sigmoid_from_exp(a, exp_negative_float32(abs(a)))
        else:
            for j in range(row.size):
                row[j] = sigmoid(row[j] + bias)
    elif code == RELU:
        for j in range(row.size):
            row[j] = relu(row[j] + bias)
    elif code == LEAKY_RELU:
        for j in range(row.size):
            row[j] = leaky_relu(row[j] + bias)
    elif code == ELU:
        for j in range(row.size):
            row[j] = elu(row[j] + bias)
    elif code == SELU:
        for j in range(row.size):
            row[j] = selu(row[j] + bias)
    else:
        for j in range(row.size):
            row[j] = identity(row[j] + bias)


@numba.njit(**ROW_SUM_OPTIONS)
def derivative_row(dH, H, code, start=0.0):
    """In place: H becomes dA = dH * act'(A), act' written from H; returns start + the sum of dA.
    dH and H are 1-D views of the same length. The sum has start's type: float64 (the default) for
    long rows; the fused pass passes ``ZERO`` to sum a block in the data's dtype, like its other
    block sums (for float32, 4% faster than converting every entry to float64)."""
    total = start
    if code == TANH:
        for j in range(H.size):
            H[j] = dH[j] * tanh_derivative(H[j])
            total += H[j]
    elif code == SIGMOID:
        for j in range(H.size):
            H[j] = dH[j] * sigmoid_derivative(H[j])
            total += H[j]
    elif code == RELU:
        for j in range(H.size):
            H[j] = dH[j] * relu_derivative(H[j])
            total += H[j]
    elif code == LEAKY_RELU:
        for j in range(H.size):
            H[j] = dH[j] * leaky_relu_derivative(H[j])
            total += H[j]
    elif code == ELU:
        for j in range(H.size):
            H[j] = dH[j] * elu_derivative(H[j])
            total += H[j]
    elif code == SELU:
        for j in range(H.size):
            H[j] = dH[j] * selu_derivative(H[j])
            total += H[j]
    else:
        for j in range(H.size):
            H[j] = dH[j] * identity_derivative(H[j])
            total += H[j]
    return total


@numba.njit(inline="always", **OPTIONS)
def activate_value(a, code, fast):
    """act(a) for hidden activation ``code``, one value: the dispatch of ``activate_row`` for
    code that handles one example at a time (the row versions keep the branch outside their loops)."""
    if code == TANH:
        return tanh_rational(a) if fast else tanh(a)
    if code == SIGMOID:
        return sigmoid_from_exp(a, exp_negative_float32(abs(a))) if fast else sigmoid(a)
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


@numba.njit(**ROW_SUM_OPTIONS)
def output_row(A, a_row, a_col, bias, Y, y_row, y_col, width, code, fast):
    """A sigmoid or identity output row: A[a_row, a_col:a_col+width] holds W H without the bias and
    becomes dA = H - Y, with H = out(A + bias) and Y[y_row, y_col:y_col+width]; returns the loss sum."""
    loss = 0.0
    row = A[a_row, a_col : a_col + width]  # 1-D views: contiguous vector loads (no wraparound checks)
    labels = Y[y_row, y_col : y_col + width]
    if code == OUTPUT_SIGMOID:
        if fast:
            for j in range(width):
                a = row[j] + bias
                y = labels[j]
                t = exp_negative_float32(abs(a))
                loss += max(a, ZERO) - a * y + log1p_unit_float32(t)  # BCE = max(a, 0) - a y + log(1 + e^-|a|)
                row[j] = sigmoid_from_exp(a, t) - y  # dA = sigmoid(a) - y
        else:
            for j in range(width):
                a = row[j] + bias
                y = labels[j]
                loss += sigmoid_cross_entropy(a, y)
                row[j] = sigmoid(a) - y
    else:
        for j in range(width):
            h = row[j] + bias
            y = labels[j]
            loss += half_squared_error(h, y)
            row[j] = h - y
    return loss


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


# ----- sums of a few rows: W H and W^T dA when the inner dimension is small --------------------------
# Inner loops index 1-D views with the bare loop variable: Numba's negative-index wraparound check on
# an index such as ``column + j`` would turn each contiguous vector load into a gather.
@numba.njit(**ROW_SUM_OPTIONS)
def combine_rows(out, theta, weight_index, weight_stride, count, source, source_row, source_col, width):
    """out[:width] = sum over t < count of theta[weight_index + t weight_stride] source[source_row + t,
    source_col:source_col+width]: a row of W H (stride 1 along a row of W) or of W^T dA (stride p_in
    down a column of W).

    A sum of a few products per entry is bound by loads and stores, not arithmetic, so it takes up
    to four source rows per pass over ``out`` (one load and store of out per four products)."""
    x0 = source[source_row, source_col : source_col + width]
    w0 = theta[weight_index]
    if count == 1:
        for j in range(width):
            out[j] = w0 * x0[j]
        return
    x1 = source[source_row + 1, source_col : source_col + width]
    w1 = theta[weight_index + weight_stride]
    for j in range(width):
        out[j] = w0 * x0[j] + w1 * x1[j]
    t = 2
    while t + 4 <= count:
        x0 = source[source_row + t, source_col : source_col + width]
        x1 = source[source_row + t + 1, source_col : source_col + width]
        x2 = source[source_row + t + 2, source_col : source_col + width]
        x3 = source[source_row + t + 3, source_col : source_col + width]
        w0 = theta[weight_index + t * weight_stride]
        w1 = theta[weight_index + (t + 1) * weight_stride]
        w2 = theta[weight_index + (t + 2) * weight_stride]
        w3 = theta[weight_index + (t + 3) * weight_stride]
        for j in range(width):
            out[j] += (w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])
        t += 4
    while t < count:
        x0 = source[source_row + t, source_col : source_col + width]
        w0 = theta[weight_index + t * weight_stride]
        for j in range(width):
            out[j] += w0 * x0[j]
        t += 1


PAIR_MAX_COUNT = 8  # combine_row_pair's one-pass limit on source rows


def _row_pair_kernel(derivative):
    """``combine_row_pair`` with the scalar function ``derivative`` compiled into its loops (inlined,
    so a pass needs no call per entry). Each derivative gets its own copy of the loops: passed as an
    argument instead, a function compiles the same, but Numba cannot cache a kernel that takes one."""

    @numba.njit(**ROW_SUM_OPTIONS)
    def combine_row_pair(out0, out1, theta, index0, index1, weight_stride, count, source, source_row, source_col, width):
        """Two rows of ``combine_rows`` in one pass, each entry's sum times ``derivative`` of the
        entry it replaces: out0[j] <- derivative(out0[j]) * (sum over t < count of theta[index0 + t
        weight_stride] source[source_row + t, source_col + j]) for j < width, and out1 likewise from
        index1, for count <= PAIR_MAX_COUNT; returns the sums of the two new rows (data's dtype).

        Forward, with ``identity_derivative`` (1): out = A = W H along rows of W (stride 1).
        Backward, with a hidden activation's derivative (written from H): out holds two rows of
        H_prev and becomes dA_prev = (W^T dA) * act'(H_prev), down columns of W (stride p_in), from
        source = the rows of dA; the sums are db_prev.

        Each source entry is loaded once for both rows and each output is written once, with every
        product of a column in registers: on 2-6-6-1 the fused pass measured 7% faster than with
        ``combine_rows`` (which rereads and rewrites its output every four source rows), and 5-8%
        faster again with the backward's derivative in the same pass rather than in a pass of its
        own over a dH buffer. LLVM vectorises only a loop whose body it sees whole, so each count has
        its own loop."""
        # rows and weights past the last (never read) repeat the last one, so every index is valid
        last = count - 1
        t1, t2, t3, t4 = min(1, last), min(2, last), min(3, last), min(4, last)
        t5, t6, t7 = min(5, last), min(6, last), min(7, last)
        columns = slice(source_col, source_col + width)
        x0, x1 = source[source_row, columns], source[source_row + t1, columns]
        x2, x3 = source[source_row + t2, columns], source[source_row + t3, columns]
        x4, x5 = source[source_row + t4, columns], source[source_row + t5, columns]
        x6, x7 = source[source_row + t6, columns], source[source_row + t7, columns]
        s = weight_stride
        a0, a1, a2, a3 = theta[index0], theta[index0 + t1 * s], theta[index0 + t2 * s], theta[index0 + t3 * s]
        a4, a5, a6, a7 = theta[index0 + t4 * s], theta[index0 + t5 * s], theta[index0 + t6 * s], theta[index0 + t7 * s]
        b0, b1, b2, b3 = theta[index1], theta[index1 + t1 * s], theta[index1 + t2 * s], theta[index1 + t3 * s]
        b4, b5, b6, b7 = theta[index1 + t4 * s], theta[index1 + t5 * s], theta[index1 + t6 * s], theta[index1 + t7 * s]
        total0 = total1 = ZERO
        if count == 1:
            for j in range(width):
                y0 = x0[j]
                new0 = (a0 * y0) * derivative(out0[j])
                new1 = (b0 * y0) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 2:
            for j in range(width):
                y0, y1 = x0[j], x1[j]
                new0 = (a0 * y0 + a1 * y1) * derivative(out0[j])
                new1 = (b0 * y0 + b1 * y1) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 3:
            for j in range(width):
                y0, y1, y2 = x0[j], x1[j], x2[j]
                new0 = ((a0 * y0 + a1 * y1) + a2 * y2) * derivative(out0[j])
                new1 = ((b0 * y0 + b1 * y1) + b2 * y2) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 4:
            for j in range(width):
                y0, y1, y2, y3 = x0[j], x1[j], x2[j], x3[j]
                new0 = ((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) * derivative(out0[j])
                new1 = ((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 5:
            for j in range(width):
                y0, y1, y2, y3, y4 = x0[j], x1[j], x2[j], x3[j], x4[j]
                new0 = (((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) + a4 * y4) * derivative(out0[j])
                new1 = (((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) + b4 * y4) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 6:
            for j in range(width):
                y0, y1, y2, y3, y4, y5 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
                new0 = (((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) + (a4 * y4 + a5 * y5)) * derivative(out0[j])
                new1 = (((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) + (b4 * y4 + b5 * y5)) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        elif count == 7:
            for j in range(width):
                y0, y1, y2, y3, y4, y5, y6 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j], x6[j]
                new0 = (((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) + ((a4 * y4 + a5 * y5) + a6 * y6)) * derivative(out0[j])
                new1 = (((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) + ((b4 * y4 + b5 * y5) + b6 * y6)) * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        else:
            for j in range(width):
                y0, y1, y2, y3, y4, y5, y6, y7 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j], x6[j], x7[j]
                sum0 = ((a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)) + ((a4 * y4 + a5 * y5) + (a6 * y6 + a7 * y7))
                sum1 = ((b0 * y0 + b1 * y1) + (b2 * y2 + b3 * y3)) + ((b4 * y4 + b5 * y5) + (b6 * y6 + b7 * y7))
                new0 = sum0 * derivative(out0[j])
                new1 = sum1 * derivative(out1[j])
                out0[j], out1[j] = new0, new1
                total0 += new0
                total1 += new1
        return total0, total1

    return combine_row_pair


combine_row_pair = _row_pair_kernel(identity_derivative)  # forward: A = W H (the derivative is 1)
_tanh_row_pair = _row_pair_kernel(tanh_derivative)
_sigmoid_row_pair = _row_pair_kernel(sigmoid_derivative)
_relu_row_pair = _row_pair_kernel(relu_derivative)
_leaky_relu_row_pair = _row_pair_kernel(leaky_relu_derivative)
_elu_row_pair = _row_pair_kernel(elu_derivative)
_selu_row_pair = _row_pair_kernel(selu_derivative)


@numba.njit(inline="always", **ROW_SUM_OPTIONS)
def backward_row_pair(code, H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, width):
    """``combine_row_pair`` backward for a hidden layer with activation ``code``: H0[:width] and
    H1[:width] (rows of H_prev) become dA_prev = (W^T dA) * act'(H_prev), from rows dA_row:dA_row+count
    of dA; returns their sums (db_prev). The branch picks the derivative outside the loops; inlined
    into the caller by Numba, because as a call of its own it made the fused 2-6-6-1 pass 3% slower."""
    if code == TANH:
        return _tanh_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    if code == SIGMOID:
        return _sigmoid_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    if code == RELU:
        return _relu_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    if code == LEAKY_RELU:
        return _leaky_relu_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    if code == ELU:
        return _elu_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    if code == SELU:
        return _selu_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)
    return combine_row_pair(H0, H1, theta, index0, index1, weight_stride, count, dA, dA_row, 0, width)


@numba.njit(**ROW_SUM_OPTIONS)
def add_products(gradients, index, dA, source, source_row, source_col, count, width):
    """gradients[index + t] += sum_j dA[j] source[source_row + t, source_col + j] for t < count
    (one row of dW = dA H_prev^T), four sums per pass over dA, then two, then one; the block's sums
    in the data's dtype, added to the float64 gradients. The sums start from zero rather than
    from the first product: a loop from j = 1 is misaligned and measured 1.4-1.8x slower."""
    t = 0
    while t + 4 <= count:
        x0 = source[source_row + t, source_col : source_col + width]
        x1 = source[source_row + t + 1, source_col : source_col + width]
        x2 = source[source_row + t + 2, source_col : source_col + width]
        x3 = source[source_row + t + 3, source_col : source_col + width]
        total0 = total1 = total2 = total3 = ZERO
        for j in range(width):
            total0 += dA[j] * x0[j]
            total1 += dA[j] * x1[j]
            total2 += dA[j] * x2[j]
            total3 += dA[j] * x3[j]
        gradients[index + t] += total0
        gradients[index + t + 1] += total1
        gradients[index + t + 2] += total2
        gradients[index + t + 3] += total3
        t += 4
    if t + 2 <= count:
        x0 = source[source_row + t, source_col : source_col + width]
        x1 = source[source_row + t + 1, source_col : source_col + width]
        total0 = total1 = ZERO
        for j in range(width):
            total0 += dA[j] * x0[j]
            total1 += dA[j] * x1[j]
        gradients[index + t] += total0
        gradients[index + t + 1] += total1
        t += 2
    if t < count:
        x0 = source[source_row + t, source_col : source_col + width]
        total0 = ZERO
        for j in range(width):
            total0 += dA[j] * x0[j]
        gradients[index + t] += total0


@numba.njit(**ROW_SUM_OPTIONS)
def add_products_pair(gradients, index0, index1, dA0, dA1, source, source_row, source_col, count, width):
    """``add_products`` for two rows of dW at once (gradients[index0 + t] from dA0, gradients[index1
    + t] from dA1): each source entry is loaded once for both; eight sums per pass, then four, then
    two. The fused 2-6-6-1 pass measured 4% faster than with one row at a time."""
    t = 0
    while t + 4 <= count:
        x0 = source[source_row + t, source_col : source_col + width]
        x1 = source[source_row + t + 1, source_col : source_col + width]
        x2 = source[source_row + t + 2, source_col : source_col + width]
        x3 = source[source_row + t + 3, source_col : source_col + width]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = ZERO
        for j in range(width):
            d0, d1 = dA0[j], dA1[j]
            y0, y1, y2, y3 = x0[j], x1[j], x2[j], x3[j]
            a0 += d0 * y0
            a1 += d0 * y1
            a2 += d0 * y2
            a3 += d0 * y3
            b0 += d1 * y0
            b1 += d1 * y1
            b2 += d1 * y2
            b3 += d1 * y3
        gradients[index0 + t] += a0
        gradients[index0 + t + 1] += a1
        gradients[index0 + t + 2] += a2
        gradients[index0 + t + 3] += a3
        gradients[index1 + t] += b0
        gradients[index1 + t + 1] += b1
        gradients[index1 + t + 2] += b2
        gradients[index1 + t + 3] += b3
        t += 4
    if t + 2 <= count:
        x0 = source[source_row + t, source_col : source_col + width]
        x1 = source[source_row + t + 1, source_col : source_col + width]
        a0 = a1 = b0 = b1 = ZERO
        for j in range(width):
            d0, d1 = dA0[j], dA1[j]
            y0, y1 = x0[j], x1[j]
            a0 += d0 * y0
            a1 += d0 * y1
            b0 += d1 * y0
            b1 += d1 * y1
        gradients[index0 + t] += a0
        gradients[index0 + t + 1] += a1
        gradients[index1 + t] += b0
        gradients[index1 + t + 1] += b1
        t += 2
    if t < count:
        x0 = source[source_row + t, source_col : source_col + width]
        a0 = b0 = ZERO
        for j in range(width):
            y0 = x0[j]
            a0 += dA0[j] * y0
            b0 += dA1[j] * y0
        gradients[index0 + t] += a0
        gradients[index1 + t] += b0


# ----- whole-array kernels over (row, column tile) tasks ----------------------------------------------
@numba.njit(**OPTIONS)
def sum_in_order(values):
    """The sum of a 1-D array, first to last. A separate (serial) function: inside a parallel=True
    function Numba would turn ``np.sum`` into a parallel reduction whose order depends on the
    number of threads."""
    total = 0.0
    for index in range(values.size):
        total += values[index]
    return total


@numba.njit(**OPTIONS)
def _tiles(m):
    return (m + COLUMNS - 1) // COLUMNS


@numba.njit(parallel=True, **OPTIONS)
def bias_activation(A, b, code, fast):
    """In place: A (p, m) becomes H = act(A + b), b (p, 1)."""
    p, m = A.shape
    tiles = _tiles(m)
    for task in prange(p * tiles):
        i, tile = task // tiles, task % tiles
        activate_row(A[i, tile * COLUMNS : (tile + 1) * COLUMNS], b[i, 0], code, fast)


@numba.njit(parallel=True, **OPTIONS)
def activation_backward(dH, H, code, sums):
    """In place: H (p, m) becomes dA = dH * act'(A), act' written from H; dH is (p, m). sums (p,)
    float64 gets the row sums of dA (the layer's db before scaling)."""
    p, m = dH.shape
    tiles = _tiles(m)
    partial = np.empty(p * tiles)
    for task in prange(p * tiles):
        i, tile = task // tiles, task % tiles
        columns = slice(tile * COLUMNS, (tile + 1) * COLUMNS)
        partial[task] = derivative_row(dH[i, columns], H[i, columns], code)
    for i in range(p):
        sums[i] = sum_in_order(partial[i * tiles : (i + 1) * tiles])


@numba.njit(parallel=True, **OPTIONS)
def output_loss_gradient(A, b, Y, code, fast):
    """In place: A (p, m) (W H without the bias) becomes dA = H - Y, H = out(A + b); returns the
    summed loss (float64). Y is (p, m); b is (p, 1)."""
    p, m = A.shape
    tiles = _tiles(m)
    if code == OUTPUT_SOFTMAX:
        bias = b.reshape(-1)
        partial = np.empty(tiles)
        for tile in prange(tiles):
            start, stop = tile * COLUMNS, min(m, (tile + 1) * COLUMNS)
            shift = np.empty(stop - start)
            normaliser = np.empty(stop - start)
            partial[tile] = softmax_block(A, 0, start, bias, 0, Y, start, p, stop - start, fast, shift, normaliser)
        return sum_in_order(partial)
    partial = np.empty(p * tiles)
    for task in prange(p * tiles):
        i, tile = task // tiles, task % tiles
        start, stop = tile * COLUMNS, min(m, (tile + 1) * COLUMNS)
        partial[task] = output_row(A, i, start, b[i, 0], Y, i, start, stop - start, code, fast)
    return sum_in_order(partial)


@numba.njit(parallel=True, **OPTIONS)
def output_activation(A, b, code, fast):
    """In place: A (p, m) (W H without the bias) becomes H = out(A + b)."""
    p, m = A.shape
    tiles = _tiles(m)
    if code == OUTPUT_SOFTMAX:
        bias = b.reshape(-1)
        for tile in prange(tiles):
            start, stop = tile * COLUMNS, min(m, (tile + 1) * COLUMNS)
            shift = np.empty(stop - start)
            normaliser = np.empty(stop - start)
            softmax_forward_block(A, 0, start, bias, 0, p, stop - start, shift, normaliser)
        return
    hidden_code = SIGMOID if code == OUTPUT_SIGMOID else IDENTITY
    for task in prange(p * tiles):
        i, tile = task // tiles, task % tiles
        activate_row(A[i, tile * COLUMNS : (tile + 1) * COLUMNS], b[i, 0], hidden_code, fast)


@numba.njit(**ROW_SUM_OPTIONS)
def row_sum(row, start=0.0):
    """start + the sum of a 1-D row, accumulated in start's type (as in ``derivative_row``): float64
    by default; the fused pass passes ``ZERO`` to sum a block in the data's dtype. The loop starts
    at the row's first entry, aligned (see ``add_products``)."""
    total = start
    for j in range(row.size):
        total += row[j]
    return total


@numba.njit(parallel=True, **OPTIONS)
def row_sums(dA, out):
    """out (p, 1) = the sums of dA (p, m) over its columns (float64 accumulation)."""
    p, m = dA.shape
    tiles = _tiles(m)
    partial = np.empty(p * tiles)
    for task in prange(p * tiles):
        i, tile = task // tiles, task % tiles
        partial[task] = row_sum(dA[i, tile * COLUMNS : (tile + 1) * COLUMNS])
    for i in range(p):
        out[i, 0] = sum_in_order(partial[i * tiles : (i + 1) * tiles])


@numba.njit(**OPTIONS)
def update(W, dW, lr, l1, l2):
    """In place, one pass: W -= lr (dW + l1 sign(W) + l2 W); W and dW have the same shape."""
    flat_W = W.reshape(-1)
    flat_dW = dW.reshape(-1)
    for index in range(flat_W.size):
        w = flat_W[index]
        step = flat_dW[index] + l2 * w
        if l1 != 0.0:
            step += l1 * np.sign(w)
        flat_W[index] = w - lr * step


# BLAS is for large inner dimensions; for a small one (a narrow layer feeding a wide one, or dH =
# W^T dA from a narrow layer) these compute the product and the elementwise step in one pass, so the
# (p, m) product is never written and read back.
SMALL_INNER = 16


@numba.njit(parallel=True, **OPTIONS)
def linear_activation(W, H_previous, b, A, code, fast):
    """A (p, m) = act(W H_previous + b) in one pass, for a small inner dimension: W (p, q),
    H_previous (q, m), b (p, 1)."""
    p, m = A.shape
    weights = W.reshape(-1)
    tiles = _tiles(m)
    for task in prange(p * tiles):
        tile, i = task // p, task % p  # consecutive tasks share a tile of H_previous (in cache)
        start, stop = tile * COLUMNS, min(m, (tile + 1) * COLUMNS)
        row = A[i, start:stop]
        combine_rows(row, weights, i * W.shape[1], 1, W.shape[1], H_previous, 0, start, stop - start)  # A = W H
        activate_row(row, b[i, 0], code, fast)  # H = act(A + b)


@numba.njit(parallel=True, **OPTIONS)
def backward_small_inner(W, dA, H, code, sums):
    """In one pass, for a small inner dimension: H (q, m) becomes dA_previous = (W^T dA) * act',
    act' written from H; W (p, q), dA (p, m). sums (q,) float64 gets the row sums of dA_previous."""
    q, m = H.shape
    p = W.shape[0]
    weights = W.reshape(-1)
    tiles = _tiles(m)
    partial = np.empty(q * tiles)
    for task in prange(q * tiles):
        tile, k = task // q, task % q  # consecutive tasks share a tile of dA (in cache)
        start, stop = tile * COLUMNS, min(m, (tile + 1) * COLUMNS)
        dH = np.empty(stop - start, dtype=H.dtype)
        combine_rows(dH, weights, k, q, p, dA, 0, start, stop - start)  # dH = W^T dA, row k
        partial[task] = derivative_row(dH, H[k, start:stop], code)  # dA = dH * act'
    for k in range(q):
        total = 0.0
        for tile in range(tiles):
            total += partial[tile * q + k]
        sums[k] = total


# ----- the output layer, when it is narrow: one pass over H_{L-1} -----------------------------------
# With few outputs (p_L <= SMALL_INNER) the output layer's products are bound by reading H_{L-1}
# (p_{L-1}, m), not by arithmetic: BLAS runs A_L = W_L H_{L-1} and dW_L = dA_L H_{L-1}^T at a small
# fraction of its peak, and dH_{L-1} = W_L^T dA_L is yet another pass. ``output_layer_pass`` does all
# of the output layer, and the previous layer's act', for one tile of columns while that tile of
# H_{L-1} is in cache: it reads H_{L-1} from memory once and writes dA_{L-1} over it.
def output_tile_columns(rows: int, itemsize: int) -> int:
    """Columns per tile of ``output_layer_pass``: the largest of 1024, 512, ..., 64 whose tile of
    H_{L-1} (rows, columns) fits in 512 KiB (the core's L2 cache). A function of the shape only."""
    columns = 1024
    while columns > 64 and rows * columns * itemsize > 512 * 1024:
        columns //= 2
    return columns


@numba.njit(**ROW_SUM_OPTIONS)
def _multiply_tile(A, weights, H, start, width):
    """A[:, :width] = W H[:, start:start+width], W (p, q) row-major in ``weights``. H's rows are read
    four at a time, each group updating the rows of A (which stay in L1) two at a time, so each
    entry of H is loaded once for two rows: the 784-256-10 output pass measured 11% faster than
    with one row of A per pass (9.1 ms against 10.2 ms, side by side)."""
    p = A.shape[0]
    q = H.shape[0]
    for i in range(p):
        row = A[i, :width]
        for j in range(width):
            row[j] = 0.0
    t = 0
    while t < q:
        if t + 4 <= q:
            x0 = H[t, start : start + width]
            x1 = H[t + 1, start : start + width]
            x2 = H[t + 2, start : start + width]
            x3 = H[t + 3, start : start + width]
            i = 0
            while i + 1 < p:  # rows i and i + 1 of A
                row0, row1 = A[i, :width], A[i + 1, :width]
                u, v = i * q + t, (i + 1) * q + t
                w0, w1, w2, w3 = weights[u], weights[u + 1], weights[u + 2], weights[u + 3]
                z0, z1, z2, z3 = weights[v], weights[v + 1], weights[v + 2], weights[v + 3]
                for j in range(width):
                    y0, y1, y2, y3 = x0[j], x1[j], x2[j], x3[j]
                    row0[j] += (w0 * y0 + w1 * y1) + (w2 * y2 + w3 * y3)
                    row1[j] += (z0 * y0 + z1 * y1) + (z2 * y2 + z3 * y3)
                i += 2
            if i < p:  # an odd last row
                row = A[i, :width]
                w0, w1, w2, w3 = weights[i * q + t], weights[i * q + t + 1], weights[i * q + t + 2], weights[i * q + t + 3]
                for j in range(width):
                    row[j] += (w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])
            t += 4
        else:
            x0 = H[t, start : start + width]
            for i in range(p):
                row = A[i, :width]
                w0 = weights[i * q + t]
                for j in range(width):
                    row[j] += w0 * x0[j]
            t += 1


@numba.njit(**ROW_SUM_OPTIONS)
def _add_tile_products(sums, dA, H, start, width):
    """sums[i q + k] += sum_j dA[i, j] H[k, start + j] for every i < p, k < q (dW = dA H^T for a
    tile): ``add_products`` for each row of dA, over H's rows four at a time, so each group of four
    is read from memory once and reused from L1 by every row of dA."""
    p = dA.shape[0]
    q = H.shape[0]
    for t in range(0, q, 4):
        count = min(4, q - t)
        for i in range(p):
            add_products(sums, i * q + t, dA[i, :width], H, t, start, count, width)


@numba.njit(parallel=True, **OPTIONS)
def output_layer_pass(W, b, H, Y, output_code, fast, hidden_code, backward, columns, partial, partial_losses):
    """The output layer's forward, loss and backward over H = H_{L-1} (q, m), tile by tile.

    W (p, q), b (p, 1), Y (p, m). For tile t (columns t*columns onwards): partial_losses[t] = its
    summed loss; partial[t] (p q + p + q,) float64 = its dW_L = dA_L H^T (row-major), db_L = sum(dA_L)
    and, when ``backward``, the sums of dA_{L-1}. When ``backward``, H becomes dA_{L-1} =
    (W^T dA_L) * act'(H) with act' of ``hidden_code``; otherwise (H is X) H is left unchanged.
    """
    q, m = H.shape
    p = W.shape[0]
    weights = W.reshape(-1)
    bias = b.reshape(-1)
    tiles = (m + columns - 1) // columns
    for tile in prange(tiles):
        start = tile * columns
        width = min(columns, m - start)
        A = np.empty((p, columns), dtype=H.dtype)
        dH = np.empty(columns, dtype=H.dtype)
        shift = np.empty(columns)
        normaliser = np.empty(columns)
        sums = partial[tile]
        for index in range(sums.size):
            sums[index] = 0.0
        _multiply_tile(A, weights, H, start, width)  # A_L = W_L H
        # the loss, and A becomes dA_L = H_L - Y
        if output_code == OUTPUT_SOFTMAX:
            partial_losses[tile] = softmax_block(A, 0, 0, bias, 0, Y, start, p, width, fast, shift, normaliser)
        else:
            loss = 0.0
            for i in range(p):
                loss += output_row(A, i, 0, bias[i], Y, i, start, width, output_code, fast)
            partial_losses[tile] = loss
        _add_tile_products(sums, A, H, start, width)  # dW_L = dA_L H^T
        for i in range(p):
            sums[p * q + i] = row_sum(A[i, :width])  # db_L = sum(dA_L)
        if backward:
            for k in range(q):
                combine_rows(dH[:width], weights, k, q, p, A, 0, 0, width)  # dH = W_L^T dA_L, row k
                sums[p * q + p + k] = derivative_row(dH[:width], H[k, start : start + width], hidden_code)  # dA = dH * act'
