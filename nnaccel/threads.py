"""How long the idle worker threads of the thread pools behind the backends busy-wait.

Idle workers that keep spinning take cores from whatever runs next, which on a machine with few
cores is the other library's work. Both settings below are environment variables that the pool
reads once, so they are set before it starts, and never over a value the user has set.

* OpenBLAS's workers busy-wait for 2^28 clock ticks (about 0.1 s) after every call before they
  sleep. The Numba backend's parallel kernel after a matmul then ran at one thread's speed on 2
  cores. 2^20 ticks (under a millisecond) still keeps back-to-back matmuls fast. OpenBLAS reads
  ``OPENBLAS_THREAD_TIMEOUT`` when it loads (with NumPy), so ``nnaccel/__init__.py`` calls
  ``set_openblas_thread_timeout`` first. When NumPy is loaded already (a script that imports it
  first), the variable is set and ``restart_openblas_workers`` has OpenBLAS re-read it and stop
  its workers; the next threaded call starts them afresh with the short busy-wait (what OpenBLAS
  itself does in a forked child). Stopping them while another thread is inside a BLAS call could
  hang, so this is done only while the main thread is the only Python thread.
* libgomp (Numba's "omp" threading layer) keeps idle workers busy-waiting for about 300,000 spins
  (several ms) after every parallel loop; they took the cores from the OpenBLAS matmul that follows
  in the layered pass (measured on 2 cores: layered steps 3-40% slower). A short spin still keeps
  back-to-back kernels fast (mini-batches). libgomp reads ``GOMP_SPINCOUNT`` when Numba starts
  its threads (the first parallel call), so the Numba backend calls ``set_gomp_spincount`` when it
  is imported.

This module imports nothing but the standard library.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping

OPENBLAS_THREAD_TIMEOUT = "20"  # busy-wait 2^20 ticks (about 0.4 ms at 2.6 GHz) before sleeping
GOMP_SPINCOUNT = "3000"  # spins (microseconds) before an idle libgomp worker sleeps


def set_openblas_thread_timeout(
    environ: MutableMapping[str, str] = os.environ,
    loaded_modules: Mapping = sys.modules,
    restart: Callable[[], bool] | None = None,
    thread_count: Callable[[], int] = threading.active_count,
) -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` unless the user has; True when it was set here and takes effect.

    Before NumPy (so OpenBLAS) loads, OpenBLAS reads it when it loads. After, ``restart`` (by
    default ``restart_openblas_workers``) makes the loaded OpenBLAS take it, only while a single
    Python thread runs; where that cannot be done the environment is left as it was."""
    if "OPENBLAS_THREAD_TIMEOUT" in environ:
        return False
    if "numpy" not in loaded_modules:
        environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
        return True
    if thread_count() > 1:
        return False
    environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
    if (restart or restart_openblas_workers)():
        return True
    del environ["OPENBLAS_THREAD_TIMEOUT"]
    return False


def loaded_openblas_paths(maps: str = "/proc/self/maps") -> list[str]:
    """The files of the OpenBLAS libraries loaded in this process (Linux; elsewhere none)."""
    try:
        with open(maps) as handle:
            names = {line.split()[-1] for line in handle if ".so" in line}
    except OSError:
        return []
    return sorted(path for path in names if "openblas" in os.path.basename(path).lower())


def restart_openblas_workers(paths: list[str] | None = None) -> bool:
    """Have each loaded OpenBLAS (pthreads build) re-read its environment and stop its worker
    threads, which its next threaded call starts again with the settings just read. True when at
    least one library was restarted; libraries without these entry points are left alone."""
    restarted = False
    for path in loaded_openblas_paths() if paths is None else paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(library, "openblas_read_env") and hasattr(library, "blas_thread_shutdown_"):
            library.openblas_read_env()
            library.blas_thread_shutdown_()
            restarted = True
    return restarted


def set_gomp_spincount(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set ``GOMP_SPINCOUNT`` unless the user has set it or ``OMP_WAIT_POLICY``; True when set here."""
    if "GOMP_SPINCOUNT" in environ or "OMP_WAIT_POLICY" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
    return True


def openblas_thread_timeout_report(set_here: bool, environ: Mapping[str, str] = os.environ) -> str:
    """One line for ``nnaccel info``: the busy-wait setting OpenBLAS runs with, and who chose it."""
    value = environ.get("OPENBLAS_THREAD_TIMEOUT")
    if set_here:
        return f"{value} (set by nnaccel)"
    if value is not None:
        return f"{value} (set by the user)"
    return (
        "OpenBLAS default 28 (NumPy was imported before nnaccel, and its OpenBLAS could not be "
        "restarted with a shorter busy-wait; import nnaccel first or set "
        f"OPENBLAS_THREAD_TIMEOUT={OPENBLAS_THREAD_TIMEOUT} for faster Numba layered steps)"
    )
