"""The CuPy backend's CUDA C kernels (kernels/cuda_layers.cu), proven without a GPU.

``nvcc`` (on this machine at /usr/local/bin/nvcc) compiles the exact source CuPy compiles at run
time, for sm_90. Then the same source is built into a host library: its math functions are
``__host__ __device__``, so a small harness runs them on the CPU, loop by loop as the kernels do,
and the results are compared with the NumPy backend (the reference) and with the scalar functions
of kernels/activations.py. Only the kernels' grid-stride loops and the block reduction of the
loss run on a GPU alone (the ``gpu`` tests in test_cupy_backend.py cover them).
"""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from nnaccel.backends.numpy_backend import NumpyBackend
from nnaccel.kernels import activations as scalar
from nnaccel.kernels import cuda_layers

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="needs the CUDA compiler nvcc on PATH")

HARNESS = r"""
#include "layers_full.cu"
#define HOST_FUNCTIONS(T)                                                                         \
extern "C" void host_bias_activation_##T(T* A, const T* b, long long p, long long m, int code) { \
    for (long long r = 0; r < p; ++r)                                                             \
        for (long long c = 0; c < m; ++c) A[r * m + c] = nnaccel_activate(A[r * m + c] + b[r], code); \
}                                                                                                 \
extern "C" void host_activation_backward_##T(T* dH, const T* H, long long size, int code) {     \
    for (long long i = 0; i < size; ++i) dH[i] *= nnaccel_derivative(H[i], code);                \
}                                                                                                 \
extern "C" double host_output_loss_gradient_##T(T* A, const T* b, const T* Y, long long p,       \
                                                long long m, int code) {                         \
    double loss = 0.0;                                                                            \
    for (long long c = 0; c < m; ++c) loss += nnaccel_output_column(A, b, Y, p, m, c, code, true); \
    return loss;                                                                                  \
}                                                                                                 \
extern "C" void host_output_activation_##T(T* A, const T* b, long long p, long long m, int code) { \
    for (long long c = 0; c < m; ++c) nnaccel_output_column(A, b, (const T*)0, p, m, c, code, false); \
}                                                                                                 \
extern "C" void host_update_##T(T* W, const T* dW, long long size, T lr, T l1, T l2) {           \
    for (long long i = 0; i < size; ++i) W[i] = nnaccel_updated(W[i], dW[i], lr, l1, l2);        \
}                                                                                                 \
extern "C" void host_momentum_update_##T(T* W, const T* dW, T* buffer, long long size, T lr,      \
                                         T momentum, int nesterov, T l1, T l2) {                  \
    for (long long i = 0; i < size; ++i)                                                          \
        nnaccel_momentum_entry(W + i, dW[i], buffer + i, lr, momentum, nesterov, l1, l2);         \
}                                                                                                 \
extern "C" void host_adam_update_##T(T* W, const T* dW, T* m, T* v, long long size, T step_size,  \
                                     T beta1, T beta2, T eps, T bias2_sqrt, T decay, T l1, T l2) { \
    for (long long i = 0; i < size; ++i)                                                          \
        nnaccel_adam_entry(W + i, dW[i], m + i, v + i, step_size, beta1, beta2, eps, bias2_sqrt,  \
                           decay, l1, l2);                                                        \
}
HOST_FUNCTIONS(float)
HOST_FUNCTIONS(double)
"""

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity")
OUTPUTS = ("sigmoid", "identity", "softmax")
DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-13}


def test_source_defines_every_code_and_constant():
    source = cuda_layers.layers_source()
    for name, code in scalar.ACTIVATION_CODES.items():
        assert f"#define NNACCEL_{name.upper()} {code}\n" in source
    for name, code in scalar.OUTPUT_CODES.items():
        assert f"#define NNACCEL_OUTPUT_{name.upper()} {code}\n" in source
    for macro in ("LEAKY_RELU_SLOPE", "ELU_ALPHA", "SELU_ALPHA", "SELU_SCALE"):
        assert f"NNACCEL_{macro}" in source
    assert cuda_layers.THREADS == int(re.search(r"#define NNACCEL_THREADS (\d+)", source).group(1))


@needs_nvcc
def test_compiles_with_nvcc_for_sm90(tmp_path):
    source = tmp_path / "layers.cu"
    source.write_text(cuda_layers.layers_source())
    ptx_path = tmp_path / "layers.ptx"
    result = subprocess.run(
        [NVCC, "--ptx", "-arch=sm_90", "--std=c++14", "-o", str(ptx_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    ptx = ptx_path.read_text()
    entries = dict((body.split("(")[0], body) for body in re.split(r"\.visible \.entry ", ptx)[1:])
    assert sorted(entries) == sorted(cuda_layers.kernel_names())
    # float32 data stays in float32 (only the loss is summed in float64)
    for name in ("bias_activation_float", "activation_backward_float", "output_activation_float", "update_float"):
        assert ".f64" not in entries[name], f"{name} computes in double precision"


@pytest.fixture(scope="module")
def host_library(tmp_path_factory):
    """layers.cu built for the host by nvcc, with the harness above."""
    if NVCC is None:
        pytest.skip("needs the CUDA compiler nvcc on PATH")
    folder = tmp_path_factory.mktemp("cuda_layers")
    (folder / "layers_full.cu").write_text(cuda_layers.layers_source())
    (folder / "harness.cu").write_text(HARNESS)
    library = folder / "harness.so"
    result = subprocess.run(
        [NVCC, "-shared", "-Xcompiler", "-fPIC", "-arch=sm_90", "--std=c++14", "-o", str(library), str(folder / "harness.cu")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return ctypes.CDLL(str(library))


def _pointer(array: np.ndarray):
    assert array.flags.c_contiguous
    return array.ctypes.data_as(ctypes.c_void_p)


def _ctype(dtype):
    return "float" if np.dtype(dtype) == np.float32 else "double"


def _scalar_type(dtype):
    return ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double


def _data(dtype, p=3, m=41, seed=0):
    rng = np.random.default_rng(seed)
    A = (rng.normal(size=(p, m)) * 3).astype(dtype)
    A[0, :5] = [0.0, -0.0, 40.0, -40.0, 1e-3]  # zero, saturation, tiny
    b = rng.normal(size=(p, 1)).astype(dtype)
    return A, b


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_bias_activation_matches_numpy_and_the_scalar_functions(host_library, activation, dtype):
    A, b = _data(dtype)
    expected = A.copy()
    NumpyBackend().bias_activation(expected, b, activation, np.empty_like(A))
    code = scalar.activation_code(activation)
    A_host = A.copy()
    getattr(host_library, f"host_bias_activation_{_ctype(dtype)}")(
        _pointer(A_host), _pointer(b), ctypes.c_longlong(A.shape[0]), ctypes.c_longlong(A.shape[1]), ctypes.c_int(code)
    )
    np.testing.assert_allclose(A_host, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    forward = scalar.HIDDEN_FORWARD[code]
    from_scalar = np.array([[float(forward(float(a))) for a in row] for row in (A.astype(np.float64) + b)])
    np.testing.assert_allclose(A_host, from_scalar, rtol=TOLERANCE[np.float32], atol=TOLERANCE[np.float32])


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_activation_backward_matches_numpy(host_library, activation, dtype):
    A, b = _data(dtype, seed=1)
    backend = NumpyBackend()
    H = A.copy()
    backend.bias_activation(H, b, activation, np.empty_like(H))
    dH = np.random.default_rng(2).normal(size=H.shape).astype(dtype)
    expected = backend.activation_backward(dH.copy(), H.copy(), activation)
    dH_host = dH.copy()
    getattr(host_library, f"host_activation_backward_{_ctype(dtype)}")(
        _pointer(dH_host), _pointer(H), ctypes.c_longlong(H.size), ctypes.c_int(scalar.activation_code(activation))
    )
    np.testing.assert_allclose(dH_host, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def _labels(output, p, m, dtype, seed=3):
    rng = np.random.default_rng(seed)
    if output == "softmax":
        return np.ascontiguousarray(np.eye(p, dtype=dtype)[:, rng.integers(0, p, m)])
    if output == "sigmoid":
        return (rng.random((p, m)) > 0.5).astype(dtype)
    return rng.normal(size=(p, m)).astype(dtype)


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_output_loss_and_gradient_match_numpy(host_library, output, dtype):
    A, b = _data(dtype, p=4, m=33, seed=4)
    Y = _labels(output, 4, 33, dtype)
    expected_dA = A.copy()
    expected_loss = float(NumpyBackend().output_loss_gradient(expected_dA, b, Y, output))
    dA = A.copy()
    function = getattr(host_library, f"host_output_loss_gradient_{_ctype(dtype)}")
    function.restype = ctypes.c_double
    loss = function(
        _pointer(dA),
        _pointer(b),
        _pointer(Y),
        ctypes.c_longlong(4),
        ctypes.c_longlong(33),
        ctypes.c_int(scalar.output_code(output)),
    )
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected_loss, rel=10 * TOLERANCE[dtype])
    np.testing.assert_allclose(dA, expected_dA, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_output_activation_matches_numpy(host_library, output, dtype):
    A, b = _data(dtype, p=4, m=17, seed=5)
    expected = NumpyBackend().output_activation(A.copy(), b, output)
    H = A.copy()
    getattr(host_library, f"host_output_activation_{_ctype(dtype)}")(
        _pointer(H), _pointer(b), ctypes.c_longlong(4), ctypes.c_longlong(17), ctypes.c_int(scalar.output_code(output))
    )
    np.testing.assert_allclose(H, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.0), (0.01, 0.0), (0.0, 0.1), (0.01, 0.1)])
def test_update_matches_numpy(host_library, l1, l2, dtype):
    rng = np.random.default_rng(6)
    W = rng.normal(size=(5, 7)).astype(dtype)
    W[0, 0] = 0.0  # sign(0) = 0
    dW = rng.normal(size=(5, 7)).astype(dtype)
    expected = W.copy()
    NumpyBackend().update(expected, dW.copy(), 0.3, l1, l2)
    scalar_type = _scalar_type(dtype)
    getattr(host_library, f"host_update_{_ctype(dtype)}")(
        _pointer(W), _pointer(dW), ctypes.c_longlong(W.size), scalar_type(0.3), scalar_type(l1), scalar_type(l2)
    )
    np.testing.assert_allclose(W, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def _update_inputs(dtype, count: int):
    rng = np.random.default_rng(7)
    arrays = [rng.normal(size=(4, 6)).astype(dtype) for _ in range(count)]
    arrays[0][0, 0] = 0.0  # sign(0) = 0
    return arrays


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_update_matches_numpy(host_library, nesterov, dtype):
    W, dW, buffer = _update_inputs(dtype, 3)
    expected_W, expected_buffer = W.copy(), buffer.copy()
    NumpyBackend().momentum_update(expected_W, dW.copy(), expected_buffer, 0.3, 0.9, nesterov, 0.01, 0.1)
    t = _scalar_type(dtype)
    getattr(host_library, f"host_momentum_update_{_ctype(dtype)}")(
        _pointer(W),
        _pointer(dW),
        _pointer(buffer),
        ctypes.c_longlong(W.size),
        t(0.3),
        t(0.9),
        ctypes.c_int(nesterov),
        t(0.01),
        t(0.1),
    )
    np.testing.assert_allclose(W, expected_W, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    np.testing.assert_allclose(buffer, expected_buffer, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [1.0, 0.99])
def test_adam_update_matches_numpy(host_library, decay, dtype):
    W, dW, m, v = _update_inputs(dtype, 4)
    v = np.abs(v)  # a second moment is never negative
    expected = [array.copy() for array in (W, m, v)]
    NumpyBackend().adam_update(expected[0], dW.copy(), expected[1], expected[2], 0.01, 0.9, 0.999, 1e-8, 0.05, decay, 0.01, 0.1)
    t = _scalar_type(dtype)
    getattr(host_library, f"host_adam_update_{_ctype(dtype)}")(
        _pointer(W),
        _pointer(dW),
        _pointer(m),
        _pointer(v),
        ctypes.c_longlong(W.size),
        t(0.01),
        t(0.9),
        t(0.999),
        t(1e-8),
        t(0.05),
        t(decay),
        t(0.01),
        t(0.1),
    )
    for actual, wanted in zip((W, m, v), expected):
        np.testing.assert_allclose(actual, wanted, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
