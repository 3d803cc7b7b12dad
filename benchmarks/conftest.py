"""The pytest-benchmark suite: one training step per benchmark. Each workload (a network and m) is
one benchmark group, so the report has one table per workload with a row for every backend and
peer library, fastest first:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest benchmarks/

(Adding ``param:backend`` to ``--benchmark-group-by`` would split each table into one-row tables.)
Tiny sizes, for a quick smoke test (CI): ``NNACCEL_BENCH_TINY=1`` or ``--bench-tiny``, e.g.

    NNACCEL_BENCH_TINY=1 pytest benchmarks/ --benchmark-disable -q
"""

from __future__ import annotations

import os

import pytest
from support import skip_gpu_items_without_cuda

from nnaccel.backends import BACKEND_NAMES
from nnaccel.bench.spec import parse_nets

# network -> the m values it is timed at
SIZES = {"2-6-6-1": [10_000, 100_000, 1_000_000], "784-256-10": [1_000, 10_000]}
TINY_SIZES = {"2-6-6-1": [256], "784-256-10": [64]}
PEERS = ("torch-cpu", "sklearn")
TINY_VARIABLE = "NNACCEL_BENCH_TINY"


def pytest_addoption(parser):
    parser.addoption("--bench-tiny", action="store_true", help=f"tiny sizes for a smoke test (or {TINY_VARIABLE}=1)")


def tiny(config) -> bool:
    return config.getoption("--bench-tiny") or os.environ.get(TINY_VARIABLE, "") not in ("", "0")


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        sizes = TINY_SIZES if tiny(metafunc.config) else SIZES
        cases = [(parse_nets(label)[0], m) for label, ms in sizes.items() for m in ms]
        metafunc.parametrize("case", [workload(net, m) for net, m in cases])
    if "backend" in metafunc.fixturenames:
        params = []
        for name in BACKEND_NAMES + PEERS:
            marks = [pytest.mark.gpu] if name == "cupy" else []
            params.append(pytest.param(name, marks=marks, id=name))
        metafunc.parametrize("backend", params)


def workload(net, m):
    """The ``case`` parameter for ``net`` at ``m`` examples, in a benchmark group of its own: the
    backends (parametrised separately) are then the rows of its table."""
    return pytest.param((net, m), id=f"{net.label}-m{m}", marks=pytest.mark.benchmark(group=f"{net.label} m={m}"))


def pytest_collection_modifyitems(config, items):
    skip_gpu_items_without_cuda(items)
