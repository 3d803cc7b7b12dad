"""The benchmark engine's parts: argument parsing, the roofline model, timing, memory, crossover."""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
import pytest

from nnaccel.backends.numpy_backend import NumpyBackend
from nnaccel.bench import roofline
from nnaccel.bench.engine import BenchSettings, add_speedups, find_crossovers, run_worker
from nnaccel.bench.progress import Progress
from nnaccel.bench.runners import make_data, make_runner
from nnaccel.bench.spec import NetSpec, parse_backends, parse_m, parse_nets, parse_peers
from nnaccel.bench.timing import summarize, time_steps
from nnaccel.nn.network import Network
from nnaccel.nn.training import full_batch_step


# ----- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e4,1e5,1e6", [10_000, 100_000, 1_000_000]),
        ("1000, 100 ,1000", [100, 1000]),
        ("1e4:1e7", [10_000, 100_000, 1_000_000, 10_000_000]),
        ("1e4:5e6", [10_000, 100_000, 1_000_000, 5_000_000]),
        ("1e4:1e6:2", [10_000, 31_623, 100_000, 316_228, 1_000_000]),
        ("100,1e4:1e5", [100, 10_000, 100_000]),
        ("7:7", [7]),
    ],
)
def test_parse_m_lists_and_ranges(text, expected):
    assert parse_m(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "1.5", "1e4,", "1e6:1e4", "1e4:1e6:0", "1:2:3:4", "1e40", "nan"])
def test_parse_m_refuses_bad_sizes(text):
    with pytest.raises(ValueError, match="--m"):
        parse_m(text)


def test_parse_nets_picks_the_output_layer():
    small, mnist = parse_nets("2-6-6-1,784-256-10")
    assert (small.layers, small.output) == ((2, 6, 6, 1), "sigmoid")
    assert (mnist.layers, mnist.output) == ((784, 256, 10), "softmax")
    assert parse_nets("3-1", "relu", "identity")[0] == NetSpec((3, 1), "relu", "identity")


@pytest.mark.parametrize("text", ["2-x-1", "2", "2--1", "2-0-1", "2,6,1", "-2-1"])
def test_parse_nets_refuses_bad_networks(text):
    with pytest.raises(ValueError, match="--net"):
        parse_nets(text)


def test_parse_backends_and_peers():
    assert parse_backends("numpy, numba,numpy") == ["numpy", "numba"]
    with pytest.raises(ValueError, match="unknown backend 'torch'.*numpy, numba, cupy"):
        parse_backends("numpy,torch")
    assert parse_peers("torch") == ["torch-cpu", "torch-cuda"]
    assert parse_peers("none") == []
    with pytest.raises(ValueError, match="unknown peer 'keras'"):
        parse_peers("keras")


# ----- the roofline model ----------------------------------------------------------------------------
class _CountingBackend(NumpyBackend):
    """The NumPy backend, counting 2 M N K FLOPs for every matrix product it is asked for."""

    def __init__(self):
        self.flops = 0

    def matmul(self, A, B, out):
        self.flops += 2 * A.shape[0] * A.shape[1] * B.shape[1]
        return super().matmul(A, B, out)


@pytest.mark.parametrize("layers", [(2, 6, 6, 1), (784, 256, 10), (5, 1), (3, 7, 2, 4)])
def test_step_flops_match_the_matmuls_a_step_runs(layers):
    net = NetSpec(layers, "tanh", "sigmoid" if layers[-1] == 1 else "softmax")
    backend = _CountingBackend()
    network = Network(list(layers), "tanh", net.output, backend=backend, dtype="float32")
    X, Y = make_data(net, 37)
    full_batch_step(network, X, Y, 0.01)
    assert backend.flops == roofline.step_flops(layers, 37)


def test_step_bytes_count_the_data_and_the_parameters_once():
    net = NetSpec((2, 6, 6, 1), "tanh", "sigmoid")
    X, Y = make_data(net, 1000)
    params = Network(list(net.layers), dtype="float32", backend="numpy").get_params()
    parameter_bytes = sum(W.nbytes + b.nbytes for W, b in params)
    assert roofline.step_bytes(net.layers, 1000) == X.nbytes + Y.nbytes + 2 * parameter_bytes


def test_bound_is_the_slower_of_memory_and_arithmetic():
    assert roofline.bound_seconds(flops=2e9, moved_bytes=1e9, gemm_gflops=100, stream_gbps=10) == pytest.approx(0.1)
    assert roofline.bound_seconds(flops=4e10, moved_bytes=1e9, gemm_gflops=100, stream_gbps=10) == pytest.approx(0.4)
    assert roofline.bound_seconds(1, 1, None, 10) is None


# ----- timing ----------------------------------------------------------------------------------------
def test_time_steps_warms_up_then_times_each_step():
    calls = []

    def step():
        calls.append(time.perf_counter())
        time.sleep(0.01)

    seconds = time_steps(step, lambda: None, warmup=2, repeat=4, max_seconds=10.0)
    assert len(calls) == 6 and len(seconds) == 4
    assert all(0.0095 <= value < 1.0 for value in seconds)


def test_time_steps_stops_at_the_time_budget_after_three_steps():
    seconds = time_steps(lambda: time.sleep(0.05), lambda: None, warmup=0, repeat=1000, max_seconds=0.12)
    assert 3 <= len(seconds) <= 6


def test_summarize_gives_median_and_quartiles():
    values = [0.5, 0.1, 0.4, 0.2, 0.3]
    stats = summarize(values)
    assert stats["step_s"] == pytest.approx(np.median(values))
    assert (stats["step_s_q1"], stats["step_s_q3"]) == pytest.approx(tuple(np.percentile(values, [25, 75])))
    assert (stats["step_s_min"], stats["step_s_max"], stats["repeats"]) == (0.1, 0.5, 5)


# ----- memory ----------------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory is measured through Linux's /proc")
def test_peak_memory_covers_the_data_and_buffers_of_a_step():
    net, m = NetSpec((2, 6, 6, 1), "tanh", "sigmoid"), 200_000
    # The oracle: the bytes of every array the NumPy backend's step keeps, built here in-process.
    runner = make_runner("numpy", net, *make_data(net, m))
    runner.step()
    network, data = runner.keep
    workspace = network.plan(None).workspace(m)
    buffers = list(workspace.H) + [workspace.output] + list(workspace.scratch)
    held = data.X.nbytes + data.Y.nbytes + sum(array.nbytes for array in buffers)
    job = {
        "kind": "series",
        "runner": "numpy",
        "layers": list(net.layers),
        "activation": "tanh",
        "output": "sigmoid",
        "ms": [m],
        "warmup": 0,
        "repeat": 1,
        "max_seconds": 1.0,
    }
    (result,) = run_worker(job)
    assert result["status"] == "ok", result
    assert 0.9 * held <= result["memory_bytes"] <= 1.6 * held


# ----- speed-ups and the GPU crossover -----------------------------------------------------------------
def _record(backend, m, step_s, device="cpu", kind="backend"):
    return {"backend": backend, "net": "2-6-6-1", "m": m, "step_s": step_s, "device": device, "kind": kind, "crossover": False}


def test_speedups_are_relative_to_numpy_at_the_same_m():
    records = [_record("numpy", 10, 2.0), _record("numba", 10, 0.5), _record("numba", 100, 1.0)]
    add_speedups(records)
    assert [r["speedup_vs_numpy"] for r in records] == [1.0, 4.0, None]


def test_crossover_is_the_smallest_m_where_the_gpu_beats_the_best_cpu():
    settings = BenchSettings(nets=[NetSpec((2, 6, 6, 1), "tanh", "sigmoid")])
    records = [
        _record("numpy", 10, 1.0),
        _record("numba", 10, 0.5),
        _record("cupy", 10, 2.0, "gpu"),
        _record("numpy", 100, 3.0),
        _record("numba", 100, 1.0),
        _record("cupy", 100, 1.5, "gpu"),
        # beats numpy but not numba: no crossover yet; a peer on the GPU does not count
        _record("torch-cuda", 100, 0.1, "gpu", "peer"),
        _record("numpy", 1000, 9.0),
        _record("numba", 1000, 3.0),
        _record("cupy", 1000, 2.0, "gpu"),
        _record("numpy", 10000, 90.0),
        _record("numba", 10000, 30.0),
        _record("cupy", 10000, 3.0, "gpu"),
    ]
    (entry,) = find_crossovers(records, settings)
    assert (entry["m"], entry["gpu_backend"], entry["cpu_backend"]) == (1000, "cupy", "numba")
    assert [r["m"] for r in records if r["crossover"]] == [1000]


def test_no_crossover_without_a_gpu_backend():
    settings = BenchSettings(nets=[NetSpec((2, 6, 6, 1), "tanh", "sigmoid")])
    (entry,) = find_crossovers([_record("numpy", 10, 1.0)], settings)
    assert entry["m"] is None and entry["note"] == "no GPU backend ran"


# ----- worker and progress -----------------------------------------------------------------------------
def test_a_failing_case_comes_back_as_an_error_line():
    job = {
        "kind": "series",
        "runner": "no-such-runner",
        "layers": [2, 1],
        "activation": "tanh",
        "output": "sigmoid",
        "ms": [10, 20],
        "warmup": 0,
        "repeat": 1,
        "max_seconds": 1.0,
    }
    results = list(run_worker(job, expected=2))
    assert [r["status"] for r in results] == ["error", "error"]
    assert "unknown runner 'no-such-runner'" in results[0]["reason"]


def test_progress_bar_counts_items_on_one_line():
    stream = io.StringIO()
    bar = Progress(total=3, enabled=True, stream=stream)
    bar.update("numpy m=10")
    bar.skip(1)
    bar.update("numba m=10")
    bar.close()
    text = stream.getvalue()
    assert "1/3" in text and "3/3" in text and "numba m=10" in text and "\n" not in text


# ----- GPU timing (needs a real CUDA GPU with CuPy) -----------------------------------------------------
@pytest.mark.gpu
def test_cuda_event_times_agree_with_the_synchronised_host_clock():
    from nnaccel.bench.timing import CudaEvents, time_steps_cuda

    net, m = NetSpec((2, 6, 6, 1), "tanh", "sigmoid"), 1_000_000
    runner = make_runner("cupy", net, *make_data(net, m))
    assert runner.events == "cupy" and runner.device == "gpu"
    device = np.median(time_steps_cuda(runner.step, CudaEvents("cupy"), warmup=2, repeat=20, max_seconds=5.0))
    host = np.median(time_steps(runner.step, runner.synchronize, warmup=0, repeat=20, max_seconds=5.0))
    # Events time the device alone; the host clock adds launch and synchronisation overhead.
    assert 0.3 * host <= device <= 1.1 * host


@pytest.mark.gpu
def test_gpu_case_reports_device_memory_and_event_timing():
    net, m = NetSpec((2, 6, 6, 1), "tanh", "sigmoid"), 100_000
    job = {
        "kind": "series",
        "runner": "cupy",
        "layers": list(net.layers),
        "activation": "tanh",
        "output": "sigmoid",
        "ms": [m],
        "warmup": 1,
        "repeat": 3,
        "max_seconds": 1.0,
    }
    (result,) = run_worker(job)
    assert result["status"] == "ok", result
    assert result["timer"].startswith("CUDA events")
    X, Y = make_data(net, m)
    assert result["memory_bytes"] >= X.nbytes + Y.nbytes


def test_busy_machine_is_flagged():
    from nnaccel.bench.report import machine_was_busy

    def machine(share, start=None):
        return {"usable_cpus": 2, "others_cpu_share": share, "load_average": {"start": start, "end": None}}

    assert not machine_was_busy(machine(0.02))
    assert machine_was_busy(machine(0.4))
    assert machine_was_busy(machine(None, start=1.5))  # not measured: the load average decides
    assert not machine_was_busy(machine(None))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc/stat")
def test_cpu_share_of_other_programs_sees_a_competing_process():
    import subprocess

    from nnaccel.bench.contention import CpuShare

    share = CpuShare()
    share.start()
    # A process this run did not start and does not wait for: its CPU time is someone else's.
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass"])
    time.sleep(1.2)
    measured = share.others()
    spinner.wait()
    # One busy process of 1.0 s in 1.2 s of wall time is 1/1.2/cpus of the machine; others may add more.
    assert measured >= 0.6 / os.cpu_count()


def test_cpu_triad_falls_back_to_numpy_when_numba_is_missing(monkeypatch):
    """Without Numba the triad runs as two NumPy passes, and still checks its own result."""
    import sys

    from nnaccel.bench import limits

    monkeypatch.setitem(sys.modules, "nnaccel.bench.triad_kernel", None)  # import raises ImportError
    result = limits.cpu_triad(elements=1 << 16, runs=2)
    assert "NumPy" in result["stream_method"]
    assert result["stream_gbps"] > 0
