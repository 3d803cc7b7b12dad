"""Small products for the fused pass: rows of W H, W^T dA and dA H^T when the inner dimension is a
few units, summed in registers with the elementwise step of the same pass (a row helper of
``numba_rows``: no allocation, compiled without reference counting)."""

from __future__ import annotations

import numba

from .numba_rows import (
    ELU,
    LEAKY_RELU,
    RELU,
    ROW_SUM_OPTIONS,
    SELU,
    SIGMOID,
    TANH,
    ZERO,
    case_kernel,
    elu_derivative,
    identity_derivative,
    leaky_relu_derivative,
    relu_derivative,
    selu_derivative,
    sigmoid_derivative,
    tanh_derivative,
)


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
        product of a column in registers (``combine_rows`` rereads and rewrites its output every
        four source rows), and the backward's derivative is taken in the same pass instead of in a
        pass of its own over a dH buffer. LLVM vectorises only a loop whose body it sees whole, so
        each count has its own loop: a loop over the count leaves the pass scalar (measured in
        BENCHMARKS.md)."""
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

    return case_kernel(combine_row_pair, derivative.__name__, ROW_SUM_OPTIONS)


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
