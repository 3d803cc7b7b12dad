"""Every activation, its derivative and the output-layer loss pieces, written once as scalar functions.

These are plain Python functions of Python/NumPy scalars, with no decorator and no calls to each
other, using only arithmetic, comparisons and the ``math`` module. That makes each of them
compilable, unchanged, by every compiler the backends use:

* a CPU kernel compiles one with ``numba.njit(function, inline="always", cache=True)`` (see
  ``kernels/numba_rows.py``) and calls the result inside its loops, so LLVM sees the arithmetic
  and can vectorise across examples;
* a CUDA kernel compiles one with ``numba.cuda.jit(function, device=True, inline=True)`` and calls
  it from a ``numba.cuda.jit`` kernel (one thread per entry or per example);
* they are meant to be compiled: called from plain Python they run, but NumPy's scalar rules then
  make a float32 constant times a Python float a float32 (see "Constants" below).

Kernels do not pass function objects around: they select an activation by an integer code
(``activation_code("tanh") == TANH``) and branch on it outside their inner loops, so each inner loop
runs one activation only. Hidden activations and output layers have separate codes:

================  ====  ==========================================  ================================
hidden            code  forward f(a)                                derivative f'(a) from h = f(a)
================  ====  ==========================================  ================================
``sigmoid``       0     1 / (1 + e^-a) = (1 + tanh(a/2)) / 2        h (1 - h)
``tanh``          1     tanh(a)                                     1 - h^2
``relu``          2     max(a, 0)                                   1 if h > 0 else 0
``leaky_relu``    3     a if a > 0 else 0.01 a                      1 if h > 0 else 0.01
``elu``           4     a if a > 0 else e^a - 1                     1 if h > 0 else h + 1
``selu``          5     s a if a > 0 else s alpha (e^a - 1)         s if h > 0 else h + s alpha
``identity``      6     a                                           1
================  ====  ==========================================  ================================

Derivatives take the activation's output h, never its input a, so a backward pass needs only the
H its forward pass kept (for the relu family h > 0 exactly when a > 0).

Output layers (codes ``OUTPUT_SIGMOID``, ``OUTPUT_IDENTITY``, ``OUTPUT_SOFTMAX``) all have the
gradient dA = h - y (``output_gradient``). Their losses are computed stably from the
pre-activation a: ``sigmoid_cross_entropy(a, y)`` for a sigmoid output (binary cross-entropy,
never log(0)); ``half_squared_error(h, y)`` for identity; for softmax a kernel takes a column's
largest entry ``shift`` and ``log_normaliser = log(sum(exp(a - shift)))``, then each entry
contributes ``softmax_cross_entropy(a - shift, log_normaliser, y)`` and has
``h = softmax_probability(a - shift, log_normaliser)``.

The constants (leaky slope 0.01, elu alpha 1, selu alpha and scale) are those of
``nnaccel/core/activations.py``; a compiler freezes them into the kernel as constants.

Constants: those that float32 represents exactly (0, 1/2, 1, elu's alpha) are float32-typed, so float32
arithmetic stays float32 and float64 arithmetic is unchanged; the others (leaky slope, selu) are
doubles. Four more functions are library-free stand-ins that a CPU compiler can vectorise
(``math.tanh``, ``math.exp`` and ``math.log1p`` are scalar libm calls): ``tanh_rational`` (float32
constants, error below 5e-7 relative), ``exp_negative`` (e^-x for x >= 0, double precision),
``exp_negative_float32`` and ``log1p_unit_float32`` (log(1 + t) on [0, 1]), both in float32 within
2e-7 relative. The CPU kernels use them for float32 data only: with t = e^-|a|, sigmoid(a) is
1 / (1 + t) for a >= 0 and t / (1 + t) below (no cancellation, so accurate far into both tails),
the binary cross-entropy max(a, 0) - a y + log1p_unit_float32(t), softmax's exponentials
exp_negative; float64 uses the exact functions.
"""

from __future__ import annotations

import math

import numpy as np

from nnaccel.core.activations import (
    ELU_ALPHA,
    HIDDEN_ACTIVATIONS,
    LEAKY_RELU_SLOPE,
    OUTPUTS,
    SELU_ALPHA,
    SELU_SCALE,
)

# ----- selection codes ------------------------------------------------------------------------------
SIGMOID, TANH, RELU, LEAKY_RELU, ELU, SELU, IDENTITY = range(7)
OUTPUT_SIGMOID, OUTPUT_IDENTITY, OUTPUT_SOFTMAX = range(3)

ACTIVATION_CODES = {name: code for code, name in enumerate(HIDDEN_ACTIVATIONS)}
OUTPUT_CODES = {name: code for code, name in enumerate(OUTPUTS)}
assert ACTIVATION_CODES == {
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "selu": SELU,
    "identity": IDENTITY,
}
assert OUTPUT_CODES == {"sigmoid": OUTPUT_SIGMOID, "identity": OUTPUT_IDENTITY, "softmax": OUTPUT_SOFTMAX}


def activation_code(name: str) -> int:
    """The integer code of hidden activation ``name`` (ValueError for an unknown name)."""
    if name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_CODES)}")
    return ACTIVATION_CODES[name]


def output_code(name: str) -> int:
    """The integer code of output layer ``name`` (ValueError for an unknown name)."""
    if name not in OUTPUT_CODES:
        raise ValueError(f"unknown output {name!r}; expected one of {', '.join(OUTPUT_CODES)}")
    return OUTPUT_CODES[name]


# ----- constants -----------------------------------------------------------------------------------
def _typed(value: float):
    """``value`` as a float32 constant when float32 holds it exactly, else as a Python float.

    A Python float is a double in typed code: ``1.0 - h * h`` with float32 h would be computed in
    float64 (half the vector width) and rounded back. An exactly representable constant typed
    float32 keeps float32 arithmetic in float32 and changes nothing in float64 arithmetic.
    """
    return np.float32(value) if float(np.float32(value)) == value else value


ZERO, HALF, ONE = _typed(0.0), _typed(0.5), _typed(1.0)
_LEAKY_SLOPE = _typed(LEAKY_RELU_SLOPE)  # 0.01 is not exact in float32: stays a double
_ELU_ALPHA = _typed(ELU_ALPHA)
_SELU_SCALE = _typed(SELU_SCALE)
_SELU_SCALE_ALPHA = _typed(SELU_SCALE * SELU_ALPHA)


# ----- hidden activations: forward f(a) and derivative f'(a) written from h = f(a) --------------------
def sigmoid(a):
    # (1 + tanh(a/2)) / 2 never overflows, unlike 1 / (1 + e^-a) in single precision.
    return HALF + HALF * math.tanh(HALF * a)


def sigmoid_derivative(h):
    return h * (ONE - h)


def tanh(a):
    return math.tanh(a)


def tanh_derivative(h):
    return ONE - h * h


def relu(a):
    return ZERO if a <= ZERO else a  # NaN propagates, as in max(a, 0) of NumPy


def relu_derivative(h):
    return ONE if h > ZERO else ZERO


def leaky_relu(a):
    return a if a > ZERO else _LEAKY_SLOPE * a


def leaky_relu_derivative(h):
    return ONE if h > ZERO else _LEAKY_SLOPE


def elu(a):
    return a if a > ZERO else _ELU_ALPHA * math.expm1(a)


def elu_derivative(h):
    return ONE if h > ZERO else h + _ELU_ALPHA


def selu(a):
    return _SELU_SCALE * a if a > ZERO else _SELU_SCALE_ALPHA * math.expm1(a)


def selu_derivative(h):
    return _SELU_SCALE if h > ZERO else h + _SELU_SCALE_ALPHA


def identity(a):
    return a


def identity_derivative(h):
    return ONE


# ----- library-free versions a CPU compiler can vectorise (single-precision kernels) -----------------
# math.tanh, math.exp and math.log1p compile to scalar libm calls, which stop LLVM from vectorising a
# loop. These replacements use arithmetic and one division only. tanh_rational's coefficients are
# float32 constants, so a float32 kernel computes it in float32 (16 lanes of AVX-512, not 8).
_TANH_CLAMP = np.float32(7.90531110763549805)  # tanh rounds to +-1 in float32 beyond this
# tanh(x) ~ x P(x^2) / Q(x^2), P of degree 3 and Q of degree 4: a minimax fit of relative error
# (1.3e-7 in exact arithmetic) made for nnaccel, weighted least squares refined towards the minimax.
_TANH_P = tuple(np.float32(c) for c in (0.9999998807907104, 0.1293395757675171, 0.002959975739941001, 1.1526367416081484e-05))
_TANH_Q = tuple(
    np.float32(c) for c in (1.0, 0.46267184615135193, 0.02385205775499344, 0.0002399411896476522, 2.4907780016292236e-07)
)
_P0, _P1, _P2, _P3 = _TANH_P
_Q0, _Q1, _Q2, _Q3, _Q4 = _TANH_Q


def tanh_rational(a):
    """tanh(a) to within 5e-7 relative for float32 a, with no library call.

    An odd rational function x P(x^2) / Q(x^2) on |a| <= 7.905 (beyond, tanh(a) rounds to +-1 in
    float32): seven multiply-adds and one division. Over every float32 in [1e-8, 10] its largest
    relative error is 4.3e-7 with fused multiply-adds, as the kernels compile it, and 4.6e-7
    without (both near a = 7.5). Eigen's single-precision tanh (degree 6 in x^2 over degree 3:
    nine multiply-adds) is within 2.9e-7, but the tanh passes are bound by arithmetic, and with
    this one the fused 2-6-6-1 pass measured 5% faster, side by side. For float32 kernels only.
    """
    x = min(max(a, -_TANH_CLAMP), _TANH_CLAMP)
    z = x * x
    p = ((_P3 * z + _P2) * z + _P1) * z + _P0
    q = (((_Q4 * z + _Q3) * z + _Q2) * z + _Q1) * z + _Q0
    return (x * p) / q


def exp_negative(x):
    """e^-x for x >= 0 (x > 40 is taken as 40: e^-40 < 5e-18), relative error below 1e-10.

    Double-precision arithmetic: e^-x = (e^(-x/64))^64, a degree-12 Taylor polynomial on
    [0, 0.625] and six squarings.
    """
    r = min(x, 40.0) * (1.0 / 64.0)
    e = 1.0 / 479001600.0
    e = e * -r + 1.0 / 39916800.0
    e = e * -r + 1.0 / 3628800.0
    e = e * -r + 1.0 / 362880.0
    e = e * -r + 1.0 / 40320.0
    e = e * -r + 1.0 / 5040.0
    e = e * -r + 1.0 / 720.0
    e = e * -r + 1.0 / 120.0
    e = e * -r + 1.0 / 24.0
    e = e * -r + 1.0 / 6.0
    e = e * -r + 0.5
    e = e * -r + 1.0
    e = e * -r + 1.0
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    return e * e


_LOG2_E = np.float32(1.4426950408889634)
_LN2_HIGH = np.float32(0.693145751953125)  # ln 2 in 16 significant bits: k * _LN2_HIGH is exact
_LN2_LOW = np.float32(1.4286067653302226e-06)  # ln 2 - _LN2_HIGH
_EXP_CLAMP = np.float32(87.0)  # e^-87 is still a normal float32
_EXP_TAYLOR = tuple(np.float32(1.0 / math.factorial(k)) for k in range(8))
_ATANH_SERIES = tuple(np.float32(1.0 / (2 * k + 1)) for k in range(8))


def exp_negative_float32(x):
    """e^-x for x >= 0 in float32 arithmetic, within 2e-7 relative (x > 87 is taken as 87).

    e^-x = 2^-k e^r with k the integer nearest x log2(e) and r = k ln 2 - x in [-ln2/2, ln2/2]
    (Cody-Waite: ln 2 in two parts, so r is accurate); e^r by its degree-7 Taylor polynomial; 2^-k
    by writing the exponent bits of a float32 directly (``view``: NumPy's and Numba's, not CUDA's).
    """
    x = min(x, _EXP_CLAMP)
    k = np.int32(x * _LOG2_E + HALF)  # x >= 0, so truncation rounds to the nearest integer
    kf = np.float32(k)
    r = (kf * _LN2_HIGH - x) + kf * _LN2_LOW
    c0, c1, c2, c3, c4, c5, c6, c7 = _EXP_TAYLOR
    e_r = ((((((c7 * r + c6) * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r + c0
    return e_r * np.int32((127 - k) << 23).view(np.float32)


def log1p_unit_float32(t):
    """log(1 + t) for 0 <= t <= 1 in float32 arithmetic, within 2e-7 relative.

    log(1 + t) = 2 atanh(s) with s = t / (2 + t) <= 1/3: the odd series 2 (s + s^3/3 + ... + s^15/15).
    """
    s = t / (np.float32(2.0) + t)
    s2 = s * s
    d0, d1, d2, d3, d4, d5, d6, d7 = _ATANH_SERIES
    series = ((((((d7 * s2 + d6) * s2 + d5) * s2 + d4) * s2 + d3) * s2 + d2) * s2 + d1) * s2 + d0
    return np.float32(2.0) * s * series


# ----- output layers ---------------------------------------------------------------------------------
def output_gradient(h, y):
    """dA = h - y for every output layer (with its matching loss)."""
    return h - y


def sigmoid_cross_entropy(a, y):
    """Binary cross-entropy of h = sigmoid(a) against y, from a: max(a, 0) - a y + log(1 + e^-|a|)."""
    return max(a, ZERO) - a * y + math.log1p(math.exp(-abs(a)))


def half_squared_error(h, y):
    """(h - y)^2 / 2, the identity output's loss for one entry."""
    difference = h - y
    return HALF * difference * difference


def softmax_probability(shifted, log_normaliser):
    """One softmax entry from a - max(a) and log(sum(exp(a - max(a)))) over its column."""
    return math.exp(shifted - log_normaliser)


def softmax_cross_entropy(shifted, log_normaliser, y):
    """One entry's share of the cross-entropy: y (log(sum exp) - (a - max a)) = -y log(h)."""
    return y * (log_normaliser - shifted)


HIDDEN_FORWARD = (sigmoid, tanh, relu, leaky_relu, elu, selu, identity)
"""Forward functions indexed by activation code."""
HIDDEN_DERIVATIVE = (
    sigmoid_derivative,
    tanh_derivative,
    relu_derivative,
    leaky_relu_derivative,
    elu_derivative,
    selu_derivative,
    identity_derivative,
)
"""Derivative-from-output functions indexed by activation code."""
