"""The Numba backend against the NumPy reference: scalar activations, both passes, training, repeats.

The fused path (forced for every layer <= 64 units) and the layer-by-layer path
(``fused_max_width=0``) are each tested explicitly, for every activation and output, depths 1 to 4, widths 1 to 64, m = 1, m
not a multiple of the block size, float32 and float64. Tolerances: 1e-5 (float32) and 1e-10
(float64), as norm-wise relative errors ||numba - numpy|| / ||numpy|| of the forward output, the
loss, and each layer's gradient (dW and db together). The one exception is a float32 quantity
that float32 cannot resolve to 1e-5 (``agreement``): there the NumPy backend is itself further
than 1e-5 from the float64 result, and the Numba backend must come within twice its distance.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import nnaccel as nna  # noqa: E402
from nnaccel.backends import numpy_backend  # noqa: E402
from nnaccel.backends.numba_backend import FusedWorkspace, LayeredWorkspace, NumbaBackend  # noqa: E402
from nnaccel.core.activations import HIDDEN_ACTIVATIONS, OUTPUTS  # noqa: E402
from nnaccel.kernels import activations as scalar  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
FUSED = NumbaBackend(fused_max_width=64)  # the fused pass for every width the tests use
LAYERED = NumbaBackend(fused_max_width=0)
PATHS = {"fused": FUSED, "layered": LAYERED}
# Hidden widths per depth, 1 to 64 (the fused path's limit). On the layered path they reach both
# kinds of step: BLAS for inner dimensions above 16 and one-pass kernels for small ones.
HIDDEN = {1: [], 2: [64], 3: [17, 40], 4: [7, 1, 33]}
# One column; more than one block and not a multiple of any block size (64 to 1024).
M_VALUES = (1, 1109)


def relative_error(actual, expected) -> float:
    """||actual - expected|| / ||expected||, norm-wise (0 when both are zero)."""
    expected = np.asarray(expected, dtype=np.float64)
    difference = np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected)
    norm = np.linalg.norm(expected)
    return float(difference / norm) if norm > 0 else float(difference)


def make_data(layers, output, m, seed=0):
    """X (n, m) and labels Y (outputs, m) that suit the output layer."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((layers[0], m))
    outputs = layers[-1]
    if output == "sigmoid":
        Y = (rng.random((outputs, m)) < 0.5).astype(np.float64)
    elif output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, m)].T.copy()
    else:
        Y = rng.standard_normal((outputs, m))
    return X, Y


def network_layers(depth, output, n_inputs=3):
    outputs = 1 if output == "sigmoid" else 3
    return [n_inputs] + HIDDEN[depth] + [outputs]


def agreement(actual, expected, exact, dtype) -> float:
    """The error of ``actual`` against the NumPy backend's ``expected`` that the tests bound: their
    relative error, except for a quantity float32 cannot resolve to the tolerance (the NumPy
    backend's own float32 result is further than that from the float64 one, ``exact``: say a
    gradient that nearly cancels through a one-unit layer). There two float32 results can differ by
    more than the tolerance, and ``actual`` must instead be within twice the NumPy backend's
    distance of ``exact``; the ratio is scaled so that the tolerance still marks the limit."""
    error = relative_error(actual, expected)
    floor = relative_error(expected, exact) if exact is not None else 0.0
    if floor <= TOLERANCE[dtype]:
        return error
    return min(error, TOLERANCE[dtype] * relative_error(actual, exact) / (2 * floor))


def compare(layers, activation, output, dtype, backend, m, seed=0):
    """Forward outputs, loss and gradients of ``backend`` against NumPy's; returns the worst error
    (``agreement``: for float32, the NumPy backend in float64 on the same float32 parameters and
    data is the exact result)."""
    X, Y = make_data(layers, output, m, seed)
    reference = nna.Network(layers, activation, output, backend="numpy", dtype=dtype, seed=seed)
    candidate = nna.Network(layers, activation, output, backend=backend, dtype=dtype, seed=seed)
    expected_loss, expected_grads = reference.gradients(X, Y)
    expected_forward = reference.forward(X)
    exact_forward = exact_loss = None
    exact_grads = [(None, None)] * len(expected_grads)
    if np.dtype(dtype) == np.float32:
        exact = nna.Network(layers, activation, output, backend="numpy", dtype="float64", seed=seed)
        exact.set_params([(W.astype(np.float64), b.astype(np.float64)) for W, b in reference.get_params()])
        X_exact, Y_exact = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
        exact_forward = exact.forward(X_exact)
        exact_loss, exact_grads = exact.gradients(X_exact, Y_exact)
    worst = agreement(candidate.forward(X), expected_forward, exact_forward, dtype)
    loss, grads = candidate.gradients(X, Y)
    worst = max(worst, agreement(loss, expected_loss, exact_loss, dtype))
    worst = max(worst, agreement(candidate.loss(X, Y), expected_loss, exact_loss, dtype))
    for (dW, db), (expected_dW, expected_db), (exact_dW, exact_db) in zip(grads, expected_grads, exact_grads):
        assert dW.dtype == np.dtype(dtype) and db.shape == expected_db.shape
        # one layer's (dW, db) as one vector: a db that nearly cancels to 0 (a mean of H - Y close
        # to 0) is compared at the scale of its layer, where float32 sums in another order agree
        exact_layer = None if exact_dW is None else np.r_[exact_dW.ravel(), exact_db.ravel()]
        expected_layer = np.r_[expected_dW.ravel(), expected_db.ravel()]
        worst = max(worst, agreement(np.r_[dW.ravel(), db.ravel()], expected_layer, exact_layer, dtype))
    return worst


# ----- the scalar functions of kernels/activations.py -------------------------------------------------
@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_scalar_activation_and_derivative_match_numpy(name):
    code = scalar.activation_code(name)
    forward = numba.njit(scalar.HIDDEN_FORWARD[code])
    derivative = numba.njit(scalar.HIDDEN_DERIVATIVE[code])
    A = np.linspace(-6.0, 6.0, 1201).reshape(1, -1)
    expected_H = numpy_backend.activate(A.copy(), name, None)
    H = np.array([[forward(a) for a in A[0]]])
    assert relative_error(H, expected_H) < 1e-14
    expected_derivative = numpy_backend.derivative_from_output(expected_H.copy(), name)
    derivative_values = np.array([[derivative(h) for h in expected_H[0]]])
    assert relative_error(derivative_values, expected_derivative) < 1e-14


def test_codes_follow_the_names():
    assert [scalar.activation_code(name) for name in HIDDEN_ACTIVATIONS] == list(range(len(HIDDEN_ACTIVATIONS)))
    assert [scalar.output_code(name) for name in OUTPUTS] == list(range(len(OUTPUTS)))
    with pytest.raises(ValueError, match="unknown activation"):
        scalar.activation_code("swish")


@numba.njit(error_model="numpy")
def _tanh_rational_worst_error(first_bits, last_bits):
    """The largest relative error of tanh_rational over every float32 whose bit pattern lies in
    first_bits..last_bits (positive floats: their order is that of the bits)."""
    worst = 0.0
    for bits in range(first_bits, last_bits + 1):
        a = np.int32(bits).view(np.float32)
        exact = math.tanh(np.float64(a))
        worst = max(worst, abs(np.float64(tanh_rational_kernel(a)) - exact) / exact)
    return worst


tanh_rational_kernel = numba.njit(error_model="numpy", fastmath={"contract"})(scalar.tanh_rational)  # as the kernels


def test_library_free_functions_are_accurate():
    a = np.linspace(-12.0, 12.0, 48001, dtype=np.float32)
    approximate = np.array([tanh_rational_kernel(value) for value in a], dtype=np.float64)
    exact = np.tanh(a.astype(np.float64))
    assert np.max(np.abs(approximate - exact) / np.maximum(np.abs(exact), 1e-30)) < 5e-7  # a few float32 ulps
    assert np.array_equal(approximate[a > 0], -approximate[a < 0][::-1])  # odd
    # every float32 from 1e-6 to 10 (its largest error is near 7.5)
    assert _tanh_rational_worst_error(int(np.float32(1e-6).view(np.int32)), int(np.float32(10.0).view(np.int32))) < 5e-7
    x = np.linspace(0.0, 45.0, 9001)
    exp_negative = numba.njit(scalar.exp_negative)
    values = np.array([exp_negative(value) for value in x])
    assert np.max(np.abs(values / np.exp(-np.minimum(x, 40.0)) - 1.0)) < 1e-10
    x = np.concatenate([np.linspace(0.0, 100.0, 20001), np.logspace(-8.0, 0.0, 500)]).astype(np.float32)
    exp_negative_float32 = numba.njit(scalar.exp_negative_float32)
    values = np.array([exp_negative_float32(value) for value in x], dtype=np.float64)
    exact = np.exp(-np.minimum(x.astype(np.float64), 87.0))
    assert np.max(np.abs(values / exact - 1.0)) < 2e-7  # float32 arithmetic, a few ulps
    t = np.linspace(0.0, 1.0, 4001, dtype=np.float32)
    log1p_unit_float32 = numba.njit(scalar.log1p_unit_float32)
    values = np.array([log1p_unit_float32(value) for value in t], dtype=np.float64)
    exact = np.log1p(t.astype(np.float64))
    assert np.max(np.abs(values - exact) / np.maximum(exact, 1e-300)) < 2e-7


def test_float32_sigmoid_and_cross_entropy_are_accurate_in_both_tails():
    """The float32 kernels' sigmoid output and binary cross-entropy against float64 NumPy, relative
    error, for pre-activations from -87 to 87 (a sigmoid from (1 + tanh(a/2)) / 2 fails this far
    out on the negative side: 1 + tanh cancels)."""
    from nnaccel.kernels import numba_rows

    a = np.concatenate([np.linspace(-87.0, 87.0, 20001), np.logspace(-6.0, 1.9, 300), -np.logspace(-6.0, 1.9, 300)])
    A = a.astype(np.float32).reshape(1, -1)
    a = A[0].astype(np.float64)
    H = A[0].copy()
    numba_rows.activate_row(H, np.float32(0.0), numba_rows.SIGMOID, True)
    expected_H = 1.0 / (1.0 + np.exp(-a))
    assert np.max(np.abs(H / expected_H - 1.0)) < 3e-7
    Y = (np.arange(A.shape[1]) % 2).astype(np.float32).reshape(1, -1)
    dA = A.copy()
    loss = numba_rows.output_row(dA, 0, 0, np.float32(0.0), Y, 0, 0, A.shape[1], numba_rows.OUTPUT_SIGMOID, True)
    y = Y[0].astype(np.float64)
    expected_loss = np.logaddexp(0.0, a) - a * y
    assert abs(loss / expected_loss.sum() - 1.0) < 1e-6
    # dA = sigmoid(a) - y: h rounds to float32 first, so near h = 1 the error is up to 2 ulps of 1
    np.testing.assert_allclose(dA[0], expected_H - y, rtol=3e-7, atol=1.2e-7)


def test_sigmoid_cross_entropy_is_stable():
    loss = numba.njit(scalar.sigmoid_cross_entropy)
    for a, y in ((-800.0, 1.0), (800.0, 0.0), (-30.0, 0.0), (0.0, 1.0)):
        expected = np.logaddexp(0.0, a) - a * y  # log(1 + e^a) - a y
        assert math.isfinite(loss(a, y)) and abs(loss(a, y) - expected) <= 1e-12 * max(1.0, abs(expected))


# ----- the passes against NumPy -------------------------------------------------------------------
def test_paths_are_the_ones_asked_for():
    architecture = nna.Network([2, 64, 1], backend=FUSED).architecture
    assert FUSED.uses_fused_pass(architecture) and not LAYERED.uses_fused_pass(architecture)
    assert not FUSED.uses_fused_pass(nna.Network([2, 65, 1], backend=FUSED).architecture)
    default = NumbaBackend()  # fused up to 32 units, the input included
    assert default.uses_fused_pass(nna.Network([32, 32, 1], backend=default).architecture)
    assert not default.uses_fused_pass(nna.Network([2, 33, 1], backend=default).architecture)
    fused_workspace = FUSED.workspace(architecture, 100_000, np.float32)
    assert isinstance(fused_workspace, FusedWorkspace) and fused_workspace.H == [] and fused_workspace.output is None
    # nothing of size m: the fused pass's buffers stay small for any m (per-task partial sums only)
    for m in (1, 100_000, 10_000_000):
        assert FUSED.workspace(architecture, m, np.float32).nbytes < 200_000
    assert isinstance(LAYERED.workspace(architecture, 10, np.float32), LayeredWorkspace)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("path", PATHS)
def test_every_activation_and_depth_matches_numpy(path, output, dtype):
    backend = PATHS[path]
    worst = {}
    for activation in HIDDEN_ACTIVATIONS:
        for depth in (1, 2, 3, 4):
            layers = network_layers(depth, output)
            for m in M_VALUES:
                worst[(activation, depth, m)] = compare(layers, activation, output, dtype, backend, m)
    failures = {key: error for key, error in worst.items() if not error <= TOLERANCE[dtype]}
    assert not failures, f"relative errors above {TOLERANCE[dtype]}: {failures}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", PATHS)
def test_mixed_activations_wide_input_and_many_blocks(path, dtype):
    layers = [64, 40, 64, 5, 4]
    activations = ["selu", "leaky_relu", "sigmoid"]
    worst = compare(layers, activations, "softmax", dtype, PATHS[path], m=3000, seed=3)
    assert worst <= TOLERANCE[dtype]


@pytest.mark.parametrize("layers", [[20, 96, 3], [20, 96, 24], [3, 24, 30, 24]], ids=str)
def test_wide_network_uses_layered_path_and_matches_numpy(layers):
    # outputs <= 16 take the narrow output pass, more take BLAS and the one-pass loss kernel
    backend = FUSED if max(layers) > 64 else LAYERED
    assert not backend.uses_fused_pass(nna.Network(layers, backend=backend).architecture)
    for output in ("softmax", "identity"):
        for dtype in ("float32", "float64"):
            assert compare(layers, "elu", output, dtype, backend, m=1109) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", PATHS)
def test_fifty_epochs_of_training_match_numpy(path, dtype):
    X, Y = make_data([2, 6, 6, 1], "sigmoid", 400, seed=1)
    Y = (X[0:1] ** 2 + X[1:2] ** 2 < 1.0).astype(np.float64)  # a circle, as in the Playground
    histories = []
    for backend in ("numpy", PATHS[path]):
        network = nna.Network([2, 6, 6, 1], "tanh", "sigmoid", backend=backend, dtype=dtype, seed=4)
        histories.append(network.fit(X, Y, epochs=50, lr=0.3)["loss"])
    expected, actual = histories
    assert expected[-1] < expected[0]  # it learned something
    assert abs(actual[-1] - expected[-1]) <= 1e-4 * expected[-1]


@pytest.mark.parametrize("path", PATHS)
def test_mini_batch_training_with_regularisation_matches_numpy(path):
    X, Y = make_data([4, 16, 3], "softmax", 600, seed=2)
    losses = []
    for backend in ("numpy", PATHS[path]):
        network = nna.Network([4, 16, 3], "relu", "softmax", backend=backend, dtype="float64", seed=5)
        history = network.fit(X, Y, epochs=5, lr=0.1, batch_size=128, l1=1e-3, l2=1e-2, seed=7)
        losses.append((history["loss"], network.get_params()))
    (expected_loss, expected_params), (loss, params) = losses
    assert relative_error(loss, expected_loss) <= 1e-10
    for (W, b), (expected_W, expected_b) in zip(params, expected_params):
        assert relative_error(W, expected_W) <= 1e-10 and relative_error(b, expected_b) <= 1e-10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_pair_kernel_matches_numpy_for_every_count(dtype):
    """combine_row_pair (two rows of W H, or of W^T dA down W's columns, in one pass) against
    NumPy's products, for every count it takes and widths that are not a multiple of the vector."""
    from nnaccel.kernels.numba_products import PAIR_MAX_COUNT, combine_row_pair

    rng = np.random.default_rng(7)
    width = 37
    for count in range(1, PAIR_MAX_COUNT + 1):
        source = rng.standard_normal((count + 2, width + 5)).astype(dtype)  # rows 1.., columns 3..
        W = rng.standard_normal((3, count)).astype(dtype)
        expected = W.astype(np.float64) @ source[1 : count + 1, 3 : 3 + width].astype(np.float64)
        out = np.full((2, width), np.nan, dtype=dtype)
        sums = combine_row_pair(out[0], out[1], W.reshape(-1), 0, 2 * count, 1, count, source, 1, 3, width)  # rows 0, 2 of W
        assert relative_error(out, expected[[0, 2]]) <= TOLERANCE[dtype], count
        assert relative_error(sums, expected[[0, 2]].sum(axis=1)) <= TOLERANCE[dtype], count
        Wt = np.ascontiguousarray(W.T)  # (count, 3): rows 0 and 2 of W are its columns 0 and 2, stride 3
        out[:] = np.nan
        combine_row_pair(out[0], out[1], Wt.reshape(-1), 0, 2, 3, count, source, 1, 3, width)
        assert relative_error(out, expected[[0, 2]]) <= TOLERANCE[dtype], count


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_row_pair_matches_numpy_for_every_activation_and_count(activation, dtype):
    """backward_row_pair: two rows of H_prev become dA_prev = (W^T dA) * act'(H_prev) in one pass,
    returning their sums (db_prev), against NumPy's product and the NumPy backend's derivative."""
    from nnaccel.kernels.numba_products import PAIR_MAX_COUNT, backward_row_pair

    rng = np.random.default_rng(11)
    width = 37
    fan_in = 5
    for count in range(1, PAIR_MAX_COUNT + 1):  # count = fan_out, the rows of dA
        W = rng.standard_normal((count, fan_in)).astype(dtype)
        dA = rng.standard_normal((count + 2, width)).astype(dtype)  # its rows 2.. are the layer's dA
        H_prev = numpy_backend.activate(rng.standard_normal((fan_in, width)), activation, None).astype(dtype)
        derivative = numpy_backend.derivative_from_output(H_prev.astype(np.float64), activation)
        expected = (W.T.astype(np.float64) @ dA[2:].astype(np.float64))[[1, 2]] * derivative[[1, 2]]
        rows = H_prev.copy()
        code = scalar.activation_code(activation)
        sums = backward_row_pair(code, rows[1], rows[2], W.reshape(-1), 1, 2, fan_in, count, dA, 2, width)  # W's columns 1, 2
        assert relative_error(rows[[1, 2]], expected) <= TOLERANCE[dtype], count
        assert relative_error(sums, expected.sum(axis=1)) <= TOLERANCE[dtype], count
        assert np.array_equal(rows[[0, 3, 4]], H_prev[[0, 3, 4]]), count  # other rows untouched


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_pair_count_and_odd_widths_match_numpy(dtype):
    """Fan-ins 2 to 9 forward and backward (the paired rows up to 8, single rows above) and odd
    widths (a last unpaired row) through the fused pass."""
    layers = [3, 8, 5, 9, 2, 7, 4, 6, 3]
    worst = compare(layers, "tanh", "softmax", dtype, FUSED, m=1109, seed=5)
    assert worst <= TOLERANCE[dtype]


def test_update_matches_numpy():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 7))
    dW = rng.standard_normal((5, 7))
    expected = W.copy()
    numpy_backend.NumpyBackend().update(expected, dW.copy(), 0.1, 0.01, 0.02)
    actual = W.copy()
    FUSED.update(actual, dW.copy(), 0.1, 0.01, 0.02)
    assert relative_error(actual, expected) <= 1e-15


# ----- reproducibility ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_results_are_identical_run_to_run_and_for_any_thread_count(path):
    X, Y = make_data([5, 30, 20, 3], "softmax", 40_007, seed=6)  # many tasks of the fused pass
    network = nna.Network([5, 30, 20, 3], "tanh", "softmax", backend=PATHS[path], dtype="float32", seed=6)
    first = network.gradients(X, Y)
    again = network.gradients(X, Y)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = network.gradients(X, Y)
    finally:
        numba.set_num_threads(threads)
    for other in (again, single):
        assert other[0] == first[0]
        for (dW, db), (first_dW, first_db) in zip(other[1], first[1]):
            assert np.array_equal(dW, first_dW) and np.array_equal(db, first_db)


def test_numba_num_threads_is_honoured_and_reported():
    code = (
        "import json, os; from nnaccel.cli.info import collect; "
        "print(json.dumps(dict(collect()['numba'], spin=os.environ.get('GOMP_SPINCOUNT'))))"
    )
    environment = {key: value for key, value in os.environ.items() if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    environment["NUMBA_NUM_THREADS"] = "1"
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["threads"] == 1 and report["NUMBA_NUM_THREADS"] == 1
    assert report["threading_layer"] in ("omp", "tbb", "workqueue")
    assert report["spin"] == "3000"  # the backend's short OpenMP spin, since the user set none
    environment["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's choice is left alone
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spin"] is None


# ----- random shapes ------------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 4))
    output = draw(st.sampled_from(OUTPUTS))
    layers = [draw(st.integers(1, 8))] + [draw(st.integers(1, 80)) for _ in range(depth - 1)]
    layers.append(draw(st.integers(2, 4)) if output == "softmax" else draw(st.integers(1, 3)))
    activations = [draw(st.sampled_from(HIDDEN_ACTIVATIONS)) for _ in range(depth - 1)]
    return layers, activations, output


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    network=networks(),
    m=st.integers(1, 2500),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
# A gradient through a one-unit layer that float32 cannot resolve to 1e-5 (see ``agreement``)
@example(network=([8, 1, 61, 70, 1], ["sigmoid", "relu", "relu"], "sigmoid"), m=3, dtype="float32", seed=29565)
def test_random_shapes_match_numpy(network, m, dtype, seed):
    layers, activations, output = network
    for backend in (FUSED, LAYERED):
        assert compare(layers, activations, output, dtype, backend, m, seed) <= TOLERANCE[dtype]


def test_every_cached_kernel_has_cache_files_of_its_own():
    """No two cached kernels share an index file (Numba names it after the function's qualified
    name and line, which every kernel made by one factory shares): processes compiling different
    kernels at once, pytest-xdist workers or two first runs, could otherwise overwrite each other's
    entries, and a kernel would later load another one's code (seen: relu's backward computing
    sigmoid's derivative)."""
    from numba.core.registry import CPUDispatcher

    from nnaccel.backends.packing import PackedLayout
    from nnaccel.core.architecture import Architecture
    from nnaccel.kernels import numba_layers, numba_minibatch, numba_network, numba_optim, numba_products, numba_rows

    kernels = [
        value
        for module in (numba_rows, numba_products, numba_network, numba_layers, numba_optim, numba_minibatch)
        for value in vars(module).values()
        if isinstance(value, CPUDispatcher) and value._cache._cache_file is not None
    ]
    kernels += [  # one epoch kernel per kind of network
        numba_minibatch.epoch_kernel([scalar.activation_code(name)], scalar.output_code(output), 0, batch, fast)
        for name in ("tanh", "relu")
        for output in ("sigmoid", "softmax")
        for batch in (None, 4, 16)
        for fast in (False, True)
    ]
    kernels += [  # one batch-1 kernel per architecture
        numba_minibatch.example_kernel(*PackedLayout.of(Architecture.build(layers, activations, output)).arrays(), fast)
        for layers, activations, output in (([2, 6, 6, 1], ["tanh"] * 2, "sigmoid"), ([2, 6, 1], ["tanh"], "sigmoid"))
        + (([2, 6, 6, 3], ["relu", "tanh"], "softmax"),)
        for fast in (False, True)
    ]
    paths = {}
    for kernel in set(kernels):
        paths.setdefault(kernel._cache._cache_file._index_path, []).append(kernel.py_func.__qualname__)
    assert len(kernels) > 60
    assert all(len(names) == 1 for names in paths.values()), {path: names for path, names in paths.items() if len(names) > 1}
