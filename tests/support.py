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


def write_csv(path, header, rows):
    """Write a CSV file at ``path`` (a pathlib.Path): the header, then one line per row; returns path."""
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(value) for value in row) + "\n" for row in rows))
    return path


def colour_points(count: int, radius: float, centre: float, noise: float, seed: int = 0):
    """Three text classes (red, green, blue) around three centres on a circle: (points (2, count),
    names (count,)), class i at angle 2 pi i / 3, offset by ``centre``, with normal ``noise``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = np.arange(count) % 3
    angles = 2 * np.pi * classes / 3
    points = np.stack([np.cos(angles), np.sin(angles)]) * radius + centre + rng.normal(0, noise, (2, count))
    return points, np.array(["red", "green", "blue"])[classes]


def labels(output: str, k: int, m: int, rng):
    """Targets Y (k, m) float64 that suit the output layer: one-hot columns for softmax, 0/1 for
    sigmoid, standard normal for identity."""
    import numpy as np

    if output == "softmax":
        return np.eye(k)[:, rng.integers(0, k, m)]
    if output == "sigmoid":
        return (rng.random((k, m)) > 0.5).astype(float)
    return rng.normal(size=(k, m))


def skip_gpu_items_without_cuda(items) -> None:
    """Mark every collected test that carries the ``gpu`` marker as skipped, with the reason,
    when CuPy cannot run here (used by tests/ and benchmarks/ conftests)."""
    import pytest

    from nnaccel.backends import unavailable_reason

    reason = unavailable_reason("cupy")
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
