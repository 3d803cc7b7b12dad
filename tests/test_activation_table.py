"""One activation table, walked through every implementation.

Each activation and its derivative is defined once as a scalar function in
``kernels/activations.py`` (the table), compiled into the Numba and CUDA kernels, and written
again in array operations for NumPy and the array API. This walks every entry of the table, on
values across both signs and into the tails, through each implementation and compares it with
the table: the NumPy backend, the array-API backend on array-api-strict, the Numba backend's row
kernels (float64, and float32 with its library-free functions) and the Numba scalar dispatch of
the one-example-at-a-time path. (The CUDA C versions are walked in ``tests/test_cuda_layers.py``
on nvcc's host build; the ONNX export's in ``tests/test_onnx.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.core.activations import HIDDEN_ACTIVATIONS
from nnaccel.kernels import activations as table

VALUES = np.concatenate([np.linspace(-6, 6, 61), [-30.0, -1e-3, 0.0, 1e-3, 30.0]])


def _compiled(name: str):
    """The table's function compiled as the kernels compile it: from plain Python, NumPy's scalar
    rules would make its float32-typed constants round a float64 result to float32."""
    import numba

    return numba.njit(getattr(table, name))


def table_forward(name: str, A: np.ndarray) -> np.ndarray:
    function = _compiled(name)
    return np.array([function(float(a)) for a in A.ravel()]).reshape(A.shape)


def table_derivative(name: str, H: np.ndarray) -> np.ndarray:
    function = _compiled(f"{name}_derivative")
    return np.array([function(float(h)) for h in H.ravel()]).reshape(H.shape)


def array_backends():
    from nnaccel.backends.numpy_backend import NumpyBackend

    backends = [pytest.param(NumpyBackend(), np.float64, 1e-12, id="numpy")]
    try:
        import array_api_strict

        from nnaccel.backends.array_api_backend import ArrayApiBackend

        backends.append(pytest.param(ArrayApiBackend(array_api_strict), np.float64, 1e-12, id="array-api-strict"))
    except ImportError:
        pass
    try:
        from nnaccel.backends.numba_backend import NumbaBackend

        backends.append(pytest.param(NumbaBackend(), np.float64, 1e-12, id="numba-float64"))
        backends.append(pytest.param(NumbaBackend(), np.float32, 2e-6, id="numba-float32"))
    except ImportError:
        pass
    return backends


@pytest.mark.parametrize("backend,dtype,tolerance", array_backends())
@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_every_backend_computes_the_tables_activation_and_derivative(backend, dtype, tolerance, name):
    A = VALUES.reshape(2, -1).astype(dtype)
    b = np.array([[0.25], [-0.5]], dtype=dtype)
    expected = table_forward(name, A.astype(np.float64) + b.astype(np.float64))
    H = backend.asarray(A, dtype)
    scratch = backend.empty(A.shape, dtype)
    H = backend.bias_activation(H, backend.asarray(b, dtype), name, scratch)
    np.testing.assert_allclose(backend.to_numpy(H), expected, rtol=tolerance, atol=tolerance)

    dH = np.linspace(-2, 2, A.size).reshape(A.shape).astype(dtype)
    expected_dA = dH.astype(np.float64) * table_derivative(name, backend.to_numpy(H).astype(np.float64))
    dA = backend.activation_backward(backend.asarray(dH, dtype), H, name)
    np.testing.assert_allclose(backend.to_numpy(dA), expected_dA, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_the_numba_scalar_dispatch_computes_the_table(name, dtype, tolerance):
    numba = pytest.importorskip("numba")
    from nnaccel.kernels.numba_rows import activate_value, derivative_value

    @numba.njit
    def walk(values, code, fast, forward):
        out = np.empty_like(values)
        for index in range(values.size):
            out[index] = (
                activate_value(values[index], code, fast)
                if forward
                else values[index] * 0 + derivative_value(values[index], code)
            )
        return out

    code = table.activation_code(name)
    values = VALUES.astype(dtype)
    fast = dtype == np.float32
    H = walk(values, code, fast, True)
    np.testing.assert_allclose(H, table_forward(name, values.astype(np.float64)), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(
        walk(H, code, fast, False), table_derivative(name, H.astype(np.float64)), rtol=tolerance, atol=tolerance
    )


def test_the_table_covers_every_activation_with_a_derivative():
    for name in HIDDEN_ACTIVATIONS:
        assert callable(getattr(table, name)) and callable(getattr(table, f"{name}_derivative"))
        assert table.activation_code(name) == HIDDEN_ACTIVATIONS.index(name)
