"""``nnaccel.backends.blas``: gemm on NumPy's own OpenBLAS, and the SGD step that uses it.

Oracles: ``np.matmul`` for every layout the products meet, and the layered plan's matmul-and-update
step (the path without gemm) for whole training runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnaccel as nna
from nnaccel.backends import blas
from nnaccel.backends.numba_backend import NumbaBackend
from nnaccel.backends.numba_plans import LayeredStepPlan
from nnaccel.threads import loaded_openblas_paths

GEMM = blas.numpy_gemm()
needs_gemm = pytest.mark.skipif(GEMM is None, reason="NumPy's BLAS here is not an OpenBLAS with a CBLAS gemm")


def test_numpy_wheels_openblas_is_found():
    """NumPy's wheels bundle OpenBLAS (scipy-openblas); on them the gemm must be found."""
    if not any("numpy" in path for path in loaded_openblas_paths()):
        pytest.skip("this NumPy was not installed from a wheel that bundles OpenBLAS")
    assert GEMM is not None and set(GEMM.functions) == {np.dtype(np.float32), np.dtype(np.float64)}


def _layouts(rng, shape, dtype):
    """The array ``shape`` as C-ordered, F-ordered, a row-strided view and a view with steps."""
    base = rng.normal(size=shape).astype(dtype)
    wide = np.zeros((shape[0], shape[1] + 3), dtype)
    wide[:, : shape[1]] = base
    stepped = np.zeros((2 * shape[0], 2 * shape[1]), dtype)
    stepped[::2, ::2] = base
    return {"C": base, "F": np.asfortranarray(base), "rows": wide[:, : shape[1]], "steps": stepped[::2, ::2]}


@needs_gemm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-0.01, 1.0), (0.5, 0.9)])
def test_gemm_equals_matmul_in_every_layout(dtype, alpha, beta):
    rng = np.random.default_rng(1)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for A_layout, A in _layouts(rng, (7, 5), dtype).items():
        for B_layout, B in _layouts(rng, (5, 9), dtype).items():
            C_start = rng.normal(size=(7, 9)).astype(dtype)
            for C_layout in ("C", "rows"):
                C = C_start.copy() if C_layout == "C" else np.zeros((7, 12), dtype)[:, :9]
                C[...] = C_start
                GEMM(alpha, A, B, beta, C)
                expected = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * C_start
                message = f"A {A_layout}, B {B_layout}, C {C_layout}"
                np.testing.assert_allclose(C, expected, rtol=tolerance, atol=tolerance, err_msg=message)


@needs_gemm
def test_gemm_with_nothing_to_multiply_scales_c():
    C = np.full((3, 4), 2.0)
    GEMM(1.0, np.ones((3, 0)), np.ones((0, 4)), 0.5, C)
    np.testing.assert_array_equal(C, np.full((3, 4), 1.0))
    C[0, 0] = np.nan
    GEMM(1.0, np.ones((3, 0)), np.ones((0, 4)), 0.0, C)  # beta 0 ignores C, as BLAS does
    np.testing.assert_array_equal(C, np.zeros((3, 4)))


@needs_gemm
def test_gemm_refuses_what_it_cannot_compute():
    A, B = np.ones((3, 2)), np.ones((2, 4))
    with pytest.raises(ValueError, match="one dtype"):
        GEMM(1.0, A.astype(np.float32), B, 0.0, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="contiguous rows"):
        GEMM(1.0, A, B, 0.0, np.zeros((4, 3)).T)
    with pytest.raises(ValueError, match="one dtype"):
        GEMM(1.0, A.astype(np.int64), B.astype(np.int64), 0, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="does not give"):
        GEMM(1.0, A, B, 0.0, np.zeros((3, 5)))


def test_no_openblas_means_no_gemm(monkeypatch):
    blas.numpy_gemm.cache_clear()
    try:
        monkeypatch.setattr(blas, "loaded_openblas_paths", lambda: [])
        assert blas.numpy_gemm() is None
    finally:
        monkeypatch.undo()
        blas.numpy_gemm.cache_clear()


def _run(layers, X, Y, gemm, dtype, **settings):
    """(losses, parameters) of a run on the Numba layered plan, with or without gemm's update."""
    network = nna.Network(layers, "relu", "softmax", seed=3, backend=NumbaBackend(fused_max_width=0), dtype=dtype)
    plan = network.plan(settings["batch_size"], settings.get("optimizer"))
    assert isinstance(plan, LayeredStepPlan)
    plan.gemm = gemm
    history = network.fit(X, Y, **settings)
    return history["loss"], network.get_params()


@needs_gemm
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_sgd_steps_with_the_update_in_the_product_equal_matmul_and_update(dtype, tolerance, l2):
    """W = (1 - lr l2) W - (lr / m) dA H_prev^T by gemm equals the matmul into dW followed by the
    update pass, shuffled and not, over batches that do not divide m."""
    from support import labels

    rng = np.random.default_rng(2)
    layers, m = [6, 9, 7, 4], 203
    X, Y = rng.normal(size=(layers[0], m)), labels("softmax", layers[-1], m, rng)
    for shuffle in (True, False):
        settings = dict(epochs=3, lr=0.1, batch_size=32, l2=l2, seed=4, shuffle=shuffle)
        expected_loss, expected = _run(layers, X, Y, None, dtype, **settings)
        loss, params = _run(layers, X, Y, GEMM, dtype, **settings)
        np.testing.assert_allclose(loss, expected_loss, rtol=tolerance)
        for (W, b), (W_expected, b_expected) in zip(params, expected):
            np.testing.assert_allclose(W, W_expected, rtol=tolerance, atol=tolerance)
            np.testing.assert_allclose(b, b_expected, rtol=tolerance, atol=tolerance)


@needs_gemm
def test_l1_and_momentum_keep_the_separate_update():
    """gemm's update is plain SGD's without L1; L1 and the other optimizers update in their pass."""
    network = nna.Network([6, 9, 4], "relu", "softmax", backend=NumbaBackend(fused_max_width=0))
    assert network.plan(16, "momentum").gemm is None
    plan = network.plan(16)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 64)), np.eye(4)[:, rng.integers(0, 4, 64)]
    network.fit(X, Y, epochs=1, lr=0.1, batch_size=16, l1=1e-3)
    assert plan.gemm is not None and not plan.weights_in_product
    network.fit(X, Y, epochs=1, lr=0.1, batch_size=16)
    assert plan.weights_in_product
