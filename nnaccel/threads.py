"""How long the idle worker threads of the thread pools behind the backends busy-wait.

Idle workers that keep spinning take cores from whatever runs next, which on a machine with few
cores is the other library's work. Both settings below are environment variables that the pool
reads once, so they are set before it starts, and never over a value the user has set.

* OpenBLAS's workers busy-wait for 2^28 clock ticks (about 0.1 s) after every call before they
  sleep. The Numba backend's parallel kernel after a matmul then ran at one thread's speed on 2
  cores (measured: the 784-256-10 output pass took 29 ms right after a matmul against 14.5 ms
  alone). 2^20 ticks (under a millisecond) still keeps back-to-back matmuls fast. OpenBLAS reads
  ``OPENBLAS_THREAD_TIMEOUT`` when it loads (with NumPy), so ``nnaccel/__init__.py`` calls
  ``set_openblas_thread_timeout`` first, and it acts only if NumPy is not loaded yet (as when the
  ``nnaccel`` command runs, or a script imports nnaccel before NumPy).
* libgomp (Numba's "omp" threading layer) keeps idle workers busy-waiting for about 300,000 spins
  (several ms) after every parallel loop; they took the cores from the OpenBLAS matmul that follows
  in the layered pass (measured on 2 cores: layered steps 3-40% slower). A short spin still keeps
  back-to-back kernels fast (mini-batches). libgomp reads ``GOMP_SPINCOUNT`` when Numba starts
  its threads (the first parallel call), so the Numba backend calls ``set_gomp_spincount`` when it
  is imported.

This module imports nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

OPENBLAS_THREAD_TIMEOUT = "20"  # busy-wait 2^20 ticks (about 0.4 ms at 2.6 GHz) before sleeping
GOMP_SPINCOUNT = "3000"  # spins (microseconds) before an idle libgomp worker sleeps


def set_openblas_thread_timeout(environ: MutableMapping[str, str] = os.environ, loaded_modules: Mapping = sys.modules) -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` unless the user has or NumPy (so OpenBLAS) is already loaded;
    True when it was set here."""
    if "OPENBLAS_THREAD_TIMEOUT" in environ or "numpy" in loaded_modules:
        return False
    environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
    return True


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
        "OpenBLAS default 28 (NumPy was imported before nnaccel; import nnaccel first or set "
        f"OPENBLAS_THREAD_TIMEOUT={OPENBLAS_THREAD_TIMEOUT} for faster Numba layered steps)"
    )
