"""The ``nnaccel`` command itself: usage with no command, ``--version``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from support import cli

import nnaccel as nna


def test_no_command_prints_the_usage_and_the_commands_on_stderr():
    code, out, err = cli()
    assert code == 2 and out == ""
    assert err.startswith("usage: nnaccel")
    error = err.strip().splitlines()[-1]
    assert error.startswith("nnaccel: error: no command given")
    for command in ("info", "train", "predict", "export", "bench", "make-data"):
        assert command in error


def test_version_matches_the_package_metadata_and_nnaccel_version():
    code, out, err = cli("--version")
    assert code == 0 and err == ""
    assert out.strip() == f"nnaccel {version('nnaccel')}"
    assert version("nnaccel") == nna.__version__


def test_python_m_nnaccel_prints_usage_without_a_command():
    # a fresh process through __main__, not main() called in this one
    result = subprocess.run([sys.executable, "-m", "nnaccel"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage: nnaccel" in result.stderr and "Traceback" not in result.stderr
