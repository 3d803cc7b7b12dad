"""``nnaccel info``: version, backends and why any cannot run, devices, BLAS and threads."""

from __future__ import annotations

import os
import platform

import numpy as np


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="show the version, backends, devices, BLAS and threads")
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
        "blas": _blas(),
    }
    return report


def _blas() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "install threadpoolctl to see the BLAS library and its threads"}]
    return [
        {key: pool.get(key) for key in ("internal_api", "version", "num_threads", "architecture")}
        for pool in threadpool_info()
    ]


def run(args) -> int:
    report = collect()
    print(f"nnaccel {report['nnaccel']}  (Python {report['python']}, NumPy {report['numpy']})")
    print(f"machine: {report['machine']}")
    print("backends:")
    for name, status in report["backends"].items():
        print(f"  {name:6s} {status}")
    print("BLAS:")
    for pool in report["blas"]:
        print("  " + ", ".join(f"{key}={value}" for key, value in pool.items()))
    return 0
