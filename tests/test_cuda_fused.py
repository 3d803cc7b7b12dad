"""The fully fused small-network CUDA kernel (kernels/cuda_fused.py), proven without a GPU.

* Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the kernels run thread by thread on the
  CPU and are compared with the NumPy backend: every activation and output, depths 1 to 5, m = 1,
  m not a multiple of the block, several blocks, float32 and float64, and a short training run.
  The simulator must be chosen before ``numba.cuda`` is first imported, so these cases run in a
  subprocess that ``test_kernels_under_the_cuda_simulator`` starts; in the main test process they
  skip.
* For the real target, ``test_fused_kernel_compiles_for_sm90_in_registers`` compiles the kernels to
  PTX with NVVM and assembles them with ``ptxas`` (both from the CUDA toolkit, no GPU needed), and
  checks that 2-6-6-1 keeps every per-example array in registers (no local memory, no spills).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support import labels

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
REPOSITORY = Path(__file__).resolve().parents[1]

in_simulator = pytest.mark.skipif(
    not SIMULATED, reason="runs in the CUDA-simulator subprocess of test_kernels_under_the_cuda_simulator"
)


# ----- the driver, in the main test process ----------------------------------------------------------
@pytest.mark.skipif(SIMULATED, reason="this is the driver; it runs outside the simulator")
def test_kernels_under_the_cuda_simulator():
    environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider", "-x"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 30, output[-3000:]
    assert "failed" not in output, output[-3000:]


# ----- cases that run in the simulator ----------------------------------------------------------------
def _reference(layers, hidden, output, dtype, X, Y):
    """The NumPy backend's summed loss and mean gradients, from the same initial parameters."""
    from nnaccel.backends.numpy_backend import NumpyBackend
    from nnaccel.core.architecture import Architecture
    from nnaccel.nn.initialization import initial_params

    architecture = Architecture.build(layers, list(hidden), output)
    params = initial_params(architecture, 7, dtype)
    params = [(W, b + np.asarray(0.1, dtype)) for W, b in params]  # nonzero biases, so b is used
    backend = NumpyBackend()
    m = X.shape[1]
    grads = [(np.empty_like(W), np.empty_like(b)) for W, b in params]
    workspace = backend.workspace(architecture, m, dtype)
    loss = backend.loss_and_gradients(architecture, params, X.copy(), Y, workspace, grads, 1.0 / m)
    return architecture, params, float(loss), grads


def _fused(architecture, params, X, Y, blocks, threads, scale):
    from nnaccel.kernels import cuda_fused

    dtype = X.dtype
    partials = np.full(cuda_fused.partials_shape(architecture.layers, blocks), np.nan, dtype)
    grads = [(np.full_like(W, np.nan), np.full_like(b, np.nan)) for W, b in params]
    loss = np.full(1, np.nan, dtype)
    cuda_fused.fused_loss_and_gradients(
        architecture.layers,
        architecture.activations,
        architecture.output,
        params,
        X,
        Y,
        partials,
        grads,
        loss,
        scale,
        0,
        threads,
    )
    return float(loss[0]), grads


def _check(layers, hidden, output, dtype, m, blocks=2, threads=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(layers[0], m)).astype(dtype)
    Y = labels(output, layers[-1], m, rng).astype(dtype)
    architecture, params, loss, grads = _reference(layers, hidden, output, dtype, X, Y)
    fused_loss, fused_grads = _fused(architecture, params, X, Y, blocks, threads, 1.0 / m)
    tolerance = 1e-10 if dtype == np.float64 else 1e-5  # issue 3's bounds
    assert fused_loss == pytest.approx(loss, rel=tolerance, abs=tolerance)
    for (dW, db), (fused_dW, fused_db) in zip(grads, fused_grads):
        scale = max(1.0, float(np.abs(dW).max()), float(np.abs(db).max()))
        np.testing.assert_allclose(fused_dW, dW, rtol=tolerance, atol=tolerance * scale)
        np.testing.assert_allclose(fused_db, db, rtol=tolerance, atol=tolerance * scale)


@pytest.fixture(autouse=True)
def _float64_constants_as_compiled(monkeypatch):
    """Make the simulator's float64 arithmetic what the compiler's is.

    kernels/activations.py types its exactly representable constants as np.float32, so compiled
    float32 code stays in float32; compiled float64 code promotes them to float64. Interpreted by
    the simulator, though, np.float32(0.5) times the Python float that ``math.tanh`` returns is
    float32 (NumPy 2's promotion), which would round float64 results to float32. With the constants
    as Python floats the simulator computes float64 exactly as compiled float64 code does; float32
    data still computes in float32 (float32 * Python float is float32).
    """
    from nnaccel.kernels import activations

    for name, value in list(vars(activations).items()):
        if isinstance(value, np.float32):
            monkeypatch.setattr(activations, name, float(value))


HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity")
OUTPUT_UNITS = {"sigmoid": 1, "identity": 2, "softmax": 3}


@in_simulator
@pytest.mark.parametrize("output", list(OUTPUT_UNITS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_every_activation_and_output_matches_numpy(activation, output):
    # 37 columns over 2 blocks of 8 threads: each thread strides over 2 or 3 columns
    _check((3, 4, 3, OUTPUT_UNITS[output]), (activation, activation), output, np.float64, m=37)


@in_simulator
@pytest.mark.parametrize("layers", [(2, 1), (2, 3, 1), (2, 3, 4, 1), (2, 3, 3, 3, 2), (1, 2, 2, 2, 2, 1)])
def test_depths_one_to_five(layers):
    output = "sigmoid" if layers[-1] == 1 else "softmax"
    _check(layers, ("tanh",) * (len(layers) - 2), output, np.float64, m=21, blocks=3, threads=4)


@in_simulator
def test_one_example_and_more_threads_than_examples():
    _check((2, 3, 1), ("relu",), "sigmoid", np.float64, m=1, blocks=2, threads=8)


@in_simulator
def test_mixed_activations_per_layer():
    _check((3, 4, 3, 2, 3), ("selu", "leaky_relu", "sigmoid"), "softmax", np.float64, m=29, blocks=2, threads=8)


@in_simulator
def test_float32_2_6_6_1_within_1e_5():
    _check((2, 6, 6, 1), ("tanh", "tanh"), "sigmoid", np.float32, m=70, blocks=2, threads=16)


@in_simulator
def test_large_pre_activations_stay_finite():
    # sigmoid cross-entropy from A: no log(0) for |A| of hundreds
    rng = np.random.default_rng(3)
    from nnaccel.core.architecture import Architecture

    architecture = Architecture.build((2, 1), [], "sigmoid")
    X = rng.normal(size=(2, 9)) * 300
    Y = (rng.random((1, 9)) > 0.5).astype(float)
    params = [(np.array([[1.0, -1.0]]), np.zeros((1, 1)))]
    loss, grads = _fused(architecture, params, X, Y, 1, 4, 1.0 / 9)
    A = params[0][0] @ X
    expected = np.sum(np.maximum(A, 0) - A * Y + np.log1p(np.exp(-np.abs(A))))
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)
    assert all(np.isfinite(dW).all() for dW, _ in grads)


@in_simulator
def test_training_run_matches_numpy_fit():
    """30 steps of full-batch gradient descent with fused gradients end where nnaccel's NumPy fit does."""
    import nnaccel as nna
    from nnaccel.kernels import cuda_fused

    rng = np.random.default_rng(5)
    m = 40
    X = rng.uniform(-1, 1, (2, m))
    Y = (X[0] * X[1] > 0).astype(float).reshape(1, -1)
    network = nna.Network([2, 4, 3, 1], "tanh", "sigmoid", backend="numpy", dtype="float64", seed=2)
    params = [(W.copy(), b.copy()) for W, b in network.get_params()]
    history = network.fit(X, Y, epochs=30, lr=0.5)
    partials = np.empty(cuda_fused.partials_shape(network.layers, 2))
    grads = [(np.empty_like(W), np.empty_like(b)) for W, b in params]
    loss = np.empty(1)
    losses = []
    for _ in range(30):
        cuda_fused.fused_loss_and_gradients(
            network.layers, network.activations, "sigmoid", params, X, Y, partials, grads, loss, 1.0 / m, 0, 8
        )
        losses.append(loss[0] / m)
        for (W, b), (dW, db) in zip(params, grads):
            W -= 0.5 * dW
            b -= 0.5 * db
    np.testing.assert_allclose(losses, history["loss"], rtol=1e-10)
    for (W, b), (W_numpy, b_numpy) in zip(params, network.get_params()):
        np.testing.assert_allclose(W, W_numpy, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, b_numpy, rtol=1e-9, atol=1e-12)


@in_simulator
def test_same_result_with_a_different_grid():
    """Block and thread counts change only the order of the sums."""
    from nnaccel.core.architecture import Architecture

    rng = np.random.default_rng(11)
    architecture = Architecture.build((3, 5, 2), ["elu"], "identity")
    X, Y = rng.normal(size=(3, 50)), rng.normal(size=(2, 50))
    params = [(rng.normal(size=(5, 3)), rng.normal(size=(5, 1))), (rng.normal(size=(2, 5)), rng.normal(size=(2, 1)))]
    loss_1, grads_1 = _fused(architecture, params, X, Y, 1, 4, 0.02)
    loss_2, grads_2 = _fused(architecture, params, X, Y, 3, 16, 0.02)
    assert loss_1 == pytest.approx(loss_2, rel=1e-12)
    for pair_1, pair_2 in zip(grads_1, grads_2):
        for array_1, array_2 in zip(pair_1, pair_2):
            np.testing.assert_allclose(array_1, array_2, rtol=1e-12, atol=1e-14)


@in_simulator
def test_layout_offsets_and_size_limits():
    from nnaccel.kernels import cuda_fused

    layout = cuda_fused.Layout.of((2, 6, 6, 1))
    assert layout.weight_offsets == (0, 18, 60) and layout.bias_offsets == (12, 54, 66)
    assert layout.parameter_count == 67 and layout.unit_offsets == (0, 2, 8, 14) and layout.unit_count == 15
    assert cuda_fused.fits_fused((2, 6, 6, 1), 4)
    assert not cuda_fused.fits_fused((2, 6, 6, 1), 8)  # 67 float64 sums spill registers
    assert not cuda_fused.fits_fused((784, 256, 10), 4)
    with pytest.raises(ValueError, match="layer-by-layer"):
        cuda_fused.fused_kernels((784, 256, 10), ("relu",), "softmax", "float32")
    assert cuda_fused.grid_blocks(1, 132) == 1 and cuda_fused.grid_blocks(10**7, 132) == 8 * 132


# ----- the real target: PTX from NVVM, assembled by ptxas ---------------------------------------------
PTX_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, types as pytypes
    os.environ["NUMBA_FORCE_CUDA_CC"] = "9.0"  # compile for sm_90 without asking a GPU
    from numba.cuda import cuda_paths, dispatcher
    # Without a GPU numba-cuda still looks up NVRTC (not in this toolkit) and the device's compute
    # capability; neither is needed to produce PTX.
    cuda_paths._get_nvrtc_path = lambda: ("not needed for PTX", None)
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(9, 0))
    from numba import cuda, types
    from nnaccel.kernels import cuda_fused

    results = {}
    for layers, hidden, output, dtype in json.loads(sys.argv[1]):
        layers = tuple(layers)
        kernels = cuda_fused.fused_kernels(layers, tuple(hidden), output, dtype)
        element = types.float32 if dtype == "float32" else types.float64
        matrix = types.Array(element, 2, "C")
        params = types.UniTuple(matrix, 2 * (len(layers) - 1))
        fused, _ = cuda.compile_ptx(kernels.fused_pass.py_func, (matrix, matrix, params, matrix), cc=(9, 0))
        reduce, _ = cuda.compile_ptx(
            kernels.reduce_partials.py_func, (matrix, params, types.Array(element, 1, "C"), element), cc=(9, 0)
        )
        results["-".join(map(str, layers)) + "-" + output + "-" + dtype] = [fused, reduce]
    print(json.dumps(results))
    """
)


def _toolkit_tool(name: str) -> str | None:
    for candidate in (shutil.which(name), f"/usr/local/cuda/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.mark.skipif(SIMULATED, reason="compiles for the real target, outside the simulator")
@pytest.mark.skipif(_toolkit_tool("ptxas") is None, reason="needs the CUDA toolkit's ptxas and NVVM")
def test_fused_kernel_compiles_for_sm90_in_registers(tmp_path):
    import json

    cases = [  # 2-6-6-1, then the largest networks fits_fused admits
        [[2, 6, 6, 1], ["tanh", "tanh"], "sigmoid", "float32"],
        [[3, 8, 6, 1], ["relu", "selu"], "sigmoid", "float32"],
        [[3, 4, 3, 3], ["elu", "sigmoid"], "softmax", "float64"],
    ]
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run(
        [sys.executable, "-c", PTX_SCRIPT, json.dumps(cases)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "libnvvm" in result.stderr.lower() and "not found" in result.stderr.lower():
        pytest.skip("NVVM (libnvvm) is not installed")
    assert result.returncode == 0, result.stderr[-4000:]
    ptx = json.loads(result.stdout.strip().splitlines()[-1])
    ptxas = _toolkit_tool("ptxas")
    for name, (fused, reduce) in ptx.items():
        for kind, text in (("fused", fused), ("reduce", reduce)):
            path = tmp_path / f"{name}-{kind}.ptx"
            path.write_text(text)
            assembled = subprocess.run([ptxas, "-arch=sm_90", "-v", str(path), "-o", os.devnull], capture_output=True, text=True)
            assert assembled.returncode == 0, assembled.stderr
            if kind == "fused":
                assert "call." not in text, f"{name}: a device function was not inlined"
                # the example's activations, dA and every gradient sum in registers
                assert "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" in assembled.stderr, (
                    name + "\n" + assembled.stderr
                )
