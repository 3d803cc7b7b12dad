"""The CuPy backend.

Without a GPU (CI): the registry refuses ``cupy`` with a reason that says what is missing, ``auto``
does not pick it, and the backend's pure logic (out-of-memory advice, chunk plans, copying a
host index order once per epoch) is checked. With a GPU (``gpu`` marker, skipped elsewhere with a
reason): every operation, every activation and output, the fused kernel, whole training runs,
streaming and the out-of-memory error are compared with the NumPy backend.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from support import labels

import nnaccel as nna
from nnaccel.backends import cupy_backend, unavailable_reason
from nnaccel.backends.numpy_backend import NumpyBackend

CUPY_REASON = unavailable_reason("cupy")
no_gpu = pytest.mark.skipif(CUPY_REASON is None, reason="this machine has a usable GPU")
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity")
OUTPUT_UNITS = {"sigmoid": 1, "identity": 2, "softmax": 3}


# ----- without a GPU ----------------------------------------------------------------------------------
@no_gpu
def test_explicit_cupy_is_refused_with_the_reason():
    with pytest.raises(nna.BackendUnavailable, match="cupy") as error:
        nna.set_backend("cupy")
    assert CUPY_REASON in str(error.value)
    assert "CuPy" in CUPY_REASON and ("install" in CUPY_REASON or "device" in CUPY_REASON)


@no_gpu
def test_environment_variable_cupy_is_refused_not_replaced():
    code = "import nnaccel as nna; nna.Network([2, 1])"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**_environment(), "NNACCEL_BACKEND": "cupy"}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "BackendUnavailable" in result.stderr and "cupy" in result.stderr


@no_gpu
def test_auto_does_not_pick_cupy_and_info_says_why():
    from nnaccel import backends

    assert "cupy" not in nna.available_backends()
    assert backends.load_backend("auto").name != "cupy"
    result = subprocess.run([sys.executable, "-m", "nnaccel", "info"], env=_environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    cupy_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("cupy"))
    assert CUPY_REASON in cupy_line


def _environment():
    import os

    return {key: value for key, value in os.environ.items() if key != "NNACCEL_BACKEND"}


def test_module_imports_without_cupy_and_the_backend_needs_it():
    if CUPY_REASON is None:
        pytest.skip("CuPy is usable here")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            cupy_backend.CupyBackend()


def test_out_of_memory_message_names_the_array_and_a_batch_that_fits():
    layers = (784, 256, 10)
    free, total = 3 * 10**9, 80 * 10**9
    message = cupy_backend.out_of_memory_message(
        "the step buffers for a batch of m = 10000000 examples", (256, 10**7), np.float32, free, total, layers
    )
    assert "(256, 10000000) float32" in message and "10.24 GB" in message
    assert "3.00 GB free of 80.00 GB" in message
    batch = int(message.split("batch_size=")[1].split()[0])
    # one example's step needs X, Y, H1, the output and two (256,) scratch columns
    per_example = (784 + 10 + 256 + 10 + 2 * 256) * 4
    assert batch * per_example <= free and (batch + 1024) * per_example > free * cupy_backend.MEMORY_HEADROOM
    assert batch % 1024 == 0
    without_layers = cupy_backend.out_of_memory_message("X", (2, 10**10), np.float64, free, total)
    assert "160.00 GB" in without_layers and "batch_size" not in without_layers
    nothing_fits = cupy_backend.out_of_memory_message("X", (2, 10), np.float32, 100, total, layers)
    assert "not even one example" in nothing_fits


def test_chunk_bounds_cover_every_column_once():
    for m, chunk in [(10, 3), (9, 3), (1, 5), (5, 5), (0, 4)]:
        bounds = cupy_backend.chunk_bounds(m, chunk)
        covered = [column for start, stop in bounds for column in range(start, stop)]
        assert covered == list(range(m))
        assert all(0 < stop - start <= chunk for start, stop in bounds)
    with pytest.raises(ValueError, match="chunk"):
        cupy_backend.chunk_bounds(10, 0)


def test_mini_batch_fit_copies_each_epochs_order_to_the_device_once():
    """fit's mini-batch loop asks the backend for the epoch's index order once, then slices it,
    so a GPU backend copies one index array per epoch and nothing per step."""
    import nnaccel as nna
    from nnaccel.backends.numpy_backend import NumpyBackend

    class CountingBackend(NumpyBackend):
        calls = 0

        def indices(self, order):
            CountingBackend.calls += 1
            return super().indices(order)

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(2, 103)), (rng.random((1, 103)) > 0.5).astype(float)
    counted = nna.Network([2, 3, 1], backend=CountingBackend(), dtype="float64")
    plain = nna.Network([2, 3, 1], backend="numpy", dtype="float64")
    counted.fit(X, Y, epochs=3, lr=0.1, batch_size=10)
    plain.fit(X, Y, epochs=3, lr=0.1, batch_size=10)
    assert CountingBackend.calls == 3
    for (W, b), (W_plain, b_plain) in zip(counted.get_params(), plain.get_params()):
        np.testing.assert_array_equal(W, W_plain)
        np.testing.assert_array_equal(b, b_plain)


# ----- with a GPU --------------------------------------------------------------------------------------
gpu = pytest.mark.gpu


@pytest.fixture(scope="module")
def cupy():
    return pytest.importorskip("cupy")


@pytest.fixture(params=[True, False], ids=["fused", "layer-by-layer"])
def cupy_backend_instance(request, cupy):
    return cupy_backend.CupyBackend(fused=request.param)


TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", HIDDEN)
def test_every_activation_primitive_matches_numpy(cupy, activation, dtype):
    backend, reference = cupy_backend.CupyBackend(), NumpyBackend()
    rng = np.random.default_rng(0)
    A = (rng.normal(size=(5, 1037)) * 3).astype(dtype)
    b = rng.normal(size=(5, 1)).astype(dtype)
    H = reference.bias_activation(A.copy(), b, activation, np.empty_like(A))
    H_device = backend.bias_activation(cupy.asarray(A), cupy.asarray(b), activation, cupy.empty_like(cupy.asarray(A)))
    np.testing.assert_allclose(cupy.asnumpy(H_device), H, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    dH = rng.normal(size=A.shape).astype(dtype)
    dA = reference.activation_backward(dH.copy(), H.copy(), activation)
    dA_device = backend.activation_backward(cupy.asarray(dH), cupy.asarray(H), activation)
    np.testing.assert_allclose(cupy.asnumpy(dA_device), dA, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", list(OUTPUT_UNITS))
def test_every_output_primitive_matches_numpy(cupy, output, dtype):
    backend, reference = cupy_backend.CupyBackend(), NumpyBackend()
    rng = np.random.default_rng(1)
    k, m = OUTPUT_UNITS[output], 5000
    A = (rng.normal(size=(k, m)) * 4).astype(dtype)
    A[0, :2] = [300.0, -300.0]
    b = rng.normal(size=(k, 1)).astype(dtype)
    Y = np.ascontiguousarray(labels(output, k, m, rng).astype(dtype))
    dA = A.copy()
    loss = float(reference.output_loss_gradient(dA, b, Y, output))
    dA_device = cupy.asarray(A)
    loss_device = backend.output_loss_gradient(dA_device, cupy.asarray(b), cupy.asarray(Y), output)
    assert backend.to_float(loss_device) == pytest.approx(loss, rel=TOLERANCE[dtype])
    np.testing.assert_allclose(cupy.asnumpy(dA_device), dA, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    H = reference.output_activation(A.copy(), b, output)
    H_device = backend.output_activation(cupy.asarray(A), cupy.asarray(b), output)
    np.testing.assert_allclose(cupy.asnumpy(H_device), H, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_algebra_update_and_gather_match_numpy(cupy, dtype):
    backend, reference = cupy_backend.CupyBackend(), NumpyBackend()
    rng = np.random.default_rng(2)
    W, H = rng.normal(size=(6, 4)).astype(dtype), rng.normal(size=(4, 3001)).astype(dtype)
    dA = rng.normal(size=(6, 3001)).astype(dtype)
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    for left, right, shape in ((W, H, (6, 3001)), (dA, H.T, (6, 4)), (W.T, dA, (4, 3001))):
        out = cupy.empty(shape, dtype)
        left_device = cupy.asarray(np.ascontiguousarray(left.T)).T if left.flags.f_contiguous else cupy.asarray(left)
        right_device = cupy.asarray(np.ascontiguousarray(right.T)).T if right.flags.f_contiguous else cupy.asarray(right)
        backend.matmul(left_device, right_device, out)
        np.testing.assert_allclose(cupy.asnumpy(out), left @ right, rtol=tolerance, atol=tolerance)
    db = cupy.empty((6, 1), dtype)
    backend.row_sums(cupy.asarray(dA), db)
    np.testing.assert_allclose(cupy.asnumpy(db), dA.sum(axis=1, keepdims=True), rtol=tolerance, atol=tolerance)
    for l1, l2 in ((0.0, 0.0), (0.01, 0.1)):
        W_device = cupy.asarray(W)
        dW = rng.normal(size=W.shape).astype(dtype)
        backend.update(W_device, cupy.asarray(dW), 0.3, l1, l2)
        expected = W.copy()
        reference.update(expected, dW.copy(), 0.3, l1, l2)
        np.testing.assert_allclose(cupy.asnumpy(W_device), expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    order = rng.permutation(3001)
    out = cupy.empty((4, 100), dtype)
    backend.take_columns(cupy.asarray(H), order[200:300], out)
    np.testing.assert_array_equal(cupy.asnumpy(out), H[:, order[200:300]])
    assert backend.all_finite(cupy.asarray(H)) and not backend.all_finite(cupy.asarray([[np.nan]], dtype))


@gpu
@pytest.mark.parametrize(
    ("layers", "activation", "output", "dtype"),
    [
        ([2, 6, 6, 1], "tanh", "sigmoid", "float32"),
        ([3, 4, 3, 3], "relu", "softmax", "float64"),
        ([2, 5, 2], "selu", "identity", "float32"),
        ([20, 64, 32, 4], "leaky_relu", "softmax", "float32"),  # too wide for the fused kernel
    ],
)
def test_gradients_match_numpy(cupy_backend_instance, layers, activation, output, dtype):
    rng = np.random.default_rng(3)
    m = 10_007  # not a multiple of any block size
    X, Y = rng.normal(size=(layers[0], m)), labels(output, layers[-1], m, rng)
    network = nna.Network(layers, activation, output, backend=cupy_backend_instance, dtype=dtype, seed=4)
    reference = nna.Network(layers, activation, output, backend="numpy", dtype=dtype, seed=4)
    loss, grads = network.gradients(X, Y)
    expected_loss, expected_grads = reference.gradients(X, Y)
    tolerance = TOLERANCE[dtype] * (10 if dtype == "float32" else 1)
    assert loss == pytest.approx(expected_loss, rel=tolerance)
    for (dW, db), (expected_dW, expected_db) in zip(grads, expected_grads):
        scale = max(1.0, float(np.abs(expected_dW).max()))
        np.testing.assert_allclose(dW, expected_dW, rtol=tolerance, atol=tolerance * scale)
        np.testing.assert_allclose(db, expected_db, rtol=tolerance, atol=tolerance * scale)
    np.testing.assert_allclose(network.forward(X), reference.forward(X), rtol=tolerance, atol=tolerance)


@gpu
def test_fused_kernel_is_used_for_small_networks(cupy):
    from nnaccel.core.architecture import Architecture

    backend = cupy_backend.CupyBackend()
    assert backend.uses_fused_pass(Architecture.build([2, 6, 6, 1], "tanh", "sigmoid"), np.float32)
    assert not backend.uses_fused_pass(Architecture.build([784, 256, 10], "relu", "softmax"), np.float32)
    assert not cupy_backend.CupyBackend(fused=False).uses_fused_pass(
        Architecture.build([2, 6, 6, 1], "tanh", "sigmoid"), np.float32
    )


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])  # 2-6-6-1 is fused in float32 only
@pytest.mark.parametrize("batch_size", [None, 256])
def test_training_run_matches_numpy(cupy_backend_instance, batch_size, dtype):
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (2, 4000))
    Y = (X[0] * X[1] > 0).astype(float).reshape(1, -1)
    settings = dict(epochs=50, lr=0.3, batch_size=batch_size, l2=1e-4, seed=6)
    network = nna.Network([2, 6, 6, 1], backend=cupy_backend_instance, dtype=dtype)
    reference = nna.Network([2, 6, 6, 1], backend="numpy", dtype=dtype)
    history = network.fit(X, Y, **settings)
    expected = reference.fit(X, Y, **settings)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-4 if dtype == "float32" else 1e-8)
    assert history["loss"][-1] < history["loss"][0]


@gpu
def test_training_run_784_256_10_matches_numpy_in_float32(cupy):
    rng = np.random.default_rng(7)
    X = rng.random((784, 3000))
    Y = np.eye(10)[:, rng.integers(0, 10, 3000)]
    network = nna.Network([784, 256, 10], "relu", "softmax", backend=cupy_backend.CupyBackend())
    reference = nna.Network([784, 256, 10], "relu", "softmax", backend="numpy")
    history = network.fit(X, Y, epochs=10, lr=0.05, batch_size=500)
    expected = reference.fit(X, Y, epochs=10, lr=0.05, batch_size=500)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-4)


@gpu
def test_a_training_step_never_synchronises(cupy_backend_instance, cupy):
    import cupyx

    from nnaccel.nn.training import full_batch_step

    rng = np.random.default_rng(8)
    network = nna.Network([2, 6, 6, 1], backend=cupy_backend_instance)
    X = cupy_backend_instance.asarray(rng.normal(size=(2, 5000)), network.dtype)
    Y = cupy_backend_instance.asarray((rng.random((1, 5000)) > 0.5).astype(float), network.dtype)
    full_batch_step(network, X, Y, 0.1)  # compile and allocate first
    with cupyx.allow_synchronize(False):
        for _ in range(3):
            total = full_batch_step(network, X, Y, 0.1)
    assert np.isfinite(cupy_backend_instance.to_float(total))


@gpu
@pytest.mark.parametrize("layers", [[2, 6, 6, 1], [784, 64, 10]])
def test_a_mini_batch_epoch_never_synchronises(cupy_backend_instance, layers):
    """The CuPy plan's epoch: shuffled batches gathered on the device, each step queued with no
    host synchronisation; the epoch's loss stays a device scalar."""
    import cupyx

    from nnaccel.nn.training import epoch_order
    from nnaccel.optim import Hyperparameters

    rng = np.random.default_rng(8)
    output = "sigmoid" if layers[-1] == 1 else "softmax"
    network = nna.Network(layers, "relu", output, backend=cupy_backend_instance)
    X = rng.normal(size=(layers[0], 2000))
    Y = np.eye(layers[-1])[:, rng.integers(0, layers[-1], 2000)] if output == "softmax" else (X[:1] > 0).astype(float)
    plan = network.plan(32)
    data = plan.load(X, Y)
    order = epoch_order(0, 0, 2000)
    plan.epoch(network.parameters, data, order, Hyperparameters(0.1))  # compile and allocate first
    with cupyx.allow_synchronize(False):
        total = plan.epoch(network.parameters, data, order, Hyperparameters(0.1))
    assert np.isfinite(cupy_backend_instance.to_float(total))


@gpu
def test_streamed_gradients_equal_full_batch(cupy_backend_instance):
    from nnaccel.core.architecture import Architecture

    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(3, 10_000)), (rng.random((1, 10_000)) > 0.5).astype(float)
    network = nna.Network([3, 5, 1], backend=cupy_backend_instance, dtype="float64")
    backend = cupy_backend_instance
    grads = network.gradient_buffers()
    total = backend.streamed_loss_and_gradients(
        Architecture.build([3, 5, 1], "tanh", "sigmoid"), network.parameters, X, Y, grads, chunk=3333
    )
    loss, expected = nna.Network([3, 5, 1], backend="numpy", dtype="float64").gradients(X, Y)
    assert backend.to_float(total) / 10_000 == pytest.approx(loss, rel=1e-10)
    for (dW, db), (expected_dW, expected_db) in zip(grads, expected):
        np.testing.assert_allclose(backend.to_numpy(dW), expected_dW, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(backend.to_numpy(db), expected_db, rtol=1e-9, atol=1e-12)


@gpu
def test_out_of_memory_becomes_a_clear_error(cupy):
    from nnaccel.core.architecture import Architecture

    backend = cupy_backend.CupyBackend()
    _, total = backend.memory_info()
    m = int(2 * total / (4 * 1000))  # twice the device, in (1000, m) float32 buffers
    with pytest.raises(MemoryError, match=r"batch_size=\d+") as error:
        backend.workspace(Architecture.build([10, 1000, 1], "relu", "sigmoid"), m, np.float32)
    assert f"m = {m}" in str(error.value) and "GB" in str(error.value)


@gpu
def test_stream_chunks_hook_delivers_every_chunk_in_order(cupy):
    """nnaccel.data.sources.device_chunks hands chunks of any shape and width to stream_chunks."""
    from nnaccel.data.sources import device_chunks

    backend = cupy_backend.CupyBackend()
    rng = np.random.default_rng(10)
    chunks = [(rng.normal(size=(3, width)), rng.normal(size=(2, 4, width))) for width in (500, 1200, 7, 1200, 300)]
    seen = []
    for X, Y in device_chunks(backend, iter(chunks), np.float32):
        X_sum = X.sum(axis=0)  # queued work on the chunk before the next copy may reuse its slot
        seen.append((cupy.asnumpy(X), cupy.asnumpy(Y), cupy.asnumpy(X_sum)))
    assert len(seen) == len(chunks)
    for (X, Y, X_sum), (X_host, Y_host) in zip(seen, chunks):
        np.testing.assert_array_equal(X, X_host.astype(np.float32))
        np.testing.assert_array_equal(Y, Y_host.astype(np.float32))
        np.testing.assert_allclose(X_sum, X_host.astype(np.float32).sum(axis=0), rtol=1e-6)
