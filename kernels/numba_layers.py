"""Numba CPU kernels for the layer-by-layer pass: each elementwise step of a layer in one pass.

The matmuls stay on BLAS (``np.matmul(..., out=)``); everything between them is one parallel pass
over the (p, m) array that the matmul just wrote:

* ``bias_activation``: A = W H + b and H = act(A) (the bias broadcast and the activation);
* ``activation_backward``: dA = dH * act'(A), act' written from H, into H's buffer, and the row
  sums of dA (the previous layer's db) on the way;
* ``output_loss_gradient``: the output activation, the loss (reduced on the way) and dA = H - Y;
* ``row_sums`` and ``update`` (W -= lr (dW + l1 sign(W) + l2 W) in one pass).

The scalar math comes from ``kernels/activations.py``, compiled in ``numba_rows`` with the row
helpers these kernels run on each tile; ``numba_products`` has the small products of the
narrow-layer passes. The ``fast`` flag (set for float32 data) selects the library-free tanh,
sigmoid and cross-entropy, which LLVM vectorises; float64 uses the exact libm functions.

Work is split into tiles of one row and ``COLUMNS`` columns, so a tile's sums, and hence every
result, are the same whatever the number of threads. Reductions write one partial per tile,
summed in order after the parallel loop (never a shared accumulator inside ``prange``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .numba_products import add_products, combine_rows
from .numba_rows import (
    IDENTITY,
    OPTIONS,
    OUTPUT_SIGMOID,
    OUTPUT_SOFTMAX,
    ROW_SUM_OPTIONS,
    SIGMOID,
    activate_row,
    derivative_row,
    output_row,
    row_sum,
    softmax_block,
    softmax_forward_block,
)

COLUMNS = 8192  # columns per tile of an elementwise kernel


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
