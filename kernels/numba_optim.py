"""The optimizers' updates as serial Numba kernels (formulas: ``nnaccel.optim``, PyTorch's).

Two shapes of the same arithmetic:

* per array (``momentum_update``, ``adam_update``): one parameter array, its gradient and its
  state arrays, for the Numba backend's layer-by-layer steps;
* packed (``update_parameters``): every layer in one call, on the flat parameter vector theta of
  ``numba_network.pack_layout`` with its gradient and state vectors laid out alike, weights
  penalised and decayed, biases not. The mini-batch epoch kernel calls it after each batch.

Each entry is updated by the ``*_entry`` functions below, so both shapes round alike. The rule
and its coefficients reach the packed kernels as a code and a float64 ``settings`` vector
(``SETTINGS`` names its entries).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .numba_rows import OPTIONS

# update rules
RULE_SGD, RULE_MOMENTUM, RULE_ADAM = 0, 1, 2
# the entries of ``settings``: lr, l1, l2, then the rule's own (momentum, nesterov) or
# (beta1, beta2, eps, weight_decay)
SETTINGS = ("lr", "l1", "l2", "momentum_or_beta1", "nesterov_or_beta2", "eps", "weight_decay")


@numba.njit(inline="always", **OPTIONS)
def momentum_entry(w, g, buffer, lr, momentum, nesterov):
    """(new w, new buffer): buffer = momentum buffer + g; w -= lr (g + momentum buffer) with
    Nesterov, else lr buffer."""
    velocity = momentum * buffer + g
    if nesterov:
        return w - lr * (g + momentum * velocity), velocity
    return w - lr * velocity, velocity


@numba.njit(inline="always", **OPTIONS)
def adam_entry(w, g, m, v, step_size, rate1, beta2, rate2, eps, bias2_sqrt, decay):
    """(new w, new m, new v) with rate1 = 1 - beta1, rate2 = 1 - beta2 (passed in the arrays'
    dtype: a literal 1 would make float32 arithmetic float64): m += rate1 (g - m);
    v = beta2 v + rate2 g^2; w = w decay - step_size m / (sqrt(v) / bias2_sqrt + eps)."""
    m = m + rate1 * (g - m)
    v = beta2 * v + rate2 * g * g
    return w * decay - step_size * (m / (math.sqrt(v) / bias2_sqrt + eps)), m, v


@numba.njit(**OPTIONS)
def sgd_update(theta, gradients, scale, lr, l1, l2, sizes, weight_offsets, bias_offsets):
    """In place, every layer in one pass: W -= lr (scale dW + l1 sign(W) + l2 W), b -= lr scale db.
    theta and gradients share the layout of ``numba_network.pack_layout``; biases are not
    regularised."""
    for layer in range(sizes.size - 1):
        first, bias, end = weight_offsets[layer], bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1]
        if bias - first < 64:  # a few weights: index theta directly (a view's set-up costs more than they do)
            if l1 == 0.0:
                for index in range(first, bias):
                    theta[index] = theta[index] - lr * (scale * gradients[index] + l2 * theta[index])
            else:
                for index in range(first, bias):
                    w = theta[index]
                    theta[index] = w - lr * (scale * gradients[index] + l1 * np.sign(w) + l2 * w)
        else:  # loops from 0 over 1-D views, branch-free when l1 is 0: LLVM vectorises them
            W, dW = theta[first:bias], gradients[first:bias]
            if l1 == 0.0:
                for j in range(W.size):
                    W[j] = W[j] - lr * (scale * dW[j] + l2 * W[j])
            else:
                for j in range(W.size):
                    W[j] = W[j] - lr * (scale * dW[j] + l1 * np.sign(W[j]) + l2 * W[j])
        for index in range(bias, end):
            theta[index] = theta[index] - lr * (scale * gradients[index])


@numba.njit(**OPTIONS)
def sgd_update_biases(theta, gradients, scale, lr, sizes, bias_offsets):
    """In place: b -= lr scale db for every layer's b (the weights updated elsewhere, in their
    gradient's product: ``LayeredStepPlan``); the layout of ``sgd_update``."""
    for layer in range(sizes.size - 1):
        for index in range(bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1]):
            theta[index] = theta[index] - lr * (scale * gradients[index])


@numba.njit(**OPTIONS)
def adam_coefficients(lr, beta1, beta2, weight_decay, step):
    """(step_size, bias2_sqrt, decay) of update ``step`` (from 1), as ``nnaccel.optim.Adam``."""
    t = float(step)
    return lr / (1 - beta1**t), math.sqrt(1 - beta2**t), 1.0 - lr * weight_decay


@numba.njit(**OPTIONS)
def momentum_vector(theta, gradients, buffer, scale, lr, momentum, nesterov, l1, l2):
    """In place on 1-D vectors from index 0 (loops LLVM vectorises): the momentum rule on
    theta from scale * gradients; l1 and l2 0 for biases. The arithmetic is in theta's dtype, as
    PyTorch's (float32 lanes are twice as many as float64's)."""
    t = theta.dtype.type
    scale, lr, momentum, l1, l2 = t(scale), t(lr), t(momentum), t(l1), t(l2)
    for j in range(theta.size):
        w = theta[j]
        g = scale * gradients[j] + l2 * w + l1 * np.sign(w)
        theta[j], buffer[j] = momentum_entry(w, g, buffer[j], lr, momentum, nesterov)


@numba.njit(**OPTIONS)
def adam_vector(theta, gradients, m, v, scale, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
    """In place on 1-D vectors from index 0: the Adam rule on theta from scale * gradients; l1,
    l2 0 and decay 1 for biases. The arithmetic is in theta's dtype (its square roots and
    divisions bound the loop)."""
    t = theta.dtype.type
    scale, step_size, rate1, beta2, rate2, eps = t(scale), t(step_size), t(1 - beta1), t(beta2), t(1 - beta2), t(eps)
    bias2_sqrt, decay, l1, l2 = t(bias2_sqrt), t(decay), t(l1), t(l2)
    for j in range(theta.size):
        w = theta[j]
        g = scale * gradients[j] + l2 * w + l1 * np.sign(w)
        theta[j], m[j], v[j] = adam_entry(w, g, m[j], v[j], step_size, rate1, beta2, rate2, eps, bias2_sqrt, decay)


# Below this many parameters the packed update indexes theta directly: setting up a view per
# layer costs more than a few dozen entries' arithmetic (the small networks of the epoch kernel).
SMALL_PARAMETERS = 512


@numba.njit(inline="always", **OPTIONS)
def _momentum_indexed(theta, gradients, buffer, scale, lr, momentum, nesterov, l1, l2, sizes, weight_offsets, bias_offsets):
    """``momentum_vector`` over every layer of a small packed vector, indexed directly."""
    t = theta.dtype.type
    scale, lr, momentum, l1, l2, none = t(scale), t(lr), t(momentum), t(l1), t(l2), t(0)
    for layer in range(sizes.size - 1):
        bias, end = bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1]
        for index in range(weight_offsets[layer], end):
            w = theta[index]
            weight = index < bias
            g = scale * gradients[index] + (l2 if weight else none) * w
            if l1 != none:  # sign(W) and its branches only when L1 is asked for
                g += (l1 if weight else none) * np.sign(w)
            theta[index], buffer[index] = momentum_entry(w, g, buffer[index], lr, momentum, nesterov)


@numba.njit(inline="always", **OPTIONS)
def _adam_indexed(
    theta, gradients, m, v, scale, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2, sizes, weight_offsets, bias_offsets
):
    """``adam_vector`` over every layer of a small packed vector, indexed directly."""
    t = theta.dtype.type
    scale, step_size, rate1, beta2, rate2, eps = t(scale), t(step_size), t(1 - beta1), t(beta2), t(1 - beta2), t(eps)
    bias2_sqrt, decay, l1, l2, none, one = t(bias2_sqrt), t(decay), t(l1), t(l2), t(0), t(1)
    for layer in range(sizes.size - 1):
        bias, end = bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1]
        for index in range(weight_offsets[layer], end):
            w = theta[index]
            weight = index < bias
            g = scale * gradients[index] + (l2 if weight else none) * w
            if l1 != none:  # as in _momentum_indexed
                g += (l1 if weight else none) * np.sign(w)
            theta[index], m[index], v[index] = adam_entry(
                w, g, m[index], v[index], step_size, rate1, beta2, rate2, eps, bias2_sqrt, decay if weight else one
            )


@numba.njit(inline="always", **OPTIONS)
def _update_part(theta, gradients, first, second, part, rule, scale, settings, step_size, bias2_sqrt, decay, weights):
    """The momentum or Adam rule on theta[part] (1-D views from 0, so LLVM vectorises); ``weights``:
    the part holds weights (penalised, decayed), else biases (neither)."""
    lr = settings[0]
    l1, l2 = (settings[1], settings[2]) if weights else (0.0, 0.0)
    if rule == RULE_MOMENTUM:
        momentum_vector(theta[part], gradients[part], first[part], scale, lr, settings[3], settings[4] != 0.0, l1, l2)
    else:
        adam_vector(
            theta[part], gradients[part], first[part], second[part], scale, step_size, settings[3], settings[4],
            settings[5], bias2_sqrt, decay if weights else 1.0, l1, l2,
        )  # fmt: skip


@numba.njit(inline="always", **OPTIONS)
def update_parameters(theta, gradients, scale, first, second, rule, settings, step, sizes, weight_offsets, bias_offsets):
    """In place, every layer: the rule's update number ``step`` (counted from 1) of theta from the
    gradients ``scale * gradients`` (each vector laid out like theta; ``first`` and ``second`` the
    rule's state, unused entries of any size). Inlined: an epoch kernel whose ``rule`` is a
    constant compiles that rule's update only."""
    lr, l1, l2 = settings[0], settings[1], settings[2]
    if rule == RULE_SGD:
        sgd_update(theta, gradients, scale, lr, l1, l2, sizes, weight_offsets, bias_offsets)
        return
    beta1, beta2, eps = settings[3], settings[4], settings[5]
    # Adam's coefficients of this step (computed for momentum too, unused there)
    step_size, bias2_sqrt, decay = adam_coefficients(lr, beta1, beta2, settings[6], step)
    if theta.size < SMALL_PARAMETERS:
        if rule == RULE_MOMENTUM:
            _momentum_indexed(
                theta, gradients, first, scale, lr, settings[3], settings[4] != 0.0, l1, l2, sizes, weight_offsets, bias_offsets
            )
        else:
            _adam_indexed(
                theta,
                gradients,
                first,
                second,
                scale,
                step_size,
                beta1,
                beta2,
                eps,
                bias2_sqrt,
                decay,
                l1,
                l2,
                sizes,
                weight_offsets,
                bias_offsets,
            )
        return
    for layer in range(sizes.size - 1):
        weights, bias, end = weight_offsets[layer], bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1]
        # the weights, penalised (and decayed), then the biases, neither
        _update_part(
            theta, gradients, first, second, slice(weights, bias), rule, scale, settings, step_size, bias2_sqrt, decay, True
        )
        _update_part(
            theta, gradients, first, second, slice(bias, end), rule, scale, settings, step_size, bias2_sqrt, decay, False
        )


@numba.njit(**OPTIONS)
def momentum_update(W, dW, buffer, lr, momentum, nesterov, l1, l2):
    """In place on one array: W, dW, buffer share a shape."""
    momentum_vector(W.reshape(-1), dW.reshape(-1), buffer.reshape(-1), 1.0, lr, momentum, nesterov, l1, l2)


@numba.njit(**OPTIONS)
def adam_update(W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
    """In place on one array: W, dW, m, v share a shape."""
    adam_vector(
        W.reshape(-1), dW.reshape(-1), m.reshape(-1), v.reshape(-1), 1.0, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2
    )


# Entries per task of ``update_parameters_parallel``.
UPDATE_TILE = 16384


@numba.njit(parallel=True, **OPTIONS)
def update_parameters_parallel(theta, gradients, scale, first, second, rule, settings, step, sizes, weight_offsets, bias_offsets):
    """``update_parameters`` for the momentum and Adam rules with each layer's weights split into
    tiles that run in parallel, for wide networks: their square roots and divisions over a few
    hundred thousand entries repay waking the pool. Every entry's update is independent of the
    others, so the result is the same for any thread count. The biases follow serially."""
    step_size, bias2_sqrt, decay = adam_coefficients(settings[0], settings[3], settings[4], settings[6], step)
    for layer in range(sizes.size - 1):
        weights, bias = weight_offsets[layer], bias_offsets[layer]
        tiles = (bias - weights + UPDATE_TILE - 1) // UPDATE_TILE
        for tile in prange(tiles):
            start = weights + tile * UPDATE_TILE
            part = slice(start, min(bias, start + UPDATE_TILE))
            _update_part(theta, gradients, first, second, part, rule, scale, settings, step_size, bias2_sqrt, decay, True)
    for layer in range(sizes.size - 1):
        part = slice(bias_offsets[layer], bias_offsets[layer] + sizes[layer + 1])
        _update_part(theta, gradients, first, second, part, rule, scale, settings, step_size, bias2_sqrt, decay, False)
