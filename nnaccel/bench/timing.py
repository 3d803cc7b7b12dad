"""Timing training steps: warm-up, then N timed steps, each timed on its own.

CPU work is timed with ``time.perf_counter`` around each step, with the backend's ``synchronize``
before and after (a no-op on the CPU). GPU work is timed with CUDA events recorded on the stream
before and after each step, so the time is the device's, not the host's launch time; events are
created only when a GPU runner asks for them, so CuPy and torch.cuda are imported only then.

Timed steps stop at ``repeat`` or, after at least ``min(repeat, MIN_REPEAT)`` steps, once
``max_seconds`` of stepping has passed, so a slow case does not hold up the whole run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

MIN_REPEAT = 3


def time_steps(
    step: Callable[[], object],
    synchronize: Callable[[], None],
    *,
    warmup: int,
    repeat: int,
    max_seconds: float,
) -> list[float]:
    """Seconds of each timed call of ``step()``, measured on the host clock."""
    for _ in range(warmup):
        step()
    synchronize()
    seconds: list[float] = []
    started = time.perf_counter()
    while not _done(seconds, repeat, started, max_seconds):
        before = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - before)
    return seconds


def time_steps_cuda(
    step: Callable[[], object],
    events: CudaEvents,
    *,
    warmup: int,
    repeat: int,
    max_seconds: float,
) -> list[float]:
    """Seconds of each timed call of ``step()``, measured by CUDA events on the current stream."""
    for _ in range(warmup):
        step()
    events.synchronize()
    seconds: list[float] = []
    started = time.perf_counter()
    while not _done(seconds, repeat, started, max_seconds):
        start, end = events.new(), events.new()
        start.record()
        step()
        end.record()
        end.synchronize()
        seconds.append(events.elapsed_seconds(start, end))
    return seconds


class CudaEvents:
    """CUDA events from CuPy or PyTorch, behind the three calls ``time_steps_cuda`` needs."""

    def __init__(self, library: str):
        if library not in ("cupy", "torch"):
            raise ValueError(f"CUDA events come from cupy or torch; got {library!r}")
        self.library = library

    def new(self):
        if self.library == "cupy":
            import cupy

            return cupy.cuda.Event()
        import torch

        return torch.cuda.Event(enable_timing=True)

    def elapsed_seconds(self, start, end) -> float:
        if self.library == "cupy":
            import cupy

            return cupy.cuda.get_elapsed_time(start, end) / 1e3
        return start.elapsed_time(end) / 1e3

    def synchronize(self) -> None:
        if self.library == "cupy":
            import cupy

            cupy.cuda.get_current_stream().synchronize()
        else:
            import torch

            torch.cuda.synchronize()


def summarize(seconds: list[float]) -> dict:
    """Median, quartiles and extremes of the step times, in seconds."""
    values = np.asarray(seconds, dtype=float)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "step_s": float(median),
        "step_s_q1": float(q1),
        "step_s_q3": float(q3),
        "step_s_min": float(values.min()),
        "step_s_max": float(values.max()),
        "repeats": int(values.size),
    }


def _done(seconds: list[float], repeat: int, started: float, max_seconds: float) -> bool:
    if len(seconds) >= repeat:
        return True
    enough = len(seconds) >= min(repeat, MIN_REPEAT)
    return enough and time.perf_counter() - started > max_seconds
