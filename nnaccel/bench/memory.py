"""Peak memory of one benchmark case, measured in the fresh process that runs only that case.

Host (CPU runners): the rise of the process's resident set (RSS) high-water mark while the case
runs. Just before the case allocates its data, the worker resets Linux's high-water mark
(``/proc/self/clear_refs``, value 5) and notes the RSS; afterwards it reads ``VmHWM``. The
difference is everything the case made resident: the data X and Y, parameters, gradients, the
step's buffers and any temporaries, in whichever library allocated them (NumPy, Numba, PyTorch,
scikit-learn), to page granularity. Imports and JIT compilation happen before the reset, so they
are not counted. Other systems have no such reset, and there the memory is reported as not
measured rather than guessed.

GPU (cupy): the bytes CuPy's memory pool holds at the end, counted from an emptied pool; the pool
keeps freed blocks, so this is the high-water mark of the case's device allocations (rounded up to
the pool's block sizes; cuBLAS's own workspace is not included). torch-cuda:
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import os

HOST_METHOD = "host RSS high-water mark rise (Linux /proc/self/clear_refs reset, then VmHWM)"


def available_memory() -> int | None:
    """Bytes of memory the system can give a new process without swapping, or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class HostPeak:
    """Peak RSS growth of this process from ``start()`` to ``peak_bytes()`` (Linux only)."""

    def __init__(self):
        self.baseline: int | None = None

    def start(self) -> bool:
        """Reset the high-water mark to the current RSS; False where the system cannot."""
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.baseline = _status_kilobytes("VmRSS") * 1024
        except (OSError, ValueError, TypeError):
            self.baseline = None
        return self.baseline is not None

    def peak_bytes(self) -> int | None:
        if self.baseline is None:
            return None
        return max(0, _status_kilobytes("VmHWM") * 1024 - self.baseline)


def resident_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process in bytes, from /proc (Linux only)."""
    return _status_kilobytes("VmRSS") * 1024, _status_kilobytes("VmHWM") * 1024


def _status_kilobytes(field: str) -> int:
    with open(f"/proc/{os.getpid()}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ValueError(f"{field} is not in /proc/self/status")
