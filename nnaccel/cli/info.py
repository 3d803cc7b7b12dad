"""``nnaccel info``: version, backends and why any cannot run, devices, BLAS and threads; with
``--model FILE``, what a model file holds instead (layers, activations, parameters, preprocessing,
training)."""

from __future__ import annotations

import os
import platform

import numpy as np

from .. import OPENBLAS_THREAD_TIMEOUT_SET_HERE
from ..threads import openblas_thread_timeout_report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="show the version, backends, devices, BLAS and threads")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--model",
        metavar="FILE.npz",
        help="describe this model file instead: layers, activations, parameter count, preprocessing, what trained it",
    )
    parser.set_defaults(run=run)


def collect() -> dict:
    """Everything ``nnaccel info`` prints, as a dict (also used by ``nnaccel bench --json``)."""
    from .. import __version__
    from ..backends import BACKEND_NAMES, unavailable_reason

    report = {
        "nnaccel": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs",
        "backends": {name: unavailable_reason(name) or "available" for name in BACKEND_NAMES},
        "devices": _devices(),
        "threads": _threads(),
        "numba": _numba(),
        "blas": _blas(),
    }
    return report


def _numba() -> dict | None:
    """Numba's version, threading layer and thread count (NUMBA_NUM_THREADS), or why it cannot run."""
    from ..backends import unavailable_reason

    reason = unavailable_reason("numba")
    if reason is not None:
        return {"error": reason}
    try:
        from ..backends import load_backend  # imports numba: only when asked

        return load_backend("numba").threading_report()
    except Exception as error:  # a broken Numba install is worth showing, not a crash of `info`
        return {"error": f"{type(error).__name__}: {error}"}


def _devices() -> list[dict]:
    """The CPU, then each CUDA device CuPy can see."""
    devices = [{"kind": "cpu", "name": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count()}]
    from ..backends import unavailable_reason

    if unavailable_reason("cupy") is not None:
        return devices
    try:
        import cupy

        for index in range(cupy.cuda.runtime.getDeviceCount()):
            properties = cupy.cuda.runtime.getDeviceProperties(index)
            name = properties["name"]
            devices.append(
                {
                    "kind": "cuda",
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "memory_gib": round(properties["totalGlobalMem"] / 2**30, 1),
                    "compute_capability": f"{properties['major']}.{properties['minor']}",
                }
            )
    except Exception as error:  # a driver problem is worth showing, not a crash of `info`
        devices.append({"kind": "cuda", "error": f"{type(error).__name__}: {error}"})
    return devices


def _threads() -> dict:
    """Thread settings that change CPU speed: what the process may use and the usual variables."""
    threads: dict[str, object] = {
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    }
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if os.environ.get(variable):
            threads[variable] = os.environ[variable]
    threads["OPENBLAS_THREAD_TIMEOUT"] = openblas_thread_timeout_report(OPENBLAS_THREAD_TIMEOUT_SET_HERE)
    return threads


def _blas() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "install threadpoolctl to see the BLAS library and its threads"}]
    return [
        {key: pool.get(key) for key in ("internal_api", "version", "num_threads", "architecture")} for pool in threadpool_info()
    ]


def describe_model(path: str) -> int:
    from ..data.files import check_readable
    from ..nn.model import load_model

    check_readable(path, "model file")
    print(load_model(path, backend="numpy").summary())
    return 0


def run(args) -> int:
    if getattr(args, "model", None):
        return describe_model(args.model)
    report = collect()
    if getattr(args, "json", False):
        import json

        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"nnaccel {report['nnaccel']}  (Python {report['python']}, NumPy {report['numpy']})")
    print(f"machine: {report['machine']}")
    print("backends:")
    for name, status in report["backends"].items():
        print(f"  {name:6s} {status}")
    print("devices:")
    for device in report["devices"]:
        print("  " + ", ".join(f"{key}={value}" for key, value in device.items()))
    print("threads: " + ", ".join(f"{key}={value}" for key, value in report["threads"].items()))
    print("numba: " + ", ".join(f"{key}={value}" for key, value in report["numba"].items()))
    print("BLAS:")
    for pool in report["blas"]:
        print("  " + ", ".join(f"{key}={value}" for key, value in pool.items()))
    return 0
