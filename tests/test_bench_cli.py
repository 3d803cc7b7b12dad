"""``nnaccel bench`` end to end on tiny sizes: the JSON follows the schema, the table and plot are
written, backends that cannot run are named with the reason, bad arguments exit 2 in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnaccel.backends import unavailable_reason
from nnaccel.bench.schema import JSON_SCHEMA
from nnaccel.cli.main import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run with every backend named and every peer, shared by the tests below."""
    folder = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        "-m",
        "nnaccel",
        "bench",
        "--backends",
        "numpy,numba,cupy",
        "--peers",
        "torch,sklearn",
        "--m",
        "100,1000",
        "--repeat",
        "2",
        "--json",
        str(folder / "out.json"),
        "--plot",
        str(folder / "out.png"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed, json.loads((folder / "out.json").read_text()), folder


@pytest.mark.slow
def test_json_follows_the_schema(tiny_run):
    jsonschema = pytest.importorskip("jsonschema")
    _, report, _ = tiny_run
    jsonschema.validate(report, JSON_SCHEMA)
    assert report["limits"]["gemm_gflops"] > 0 and report["limits"]["stream_gbps"] > 0


@pytest.mark.slow
def test_results_cover_each_runnable_backend_and_m(tiny_run):
    _, report, _ = tiny_run
    ran = {(r["backend"], r["m"]) for r in report["results"]}
    expected = {"numpy"} | ({"numba"} if unavailable_reason("numba") is None else set())
    for backend in expected:
        assert {(backend, 100), (backend, 1000)} <= ran
    for record in report["results"]:
        assert record["repeats"] == 2 and record["net"] == "2-6-6-1"
        assert record["examples_per_s"] == pytest.approx(record["m"] / record["step_s"])
        assert record["step_s_min"] <= record["step_s"] <= record["step_s_max"]
    numpy_records = [r for r in report["results"] if r["backend"] == "numpy"]
    assert all(r["speedup_vs_numpy"] == 1.0 for r in numpy_records)


@pytest.mark.slow
def test_peers_run_when_installed(tiny_run):
    _, report, _ = tiny_run
    peers = {r["backend"] for r in report["results"] if r["kind"] == "peer"}
    for module, name in (("torch", "torch-cpu"), ("sklearn", "sklearn")):
        try:
            __import__(module)
        except ImportError:
            continue
        assert name in peers


@pytest.mark.slow
def test_a_backend_that_cannot_run_gets_a_line_saying_why(tiny_run):
    completed, report, _ = tiny_run
    reason = unavailable_reason("cupy")
    if reason is None:
        pytest.skip("CuPy can run here")
    assert {"backend": "cupy", "reason": reason} in report["not_run"]
    assert f"not run: cupy: {reason}" in completed.stdout
    assert report["crossover"][0]["m"] is None


@pytest.mark.slow
def test_table_and_plot_are_written(tiny_run):
    completed, report, folder = tiny_run
    table = completed.stdout
    assert "limits:  CPU GEMM" in table and "2-6-6-1 (tanh hidden, sigmoid output)" in table
    assert "examples/s" in table and "vs numpy" in table and "peak memory" in table and "roofline" in table
    assert (folder / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    """A tiny run with --optimizer adam, full batch and mini-batches, with both peers."""
    folder = tmp_path_factory.mktemp("bench-adam")
    command = [
        sys.executable,
        "-m",
        "nnaccel",
        "bench",
        "--backends",
        "numpy,numba",
        "--peers",
        "torch-cpu,sklearn",
        "--m",
        "100",
        "--batch",
        "8,full",
        "--repeat",
        "2",
        "--optimizer",
        "adam",
        "--json",
        str(folder / "out.json"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed, json.loads((folder / "out.json").read_text())


@pytest.mark.slow
def test_the_optimizer_applies_to_every_record(adam_run):
    completed, report = adam_run
    assert report["settings"]["optimizer"] == "adam" and "--optimizer adam" in report["command"]
    assert report["results"] and all(record["optimizer"] == "adam" for record in report["results"])
    ran = {(record["backend"], record["batch"]) for record in report["results"]}
    expected = {"numpy"} | ({"numba"} if unavailable_reason("numba") is None else set())
    for backend in expected:
        assert {(backend, 8), (backend, None)} <= ran
    assert all("adam" in record["timed"].lower() for record in report["results"])
    assert "forward + backward + adam update" in completed.stdout
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, JSON_SCHEMA)


@pytest.mark.slow
def test_peers_step_with_the_matching_optimizer(adam_run):
    completed, report = adam_run
    timed = {(record["backend"], record["batch"]): record["timed"] for record in report["results"] if record["kind"] == "peer"}
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("PyTorch is not installed")
    assert "torch.optim.Adam" in timed[("torch-cpu", 8)] and "torch.optim.Adam" in timed[("torch-cpu", None)]


@pytest.mark.slow
def test_records_of_the_default_run_say_sgd(tiny_run):
    _, report, _ = tiny_run
    assert report["settings"]["optimizer"] == "sgd" and all(r["optimizer"] == "sgd" for r in report["results"])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--backends", "numpy,foo"], "unknown backend 'foo'"),
        (["--net", "2-x-1"], "--net expects layer sizes"),
        (["--m", "1e4:abc"], "--m expects batch sizes"),
        (["--m", "0"], "--m expects batch sizes"),
        (["--peers", "keras"], "unknown peer 'keras'"),
        (["--repeat", "0"], "--repeat must be >= 1"),
        (["--repeat", "two"], "invalid int value"),
        (["--max-seconds", "nan"], "--max-seconds a finite number"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--plot", "out.jpg"], "--plot writes a PNG"),
        (["--json", "/no/such/folder/out.json"], "does not exist"),
        (["--json", "/tmp"], "--json '/tmp' is a directory"),
        (["--net", "784-256-10", "--m", "1e9"], "use a smaller --m"),
        (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, arguments, message):
    try:
        status = main(["bench", *arguments])
    except SystemExit as exit:  # argparse's own errors (a non-integer --repeat) exit from the parser
        status = exit.code
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err
