"""The fully fused pass for small networks: one parallel Numba kernel for the whole network.

For a network whose layers are all narrow (a few dozen units), the layer-by-layer pass spends its
time streaming (p, m) arrays through memory, not computing. ``network_pass`` instead reads each
block of ``block`` examples once and, for that block, runs the forward pass, the loss and the
backward pass through every layer, keeping the activations in a small (units, block) buffer that
stays in cache. Nothing of size m is allocated.

Layout. The parameters are packed into one flat vector ``theta``: layer l's W (p_l, p_{l-1}),
row-major, starts at ``weight_offsets[l]``, its b at ``bias_offsets[l]`` (see ``pack_layout``).
``sizes`` holds (n, p_1, ..., p_L) and ``codes`` the hidden activation codes followed by the output
code (``kernels/activations.py``). Inside a block every inner loop runs over the block's examples
with unit stride, so LLVM vectorises across examples.

Reproducibility. The m examples are split into ``tasks`` chunks whose size depends on m and the
block size only, never on the number of threads. Each task sums its gradients in its own local
buffer, writes them to its own row of ``partial_gradients`` and its loss to ``partial_losses``;
the caller sums those rows in order after the parallel loop. So the results are the same from run
to run and for any ``NUMBA_NUM_THREADS``.

Precision. Products and sums over a block are taken in the data's dtype (a hidden layer's db while
its dA is formed), the blocks' and tasks' totals in float64. For float32 data (``fast``) tanh,
sigmoid and the cross-entropy use the library-free float32 functions of ``kernels/activations.py``;
float64 uses the exact ones.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .numba_products import (
    PAIR_MAX_COUNT,
    add_products,
    add_products_pair,
    backward_row_pair,
    combine_row_pair,
    combine_rows,
)
from .numba_rows import (
    IDENTITY,
    OPTIONS,
    OUTPUT_SIGMOID,
    OUTPUT_SOFTMAX,
    ROW_OPTIONS,
    SIGMOID,
    ZERO,
    activate_row,
    derivative_row,
    output_row,
    row_sum,
    softmax_block,
    softmax_forward_block,
)

MAX_TASKS = 64  # chunks of examples per pass: enough to balance the threads, few partial rows to sum

FORWARD, LOSS, GRADIENTS = 0, 1, 2  # what network_pass computes


def pack_layout(layers) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(sizes, weight_offsets, bias_offsets, row_offsets, parameter count) for layer sizes
    (n, p_1, ..., p_L); row_offsets[l] is layer l's first row in the block's activation buffer."""
    sizes = np.asarray(layers, dtype=np.int64)
    depth = len(layers) - 1
    weight_offsets = np.empty(depth, dtype=np.int64)
    bias_offsets = np.empty(depth, dtype=np.int64)
    row_offsets = np.empty(depth + 1, dtype=np.int64)
    offset, row = 0, 0
    for index in range(depth):
        weight_offsets[index] = offset
        offset += layers[index + 1] * layers[index]
        bias_offsets[index] = offset
        offset += layers[index + 1]
        row_offsets[index] = row
        row += layers[index + 1]
    row_offsets[depth] = row  # the total number of rows
    return sizes, weight_offsets, bias_offsets, row_offsets, offset


def block_size(layers, itemsize: int) -> int:
    """Examples per block: 1024 or 768 when the activation buffer (every unit's row of the block)
    fits in 48 KiB, else the largest of 512, 256, ..., 64 whose buffer fits in 128 KiB, so it stays
    in the core's L1/L2 cache. A function of the architecture and dtype only, so the summation
    order never depends on the machine's threads.

    Larger blocks spread each row pass's fixed cost (a call, its set-up, the loop's ends) over more
    examples; a larger buffer spills further out of the 32 KiB L1. Measured (float32, 2 threads,
    side by side): 2-4-1 (buffer rows 5) 1024 beat 512 by 18%; 2-6-6-1 (13) and 2-7-7-1 (15)
    768 beat 512 by 1-5% and 1024 by 5-10%; with 17 or more rows (2-8-8-1, 2-12-12-1, 2-16-16-1,
    4-10-10-3) 512 was best or within 4% of the best; on 2-32-32-1 the rule's 256 beat both 128
    and 512."""
    row_bytes = sum(layers[1:]) * itemsize
    for block in (1024, 768):
        if row_bytes * block <= 48 * 1024:
            return block
    block = 512
    while block > 64 and row_bytes * block > 128 * 1024:
        block //= 2
    return block


def task_layout(m: int, block: int) -> tuple[int, int]:
    """(examples per task, number of tasks): a multiple of ``block``, a function of m alone."""
    blocks = (m + block - 1) // block
    per_task = block * ((blocks + MAX_TASKS - 1) // MAX_TASKS)
    return per_task, (m + per_task - 1) // per_task


# The per-block loops are bound by loads and stores (the data is in L1) as much as by arithmetic,
# so the products take two rows of the result per pass, each source row loaded once for both:
# ``combine_row_pair`` (W H, every source row in that one pass), ``backward_row_pair`` (W^T dA
# times act'(H_prev) and its row sums, db_prev, in the same pass) and ``add_products_pair`` (dW);
# an odd last row goes alone (W^T dA into the dH buffer, then ``derivative_row``). Inner loops
# index 1-D views with the bare loop variable: Numba's negative-index wraparound check on an index
# such as ``column + j`` would turn each contiguous vector load into a gather.
@numba.njit(inline="always", **ROW_OPTIONS)
def _layer_input(layer, X, H, row_offsets, start):
    """(array, first row, first column) of ``layer``'s input for the block starting at column start
    of X: X itself for the first layer, else the previous layer's rows of H."""
    if layer == 0:
        return X, 0, start
    return H, row_offsets[layer - 1], 0


MIXED = -1  # the hidden code of ``forward_block`` and ``backpropagate`` for hidden layers of different activations


@numba.njit(inline="always", **ROW_OPTIONS)
def forward_block(hidden, X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, H):
    """Rows of H (units, block) become every layer's output for columns start:start+width of X;
    the output layer's rows hold W H without the bias (the output step adds it).

    ``hidden`` is the activation code that every hidden layer shares, or ``MIXED`` to take each
    layer's from ``codes``. Inlined, so that a caller whose ``hidden`` is a constant (the kernels
    of ``numba_minibatch``) compiles that activation's row helper only."""
    depth = sizes.size - 1
    for layer in range(depth):
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        source, source_row, source_col = _layer_input(layer, X, H, row_offsets, start)
        i = 0
        while i < fan_out:
            row = row_offsets[layer] + i
            weight_index = weight_offsets[layer] + i * fan_in
            rows = 2 if i + 1 < fan_out and fan_in <= PAIR_MAX_COUNT else 1
            if rows == 2:  # A = W H, rows i and i + 1
                combine_row_pair(
                    H[row],
                    H[row + 1],
                    theta,
                    weight_index,
                    weight_index + fan_in,
                    1,
                    fan_in,
                    source,
                    source_row,
                    source_col,
                    width,
                )
            else:  # A = W H, row i
                # np.int64(1), not 1: Numba compiles a helper again for each literal argument; with
                # run-time integers here and in the backward, one compiled copy serves both. (The
                # pair kernels keep their literal stride and column: each direction has a kernel of
                # its own, and the constants make the set-up of their short loops cheaper.)
                combine_rows(H[row], theta, weight_index, np.int64(1), fan_in, source, source_row, source_col, width)
            if layer < depth - 1:
                for r in range(rows):  # H = act(A + b)
                    if hidden == MIXED:
                        activate_row(H[row + r, :width], theta[bias_offsets[layer] + i + r], codes[layer], fast)
                    else:
                        activate_row(H[row + r, :width], theta[bias_offsets[layer] + i + r], hidden, fast)
            i += rows


@numba.njit(**ROW_OPTIONS)
def block_forward(X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, H):
    """``forward_block`` for any hidden activations (the fused pass's: a call per block, compiled
    without reference counting)."""
    forward_block(MIXED, X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, H)


# The output steps are inlined, like ``forward_block``, so that a caller whose output ``code`` is a
# constant compiles that output's row helpers only.
@numba.njit(inline="always", **ROW_OPTIONS)
def block_loss(H, Y, start, width, theta, sizes, bias_offsets, row_offsets, code, fast, shift, normaliser):
    """The output step of a block after ``forward_block``: the output rows of H (units, block), W H
    without the bias, become dA_L = H_L - Y for columns start:start+width of Y (outputs, m), with
    the output layer's activation ``code``; returns the block's summed loss. shift and normaliser
    (block,) are float64 scratch for a softmax output."""
    depth = sizes.size - 1
    outputs, rows, bias = sizes[depth], row_offsets[depth - 1], bias_offsets[depth - 1]
    if code == OUTPUT_SOFTMAX:
        return softmax_block(H, rows, 0, theta, bias, Y, start, outputs, width, fast, shift, normaliser)
    loss = 0.0
    for i in range(outputs):
        loss += output_row(H, rows + i, 0, theta[bias + i], Y, i, start, width, code, fast)
    return loss


@numba.njit(inline="always", **ROW_OPTIONS)
def block_output(H, out, start, width, theta, sizes, bias_offsets, row_offsets, code, fast, shift, normaliser):
    """The network's output for a block after ``forward_block``: H_L = out(W H + b), with the output
    layer's activation ``code``, from the output rows of H (units, block) into columns
    start:start+width of out (outputs, m)."""
    depth = sizes.size - 1
    outputs, rows, bias = sizes[depth], row_offsets[depth - 1], bias_offsets[depth - 1]
    if code == OUTPUT_SOFTMAX:
        softmax_forward_block(H, rows, 0, theta, bias, outputs, width, shift, normaliser)
    for i in range(outputs):
        row = H[rows + i, :width]
        if code == OUTPUT_SIGMOID:
            activate_row(row, theta[bias + i], SIGMOID, fast)
        elif code != OUTPUT_SOFTMAX:
            activate_row(row, theta[bias + i], IDENTITY, fast)
        target = out[i, start : start + width]
        for j in range(width):
            target[j] = row[j]


@numba.njit(inline="always", **ROW_OPTIONS)
def backpropagate(hidden, X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, H, dH, gradients):
    """Backpropagation through a block after ``forward_block`` and the output step: H (units, block)
    holds every hidden layer's H and the output rows dA_L = H_L - Y for columns start:start+width of
    X (n, m); adds the block's summed dW and db to ``gradients`` (laid out like theta), each layer's
    dA overwriting its H rows on the way down. dH (block,) is scratch.

    ``hidden`` is the activation code that every hidden layer shares, or ``MIXED`` to take each
    layer's from ``codes``. Inlined, so that a caller whose ``hidden`` is a constant (the epoch
    kernels of ``numba_minibatch``) compiles that activation's row-pair kernel only."""
    depth = sizes.size - 1
    for layer in range(depth - 1, -1, -1):
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        dA_row = row_offsets[layer]
        if layer == depth - 1:  # a hidden layer's db was summed as its dA was formed (below)
            for i in range(fan_out):
                gradients[bias_offsets[layer] + i] += row_sum(H[dA_row + i, :width], ZERO)  # db = sum(dA)
        source, source_row, source_col = _layer_input(layer, X, H, row_offsets, start)
        for i in range(0, fan_out - 1, 2):  # dW = dA H_prev^T (X^T for the first layer), rows i and i + 1
            weight_index = weight_offsets[layer] + i * fan_in
            dA0, dA1 = H[dA_row + i], H[dA_row + i + 1]
            add_products_pair(
                gradients, weight_index, weight_index + fan_in, dA0, dA1, source, source_row, source_col, fan_in, width
            )
        if fan_out % 2 == 1:  # the last row
            weight_index = weight_offsets[layer] + (fan_out - 1) * fan_in
            add_products(gradients, weight_index, H[dA_row + fan_out - 1], source, source_row, source_col, fan_in, width)
        if layer == 0:
            break
        k = 0
        while k < fan_in:
            # dA_prev = (W^T dA) * act'(H_prev) into H_prev's rows k (and k + 1); db_prev = sum(dA_prev)
            column = weight_offsets[layer] + k  # W's column k, read with stride fan_in
            row = row_offsets[layer - 1] + k
            code = codes[layer - 1]
            if k + 1 < fan_in and fan_out <= PAIR_MAX_COUNT:
                H0, H1 = H[row, :width], H[row + 1, :width]
                if hidden == MIXED:
                    db0, db1 = backward_row_pair(code, H0, H1, theta, column, column + 1, fan_in, fan_out, H, dA_row, width)
                else:
                    db0, db1 = backward_row_pair(hidden, H0, H1, theta, column, column + 1, fan_in, fan_out, H, dA_row, width)
                gradients[bias_offsets[layer - 1] + k] += db0
                gradients[bias_offsets[layer - 1] + k + 1] += db1
                k += 2
            else:  # dH_prev = W^T dA into the dH buffer first
                combine_rows(dH, theta, column, fan_in, fan_out, H, dA_row, np.int64(0), width)  # (see forward_block)
                if hidden == MIXED:
                    db = derivative_row(dH[:width], H[row, :width], code, ZERO)
                else:
                    db = derivative_row(dH[:width], H[row, :width], hidden, ZERO)
                gradients[bias_offsets[layer - 1] + k] += db
                k += 1


@numba.njit(**ROW_OPTIONS)
def block_backward(X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, H, dH, gradients):
    """``backpropagate`` for any hidden activations (the fused pass's: a call per block, and
    compiled without reference counting, unlike the parallel kernel it is called from)."""
    backpropagate(MIXED, X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, H, dH, gradients)


@numba.njit(parallel=True, **OPTIONS)
def network_pass(
    X,
    Y,
    theta,
    sizes,
    weight_offsets,
    bias_offsets,
    row_offsets,
    codes,
    fast,
    mode,
    block,
    out,
    partial_gradients,
    partial_losses,
):
    """One pass of the whole network over X (n, m) and Y (outputs, m), both C-contiguous.

    mode FORWARD: out (outputs, m) gets the network's output H_L (Y and the partials unused).
    mode LOSS: partial_losses (tasks,) gets each task's summed loss.
    mode GRADIENTS: also partial_gradients (tasks, parameters) float64 gets each task's summed
    gradients (dW, db of the summed loss), laid out like theta.
    """
    m = X.shape[1]
    depth = sizes.size - 1
    output = codes[depth - 1]
    per_task = block * ((((m + block - 1) // block) + MAX_TASKS - 1) // MAX_TASKS)
    tasks = (m + per_task - 1) // per_task
    for task in prange(tasks):
        H = np.empty((row_offsets[depth], block), dtype=X.dtype)
        dH = np.empty(block, dtype=X.dtype)
        shift = np.empty(block)
        normaliser = np.empty(block)
        gradients = np.zeros(theta.size)
        loss = 0.0
        for start in range(task * per_task, min(m, (task + 1) * per_task), block):
            width = min(block, m - start)
            block_forward(X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, H)
            if mode == FORWARD:
                block_output(H, out, start, width, theta, sizes, bias_offsets, row_offsets, output, fast, shift, normaliser)
                continue
            loss += block_loss(H, Y, start, width, theta, sizes, bias_offsets, row_offsets, output, fast, shift, normaliser)
            if mode == GRADIENTS:
                block_backward(X, start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, H, dH, gradients)
        partial_losses[task] = loss
        if mode == GRADIENTS:
            for index in range(theta.size):
                partial_gradients[task, index] = gradients[index]


@numba.njit(**OPTIONS)
def sum_partials(partial_gradients, partial_losses, scale, gradients):
    """gradients (parameters,) = scale * the sum of the rows of partial_gradients, in row order;
    returns the summed loss. Serial, so the order (and the result) never varies."""
    tasks, count = partial_gradients.shape
    for index in range(count):
        total = 0.0
        for task in range(tasks):
            total += partial_gradients[task, index]
        gradients[index] = scale * total
    loss = 0.0
    for task in range(partial_losses.size):
        loss += partial_losses[task]
    return loss
