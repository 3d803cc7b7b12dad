"""Background threads that prepare training data while a kernel trains.

The Numba backend's small-network epochs run on one core (a serial kernel that releases the GIL).
Drawing the next epoch's shuffled order, gathering the next chunk of shuffled examples and, when
streaming, drawing the next chunk's column order are independent of the training itself, so they
run here, on the other core, instead of between kernel calls.

Two threads serve the whole process, so that one long task (the next epoch's order) does not hold
up the short ones queued behind it (the next chunk, needed within a millisecond). A forked child
starts its own (the parent's threads do not exist there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

WORKERS = 2
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # the process that started _pool (a forked child needs its own)


def submit(function: Callable[..., Result], *arguments) -> Future[Result]:
    """``function(*arguments)`` on a background thread; its result (or exception) is the future's."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="nnaccel-prepare")
            _pool_pid = os.getpid()
        return _pool.submit(function, *arguments)


def wait_quietly(future: Future | None) -> None:
    """Wait for ``future`` to finish, ignoring its outcome: a buffer it writes is then free again."""
    if future is not None:
        try:
            future.result()
        except Exception:  # its outcome no longer matters, only that it has ended
            pass
