"""The pytest-benchmark suite's report: one table per workload, with every backend in it.

pytest-benchmark prints one table per benchmark group, so the groups must be the workloads
(network and m), never one per backend. Read from a collection of benchmarks/ in a subprocess
(nothing is timed), through a tiny plugin that prints each benchmark's group.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = """
def pytest_collection_finish(session):
    for item in session.items:
        marker = item.get_closest_marker("benchmark")
        print("GROUP", item.callspec.params["backend"], "|", marker.kwargs.get("group") if marker else None)
"""


def benchmark_groups(tmp_path) -> dict[str, list[str]]:
    """group -> the backends whose benchmarks are in it, from collecting benchmarks/."""
    (tmp_path / "print_groups.py").write_text(PLUGIN)
    environment = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    environment.pop("NNACCEL_BENCH_TINY", None)  # the full sizes, the ones the report shows
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "--collect-only", "-q", "-p", "print_groups"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    groups = collections.defaultdict(list)
    for line in result.stdout.splitlines():
        if line.startswith("GROUP "):
            backend, group = line[len("GROUP ") :].split(" | ")
            groups[group].append(backend)
    return groups


def test_each_workload_is_one_table_with_every_backend(tmp_path):
    groups = benchmark_groups(tmp_path)
    assert set(groups) == {"2-6-6-1 m=10000", "2-6-6-1 m=100000", "2-6-6-1 m=1000000", "784-256-10 m=1000", "784-256-10 m=10000"}
    for group, backends in groups.items():
        assert sorted(backends) == ["cupy", "numba", "numpy", "sklearn", "torch-cpu"], group
