"""What every runner is, shared by runners.py (nnaccel's backends) and peers.py (PyTorch,
scikit-learn): the ``Runner`` record the worker times, the error that says a runner cannot run
here, and the dtype and learning rate every runner trains with.

It imports neither of those two modules, so they depend on it and not on each other: runners.py
picks a peer from peers.py, and peers.py needs nothing from runners.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .spec import device_of

LEARNING_RATE = 0.01  # small enough that no benchmarked network diverges over many timed steps
DTYPE = np.float32


class RunnerUnavailable(RuntimeError):
    """This runner cannot run here (library missing, no GPU, unsupported activation); says why."""


@dataclass
class Runner:
    """What the worker times: ``step()`` runs one training step; ``synchronize()`` waits for it."""

    name: str
    step: Callable[[], object]
    synchronize: Callable[[], None] = lambda: None
    events: str | None = None  # "cupy" or "torch": time with that library's CUDA events
    timed: str = "one full-batch training step: forward + backward + update, data on the device"
    threads: int | None = None
    # The parameters now, as NumPy arrays in nnaccel's layout [W1, b1, W2, b2, ...], W (p_i,
    # p_{i-1}), b (p_i, 1): lets tests check that a runner trains what the others train.
    params: Callable[[], list[np.ndarray]] = lambda: []
    # Keeps the arrays alive as long as the runner (the step closes over them too).
    keep: list = field(default_factory=list)

    @property
    def device(self) -> str:
        return device_of(self.name)


def mini_batch_timed(batch: int, optimizer: str = "sgd") -> str:
    kind = "SGD" if optimizer == "sgd" else optimizer
    return f"one epoch of mini-batch {kind} (batch {batch}, shuffled): forward + backward + update per batch"


def blas_threads() -> int | None:
    """Threads of NumPy's BLAS (threadpoolctl), or None when threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None
