"""The backend registry: names, availability, and the current backend.

``NNACCEL_BACKEND`` = numpy | numba | cupy | auto (unset means auto). ``auto`` picks cupy when a CUDA
device is usable, else numba, else numpy. An explicit name is obeyed or refused, never replaced.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Iterator

from ..errors import BackendUnavailable
from .base import Backend

BACKEND_NAMES = ("numpy", "numba", "cupy")
VALID_NAMES = BACKEND_NAMES + ("auto",)
ENVIRONMENT_VARIABLE = "NNACCEL_BACKEND"

# Where each backend's class lives; modules are imported only when the backend is first used, so
# `import nnaccel` never pays for Numba's or CuPy's import.
_CLASSES = {
    "numpy": ("nnaccel.backends.numpy_backend", "NumpyBackend"),
    "numba": ("nnaccel.backends.numba_backend", "NumbaBackend"),
    "cupy": ("nnaccel.backends.cupy_backend", "CupyBackend"),
}

_instances: dict[str, Backend] = {}
_current: Backend | None = None  # the one piece of global mutable state: the current backend


def check_name(name: str) -> str:
    """Return ``name`` normalised, or raise ValueError listing the valid names."""
    if not isinstance(name, str) or name.strip().lower() not in VALID_NAMES:
        raise ValueError(f"unknown backend {name!r}; valid names are {', '.join(VALID_NAMES)}")
    return name.strip().lower()


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here, with the fix; None when it can."""
    name = check_name(name)
    if name == "numpy":
        return None
    if name == "numba":
        if importlib.util.find_spec("numba") is None:
            return "Numba is not installed; install it with `pip install numba`"
        return None
    return _cupy_unavailable_reason()


def _cupy_unavailable_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return (
            "CuPy is not installed; on a machine with an NVIDIA GPU install it with "
            "`pip install 'nnaccel[cuda12]'` or `pip install 'nnaccel[cuda13]'` (matching the CUDA driver)"
        )
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy raises several driver/runtime error types here
        return f"CuPy is installed but no usable CUDA device was found ({type(error).__name__}: {error}){_cuda_hint(error)}"
    if count < 1:
        return "CuPy is installed but this machine has no CUDA device" + _cuda_hint(None)
    return None


def _nvidia_driver_present() -> bool:
    """True when this machine shows an NVIDIA kernel driver (Linux: /proc/driver/nvidia, /dev/nvidia0)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def _cuda_hint(error, driver_present: bool | None = None) -> str:
    """What to do about a CUDA error from CuPy's first call."""
    text = str(error).lower()
    if driver_present is None:
        driver_present = _nvidia_driver_present()
    if ("insufficient" in text or "driver version" in text) and not driver_present:
        # CUDA reports a missing driver as an "insufficient" one: reinstalling CuPy cannot help
        return "; this machine has no usable NVIDIA GPU or driver: run on a machine with one, or use the numba or numpy backend"
    if "insufficient" in text or "driver version" in text:
        return (
            "; the NVIDIA driver is older than the CUDA that this CuPy build needs: install the CuPy "
            "build for the driver's CUDA (`pip install 'nnaccel[cuda12]'` for a CUDA 12 driver)"
        )
    if error is not None and ("libcuda" in text or "shared object" in text or "no module" in text):
        return "; the NVIDIA driver library (libcuda) or CuPy's CUDA libraries could not be loaded: reinstall CuPy or the driver"
    return "; check that `nvidia-smi` lists a GPU and that CUDA_VISIBLE_DEVICES does not hide it"


def available_backends() -> list[str]:
    """The backends that can run on this machine, in the order ``auto`` prefers them last to first."""
    return [name for name in BACKEND_NAMES if unavailable_reason(name) is None]


def load_backend(name: str) -> Backend:
    """The backend object for ``name`` (auto resolved); raises BackendUnavailable if it cannot run."""
    name = check_name(name)
    if name == "auto":
        return _load_auto()
    if name in _instances:
        return _instances[name]
    reason = unavailable_reason(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
    module_name, class_name = _CLASSES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendUnavailable(
            f"backend {name!r} cannot run here: importing it failed ({error}); "
            "reinstall it with `pip install --force-reinstall nnaccel`"
        ) from error
    _instances[name] = getattr(module, class_name)()
    return _instances[name]


def _load_auto() -> Backend:
    for name in ("cupy", "numba"):
        if unavailable_reason(name) is None:
            try:
                return load_backend(name)
            except BackendUnavailable:
                continue  # auto means "the best that works", so a broken install falls through
    return load_backend("numpy")


def get_backend() -> Backend:
    """The current backend: the last ``set_backend``, else ``NNACCEL_BACKEND``, else auto."""
    global _current
    if _current is None:
        _current = load_backend(os.environ.get(ENVIRONMENT_VARIABLE, "auto") or "auto")
    return _current


def set_backend(name: str) -> Backend:
    """Make ``name`` the current backend and return it."""
    global _current
    _current = load_backend(name)
    return _current


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """``with use_backend("numba"): ...`` runs the block on that backend, then restores the previous one."""
    global _current
    previous = _current
    backend = load_backend(name)
    _current = backend
    try:
        yield backend
    finally:
        _current = previous


def resolve(backend: str | Backend | None) -> Backend:
    """A backend argument as users pass it: a name, a backend object, or None for the current one."""
    if backend is None:
        return get_backend()
    if isinstance(backend, Backend):
        return backend
    return load_backend(backend)
