"""Helpers shared by test modules (``tests/`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import contextlib
import io


def cli(*arguments) -> tuple[int, str, str]:
    """Run ``nnaccel`` in this process: (exit status, stdout, stderr)."""
    from nnaccel.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(argument) for argument in arguments])
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()
