"""Kill every Dask worker process after the second epoch of a Dask training run and print, as one
JSON line, how the run ended. tests/test_dask.py runs this in a subprocess with a timeout, so a
run that hangs fails instead of stalling the test session.

    python dask_worker_loss.py nannies   # fit's own LocalCluster: its nannies start new workers
    python dask_worker_loss.py gone      # nanny-less workers of a scheduler given by address
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import numpy as np
import psutil

import nnaccel as nna
from nnaccel import distributed

EPOCHS = 5
KILL_AFTER = 2  # epochs completed when the workers are killed
TIMEOUT = 2.0  # fit's timeout=: how long a cluster without workers is waited for


def make_data(m: int = 3000):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(2, m))
    return X, (X[0] * X[1] > 0).astype(np.float64).reshape(1, -1)


def network():
    return nna.Network([2, 6, 1], activation="tanh", output="sigmoid", seed=3, backend="numpy", dtype="float64")


def largest_difference(params, expected) -> float:
    return max(float(np.max(np.abs(a - b))) for pairs in zip(params, expected) for a, b in zip(*pairs))


def live(pids) -> list:
    """The pids of ``pids`` still running (a zombie has exited)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def train(scheduler) -> dict:
    """Train with every child process killed after KILL_AFTER epochs; the report as a dict."""
    X, Y = make_data()
    seen, killed_at = set(), []

    def kill_every_worker(epoch, history):
        children = psutil.Process().children(recursive=True)
        # the replacement workers too, checked at the end; not multiprocessing's resource tracker,
        # which lives as long as this process
        seen.update(child.pid for child in children if "resource_tracker" not in " ".join(child.cmdline()))
        if epoch + 1 == KILL_AFTER:
            for child in children:
                child.kill()
            killed_at.append(time.perf_counter())

    net = network()
    report = {"error": None}
    try:
        history = distributed.fit(
            net,
            X,
            Y,
            epochs=EPOCHS,
            lr=0.5,
            scheduler=scheduler,
            timeout=TIMEOUT,
            worker_backend="numpy",
            on_epoch_end=kill_every_worker,
        )
    except nna.WorkersLost as lost:
        report["seconds_to_error"] = time.perf_counter() - killed_at[0]
        report["error"] = {"message": str(lost), "epoch": lost.epoch}
        history = lost.history
    epochs_done = len(history["loss"])
    reference = network()
    expected = reference.fit(X, Y, epochs=epochs_done, lr=0.5, batch_size=None)["loss"] if epochs_done else []
    report.update(
        killed=bool(killed_at),
        seen=sorted(seen),
        losses=history["loss"],
        loss_difference=max((abs(a - b) for a, b in zip(history["loss"], expected)), default=0.0),
        params_difference=largest_difference(net.get_params(), reference.get_params()),
    )
    return report


def nannies() -> dict:
    return train("local")


def gone() -> dict:
    """Workers started with --no-nanny on a scheduler in this process: once killed, none return."""
    import distributed as dask_distributed

    with dask_distributed.LocalCluster(n_workers=0, dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        command = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--no-nanny",
            "--nthreads",
            "1",
            "--no-dashboard",
        ]
        workers = [subprocess.Popen(command, stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            with dask_distributed.Client(address, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=60)
            return train(address)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()


if __name__ == "__main__":
    report = {"nannies": nannies, "gone": gone}[sys.argv[1]]()
    report["alive_after"] = live(report.pop("seen"))
    print(json.dumps(report))
