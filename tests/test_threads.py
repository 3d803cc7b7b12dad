"""The thread pools' busy-wait settings: OpenBLAS's set by ``import nnaccel`` only before NumPy loads,
libgomp's by the Numba backend; never over the user's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nnaccel.threads import (
    GOMP_SPINCOUNT,
    OPENBLAS_THREAD_TIMEOUT,
    openblas_thread_timeout_report,
    set_gomp_spincount,
    set_openblas_thread_timeout,
)


def test_set_unless_the_user_set_it_and_after_numpy_only_when_openblas_restarts():
    environ: dict = {}
    assert set_openblas_thread_timeout(environ, {}) is True
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": OPENBLAS_THREAD_TIMEOUT}
    environ = {"OPENBLAS_THREAD_TIMEOUT": "28"}
    assert set_openblas_thread_timeout(environ, {}) is False and environ["OPENBLAS_THREAD_TIMEOUT"] == "28"
    numpy_loaded = {"numpy": object()}
    seen: list = []

    def restart() -> bool:
        seen.append(dict(environ))  # the variable is set before OpenBLAS re-reads it
        return True

    environ = {}
    assert set_openblas_thread_timeout(environ, numpy_loaded, restart, lambda: 1) is True
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": OPENBLAS_THREAD_TIMEOUT} == seen[0]
    environ = {}
    assert set_openblas_thread_timeout(environ, numpy_loaded, lambda: False, lambda: 1) is False and environ == {}
    environ = {}
    assert set_openblas_thread_timeout(environ, numpy_loaded, restart, lambda: 2) is False and environ == {}
    assert len(seen) == 1  # not restarted while another Python thread may be inside a BLAS call


def test_gomp_spincount_is_set_only_when_the_user_set_no_spin_policy():
    environ: dict = {}
    assert set_gomp_spincount(environ) is True and environ == {"GOMP_SPINCOUNT": GOMP_SPINCOUNT}
    for chosen in ({"GOMP_SPINCOUNT": "300000"}, {"OMP_WAIT_POLICY": "ACTIVE"}):
        environ = dict(chosen)
        assert set_gomp_spincount(environ) is False and environ == chosen


def test_report_says_who_chose_the_setting():
    assert "set by nnaccel" in openblas_thread_timeout_report(True, {"OPENBLAS_THREAD_TIMEOUT": "20"})
    assert "set by the user" in openblas_thread_timeout_report(False, {"OPENBLAS_THREAD_TIMEOUT": "24"})
    assert "import nnaccel first" in openblas_thread_timeout_report(False, {})


def _run(code: str, **variables: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    environment.update(variables)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


REPORT = (
    "import json, os; from nnaccel.cli.info import collect; "
    "print(json.dumps([os.environ.get('OPENBLAS_THREAD_TIMEOUT'), collect()['threads']['OPENBLAS_THREAD_TIMEOUT']]))"
)


def test_import_order_decides_in_a_fresh_process():
    value, report = _run("import nnaccel; " + REPORT)
    assert value == OPENBLAS_THREAD_TIMEOUT and "set by nnaccel" in report
    value, report = _run("import numpy, nnaccel; " + REPORT)
    assert value == OPENBLAS_THREAD_TIMEOUT and "set by nnaccel" in report
    value, report = _run("import nnaccel; " + REPORT, OPENBLAS_THREAD_TIMEOUT="26")
    assert value == "26" and "set by the user" in report


RESTART = """
import json, os, numpy as np
from nnaccel.threads import loaded_openblas_paths, restart_openblas_workers
def threads():
    return len(os.listdir("/proc/self/task"))
rng = np.random.default_rng(0)
a, b = rng.random((600, 600)), rng.random((600, 600))
expected = a @ b
running = threads()
os.environ["OPENBLAS_THREAD_TIMEOUT"] = "20"
restarted = restart_openblas_workers()
stopped = threads()
same = bool(np.array_equal(a @ b, expected))
print(json.dumps([bool(loaded_openblas_paths()), restarted, running, stopped, threads(), same]))
"""


def test_restarted_openblas_stops_its_workers_then_starts_them_again_and_computes_the_same():
    """After NumPy started OpenBLAS's workers, a restart stops them (fewer threads), the next matmul
    starts them again and gives the same product."""
    if not sys.platform.startswith("linux"):
        pytest.skip("finds the loaded OpenBLAS through /proc/self/maps (Linux)")
    found, restarted, running, stopped, again, same = _run(RESTART, OPENBLAS_NUM_THREADS="2")
    if not found:
        pytest.skip("this NumPy is not built on OpenBLAS")
    assert restarted and same
    assert stopped < running and again == running
