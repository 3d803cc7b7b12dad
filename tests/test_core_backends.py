"""Backend selection and the dtype setting, as the contract states them.

Oracles: the contract's rules (NNACCEL_BACKEND, auto = cupy > numba > numpy, explicit names obeyed
or refused, never a silent fallback) and the machine's real state (``find_spec``), with
"Numba not installed" simulated by hiding it from ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nnaccel as nna
from nnaccel import backends
from nnaccel.backends.numpy_backend import NumpyBackend

CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None


@pytest.fixture
def fresh_selection(monkeypatch):
    """No current backend and no cached instances, so the environment is read again."""
    monkeypatch.setattr(backends, "_current", None)
    monkeypatch.setattr(backends, "_instances", {})
    monkeypatch.delenv("NNACCEL_BACKEND", raising=False)
    return monkeypatch


@pytest.fixture
def without_numba(fresh_selection):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "numba" or name.startswith("numba."):
            return None
        return real_find_spec(name, *args, **kwargs)

    fresh_selection.setattr(importlib.util, "find_spec", find_spec)
    return fresh_selection


class FakeNumba(NumpyBackend):
    """Stands in for a Numba backend that can run, whatever the state of the real one."""

    name = "numba"


# --- NNACCEL_BACKEND ------------------------------------------------------------------------------
def test_environment_variable_selects_numpy(fresh_selection):
    fresh_selection.setenv("NNACCEL_BACKEND", "numpy")
    assert nna.get_backend().name == "numpy"
    assert nna.Network([2, 1]).backend.name == "numpy"


@pytest.mark.parametrize("value", ["NumPy", " numpy "])
def test_environment_variable_is_case_and_space_insensitive(fresh_selection, value):
    fresh_selection.setenv("NNACCEL_BACKEND", value)
    assert nna.get_backend().name == "numpy"


@pytest.mark.parametrize("value", [None, "", "auto"])
def test_unset_or_auto_picks_numba_when_it_can_run(fresh_selection, value):
    if value is not None:
        fresh_selection.setenv("NNACCEL_BACKEND", value)
    real_reason = backends.unavailable_reason
    no_gpu = "no CUDA device (simulated)"
    fresh_selection.setattr(
        backends, "unavailable_reason", lambda name: no_gpu if name == "cupy" else None if name == "numba" else real_reason(name)
    )
    backends._instances["numba"] = FakeNumba()
    assert nna.get_backend().name == "numba"


@pytest.mark.parametrize("value", [None, "auto"])
def test_auto_falls_back_to_numpy_without_numba(without_numba, value):
    if value is not None:
        without_numba.setenv("NNACCEL_BACKEND", value)
    if CUPY_INSTALLED:
        pytest.skip("cupy is installed: auto may pick it")
    assert nna.get_backend().name == "numpy"
    assert "numba" not in nna.available_backends()


def test_auto_uses_the_real_numba_backend_when_it_imports(fresh_selection):
    if backends.unavailable_reason("numba") is not None or CUPY_INSTALLED:
        pytest.skip("numba is not installed here, or cupy is")
    assert nna.get_backend().name == "numba"


def test_unknown_name_in_the_environment_lists_valid_names(fresh_selection):
    fresh_selection.setenv("NNACCEL_BACKEND", "tensorflow")
    with pytest.raises(ValueError) as raised:
        nna.get_backend()
    message = str(raised.value)
    assert "tensorflow" in message
    for name in ("numpy", "numba", "cupy", "auto"):
        assert name in message


# --- explicit names -------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["set_backend", "use_backend", "Network", "load_backend"])
def test_unknown_name_raises_value_error_everywhere(call):
    previous = backends._current
    with pytest.raises(ValueError, match=r"unknown backend 'jax'.*numpy, numba, cupy, auto"):
        if call == "set_backend":
            nna.set_backend("jax")
        elif call == "use_backend":
            with nna.use_backend("jax"):
                pass
        elif call == "Network":
            nna.Network([2, 1], backend="jax")
        else:
            backends.load_backend("jax")
    assert backends._current is previous


@pytest.mark.skipif(CUPY_INSTALLED, reason="CuPy is installed here")
def test_cupy_without_cupy_is_refused_with_a_reason(fresh_selection):
    fresh_selection.setenv("NNACCEL_BACKEND", "cupy")
    with pytest.raises(nna.BackendUnavailable) as raised:
        nna.get_backend()
    assert isinstance(raised.value, RuntimeError)
    message = str(raised.value)
    assert "cupy" in message.lower() and "not installed" in message and "pip install" in message
    for attempt in (lambda: nna.set_backend("cupy"), lambda: nna.Network([2, 1], backend="cupy")):
        with pytest.raises(nna.BackendUnavailable, match="CuPy is not installed"):
            attempt()
    assert "cupy" not in nna.available_backends()
    assert backends.unavailable_reason("cupy") is not None


def test_explicit_numba_without_numba_is_refused_not_replaced(without_numba):
    for attempt in (
        lambda: nna.set_backend("numba"),
        lambda: nna.Network([2, 1], backend="numba"),
        lambda: nna.use_backend("numba").__enter__(),
    ):
        with pytest.raises(nna.BackendUnavailable, match=r"Numba is not installed.*pip install numba"):
            attempt()
    without_numba.setenv("NNACCEL_BACKEND", "numba")
    with pytest.raises(nna.BackendUnavailable):
        nna.get_backend()


def test_available_backends_lists_those_that_can_run():
    available = nna.available_backends()
    assert "numpy" in available
    assert available == [name for name in ("numpy", "numba", "cupy") if backends.unavailable_reason(name) is None]
    assert ("cupy" in available) == (CUPY_INSTALLED and backends.unavailable_reason("cupy") is None)


# --- set_backend, use_backend, per-network backends -----------------------------------------------
def test_set_backend_changes_the_current_backend(fresh_selection):
    backends._instances["numba"] = FakeNumba()
    returned = nna.set_backend("numba")
    assert returned is nna.get_backend() and returned.name == "numba"
    assert nna.set_backend("numpy").name == "numpy"
    assert nna.get_backend().name == "numpy"
    assert nna.Network([2, 1]).backend.name == "numpy"


def test_use_backend_restores_the_previous_backend(fresh_selection):
    backends._instances["numba"] = FakeNumba()
    nna.set_backend("numpy")
    with nna.use_backend("numba") as inside:
        assert inside.name == "numba" and nna.get_backend() is inside
        assert nna.Network([2, 1]).backend.name == "numba"
        with nna.use_backend("numpy"):
            assert nna.get_backend().name == "numpy"
        assert nna.get_backend().name == "numba"
    assert nna.get_backend().name == "numpy"


def test_use_backend_restores_even_on_an_exception(fresh_selection):
    backends._instances["numba"] = FakeNumba()
    nna.set_backend("numpy")
    with pytest.raises(KeyError):
        with nna.use_backend("numba"):
            raise KeyError("boom")
    assert nna.get_backend().name == "numpy"
    with pytest.raises(ValueError):  # a refused name leaves the current backend alone
        with nna.use_backend("nope"):
            pass
    assert nna.get_backend().name == "numpy"


def test_network_backend_is_per_network(fresh_selection):
    backends._instances["numba"] = FakeNumba()
    nna.set_backend("numba")
    on_numpy = nna.Network([2, 3, 1], backend="numpy", seed=4)
    on_current = nna.Network([2, 3, 1], seed=4)
    assert on_numpy.backend.name == "numpy" and on_current.backend.name == "numba"
    assert nna.get_backend().name == "numba"  # a per-network choice does not change the current one
    # The same seed gives the same initial weights on every backend.
    for (W_a, b_a), (W_b, b_b) in zip(on_numpy.get_params(), on_current.get_params()):
        np.testing.assert_array_equal(W_a, W_b)
        np.testing.assert_array_equal(b_a, b_b)
    assert nna.Network([2, 1], backend=on_numpy.backend).backend is on_numpy.backend


def test_same_seed_same_weights_on_every_real_backend(backend_name):
    reference = nna.Network([3, 5, 2], activation="relu", output="softmax", seed=12, backend="numpy")
    net = nna.Network([3, 5, 2], activation="relu", output="softmax", seed=12, backend=backend_name)
    assert net.backend.name == backend_name
    for (W_a, b_a), (W_b, b_b) in zip(reference.get_params(), net.get_params()):
        np.testing.assert_array_equal(W_a, W_b)
        np.testing.assert_array_equal(b_a, b_b)
    different = nna.Network([3, 5, 2], activation="relu", output="softmax", seed=13, backend=backend_name)
    assert not np.array_equal(different.get_params()[0][0], net.get_params()[0][0])


# --- dtype ----------------------------------------------------------------------------------------
def test_float32_is_the_default(backend_name, monkeypatch):
    monkeypatch.delenv("NNACCEL_DTYPE", raising=False)
    net = nna.Network([2, 3, 1], backend=backend_name)
    assert net.dtype == np.float32
    X = np.random.default_rng(0).normal(size=(2, 5))  # float64 input is converted
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in net.get_params())
    assert net.forward(X).dtype == np.float32
    _, grads = net.gradients(X, np.ones((1, 5)))
    assert all(dW.dtype == np.float32 for dW, _ in grads)


def test_float64_on_request(backend_name, monkeypatch):
    monkeypatch.delenv("NNACCEL_DTYPE", raising=False)
    net = nna.Network([2, 3, 1], backend=backend_name, dtype="float64")
    X = np.random.default_rng(0).normal(size=(2, 5))
    assert net.dtype == np.float64 and net.forward(X).dtype == np.float64
    assert nna.Network([2, 1], backend=backend_name, dtype=np.float64).dtype == np.float64
    # float64 keeps what float32 rounds away.
    net.set_params([net.get_params()[0], (np.full((1, 3), 1 + 1e-12), np.zeros((1, 1)))])
    assert net.get_params()[1][0][0, 0] == 1 + 1e-12


def test_nnaccel_dtype_environment_variable(monkeypatch):
    monkeypatch.setenv("NNACCEL_DTYPE", "float64")
    assert nna.Network([2, 1], backend="numpy").dtype == np.float64
    assert nna.Network([2, 1], backend="numpy", dtype="float32").dtype == np.float32  # explicit wins
    monkeypatch.setenv("NNACCEL_DTYPE", "float16")
    with pytest.raises(ValueError, match=r"unsupported dtype 'float16' \(from NNACCEL_DTYPE\); expected one of float32, float64"):
        nna.Network([2, 1], backend="numpy")
    with pytest.raises(ValueError, match="int8"):
        nna.Network([2, 1], backend="numpy", dtype="int8")


# --- repr -----------------------------------------------------------------------------------------
def test_backend_repr_names_the_backend_its_device_and_settings():
    assert repr(nna.Network([2, 1], backend="numpy").backend) == "<nnaccel backend 'numpy' on CPU>"
    if "numba" in nna.available_backends():
        from nnaccel.backends.numba_backend import NumbaBackend

        text = repr(NumbaBackend(fused_max_width=0, block=256))
        assert text.startswith("<nnaccel backend 'numba' on CPU (fused_max_width=0, block=256, threads=")
        assert " at 0x" not in repr(nna.Network([2, 1], backend="numba").backend)


@pytest.mark.gpu
def test_cupy_backend_repr_names_the_gpu():
    text = repr(nna.Network([2, 1], backend="cupy").backend)
    assert text.startswith("<nnaccel backend 'cupy' on GPU ") and text.endswith("(fused=True)>")
