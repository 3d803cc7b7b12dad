"""The training plans of every backend against the NumPy reference and PyTorch's SGD, mini-batches
included: the serial Numba epoch kernel (one example at a time and in blocks), the Numba layered
step, the generic plan on NumPy and the array API; thread counts; warm-up; bench --batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from support import cli, labels

import nnaccel as nna
from nnaccel.backends import numba_plans
from nnaccel.backends.numba_backend import NumbaBackend
from nnaccel.backends.numba_plans import SERIAL_EVALUATION, FusedEpochPlan, LayeredStepPlan
from nnaccel.kernels import numba_minibatch

NETWORKS = [
    ([2, 6, 6, 1], "tanh", "sigmoid"),
    ([3, 5, 4], ["relu"], "softmax"),
    ([4, 7, 2], "elu", "identity"),
    ([3, 4, 4, 3], ["leaky_relu", "selu"], "softmax"),
    ([5, 1], [], "sigmoid"),
]
BACKENDS = {
    "numba fused": lambda: NumbaBackend(),
    "numba layered": lambda: NumbaBackend(fused_max_width=0),
    "numpy": lambda: nna.backends.load_backend("numpy"),
}


def _data(layers, output, m, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(layers[0], m)), labels(output, layers[-1], m, rng)


def _train(backend, layers, activation, output, X, Y, **settings):
    network = nna.Network(layers, activation, output, seed=5, backend=backend, dtype="float64")
    history = network.fit(X, Y, **settings)
    return history["loss"], network.get_params()


def _assert_same(expected, actual, tolerance):
    (loss, params), (other_loss, other_params) = expected, actual
    np.testing.assert_allclose(other_loss, loss, rtol=tolerance, atol=tolerance)
    for (W, b), (W_other, b_other) in zip(params, other_params):
        np.testing.assert_allclose(W_other, W, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(b_other, b, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("backend", ["numba fused", "numba layered"])
@pytest.mark.parametrize("batch_size", [1, 5, 8, 32, 61])
@pytest.mark.parametrize("network", NETWORKS, ids=lambda spec: "-".join(map(str, spec[0])) + spec[2])
def test_numba_plans_equal_the_numpy_reference(backend, batch_size, network):
    """float64, shuffled batches that do not divide m, L1 and L2: within 1e-9 of the NumPy backend."""
    layers, activation, output = network
    X, Y = _data(layers, output, 203)
    settings = dict(epochs=3, lr=0.05, batch_size=batch_size, l1=1e-3, l2=1e-2, seed=7)
    expected = _train("numpy", layers, activation, output, X, Y, **settings)
    _assert_same(expected, _train(BACKENDS[backend](), layers, activation, output, X, Y, **settings), 1e-9)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [8, 61, 4096])
def test_layered_plan_reads_row_major_data_in_place(shuffle, batch_size):
    """X given as the transpose of row-major (m, n) data, as a user's examples usually are: the
    plan gathers its batches from X's own memory (no copy of X at all) and trains exactly as on
    the C-ordered X, shuffled or not, on the serial steps and (batch 4096) the parallel pass;
    both within 1e-9 of the NumPy reference."""
    layers, activation, output = [3, 5, 4], ["relu"], "softmax"
    X, Y = _data(layers, output, 4096 + 203)
    X_rows = np.ascontiguousarray(X.T)
    plan = nna.Network(layers, activation, output, backend=BACKENDS["numba layered"](), dtype="float64").plan(batch_size)
    data = plan.load(X_rows.T, Y)
    assert np.shares_memory(data.rows, X_rows) and np.shares_memory(data.X, X_rows)
    settings = dict(epochs=2, lr=0.05, batch_size=batch_size, l2=1e-2, seed=7, shuffle=shuffle)
    on_columns = _train(BACKENDS["numba layered"](), layers, activation, output, X, Y, **settings)
    on_rows = _train(BACKENDS["numba layered"](), layers, activation, output, X_rows.T, Y, **settings)
    _assert_same(on_columns, on_rows, 0.0)
    _assert_same(_train("numpy", layers, activation, output, X, Y, **settings), on_rows, 1e-9)


@pytest.mark.parametrize("penalties", [dict(l1=0.0, l2=1e-2), dict(l1=1e-3, l2=0.0)], ids=["l2", "l1"])
def test_one_example_steps_with_one_penalty_equal_the_numpy_reference(penalties):
    """Batch 1 with plain SGD (the in-place kernel), each penalty alone: within 1e-9 of NumPy."""
    layers, activation, output = NETWORKS[0]
    X, Y = _data(layers, output, 203)
    settings = dict(epochs=2, lr=0.05, batch_size=1, seed=7, **penalties)
    expected = _train("numpy", layers, activation, output, X, Y, **settings)
    _assert_same(expected, _train(BACKENDS["numba fused"](), layers, activation, output, X, Y, **settings), 1e-9)


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_fused_plan_gathering_chunks_ahead_equals_the_numpy_reference(monkeypatch, batch_size):
    """Many gathered chunks per epoch, the next one gathered on a background thread while the
    kernel trains on this one, the last one short: the NumPy backend's results within 1e-9."""
    monkeypatch.setattr(numba_plans, "GATHER_COLUMNS", 40)
    layers, activation, output = NETWORKS[0]
    X, Y = _data(layers, output, 203)
    settings = dict(epochs=3, lr=0.05, batch_size=batch_size, seed=7)
    expected = _train("numpy", layers, activation, output, X, Y, **settings)
    _assert_same(expected, _train(BACKENDS["numba fused"](), layers, activation, output, X, Y, **settings), 1e-9)


def test_an_epoch_interrupted_between_chunks_leaves_the_plan_reusable(monkeypatch):
    """Ctrl-C while the next chunk is being gathered: the network is back at the epoch's start,
    and the same plan then trains exactly as a fresh network does."""
    monkeypatch.setattr(numba_plans, "GATHER_COLUMNS", 40)
    layers, activation, output = NETWORKS[0]
    X, Y = _data(layers, output, 203)
    network = nna.Network(layers, activation, output, seed=5, backend="numba", dtype="float64")
    start = network.get_params()
    calls = []
    packed_batches = FusedEpochPlan.packed_batches

    def interrupted(plan, *arguments):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return packed_batches(plan, *arguments)

    monkeypatch.setattr(FusedEpochPlan, "packed_batches", interrupted)
    with pytest.raises(nna.TrainingInterrupted):
        network.fit(X, Y, epochs=2, lr=0.05, batch_size=8, seed=7)
    for (W, b), (W_start, b_start) in zip(network.get_params(), start):
        assert np.array_equal(W, W_start) and np.array_equal(b, b_start)
    monkeypatch.setattr(FusedEpochPlan, "packed_batches", packed_batches)
    resumed = network.fit(X, Y, epochs=2, lr=0.05, batch_size=8, seed=7)["loss"], network.get_params()
    fresh = _train(BACKENDS["numba fused"](), layers, activation, output, X, Y, epochs=2, lr=0.05, batch_size=8, seed=7)
    _assert_same(fresh, resumed, 0.0)


def test_numba_picks_the_epoch_kernel_for_small_networks_and_steps_for_wide_ones():
    small = nna.Network([2, 6, 6, 1], backend="numba")
    wide = nna.Network([40, 64, 3], "relu", "softmax", backend="numba")
    assert isinstance(small.plan(32), FusedEpochPlan)
    assert isinstance(wide.plan(32), LayeredStepPlan)
    assert small.plan(32) is small.plan(32)  # cached while the settings stay the same


@pytest.mark.parametrize("backend", ["numba fused", "numba layered", "numpy"])
def test_consecutive_mini_batches_equal_torch_sgd(backend):
    """shuffle=False: the batches are consecutive columns, so torch.optim.SGD on the same batches
    from the same start is an independent oracle of every step."""
    torch = pytest.importorskip("torch")
    layers, m, batch, lr, l2 = [3, 8, 4], 50, 8, 0.1, 0.01
    X, Y = _data(layers, "softmax", m)
    network = nna.Network(layers, "tanh", "softmax", seed=2, backend=BACKENDS[backend](), dtype="float64")
    start = network.get_params()
    history = network.fit(X, Y, epochs=3, lr=lr, batch_size=batch, l2=l2, shuffle=False)

    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in start]
    weights = torch.optim.SGD([W for W, _ in params], lr=lr, weight_decay=l2)
    biases = torch.optim.SGD([b for _, b in params], lr=lr)
    X_torch, Y_torch = torch.tensor(X), torch.tensor(Y)
    losses = []
    for _ in range(3):
        total = 0.0
        for first in range(0, m, batch):
            columns = slice(first, first + batch)
            (W1, b1), (W2, b2) = params
            A = W2 @ torch.tanh(W1 @ X_torch[:, columns] + b1) + b2
            loss = -(Y_torch[:, columns] * torch.log_softmax(A, dim=0)).sum(dim=0).mean()
            weights.zero_grad()
            biases.zero_grad()
            loss.backward()
            weights.step()
            biases.step()
            total += loss.item() * A.shape[1]
        losses.append(total / m)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-10)
    for (W, b), (W_torch, b_torch) in zip(network.get_params(), params):
        np.testing.assert_allclose(W, W_torch.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, b_torch.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba fused", "numba layered"])
def test_results_do_not_depend_on_the_thread_count(backend):
    import numba

    layers = [2, 6, 6, 1] if backend == "numba fused" else [2, 40, 1]
    X, Y = _data(layers, "sigmoid", 5000)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            network = nna.Network(layers, backend=BACKENDS[backend](), seed=1)
            history = network.fit(X, Y, epochs=2, lr=0.1, batch_size=32)
            results.append((history["loss"], network.get_params()))
    finally:
        numba.set_num_threads(before)
    for loss, params in results[1:]:
        assert loss == results[0][0]
        for (W, b), (W_first, b_first) in zip(params, results[0][1]):
            assert np.array_equal(W, W_first) and np.array_equal(b, b_first)


def test_float32_epoch_kernel_tracks_float64():
    X, Y = _data([2, 6, 6, 1], "sigmoid", 2000)
    settings = dict(epochs=2, lr=0.1, batch_size=16)
    reference = _train("numpy", [2, 6, 6, 1], "tanh", "sigmoid", X, Y, **settings)
    network = nna.Network([2, 6, 6, 1], seed=5, backend="numba", dtype="float32")
    loss = network.fit(X.astype(np.float32), Y.astype(np.float32), **settings)["loss"]
    np.testing.assert_allclose(loss, reference[0], rtol=2e-4)
    for (W, b), (W_64, b_64) in zip(network.get_params(), reference[1]):
        np.testing.assert_allclose(W, W_64, atol=2e-4)
        np.testing.assert_allclose(b, b_64, atol=2e-4)


@pytest.mark.parametrize("network", NETWORKS[:3], ids=lambda spec: spec[2])
def test_serial_evaluation_equals_the_numpy_reference(network):
    layers, activation, output = network
    X, Y = _data(layers, output, 777)
    reference = nna.Network(layers, activation, output, seed=4, backend="numpy", dtype="float64")
    numba_network = nna.Network(layers, activation, output, seed=4, backend="numba", dtype="float64")
    assert 777 <= SERIAL_EVALUATION
    np.testing.assert_allclose(numba_network.loss(X, Y), reference.loss(X, Y), rtol=1e-12)
    np.testing.assert_allclose(numba_network.forward(X), reference.forward(X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", ["numba fused", "numba layered", "numpy"])
def test_prepare_leaves_the_network_unchanged(backend):
    network = nna.Network([3, 7, 2], "relu", "softmax", backend=BACKENDS[backend](), seed=9)
    before = network.get_params()
    network.prepare(16)
    network.prepare(None)
    for (W, b), (W_before, b_before) in zip(network.get_params(), before):
        assert np.array_equal(W, W_before) and np.array_equal(b, b_before)
    with pytest.raises(ValueError, match="batch_size"):
        network.prepare(0)


@pytest.mark.parametrize("backend", ["numba fused", "numba layered", "numpy"])
@pytest.mark.parametrize("batch", [None, 16])
def test_prepare_for_an_optimizer_warms_the_plan_fit_uses_and_changes_nothing(backend, batch):
    """``prepare(batch, "adam")`` warms the plan that ``fit(optimizer="adam")`` then trains with,
    and the run ends as one without the warm-up (no optimizer state is left behind)."""
    X, Y = _data([3, 7, 2], "softmax", 100)
    runs = []
    for warm in (True, False):
        network = nna.Network([3, 7, 2], "relu", "softmax", backend=BACKENDS[backend](), seed=9)
        if warm:
            network.prepare(batch, "adam")
            assert (batch, nna.optim.Adam()) in network._plans  # the warm-up made (and compiled) fit's plan
            plan = network.plan(batch, nna.optim.Adam())
        network.fit(X, Y, epochs=2, lr=0.01, batch_size=batch, optimizer="adam")
        if warm:
            assert network.plan(batch, "adam") is plan and plan.state.step == (2 if batch is None else 2 * 7)
        runs.append(network.get_params())
    for (W, b), (W_cold, b_cold) in zip(*runs):
        assert np.array_equal(W, W_cold) and np.array_equal(b, b_cold)


def test_streamed_mini_batches_equal_in_memory(tmp_path):
    """Chunks read in their stored order with shuffle=False are the in-memory batches, on every
    plan (the layered one's gemm then reads column slices of each chunk, with L2 in its beta)."""
    layers = [2, 6, 6, 1]
    X, Y = _data(layers, "sigmoid", 300)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    settings = dict(epochs=2, lr=0.1, batch_size=20, shuffle=False, l2=1e-2)
    for backend in ("numba", BACKENDS["numba layered"](), "numpy"):
        in_memory = _train(backend, layers, "tanh", "sigmoid", X, Y, **settings)
        streamed = _train(backend, layers, "tanh", "sigmoid", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), **settings)
        _assert_same(in_memory, streamed, 1e-12)


_COMPILE_ONCE = """
import json
import nnaccel as nna
from nnaccel.kernels import numba_minibatch, numba_optim, numba_products, numba_rows
from nnaccel.kernels.activations import activation_code, output_code
import numpy as np
network = nna.Network([2, 4, 4, 1], "tanh", "sigmoid", backend="numba", dtype="float32")
network.prepare(16)
network.loss(np.zeros((2, 5), np.float32), np.zeros((1, 5), np.float32))  # the full-batch plan's evaluation
kernel = numba_minibatch.epoch_kernel([activation_code("tanh")] * 2, output_code("sigmoid"), numba_optim.RULE_SGD, 16, True)
names = ("tanh", "sigmoid", "relu", "leaky_relu", "elu", "selu")
pairs = {name: len(getattr(numba_products, f"_{name}_row_pair").signatures) for name in names}
rows = {name: len(getattr(numba_rows, f"_{name}_row").signatures) for name in names}
rows_float32 = {name: len(getattr(numba_rows, f"_{name}_float32_row").signatures) for name in ("tanh", "sigmoid")}
others = {
    "softmax": len(numba_rows.softmax_block.signatures) + len(numba_rows.softmax_forward_block.signatures),
    "momentum_and_adam": len(numba_optim.momentum_vector.signatures) + len(numba_optim.adam_vector.signatures),
    "one_example": len(numba_minibatch.example_gradients.signatures),
}
print(json.dumps({
    "pairs": pairs, "rows": rows, "rows_float32": rows_float32, "others": others,
    "loaded": sum(kernel.stats.cache_hits.values()), "signatures": len(kernel.signatures),
    "kernels": sum(len(each.signatures) for each in numba_minibatch._EPOCH_KERNELS.values()),
}))
"""


def test_an_epoch_kernel_compiles_its_own_activation_only_and_once(tmp_path):
    """With an empty Numba cache, a tanh/sigmoid network trained by SGD at batch 16 compiles the
    tanh row kernels and no other hidden activation's, no softmax, no momentum or Adam update and no
    one-example path, and one kernel only: its evaluations, the full-batch plan's included, run on
    the kernel it trains with. The next process loads the kernel from the cache, compiling nothing."""

    def run() -> dict:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
        done = subprocess.run([sys.executable, "-c", _COMPILE_ONCE], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first, second = run(), run()
    assert first["pairs"] == {"tanh": 1, "sigmoid": 0, "relu": 0, "leaky_relu": 0, "elu": 0, "selu": 0}
    # float32 data: the float32 tanh and sigmoid rows only (the sigmoid row is the output's, for
    # predictions), no float64 or other activation's row
    assert first["rows_float32"] == {"tanh": 1, "sigmoid": 1}
    assert first["rows"] == {"tanh": 0, "sigmoid": 0, "relu": 0, "leaky_relu": 0, "elu": 0, "selu": 0}
    assert not any(first["others"].values())
    assert first["signatures"] == 1 and first["loaded"] == 0 and first["kernels"] == 1
    assert second["signatures"] == 1 and second["loaded"] == 1
    assert not any(second["pairs"].values()) and not any(second["rows_float32"].values())  # loaded, not compiled again


_EVALUATE_ONLY = """
import json
import numpy as np
import nnaccel as nna
from nnaccel.kernels import numba_minibatch, numba_optim, numba_products
network = nna.Network([2, 4, 4, 1], "tanh", "sigmoid", backend="numba", dtype="float32", seed=3)
X = np.random.default_rng(0).standard_normal((2, 50)).astype(np.float32)
reference = nna.Network([2, 4, 4, 1], "tanh", "sigmoid", backend="numpy", dtype="float32", seed=3)
print(json.dumps({
    "error": float(np.abs(network.forward(X) - reference.forward(X)).max()),
    "steps": [key[3] for key in numba_minibatch._EPOCH_KERNELS],
    "backward": len(numba_products._tanh_row_pair.signatures) + len(numba_optim.sgd_update.signatures),
}))
"""


def test_an_evaluation_only_kernel_compiles_no_training_code(tmp_path):
    """A network that only predicts (in a fresh process with an empty Numba cache) compiles a
    kernel without the backward pass or the update, and predicts as the NumPy reference does."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _EVALUATE_ONLY], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[-1])
    assert record["steps"] == [numba_minibatch.NO_STEPS] and record["backward"] == 0
    assert record["error"] < 1e-6


_ONE_EXAMPLE_SGD = """
import json
import numpy as np
import nnaccel as nna
from nnaccel.kernels import numba_minibatch, numba_optim, numba_products
rng = np.random.default_rng(0)
X = rng.standard_normal((2, 60)).astype(np.float32)
Y = (X[:1] * X[1:] > 0).astype(np.float32)
errors = []
for layers in ([2, 4, 4, 1], [2, 5, 1]):
    trained = {}
    for backend in ("numba", "numpy"):
        network = nna.Network(layers, "tanh", "sigmoid", backend=backend, dtype="float32", seed=3)
        network.fit(X, Y, epochs=2, lr=0.1, batch_size=1, seed=1)
        trained[backend] = network.get_params()
    errors += [float(np.abs(a - b).max()) for pair in zip(*trained.values()) for a, b in zip(*pair)]
print(json.dumps({
    "error": max(errors),
    "example_kernels": [key[0] for key in numba_minibatch._EXAMPLE_KERNELS],
    "compiled": [len(kernel.signatures) for kernel in numba_minibatch._EXAMPLE_KERNELS.values()],
    "steps": sorted({key[3] for key in numba_minibatch._EPOCH_KERNELS}),
    "step_code": len(numba_minibatch.example_gradients.signatures) + len(numba_optim.sgd_update.signatures)
    + len(numba_products._tanh_row_pair.signatures),
}))
"""


def test_one_example_sgd_compiles_a_kernel_per_architecture_and_no_batch_steps(tmp_path):
    """Plain SGD at batch 1 (in a fresh process with an empty Numba cache) trains on a kernel of its
    own per architecture, as the NumPy reference does (float32), and compiles none of the batch
    steps' code: its epoch kernel only evaluates."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _ONE_EXAMPLE_SGD], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[-1])
    assert record["example_kernels"] == [[2, 4, 4, 1], [2, 5, 1]] and record["compiled"] == [1, 1]
    assert record["steps"] == [numba_minibatch.NO_STEPS] and record["step_code"] == 0
    assert record["error"] < 1e-5


def test_first_run_notice_names_the_activations():
    import io

    from nnaccel.nn.training import prepare_with_notice

    stream = io.StringIO()
    network = nna.Network([2, 3, 1], "relu", "sigmoid", backend="numpy")
    prepare_with_notice(network, 8, delay=0.0, stream=stream)  # a zero delay always prints
    text = stream.getvalue()
    assert "relu/sigmoid" in text and "first run only" in text


def test_bench_batch_runs_epochs_and_refuses_bad_sizes(tmp_path):
    code, _, err = cli("bench", "--batch", "0")
    assert code == 2 and "--batch" in err
    out = tmp_path / "bench.json"
    code, stdout, _ = cli(
        "bench",
        "--backends",
        "numpy",
        "--peers",
        "none",
        "--m",
        "2000",
        "--batch",
        "50,full",
        "--repeat",
        "1",
        "--max-seconds",
        "0.1",
        "--json",
        out,
    )
    assert code == 0, stdout
    import json

    records = json.loads(out.read_text())["results"]
    assert sorted(record["batch"] or 0 for record in records) == [0, 50]
    assert "epochs of mini-batches of 50" in stdout
