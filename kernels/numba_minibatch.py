"""Mini-batch training kernels: a whole epoch of a small network in one call, and the serial pieces of a
wide network's step.

Small networks (every layer a few dozen units wide). A mini-batch step of 2-6-6-1 at batch 32 is
a few thousand multiply-adds; a Python loop dispatching ten kernels per step spends its time in
the dispatches, and a parallel kernel per step spends it waking the thread pool. ``run_epoch``
(from ``epoch_kernel``, one per kind of network) instead runs every step of an epoch, back to
back on one thread: for each batch of X's columns, the forward pass, the loss, the backward pass
and the update of the packed parameters ``theta`` (layout of ``numba_network.pack_layout``). X and
Y hold the epoch's examples in the order they are visited (the caller gathers a shuffled epoch
chunk by chunk), so every batch is a slice. The same kernel evaluates a loss or predictions
(its modes ``LOSS`` and ``PREDICT``), so a run compiles one kernel. Batch 1 with plain SGD has
its own kernel, compiled per architecture (``example_kernel``).

Wide networks. The matmuls stay on BLAS (the one thread pool in the step); the elementwise work
between them, a (units, batch) array of a few hundred thousand entries at most, costs less than
waking a second pool, so these kernels are serial: ``bias_activation``, ``output_loss_gradient``
(with db_L) and ``activation_backward`` (with db); the update of every layer is one call of
``numba_optim.update_parameters``.

Reproducibility: everything here is serial, so the results are the same for any thread count and
from run to run. Precision and the float32 ``fast`` functions are those of ``numba_network``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# a block's forward pass, output step and backward, shared with the fused pass
from .numba_network import MIXED, backpropagate, block_loss, block_output, forward_block
from .numba_optim import update_parameters
from .numba_rows import (
    IDENTITY,
    OPTIONS,
    OUTPUT_SIGMOID,
    OUTPUT_SOFTMAX,
    ROW_OPTIONS,
    ZERO,
    activate_row,
    activate_value,
    case_kernel,
    derivative_row,
    derivative_value,
    exp_negative,
    exp_negative_float32,
    log1p_unit_float32,
    output_row,
    row_sum,
    sigmoid,
    sigmoid_cross_entropy,
    sigmoid_from_exp,
    softmax_block,
)

# Batches below this size go one example at a time through scalar loops: with a few examples a
# row pass per unit costs more in calls and loop set-up than its arithmetic.
SCALAR_BATCH = 8


# ----- one example at a time: the small-batch path ------------------------------------------------
@numba.njit(inline="always", **OPTIONS)
def _output_gradient(h, first, outputs, Y, column, code, fast):
    """The output units h[first:first+outputs] hold A_L = W H + b and become dA_L = H_L - Y for
    example ``column`` of Y; returns its loss (the formulas of ``output_row``/``softmax_block``)."""
    loss = 0.0
    if code == OUTPUT_SOFTMAX:
        shift = h[first]
        for i in range(1, outputs):
            shift = max(shift, h[first + i])
        normaliser = 0.0
        for i in range(outputs):
            normaliser += exp_negative(shift - h[first + i]) if fast else math.exp(h[first + i] - shift)
        normaliser = math.log(normaliser)
        for i in range(outputs):
            shifted = h[first + i] - shift  # a - max a
            y = Y[i, column]
            loss += y * (normaliser - shifted)
            log_h = shifted - normaliser
            h[first + i] = (exp_negative(-log_h) if fast else math.exp(log_h)) - y  # dA = h - y
        return loss
    for i in range(outputs):
        a, y = h[first + i], Y[i, column]
        if code == OUTPUT_SIGMOID:
            if fast:
                t = exp_negative_float32(abs(a))
                loss += max(a, ZERO) - a * y + log1p_unit_float32(t)  # BCE = max(a, 0) - a y + log(1 + e^-|a|)
                h[first + i] = sigmoid_from_exp(a, t) - y
            else:
                loss += sigmoid_cross_entropy(a, y)
                h[first + i] = sigmoid(a) - y
        else:
            loss += 0.5 * (a - y) * (a - y)  # half the squared error
            h[first + i] = a - y
    return loss


@numba.njit(inline="always", **OPTIONS)
def _example_forward(hidden, X, column, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, h):
    """The forward pass of example ``column`` of X (n, m) into h (n + units,): the inputs at
    h[:n], then each layer's H = act(W H_prev + b) at n + row_offsets[layer], the output layer's
    A_L = W H_prev + b left for ``_output_gradient``. ``hidden`` as in ``forward_block``; the
    layout (``sizes`` to ``codes``) is arrays, or tuples of constants (``example_kernel``)."""
    depth = len(sizes) - 1
    n = sizes[0]
    for k in range(n):
        h[k] = X[k, column]
    for layer in range(depth):  # H = act(W H_prev + b)
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        inputs = 0 if layer == 0 else n + row_offsets[layer - 1]
        outputs = n + row_offsets[layer]
        for i in range(fan_out):
            a = theta[bias_offsets[layer] + i]
            weights = weight_offsets[layer] + i * fan_in
            for k in range(fan_in):
                a += theta[weights + k] * h[inputs + k]
            if layer == depth - 1:
                h[outputs + i] = a
            elif hidden == MIXED:
                h[outputs + i] = activate_value(a, codes[layer], fast)
            else:
                h[outputs + i] = activate_value(a, hidden, fast)


@numba.njit(**OPTIONS)
def example_gradients(X, Y, column, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, h, gradients):
    """Adds the gradients of example ``column`` of X (n, m), Y (outputs, m) to ``gradients``
    (laid out like theta); returns its loss. h (n + units,) is scratch: the example's inputs, then
    each layer's H (later its dA) at n + row_offsets[layer]."""
    depth = sizes.size - 1
    n = sizes[0]
    _example_forward(MIXED, X, column, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, h)
    loss = _output_gradient(h, n + row_offsets[depth - 1], sizes[depth], Y, column, codes[depth - 1], fast)  # dA_L = H_L - Y
    for layer in range(depth - 1, -1, -1):
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        inputs = 0 if layer == 0 else n + row_offsets[layer - 1]
        outputs = n + row_offsets[layer]
        for i in range(fan_out):  # dW = dA H_prev^T, db = dA
            dA = h[outputs + i]
            gradients[bias_offsets[layer] + i] += dA
            weights = weight_offsets[layer] + i * fan_in
            for k in range(fan_in):
                gradients[weights + k] += dA * h[inputs + k]
        if layer == 0:
            break
        for k in range(fan_in):  # dA_prev = (W^T dA) * act'(H_prev)
            dH = ZERO * h[0]
            for i in range(fan_out):
                dH += theta[weight_offsets[layer] + i * fan_in + k] * h[outputs + i]
            h[inputs + k] = dH * derivative_value(h[inputs + k], codes[layer - 1])
    return loss


# Batch 1 with plain SGD is bound by the latency of one example's chain of small loops; with the
# layer sizes as constants LLVM unrolls those loops, which measured twice as fast as the same code
# over run-time sizes (BENCHMARKS.md), so this kernel is compiled per architecture.
def example_kernel(sizes, weight_offsets, bias_offsets, row_offsets, codes, fast: bool) -> numba.core.registry.CPUDispatcher:
    """The batch-1 plain SGD kernel ``train_examples(X, Y, theta, lr, l1, l2)`` for this packed
    layout (``numba_network.pack_layout``: the layer sizes, offsets and activation codes, compiled
    in as constants) and data precision (``fast``: float32): one compiled kernel per architecture,
    kept for the process (and in Numba's cache)."""
    layout = tuple(tuple(int(value) for value in array) for array in (sizes, weight_offsets, bias_offsets, row_offsets, codes))
    key = (*layout, bool(fast))
    if key not in _EXAMPLE_KERNELS:
        _EXAMPLE_KERNELS[key] = _example_kernel(*key)
    return _EXAMPLE_KERNELS[key]


def _example_kernel(sizes, weight_offsets, bias_offsets, row_offsets, codes, fast):
    hidden = shared_hidden(codes[:-1])
    depth, n = len(sizes) - 1, sizes[0]
    units, widest, output = n + row_offsets[depth], max(sizes), codes[-1]

    def train_examples(X, Y, theta, lr, l1, l2):
        """Plain SGD at batch 1 over the columns of X (n, m), Y (outputs, m) in order; returns the
        summed loss (each example's taken before its update). The arithmetic of ``run_epoch`` at
        batch 1 without its gradient vector and separate update pass: from the top layer down, the
        backward first reads W for dA_prev = (W^T dA) * act'(H_prev), then W and b are updated in
        place: W -= lr (dA H_prev^T + l1 sign(W) + l2 W), b -= lr dA."""
        h = np.empty(units, dtype=X.dtype)  # the example's inputs, then each layer's H (later dA)
        dA_prev = np.empty(widest, dtype=X.dtype)
        total = 0.0
        for column in range(X.shape[1]):
            _example_forward(hidden, X, column, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, h)
            total += _output_gradient(h, n + row_offsets[depth - 1], sizes[depth], Y, column, output, fast)
            for layer in range(depth - 1, -1, -1):
                fan_in, fan_out = sizes[layer], sizes[layer + 1]
                inputs = 0 if layer == 0 else n + row_offsets[layer - 1]
                outputs = n + row_offsets[layer]
                if layer > 0:
                    code = codes[layer - 1] if hidden == MIXED else hidden
                    for k in range(fan_in):  # dA_prev = (W^T dA) * act'(H_prev), with W before its update
                        dH = ZERO * h[0]
                        for i in range(fan_out):
                            dH += theta[weight_offsets[layer] + i * fan_in + k] * h[outputs + i]
                        dA_prev[k] = dH * derivative_value(h[inputs + k], code)
                for i in range(fan_out):  # W -= lr (dA H_prev^T + l1 sign(W) + l2 W), b -= lr dA
                    dA = h[outputs + i]
                    weights = weight_offsets[layer] + i * fan_in
                    if l1 == 0.0:  # as in sgd_update: sign(W)'s branches are left out of the common case
                        for k in range(fan_in):
                            w = theta[weights + k]
                            theta[weights + k] = w - lr * (dA * h[inputs + k] + l2 * w)
                    else:
                        for k in range(fan_in):
                            w = theta[weights + k]
                            theta[weights + k] = w - lr * (dA * h[inputs + k] + l1 * np.sign(w) + l2 * w)
                    theta[bias_offsets[layer] + i] -= lr * dA
                if layer > 0:  # H_prev's entries become dA_prev, now that the update has read them
                    for k in range(fan_in):  # a loop: a slice assignment compiles Numba's shape-error text
                        h[inputs + k] = dA_prev[k]
        return total

    # cache files of its own per architecture (see ``numba_rows.case_kernel``)
    case = "_".join("x".join(map(str, array)) for array in (sizes, codes)) + f"_{int(fast)}"
    return case_kernel(train_examples, case.replace("-", "m"), OPTIONS)


_EXAMPLE_KERNELS: dict[tuple, numba.core.registry.CPUDispatcher] = {}


def shared_hidden(hidden_codes) -> int:
    """The activation code that every hidden layer has (identity for a network without hidden
    layers), or ``MIXED`` when they differ."""
    shared = {int(code) for code in hidden_codes}
    return shared.pop() if len(shared) == 1 else (IDENTITY if not shared else MIXED)


TRAIN, LOSS, PREDICT = 0, 1, 2  # what a call of an epoch kernel does (its ``mode``)
# How an epoch kernel trains (a constant of each kernel): batches in blocks of examples, one example
# at a time (batches below SCALAR_BATCH), or not at all (a kernel that only evaluates).
BLOCK_STEPS, EXAMPLE_STEPS, NO_STEPS = 0, 1, 2


# The epoch kernels are compiled per network kind: the kind's codes and whether its data is
# float32 are constants of the kernel's closure, so Numba prunes every other activation's,
# output's, rule's and dtype's branches of the inlined helpers before it compiles, and a network
# compiles only the row helpers it runs (``MIXED`` hidden layers compile every activation's). A
# kernel that trains also evaluates (modes LOSS and PREDICT), so a run compiles one kernel, not one
# per task. The closures hold integers and booleans only: Numba keys a closure's cache on what it
# holds, and a compiled function held there would give the kernel a new key, so a new
# compilation, in every process.
def epoch_kernel(hidden_codes, output: int, rule: int, batch: int | None, fast: bool) -> numba.core.registry.CPUDispatcher:
    """The ``run_epoch`` kernel for a network with these hidden activation codes (one per hidden
    layer) and ``output`` code, trained by the update ``rule`` of ``numba_optim`` in batches of
    ``batch`` examples (below ``SCALAR_BATCH``, one example at a time), on float32 data when
    ``fast`` (the library-free float32 functions of ``numba_rows``); for ``batch`` None a kernel
    that only evaluates (its training code is not compiled), or a kernel of this process that
    trains the same kind of network and so evaluates it too: a run that trains at one batch size
    and evaluates on the full-batch plan (as ``Network.loss`` does) then compiles one kernel.
    Every such kernel evaluates with the same compiled row helpers, so to the same bits."""
    hidden, output = shared_hidden(hidden_codes), int(output)
    if batch is None:
        for (trained_hidden, trained_output, _, steps, trained_fast), kernel in _EPOCH_KERNELS.items():
            if (trained_hidden, trained_output, trained_fast) == (hidden, output, bool(fast)) and steps != NO_STEPS:
                return kernel
        steps, rule = NO_STEPS, 0
    else:
        steps = EXAMPLE_STEPS if int(batch) < SCALAR_BATCH else BLOCK_STEPS
    key = (hidden, output, int(rule), steps, bool(fast))
    if key not in _EPOCH_KERNELS:
        _EPOCH_KERNELS[key] = _epoch_kernel(*key)
    return _EPOCH_KERNELS[key]


def _epoch_kernel(hidden: int, output: int, rule: int, steps: int, fast: bool):
    """``run_epoch`` for hidden layers that all have activation code ``hidden`` (or ``MIXED``),
    output code ``output``, update ``rule``, ``steps`` (``BLOCK_STEPS``, ``EXAMPLE_STEPS`` or
    ``NO_STEPS``) and ``fast`` (float32 data)."""
    trains, by_example = steps != NO_STEPS, steps == EXAMPLE_STEPS

    def run_epoch(
        X, Y, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, mode, batch, settings, step, first, second,
        gradients, H, dH, shift, normaliser, h, out,
    ):  # fmt: skip
        """mode TRAIN: every mini-batch step of one epoch. Batches of ``batch`` consecutive columns
        of X (n, m) and Y (outputs, m), the last one smaller when batch does not divide m; each
        step's gradient (a batch is summed in blocks of ``block`` columns) updates theta before
        the next batch is read, by the kernel's optimizer rule with its ``settings`` and state
        vectors ``first``, ``second`` (see ``numba_optim.update_parameters``), the steps numbered
        on from ``step`` (the updates already made). Returns the summed loss over the epoch (each
        batch's loss taken before its update).

        mode LOSS: returns the summed loss of theta over X and Y, block by block (theta unchanged).
        mode PREDICT: fills out (outputs, m) with the output layer's activations H_L instead (Y
        unused) and returns 0.

        Scratch, from the caller (compiled without reference counting, the kernel allocates
        nothing): ``gradients`` (parameters,) float64; H (units, block) sets the block size, with
        dH (block,), shift and normaliser (block,) float64 and h (n + units,)."""
        m = X.shape[1]
        block = H.shape[1]
        training = mode == TRAIN
        total = 0.0
        for start in range(0, m, batch):
            size = min(batch, m - start)
            if trains and training:
                gradients[:] = 0.0
            if by_example and training:
                for column in range(start, start + size):
                    total += example_gradients(
                        X, Y, column, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, h, gradients
                    )
            else:
                for block_start in range(start, start + size, block):
                    width = min(block, start + size - block_start)
                    forward_block(
                        hidden, X, block_start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, fast, H
                    )
                    if mode == PREDICT:
                        block_output(
                            H, out, block_start, width, theta, sizes, bias_offsets, row_offsets, output, fast, shift, normaliser
                        )
                        continue
                    total += block_loss(
                        H, Y, block_start, width, theta, sizes, bias_offsets, row_offsets, output, fast, shift, normaliser
                    )
                    if trains and not by_example and training:
                        backpropagate(
                            hidden, X, block_start, width, theta, sizes, weight_offsets, bias_offsets, row_offsets, codes, H,
                            dH, gradients,
                        )  # fmt: skip
            if trains and training:
                step += 1
                update_parameters(
                    theta, gradients, 1.0 / size, first, second, rule, settings, step, sizes, weight_offsets, bias_offsets
                )
        return total

    # cache files of its own per kind (see ``numba_rows.case_kernel``)
    return case_kernel(run_epoch, f"{hidden}_{output}_{rule}_{steps}_{int(fast)}", ROW_OPTIONS)


_EPOCH_KERNELS: dict[tuple, numba.core.registry.CPUDispatcher] = {}


# ----- the serial elementwise steps of a wide network's mini-batch step ---------------------------------
@numba.njit(**OPTIONS)
def bias_activation(A, b, code, fast):
    """In place: A (p, batch) becomes H = act(A + b), b (p, 1)."""
    for i in range(A.shape[0]):
        activate_row(A[i], b[i, 0], code, fast)


@numba.njit(**OPTIONS)
def activation_backward(dH, H, code, db):
    """In place: H (p, batch) becomes dA = dH * act'(A), act' written from H; db (p, 1) gets the row
    sums of dA (float64 accumulation, then the data's dtype)."""
    for i in range(H.shape[0]):
        db[i, 0] = derivative_row(dH[i], H[i], code)


@numba.njit(**OPTIONS)
def output_loss_gradient(A, b, Y, code, fast, db):
    """In place: A (p, batch) (W H without the bias) becomes dA = H - Y with H = out(A + b), Y
    (p, batch); db (p, 1) gets the row sums of dA. Returns the summed loss (float64)."""
    p, width = A.shape
    loss = 0.0
    if code == OUTPUT_SOFTMAX:
        shift = np.empty(width)
        normaliser = np.empty(width)
        loss = softmax_block(A, 0, 0, b.reshape(-1), 0, Y, 0, p, width, fast, shift, normaliser)
    else:
        for i in range(p):
            loss += output_row(A, i, 0, b[i, 0], Y, i, 0, width, code, fast)
    for i in range(p):
        db[i, 0] = row_sum(A[i])
    return loss
