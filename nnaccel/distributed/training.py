"""Data-parallel full-batch gradient descent on a Dask cluster.

X and Y are chunked along m, checked, and persisted on the workers for the whole run: one (X, Y)
pair per chunk, as arrays of each worker's backend (CuPy arrays on a GPU worker), spread evenly.
Each step is one graph and one ``compute``: the parameters travel with the tasks, every chunk's
gradient sum is computed where the chunk lives, a tree of additions reduces them, and the client
applies one update. The reduction order is fixed by the graph, not by which worker ran what, so a
run gives the same numbers whatever the cluster does, including recomputing the chunks of a
worker that died (from their source: a file, a generator, or the array the graph holds), or of
all of them once new ones join. A cluster left without workers for ``timeout`` seconds, or whose
workers keep dying on one task, ends the run with ``WorkersLost`` at the failed epoch's start.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..backends import check_name
from ..core.validation import check_X, check_Y
from ..data.sources import DaskSource, DataSource, NpySource, as_source, check_source, default_chunk_columns
from ..errors import WorkersLost
from ..nn.training import RunSettings, TrainingState, check_hyperparameters, check_run, run_epochs
from ..optim import Hyperparameters
from . import worker
from .arrays import from_npy
from .cluster import CONNECT_TIMEOUT, connect, killed_worker_error, wait_with_workers

if TYPE_CHECKING:
    import dask.array as da

# Columns per chunk for arrays nnaccel chunks itself: at most this many bytes of step buffers.
CHUNK_BYTES = 256 << 20
# Inputs per node of the reduction tree: one level up to 8 chunks, two up to 64, ...
TREE_FAN_IN = 8
# Parameters up to this size travel inside every chunk's task; larger ones as one shared task.
INLINE_PARAMS_BYTES = 64 << 10


def fit(
    network,
    X,
    Y,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    validation=None,
    progress: bool = False,
    scheduler=None,
    worker_backend: str = "auto",
    chunk_size: int | None = None,
    timeout: float = CONNECT_TIMEOUT,
    workers: int | None = None,
    seed: int = 0,
    shuffle: bool = True,
    optimizer="sgd",
    lr_schedule=None,
    early_stopping=None,
    start_epoch: int = 0,
    history: dict | None = None,
    state: TrainingState | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``network`` in place by full-batch gradient descent on a Dask cluster; returns the
    history dict, as ``Network.fit`` does (same loss history as in one process).

    X (n, m), Y (outputs, m): Dask arrays (their chunks along m are the unit of work), NumPy
    arrays (chunked here, evenly over the workers), or ``.npy`` paths readable on every worker
    (``from_npy``). ``validation``: (Xv, Yv) in the same forms (NumPy: evaluated on the client).
    ``scheduler``: a ``distributed.Client``, an address ("tcp://host:8786"), "local" for an
    embedded ``LocalCluster`` of ``workers`` processes, or None: ``NNACCEL_DASK_SCHEDULER``, else
    "local". ``worker_backend``: the backend on the workers; "auto" lets each worker pick (CuPy on
    a GPU worker, else Numba, else NumPy). ``timeout``: seconds to wait for the scheduler and its
    first worker before a ``ConnectionError``; during training, seconds the cluster may be
    without any worker before ``nnaccel.WorkersLost``. Dead workers that are replaced (a
    LocalCluster's nannies restart them within seconds) get their chunks recomputed, so the run
    ends as an uninterrupted one; after ``WorkersLost`` the network keeps the parameters from the
    start of the failed epoch ``error.epoch``, and ``fit(..., start_epoch=error.epoch,
    history=error.history)`` on a working cluster resumes the run. ``seed`` and ``shuffle`` are
    accepted so that a call to ``Network.fit`` runs here unchanged; full-batch steps do not shuffle.
    """
    check_hyperparameters(epochs, lr, batch_size, l1, l2)
    optimizer, schedule, stopping = check_run(optimizer, lr_schedule, early_stopping, validation)
    worker_backend = check_name(worker_backend)
    architecture = network.architecture
    data = _checked_data(X, Y, architecture, "training")
    if batch_size is not None and batch_size < data[2]:
        raise ValueError(
            "Dask training is full-batch gradient descent (one graph per step over all the data); pass "
            "batch_size=None, or train mini-batches in one process with net.fit, which streams large data"
        )
    validation_data = _checked_validation(validation, architecture)

    history = history if history is not None else {"loss": []}
    with (
        _resumable(history, start_epoch),
        connect(scheduler, timeout=timeout, workers=workers) as client,
        client.as_current(),
        contextlib.ExitStack() as persisted,
    ):
        worker_count = max(1, len(client.scheduler_info().get("workers", {})))
        trainer = DataParallel(client, network, *_as_dask(data, network, worker_count, chunk_size), worker_backend, timeout)
        persisted.callback(trainer.release)
        measure_validation = None
        if validation_data is not None:
            measure_validation = _validation_measure(
                client, network, validation_data, worker_count, chunk_size, worker_backend, timeout, persisted
            )
        plan = network.plan(None, optimizer)
        settings = RunSettings(Hyperparameters(lr, l1, l2), plan, schedule, stopping, trainer.m)
        return run_epochs(
            network,
            lambda epoch, hyper: trainer.step(plan, hyper),
            measure_validation,
            settings,
            epochs=epochs,
            progress=progress,
            start_epoch=start_epoch,
            history=history,
            state=state,
            on_epoch_end=on_epoch_end,
        )


def _checked_validation(validation, architecture):
    """``fit``'s ``validation`` pair, checked (None stays None)."""
    if validation is None:
        return None
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError("validation must be a pair (X_validation, Y_validation)")
    return _checked_data(validation[0], validation[1], architecture, "validation")


def _validation_measure(client, network, validation_data, worker_count, chunk_size, worker_backend, timeout, persisted):
    """``measure_validation() -> float``: NumPy validation data evaluated on the client, anything
    else persisted on the cluster (released when ``persisted`` closes) and evaluated there."""
    if isinstance(validation_data[0], np.ndarray):
        return _client_loss(network, validation_data)
    evaluator = DataParallel(
        client, network, *_as_dask(validation_data, network, worker_count, chunk_size), worker_backend, timeout
    )
    persisted.callback(evaluator.release)
    return evaluator.mean_loss


@contextlib.contextmanager
def _resumable(history: dict, start_epoch: int) -> Iterator[None]:
    """A ``WorkersLost`` from the block, given the epoch to resume from and the history so far."""
    recorded = len(history["loss"])
    try:
        yield
    except WorkersLost as lost:
        # run_epochs put back the failed epoch's starting parameters and recorded whole epochs
        # only, so the history's length says where to resume
        raise WorkersLost(lost.problem, start_epoch + len(history["loss"]) - recorded, history) from None


def gradients(
    network,
    X,
    Y,
    *,
    scheduler=None,
    worker_backend: str = "auto",
    chunk_size: int | None = None,
    timeout: float = CONNECT_TIMEOUT,
    workers: int | None = None,
) -> tuple:
    """(mean loss, [(dW, db)] NumPy arrays) over X, Y computed on a Dask cluster, as
    ``Network.gradients`` computes them in one process; arguments as for ``fit``."""
    worker_backend = check_name(worker_backend)
    data = _checked_data(X, Y, network.architecture, "training")
    with connect(scheduler, timeout=timeout, workers=workers) as client, client.as_current():
        worker_count = max(1, len(client.scheduler_info().get("workers", {})))
        trainer = DataParallel(client, network, *_as_dask(data, network, worker_count, chunk_size), worker_backend, timeout)
        try:
            loss, grads = trainer.gradients()
        finally:
            trainer.release()
    return float(loss) / trainer.m, grads


class DataParallel:
    """X (n, m) and Y (outputs, m), Dask arrays chunked along m only, checked and persisted on the
    workers as ``worker_backend`` arrays, one (X, Y) pair per chunk (so a chunk's two halves live
    on one worker), spread round-robin over the workers; ``step`` runs one full-batch step.
    ``timeout``: seconds a computation may go without any worker before ``WorkersLost``."""

    def __init__(self, client, network, X, Y, worker_backend: str, timeout: float = CONNECT_TIMEOUT):
        import dask

        self.client, self.network, self.worker_backend, self.timeout = client, network, worker_backend, timeout
        self.architecture, self.dtype = network.architecture, network.dtype
        self.m = int(X.shape[1])
        X_blocks = X.to_delayed().ravel().tolist()
        Y_blocks = Y.to_delayed().ravel().tolist()
        starts = np.cumsum((0, *X.chunks[1]))
        workers = sorted(client.scheduler_info().get("workers", {})) or [None]
        place = dask.delayed(worker.place_chunk, pure=False)
        self.chunks = []
        for index, (X_block, Y_block) in enumerate(zip(X_blocks, Y_blocks)):
            # A loose restriction: balanced placement, yet any worker may recompute a lost chunk.
            # Only the placing task carries it: once every worker is gone, Dask parks ready tasks
            # in "no-worker" and, as new workers join, starts only those whose restriction names a
            # live worker (allow_other_workers is not consulted there), so a restricted input
            # would wait for ever. The placing task waits on its inputs instead, and when they are
            # done the scheduler does honour allow_other_workers.
            target = {}
            if workers[0] is not None:
                target = {"workers": [workers[index % len(workers)]], "allow_other_workers": True}
            with dask.annotate(**target):
                pair = place(
                    X_block,
                    Y_block,
                    self.architecture,
                    worker_backend,
                    self.dtype.name,
                    int(starts[index]),
                    dask_key_name=f"nnaccel-chunk-{index}-{uuid.uuid4().hex}",
                )  # this run's own keys
            self.chunks.append(client.compute(pair))
        try:
            self._wait_until_placed()
        except BaseException:
            self.release()
            raise

    def _wait_until_placed(self) -> None:
        """Wait for every chunk to be checked and placed; a chunk that failed its checks raises the
        check's own error."""
        import distributed

        with self.client.as_current():  # distributed.wait finds its client there
            wait_with_workers(self.client, lambda seconds: distributed.wait(self.chunks, timeout=seconds), self.timeout)
        for future in self.chunks:
            if future.status == "error":
                error = future.exception()
                raise killed_worker_error(error) if isinstance(error, distributed.KilledWorker) else error

    def _params(self):
        """The network's parameters (NumPy) for this step's graph: inside each chunk's task when they
        are small (saves a hop), else one task that each worker fetches once."""
        import dask

        params = self.network.get_params()
        if sum(W.nbytes + b.nbytes for W, b in params) <= INLINE_PARAMS_BYTES:
            return params
        return dask.delayed(params, name=f"nnaccel-params-{uuid.uuid4().hex}", traverse=False)

    def _compute(self, graph):
        import distributed

        future = self.client.compute(graph)
        try:
            return wait_with_workers(self.client, future.result, self.timeout)
        except distributed.KilledWorker as error:
            future.cancel()
            raise killed_worker_error(error) from None
        except BaseException:
            future.cancel()
            raise

    def gradients(self) -> tuple:
        """(summed loss, [(dW, db)] NumPy arrays of the mean loss) at the network's parameters:
        one graph, one compute."""
        import dask

        params = self._params()
        gradient = dask.delayed(worker.chunk_gradients, pure=False)
        parts = [
            gradient(params, chunk, self.architecture, self.worker_backend, self.dtype.name, 1.0 / self.m)
            for chunk in self.chunks
        ]
        return self._compute(tree_sum(parts, worker.add))

    def step(self, plan, hyper: Hyperparameters) -> tuple:
        """One full-batch step, the update by ``plan``'s optimizer: (summed loss before it, m)."""
        loss, grads = self.gradients()
        backend = self.network.backend
        grads = [(backend.asarray(dW, self.dtype), backend.asarray(db, self.dtype)) for dW, db in grads]
        plan.update(self.network.parameters, grads, hyper)
        return np.float64(loss), self.m

    def mean_loss(self) -> float:
        """The mean loss over the persisted data at the network's current parameters."""
        import dask

        params = self._params()
        loss = dask.delayed(worker.chunk_loss, pure=False)
        parts = [loss(params, chunk, self.architecture, self.worker_backend, self.dtype.name) for chunk in self.chunks]
        return float(self._compute(tree_sum(parts, worker.add_losses))) / self.m

    def release(self) -> None:
        """Drop the persisted chunks from the workers."""
        self.client.cancel(self.chunks)


def tree_sum(parts: list, add, fan_in: int = TREE_FAN_IN) -> object:
    """A tree of ``add(*inputs)`` tasks over ``parts`` (Dask delayed), ``fan_in`` inputs per node,
    in a fixed order (so the floating-point sum does not depend on where tasks ran)."""
    import dask

    add = dask.delayed(add, pure=False)
    while len(parts) > 1:
        parts = [
            add(*parts[start : start + fan_in]) if len(parts[start : start + fan_in]) > 1 else parts[start]
            for start in range(0, len(parts), fan_in)
        ]
    return parts[0]


def _checked_data(X, Y, architecture, role: str) -> tuple:
    """(X, Y, m): checked NumPy arrays, or a DaskSource-shaped pair of Dask arrays (shapes checked;
    values are checked on the workers), or a pair of ``.npy`` paths (headers checked)."""
    if isinstance(X, DataSource) or Y is None:
        raise ValueError("Dask training takes X and Y as Dask arrays, NumPy arrays or .npy paths")
    if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__"):
        source = as_source(X, Y)
        if source is None:  # never: as_source reads a path as a file source
            raise ValueError(f"the {role} data paths {X!r} and {Y!r} name no readable files")
        check_source(source, architecture, 1, role)
        if not isinstance(source, NpySource):
            raise ValueError("Dask training reads .npy files; open zarr arrays with dask.array.from_zarr")
        return source.X_file.path, source.Y_file.path, source.m
    if type(X).__module__.split(".")[0] == "dask" or type(Y).__module__.split(".")[0] == "dask":
        import dask.array as da

        source = DaskSource(da.asarray(X), da.asarray(Y), names=(f"{role} X", f"{role} Y"))
        check_source(source, architecture, 1, role)
        return source.X, source.Y, source.m
    X = check_X(X, architecture, f"{role} X")
    Y = check_Y(Y, architecture, X.shape[1], f"{role} Y")
    return X, Y, X.shape[1]


def _as_dask(data: tuple, network, worker_count: int, chunk_size: int | None) -> tuple[da.Array, da.Array]:
    """Dask arrays (X, Y) for checked data, chunked along m."""
    import dask.array as da

    X, Y, m = data
    if isinstance(X, str):
        columns = chunk_size or _even_chunk(m, worker_count, network)
        return from_npy(X, columns), from_npy(Y, columns)
    if isinstance(X, np.ndarray):
        columns = chunk_size or _even_chunk(m, worker_count, network)
        dtype = network.dtype
        return da.from_array(X.astype(dtype, copy=False), chunks=(-1, columns)), da.from_array(
            Y.astype(dtype, copy=False), chunks=(-1, columns)
        )
    if chunk_size is not None:
        X, Y = X.rechunk({1: chunk_size}), Y.rechunk({1: chunk_size})
    return X, Y


def _even_chunk(m: int, worker_count: int, network) -> int:
    """Columns per chunk: a multiple of the worker count of chunks, each within CHUNK_BYTES of
    step buffers, so every worker gets the same share."""
    limit = default_chunk_columns(network.architecture, network.dtype, CHUNK_BYTES)
    chunks = worker_count * max(1, math.ceil(m / (limit * worker_count)))
    return max(1, math.ceil(m / chunks))


def _client_loss(network, data: tuple) -> Callable[[], float]:
    backend = network.backend
    X = backend.asarray(data[0], network.dtype)
    Y = backend.asarray(data[1], network.dtype)
    return lambda: network.mean_loss_on_backend(X, Y)
