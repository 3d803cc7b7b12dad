"""Shared fixtures: every test that takes ``backend_name`` runs on each backend that can run here."""

from __future__ import annotations

import pytest
from support import skip_gpu_items_without_cuda

from nnaccel.backends import BACKEND_NAMES, unavailable_reason


def pytest_collection_modifyitems(config, items):
    skip_gpu_items_without_cuda(items)


def _backend_params():
    params = []
    for name in BACKEND_NAMES:
        marks = [pytest.mark.gpu] if name == "cupy" else []
        reason = unavailable_reason(name)
        if reason is not None and name != "cupy":
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_backend_params())
def backend_name(request) -> str:
    """The name of a backend that can run here (cupy only with a GPU)."""
    return request.param


@pytest.fixture(autouse=True)
def _restore_backend():
    """Tests may switch the current backend; put it back afterwards."""
    from nnaccel import backends

    previous = backends._current
    yield
    backends._current = previous
