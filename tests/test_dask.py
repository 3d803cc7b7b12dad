"""Data-parallel training on a 2-worker Dask LocalCluster: the same gradients and loss history as
in one process, the same result after a worker is killed (or all at once), a clear error when the
workers stay dead, clear errors for bad data and an unreachable scheduler. One cluster serves the
whole module (starting one takes seconds); the tests that kill every worker run their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nnaccel as nna

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from nnaccel import distributed  # noqa: E402
from nnaccel.data.large import write_playground_npy  # noqa: E402

LAYERS = [2, 6, 6, 1]


@pytest.fixture(scope="module")
def client():
    with distributed.connect("local", workers=2) as client:
        yield client


def make_data(m: int = 4001, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(2, m))
    Y = (X[0] * X[1] > 0).astype(np.float64).reshape(1, -1)
    return X, Y


def network(seed: int = 3):
    return nna.Network(LAYERS, activation="tanh", output="sigmoid", seed=seed, backend="numpy", dtype="float64")


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dask_gradients_equal_in_process_gradients(client):
    X, Y = make_data()
    net = network()
    loss_expected, grads_expected = net.gradients(X, Y)
    for X_input, Y_input in ((X, Y), (da.from_array(X, chunks=(2, 700)), da.from_array(Y, chunks=(1, 1000)))):
        loss, grads = distributed.gradients(net, X_input, Y_input, scheduler=client, chunk_size=500, worker_backend="numpy")
        assert abs(loss - loss_expected) <= 1e-10 * loss_expected
        for (dW, db), (dW_expected, db_expected) in zip(grads, grads_expected):
            assert relative(dW, dW_expected) <= 1e-10 and relative(db, db_expected) <= 1e-10


@pytest.mark.parametrize("worker_backend", ["numba", "auto"])
def test_compiled_backends_on_the_workers_give_the_same_gradients(client, worker_backend):
    from nnaccel.backends import unavailable_reason

    if unavailable_reason("numba"):
        pytest.skip(unavailable_reason("numba"))
    X, Y = make_data()
    net = network()
    loss_expected, grads_expected = net.gradients(X, Y)
    loss, grads = distributed.gradients(net, X, Y, scheduler=client, chunk_size=1000, worker_backend=worker_backend)
    assert abs(loss - loss_expected) <= 1e-10 * loss_expected
    for (dW, db), (dW_expected, db_expected) in zip(grads, grads_expected):
        assert relative(dW, dW_expected) <= 1e-10 and relative(db, db_expected) <= 1e-10


def test_full_batch_training_ends_with_the_in_process_history(client):
    X, Y = make_data()
    Xv, Yv = make_data(500, seed=1)
    reference = network()
    expected = reference.fit(X, Y, epochs=8, lr=0.5, l2=1e-3, validation=(Xv, Yv))
    net = network()
    history = distributed.fit(
        net,
        da.from_array(X, chunks=(2, 600)),
        da.from_array(Y, chunks=(1, 600)),
        epochs=8,
        lr=0.5,
        l2=1e-3,
        validation=(da.from_array(Xv, chunks=(2, 200)), da.from_array(Yv, chunks=(1, 200))),
        scheduler=client,
        worker_backend="numpy",
    )
    assert relative(history["loss"], expected["loss"]) <= 1e-6
    assert relative(history["val_loss"], expected["val_loss"]) <= 1e-6
    for (W, b), (W_expected, b_expected) in zip(net.get_params(), reference.get_params()):
        assert relative(W, W_expected) <= 1e-6 and relative(b, b_expected) <= 1e-6


def test_a_worker_killed_mid_training_changes_nothing(client, tmp_path):
    write_playground_npy(tmp_path / "X.npy", tmp_path / "Y.npy", "circle", 6000, noise=0.1, dtype="float64", chunk_size=1000)
    X_path, Y_path = str(tmp_path / "X.npy"), str(tmp_path / "Y.npy")
    arguments = dict(epochs=6, lr=0.5, scheduler=client, worker_backend="numpy", chunk_size=750)
    reference = network()
    expected = distributed.fit(reference, X_path, Y_path, **arguments)
    killed = []

    def kill_a_worker(epoch, history):
        if epoch == 2:  # the chunks it holds are lost; Dask rereads them from the .npy files
            holders = [address for address, keys in client.has_what().items() if keys]
            pid = client.run(os.getpid, workers=[holders[0]])[holders[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    net = network()
    history = distributed.fit(net, X_path, Y_path, on_epoch_end=kill_a_worker, **arguments)
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it really died
    assert relative(history["loss"], expected["loss"]) <= 1e-12
    for (W, _), (W_expected, _) in zip(net.get_params(), reference.get_params()):
        assert relative(W, W_expected) <= 1e-12
    in_process = network().fit(X_path, Y_path, epochs=6, lr=0.5)
    assert relative(history["loss"], in_process["loss"]) <= 1e-10


def run_worker_loss(scenario: str, tmp_path) -> dict:
    """dask_worker_loss.py's report on ``scenario``, run in a subprocess: a hang fails by timeout."""
    script = Path(__file__).with_name("dask_worker_loss.py")
    result = subprocess.run([sys.executable, str(script), scenario], cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow
def test_every_worker_killed_at_once_changes_nothing(tmp_path):
    # The LocalCluster's nannies start new workers within seconds and Dask recomputes every chunk
    # on them; a chunk restricted to the dead workers would wait for them for ever.
    report = run_worker_loss("nannies", tmp_path)
    assert report["killed"] and report["error"] is None
    assert len(report["losses"]) == 5  # the whole run, with the in-process numbers
    assert report["loss_difference"] <= 1e-12 and report["params_difference"] <= 1e-12
    assert report["alive_after"] == []  # no worker process outlives fit


@pytest.mark.slow
def test_workers_that_stay_dead_are_a_clear_error_at_the_failed_epochs_start(tmp_path):
    report = run_worker_loss("gone", tmp_path)  # fit(timeout=2): killed after 2 epochs, no nannies
    assert report["killed"] and report["error"] is not None
    message = report["error"]["message"]
    assert message.startswith("all Dask workers died (the scheduler at tcp://") and "has had none for 2 s" in message
    assert "during epoch 3" in message and "start_epoch=2" in message
    assert report["error"]["epoch"] == 2 and len(report["losses"]) == 2
    assert report["loss_difference"] <= 1e-12
    assert report["params_difference"] <= 1e-12  # the parameters after the 2 completed epochs
    assert report["seconds_to_error"] < 15
    assert report["alive_after"] == []


def test_the_train_command_saves_the_run_when_the_workers_are_lost(tmp_path, monkeypatch):
    from support import cli

    from nnaccel.nn import checkpoint

    def fit_losing_the_workers(network, X, Y, *, epochs, history, on_epoch_end, **ignored):
        for epoch in range(2):
            history["loss"].append(0.5)
            on_epoch_end(epoch, history)
        raise nna.WorkersLost("all Dask workers died (the scheduler at tcp://a:1 has had none for 8 s)", 2, history)

    monkeypatch.setattr(distributed, "fit", fit_losing_the_workers)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(
        "train",
        "--dataset",
        "xor",
        "--samples",
        "60",
        "--epochs",
        "5",
        "--batch-size",
        "0",
        "--backend",
        "numpy",
        "--quiet",
        "--scheduler",
        "tcp://a:1",
    )
    assert code == 1  # the cluster failed, not the input
    path = str(tmp_path / "nnaccel-checkpoint.npz")
    assert err == (
        "nnaccel: error: all Dask workers died (the scheduler at tcp://a:1 has had none for 8 s) during epoch 3 of 5; "
        f"the state after 2 epochs is saved in {path}. Restart the cluster's workers and resume with: "
        f"nnaccel train --resume {path} --scheduler tcp://a:1\n"
    )
    assert checkpoint.load(path, backend="numpy", checkpoint=True).training["epochs_completed"] == 2


def test_an_unreachable_scheduler_is_a_clear_error_within_15_seconds():
    X, Y = make_data(100)
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match=f"could not connect to the Dask scheduler at '{address}'"):
        distributed.fit(network(), X, Y, epochs=1, lr=0.1, scheduler=address)
    assert time.perf_counter() - started < 15


def test_the_scheduler_variable_is_used_when_no_scheduler_is_given(monkeypatch):
    X, Y = make_data(100)
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("NNACCEL_DASK_SCHEDULER", address)
    with pytest.raises(ConnectionError, match=address):
        distributed.fit(network(), X, Y, epochs=1, lr=0.1, timeout=1)


def test_bad_data_is_a_clear_error_before_training(client):
    X, Y = make_data()
    X_bad = X.copy()
    X_bad[0, 1234] = np.nan
    net = network()
    before = net.get_params()
    calls = []
    with pytest.raises(ValueError, match=r"X \(columns 1000:1500\) contains NaN"):
        distributed.fit(
            net,
            da.from_array(X_bad, chunks=(2, 500)),
            da.from_array(Y, chunks=(1, 500)),
            epochs=2,
            lr=0.5,
            scheduler=client,
            on_epoch_end=lambda epoch, history: calls.append(epoch),
        )
    assert calls == [] and all(np.array_equal(W, W0) for (W, _), (W0, _) in zip(net.get_params(), before))
    with pytest.raises(ValueError, match="labels outside"):
        distributed.fit(net, X, Y * 2, epochs=1, lr=0.5, scheduler=client)
    # shape errors need no cluster: they come before connecting (this address would take seconds)
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match="m = 4001.*4000"):
        distributed.fit(net, da.from_array(X), da.from_array(Y[:, 1:]), epochs=1, lr=0.5, scheduler=unreachable)
    with pytest.raises(ValueError, match="full-batch"):
        distributed.fit(net, X, Y, epochs=1, lr=0.5, batch_size=32, scheduler=unreachable)
    with pytest.raises(ValueError, match="unknown backend"):
        distributed.fit(net, X, Y, epochs=1, lr=0.5, worker_backend="fortran", scheduler=unreachable)


def test_playground_arrays_hold_the_writers_numbers(client, tmp_path):
    write_playground_npy(tmp_path / "X.npy", tmp_path / "Y.npy", "spiral", 2500, noise=0.2, seed=1, chunk_size=1000)
    X, Y = distributed.playground_arrays("spiral", 2500, noise=0.2, seed=1, chunk_size=1000)
    X_computed, Y_computed = client.compute([X, Y], sync=True)
    assert np.array_equal(X_computed, np.load(tmp_path / "X.npy")) and np.array_equal(Y_computed, np.load(tmp_path / "Y.npy"))
    X_read = client.compute(distributed.from_npy(tmp_path / "X.npy", chunk_size=700), sync=True)
    assert np.array_equal(X_read, X_computed)


def test_wide_networks_share_one_parameter_task_and_data_is_released(client):
    X, Y = make_data(1500)
    net = nna.Network([2, 120, 80, 1], seed=2, backend="numpy", dtype="float64")  # 80 KB of parameters
    loss_expected, grads_expected = net.gradients(X, Y)
    loss, grads = distributed.gradients(net, X, Y, scheduler=client, chunk_size=400, worker_backend="numpy")
    assert abs(loss - loss_expected) <= 1e-10 * loss_expected
    assert all(relative(dW, dW_expected) <= 1e-10 for (dW, _), (dW_expected, _) in zip(grads, grads_expected))
    deadline = time.perf_counter() + 5
    while any(client.has_what().values()) and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert not any(client.has_what().values())  # the persisted chunks left the workers


def test_train_command_runs_on_the_cluster(client, tmp_path, capsys):
    from nnaccel.cli.main import main

    json_path = tmp_path / "run.json"
    arguments = [
        "train",
        "--dataset",
        "xor",
        "--samples",
        "600",
        "--hidden",
        "4",
        "--epochs",
        "5",
        "--lr",
        "0.5",
        "--batch-size",
        "0",
        "--backend",
        "numpy",
        "--quiet",
        "--json",
        str(json_path),
    ]
    assert main([*arguments, "--scheduler", client.scheduler.address]) == 0
    on_cluster = json.loads(json_path.read_text())["history"]["train_loss"]
    assert main(arguments) == 0
    in_process = json.loads(json_path.read_text())["history"]["train_loss"]
    assert relative(on_cluster, in_process) <= 1e-5  # float32
    assert main(["train", "--dataset", "xor", "--scheduler", client.scheduler.address, "--quiet"]) == 2
    assert "--batch-size 0" in capsys.readouterr().err


def test_an_unknown_address_scheme_is_one_line_and_nothing_after_it(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnaccel",
            "train",
            "--backend",
            "numpy",
            "--batch-size",
            "0",
            "--epochs",
            "1",
            "--quiet",
            "--scheduler",
            "foo://bar",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown scheme 'foo'" in lines[0], result.stderr
