"""Finding the Dask cluster to train on: a given client, an address, or an embedded LocalCluster."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import WorkersLost

SCHEDULER_VARIABLE = "NNACCEL_DASK_SCHEDULER"
CONNECT_TIMEOUT = 8.0
LOCAL = "local"
# Seconds between looks at the worker list while waiting for a computation.
WORKER_POLL = 1.0
# Seconds added to the wait while a LocalCluster's nanny starts a worker in place of a dead one:
# a start takes seconds, more on a loaded machine; the wait stays bounded should one never finish.
RESTART_ALLOWANCE = 60.0

T = TypeVar("T")


def require_dask():
    """Import distributed, or raise an ImportError that says how to install it."""
    try:
        import dask.array  # noqa: F401
        import distributed
    except ImportError as error:
        raise ImportError(
            f"Dask training needs dask and distributed ({error}); install them with `pip install 'nnaccel[dask]'`"
        ) from None
    return distributed


def local_worker_count() -> int:
    """Workers for an embedded LocalCluster: one per core (one thread each), at least one."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def check_address(address: str) -> None:
    """A ValueError for an address with a scheme Dask has no transport for (``foo://bar``)."""
    from distributed.comm.registry import backends

    scheme, separator, _ = address.partition("://")
    if separator and scheme not in backends:
        raise ValueError(
            f"{address!r} is not a Dask scheduler address such as tcp://host:8786 "
            f"(unknown scheme {scheme!r}; known: {', '.join(sorted(backends))})"
        )


@contextlib.contextmanager
def connect(scheduler=None, *, timeout: float = CONNECT_TIMEOUT, workers: int | None = None) -> Iterator:
    """A ``distributed.Client`` for the duration of the block.

    ``scheduler``: a ``distributed.Client`` (used as it is, left open); an address such as
    ``"tcp://10.0.0.5:8786"`` (connect; a clear ``ConnectionError`` within ``timeout`` seconds if
    nothing answers, or if the scheduler has no workers); ``"local"`` (start an embedded
    ``LocalCluster`` of ``workers`` processes, one thread each, closed at the end); None: the
    ``NNACCEL_DASK_SCHEDULER`` variable, else ``"local"``.
    """
    distributed = require_dask()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_VARIABLE, "").strip() or LOCAL
    if not isinstance(scheduler, str):
        raise ValueError(f"scheduler must be an address string, 'local' or a distributed.Client; got {type(scheduler).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    if scheduler == LOCAL:
        with _local_client(workers or local_worker_count()) as client:
            yield client
        return
    if workers is not None:
        raise ValueError("workers= applies to an embedded LocalCluster only (scheduler='local')")
    check_address(scheduler)  # before a Client exists: a refused one times out noisily in its __del__
    try:
        client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"could not connect to the Dask scheduler at {scheduler!r} within {timeout:g} s ({error}); check the "
            f"address (scheduler= or {SCHEDULER_VARIABLE}) and that `dask scheduler` runs there and is reachable"
        ) from None
    except ValueError as error:
        raise ValueError(f"{scheduler!r} is not a Dask scheduler address such as tcp://host:8786 ({error})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            raise ConnectionError(
                f"the Dask scheduler at {scheduler!r} has no workers (waited {timeout:g} s); start some with "
                f"`dask worker {scheduler}`"
            ) from None
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def _local_client(workers: int) -> Iterator:
    import distributed

    cores = local_worker_count()
    threads = str(max(1, cores // workers))  # Numba's threads per worker, so workers do not oversubscribe the cores
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env={"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads},
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"starting the embedded Dask LocalCluster's worker processes failed ({error}); in a script, run "
            'the training under `if __name__ == "__main__":`, since each worker process imports the main module'
        ) from error
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def wait_with_workers(client, attempt: Callable[[float], T], timeout: float) -> T:
    """``attempt(seconds)``, a wait for Dask work that raises ``distributed.TimeoutError`` after
    ``seconds`` (``future.result``, ``distributed.wait``), repeated until it returns; a cluster left
    without workers for ``timeout`` seconds meanwhile is a ``WorkersLost`` error instead.

    Dask keeps work waiting until some worker turns up. The scheduler drops a worker as soon as its
    connection breaks (a killed process), so an empty worker list that stays empty means the
    workers are gone for good: a remote cluster whose workers died, or nannies that could not
    restart them. A LocalCluster's nannies restart dead workers; while one is starting a worker,
    the wait gets RESTART_ALLOWANCE seconds more.
    """
    import distributed

    alone_since = None
    while True:
        try:
            return attempt(WORKER_POLL)
        except distributed.TimeoutError:
            pass
        if _worker_count(client):
            alone_since = None
            continue
        now = time.monotonic()
        alone_since = now if alone_since is None else alone_since
        allowed = timeout + (RESTART_ALLOWANCE if _restarting(client) else 0.0)
        if now - alone_since >= allowed:
            raise WorkersLost(
                f"all Dask workers died (the scheduler at {client.scheduler.address} has had none for {allowed:g} s)"
            )


def _worker_count(client) -> int:
    """The workers the scheduler knows of; 0 when it does not answer (then nothing can run)."""
    import distributed

    try:
        return len(client.nthreads())
    except (OSError, distributed.TimeoutError):
        return 0


def _restarting(client) -> bool:
    """Whether a nanny of the client's own cluster (a LocalCluster, not one known by address) is
    starting a worker process."""
    from distributed.core import Status

    nannies = getattr(getattr(client, "cluster", None), "workers", None) or {}
    return any(getattr(getattr(nanny, "process", None), "status", None) == Status.starting for nanny in list(nannies.values()))


def killed_worker_error(error: Exception) -> WorkersLost:
    """A ``WorkersLost`` for Dask's ``KilledWorker``: each worker that ran one task died (Dask gives
    up after ``distributed.scheduler.allowed-failures`` of them), typically out of memory."""
    return WorkersLost(
        f"Dask workers kept dying while running one task, often for want of memory: a smaller chunk_size needs less ({error})"
    )
