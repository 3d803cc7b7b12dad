"""How long the idle worker threads of OpenBLAS wait busily, set before NumPy loads OpenBLAS.

OpenBLAS's workers busy-wait for 2^28 clock ticks (about 0.1 s) after every call before they sleep.
On a machine with few cores a waiting worker takes a core from whatever runs next: the Numba
backend's parallel kernel after a matmul ran at one thread's speed on 2 cores (measured: the
784-256-10 output pass took 29 ms right after a matmul against 14.5 ms alone). 2^20 ticks (under a
millisecond) still keeps back-to-back matmuls fast.

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` once, when it loads (with NumPy). So this module, imported
first by ``nnaccel/__init__.py``, sets it only if NumPy is not loaded yet (as when the ``nnaccel``
command runs, or a script imports nnaccel before NumPy) and the user has not set it. It imports
nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

OPENBLAS_THREAD_TIMEOUT = "20"  # busy-wait 2^20 ticks (about 0.4 ms at 2.6 GHz) before sleeping


def set_openblas_thread_timeout(
    environ: MutableMapping[str, str] = os.environ, loaded_modules: Mapping = sys.modules
) -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` unless the user has or NumPy (so OpenBLAS) is already loaded;
    True when it was set here."""
    if "OPENBLAS_THREAD_TIMEOUT" in environ or "numpy" in loaded_modules:
        return False
    environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
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
