"""The pytest-benchmark suite: one training step per benchmark, grouped by network and m, with the
backend (or peer library) as a parameter, so backends compare side by side:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest benchmarks/ --benchmark-group-by=group,param:backend

(``--benchmark-group-by=group`` alone puts every backend of one network and m in one table.)
Tiny sizes, for a quick smoke test (CI): ``NNACCEL_BENCH_TINY=1`` or ``--bench-tiny``, e.g.

    NNACCEL_BENCH_TINY=1 pytest benchmarks/ --benchmark-disable -q
"""

from __future__ import annotations

import os

import pytest

from nnaccel.backends import BACKEND_NAMES
from nnaccel.bench.spec import parse_nets
from support import skip_gpu_items_without_cuda

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
        metafunc.parametrize("case", cases, ids=[f"{net.label}-m{m}" for net, m in cases])
    if "backend" in metafunc.fixturenames:
        params = []
        for name in BACKEND_NAMES + PEERS:
            marks = [pytest.mark.gpu] if name == "cupy" else []
            params.append(pytest.param(name, marks=marks, id=name))
        metafunc.parametrize("backend", params)


def pytest_collection_modifyitems(config, items):
    skip_gpu_items_without_cuda(items)
