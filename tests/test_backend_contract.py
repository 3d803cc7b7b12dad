"""Every backend against the contract of ``nnaccel.backends.base``, as thinc checks its ``Ops``.

A backend implements every primitive (the base only raises ``NotImplementedError``), keeps the
base's parameter names for primitives and hooks alike (callers pass them by name), and each hook
answers as documented. The CuPy backend's class is checked without a GPU (its module imports
CuPy only when constructed); its behaviour is tested on a GPU elsewhere.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from nnaccel.backends import base
from nnaccel.backends.array_api_backend import ArrayApiBackend
from nnaccel.backends.cupy_backend import CupyBackend
from nnaccel.backends.numpy_backend import NumpyBackend
from nnaccel.core.architecture import Architecture

CLASSES = [NumpyBackend, ArrayApiBackend, CupyBackend]
try:
    from nnaccel.backends.numba_backend import NumbaBackend

    CLASSES.append(NumbaBackend)
except ImportError:  # Numba not installed: its class cannot be imported
    pass


def parameter_names(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize("backend_class", CLASSES, ids=lambda cls: cls.__name__)
def test_every_primitive_is_implemented(backend_class):
    missing = [name for name in base.PRIMITIVES if getattr(backend_class, name) is getattr(base.Backend, name)]
    assert missing == [], f"{backend_class.__name__} leaves {missing} to the base, which raises"


@pytest.mark.parametrize("backend_class", CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("name", base.PRIMITIVES + base.HOOKS)
def test_signatures_keep_the_base_names(backend_class, name):
    assert parameter_names(getattr(backend_class, name)) == parameter_names(getattr(base.Backend, name))


def test_the_contract_lists_every_public_method_of_the_base():
    public = {name for name, value in vars(base.Backend).items() if inspect.isfunction(value) and not name.startswith("_")}
    passes = {"forward_hidden"}  # built from the primitives, not for backends to replace
    assert public - passes == set(base.PRIMITIVES) | set(base.HOOKS)


def test_the_base_primitives_raise_and_hooks_answer():
    backend = base.Backend()
    with pytest.raises(NotImplementedError):
        backend.asarray(np.zeros(1), np.float32)
    architecture = Architecture.build([2, 3, 1], "tanh", "sigmoid")
    assert backend.memory_info() is None and backend.threading_report() is None
    assert backend.uses_fused_pass(architecture, np.float32) is False


def test_the_default_stream_moves_chunks_in_order():
    backend = NumpyBackend()
    chunks = [(np.full((2, 3), index, dtype=np.float64), np.full((1, 3), index, dtype=np.float64)) for index in range(3)]
    moved = list(backend.stream_chunks(iter(chunks), np.float32))
    assert [X[0, 0] for X, _ in moved] == [0, 1, 2]
    assert all(X.dtype == np.float32 and Y.dtype == np.float32 for X, Y in moved)


def test_the_numba_hooks_answer():
    numba_backend = pytest.importorskip("nnaccel.backends.numba_backend")
    backend = numba_backend.NumbaBackend()
    report = backend.threading_report()
    assert report["threads"] >= 1 and report["version"]
    assert backend.uses_fused_pass(Architecture.build([2, 6, 6, 1], "tanh", "sigmoid"))
    assert not backend.uses_fused_pass(Architecture.build([784, 256, 10], "relu", "softmax"))
