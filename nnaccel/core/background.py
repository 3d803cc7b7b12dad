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
from typing import Generic, TypeVar

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


class Lookahead(Generic[Result]):
    """``function(*arguments)`` for the arguments asked in turn, the next call's result computed
    on a background thread while the caller works on this one's. ``pending``: the arguments of
    that next call and its future, or None."""

    def __init__(self, function: Callable[..., Result]):
        self.function = function
        self.pending: tuple[tuple, Future[Result]] | None = None

    def __call__(self, arguments: tuple, following: tuple | None = None) -> Result:
        """``function(*arguments)`` (the pending result when it was drawn for these arguments,
        else computed here); then ``function(*following)`` starts in the background, if given."""
        pending, self.pending = self.pending, None
        if pending is not None and pending[0] == arguments:
            result = pending[1].result()
        else:
            result = self.function(*arguments)
        if following is not None:
            self.pending = (following, submit(self.function, *following))
        return result
