"""The thread pools' busy-wait settings: OpenBLAS's set by ``import nnaccel`` only before NumPy loads,
libgomp's by the Numba backend; never over the user's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nnaccel.threads import (
    GOMP_SPINCOUNT,
    OPENBLAS_THREAD_TIMEOUT,
    openblas_thread_timeout_report,
    set_gomp_spincount,
    set_openblas_thread_timeout,
)


def test_set_only_when_numpy_is_not_loaded_and_the_user_set_nothing():
    environ: dict = {}
    assert set_openblas_thread_timeout(environ, {}) is True
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": OPENBLAS_THREAD_TIMEOUT}
    environ = {"OPENBLAS_THREAD_TIMEOUT": "28"}
    assert set_openblas_thread_timeout(environ, {}) is False and environ["OPENBLAS_THREAD_TIMEOUT"] == "28"
    environ = {}
    assert set_openblas_thread_timeout(environ, {"numpy": object()}) is False and environ == {}


def test_gomp_spincount_is_set_only_when_the_user_set_no_spin_policy():
    environ: dict = {}
    assert set_gomp_spincount(environ) is True and environ == {"GOMP_SPINCOUNT": GOMP_SPINCOUNT}
    for chosen in ({"GOMP_SPINCOUNT": "300000"}, {"OMP_WAIT_POLICY": "ACTIVE"}):
        environ = dict(chosen)
        assert set_gomp_spincount(environ) is False and environ == chosen


def test_report_says_who_chose_the_setting():
    assert "set by nnaccel" in openblas_thread_timeout_report(True, {"OPENBLAS_THREAD_TIMEOUT": "20"})
    assert "set by the user" in openblas_thread_timeout_report(False, {"OPENBLAS_THREAD_TIMEOUT": "24"})
    assert "imported before nnaccel" in openblas_thread_timeout_report(False, {})


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
    assert value is None and "import nnaccel first" in report
    value, report = _run("import nnaccel; " + REPORT, OPENBLAS_THREAD_TIMEOUT="26")
    assert value == "26" and "set by the user" in report
