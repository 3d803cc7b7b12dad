"""The peers train the same network as nnaccel: one of their steps from nnaccel's initial weights
leaves the same parameters as one step of the NumPy backend (the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.bench.runners import RunnerUnavailable, make_data, make_runner
from nnaccel.bench.spec import NetSpec

NETS = [
    NetSpec((2, 6, 6, 1), "tanh", "sigmoid"),
    NetSpec((4, 8, 3), "relu", "softmax"),
    NetSpec((3, 5, 1), "sigmoid", "identity"),
    NetSpec((3, 5, 4, 2), "identity", "sigmoid"),
]


def _one_step(name: str, net: NetSpec, m: int = 50):
    runner = make_runner(name, net, *make_data(net, m, seed=3, rows=name == "sklearn"), seed=1)
    before = runner.params()
    runner.step()
    runner.synchronize()
    return before, runner.params()


def _assert_same_step(name: str, net: NetSpec):
    reference_before, reference_after = _one_step("numpy", net)
    before, after = _one_step(name, net)
    for expected, got in zip(reference_before, before):
        np.testing.assert_array_equal(got, expected)  # the same starting point
    assert any(not np.allclose(a, b) for a, b in zip(reference_before, reference_after))  # the step moved
    for expected, got in zip(reference_after, after):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("net", NETS, ids=lambda net: f"{net.label}-{net.activation}-{net.output}")
def test_torch_step_equals_the_numpy_step(net):
    pytest.importorskip("torch")
    _assert_same_step("torch-cpu", net)


@pytest.mark.parametrize("net", NETS, ids=lambda net: f"{net.label}-{net.activation}-{net.output}")
def test_sklearn_step_equals_the_numpy_step(net):
    pytest.importorskip("sklearn")
    _assert_same_step("sklearn", net)


def test_sklearn_refuses_what_it_cannot_train():
    pytest.importorskip("sklearn")
    X, Y = make_data(NetSpec((2, 3, 1), "elu", "sigmoid"), 10, rows=True)
    with pytest.raises(RunnerUnavailable, match="no 'elu' activation"):
        make_runner("sklearn", NetSpec((2, 3, 1), "elu", "sigmoid"), X, Y)
    X, Y = make_data(NetSpec((2, 3, 2), "tanh", "softmax"), 10, rows=True)
    with pytest.raises(RunnerUnavailable, match="two classes"):
        make_runner("sklearn", NetSpec((2, 3, 2), "tanh", "softmax"), X, Y)


def test_both_data_layouts_hold_the_same_values():
    net = NetSpec((5, 3, 4), "tanh", "softmax")
    X, Y = make_data(net, 33, seed=9)
    X_rows, Y_rows = make_data(net, 33, seed=9, rows=True)
    assert X.flags.c_contiguous and X_rows.T.flags.c_contiguous
    np.testing.assert_array_equal(X, X_rows)
    np.testing.assert_array_equal(Y, Y_rows)
    assert X.dtype == np.float32 and -1 <= X.min() and X.max() < 1
    np.testing.assert_array_equal(Y.sum(axis=0), 1)  # one-hot columns for softmax


def _steps(name: str, net: NetSpec, optimizer: str, batch=None, steps: int = 3) -> list:
    runner = make_runner(name, net, *make_data(net, 50, seed=3, rows=name == "sklearn"), seed=1, batch=batch, optimizer=optimizer)
    for _ in range(steps):
        runner.step()
    runner.synchronize()
    return runner.params()


OPTIMIZER_NET = NetSpec((3, 5, 4, 3), "tanh", "softmax")


@pytest.mark.parametrize("batch", [None, 8])
@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam", "adamw"])
def test_torch_steps_with_the_matching_optimizer(optimizer, batch):
    """Three steps (with batch 8: three epochs of batches) of torch.optim's class leave nnaccel's parameters."""
    pytest.importorskip("torch")
    reference = _steps("numpy", OPTIMIZER_NET, optimizer, batch)
    plain = _steps("numpy", OPTIMIZER_NET, "sgd", batch)
    assert any(not np.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(reference, plain))  # the optimizer matters
    for expected, got in zip(reference, _steps("torch-cpu", OPTIMIZER_NET, optimizer, batch)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("optimizer, atol", [("momentum", 1e-6), ("nesterov", 1e-6), ("adam", 1e-4)])
def test_sklearn_steps_with_its_matching_solver(optimizer, atol):
    """scikit-learn's Adam adds epsilon where PyTorch adds eps sqrt(1 - beta2^t): a looser bound."""
    pytest.importorskip("sklearn")
    reference = _steps("numpy", OPTIMIZER_NET, optimizer)
    for expected, got in zip(reference, _steps("sklearn", OPTIMIZER_NET, optimizer)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)


def test_sklearn_has_no_adamw():
    pytest.importorskip("sklearn")
    X, Y = make_data(OPTIMIZER_NET, 10, rows=True)
    with pytest.raises(RunnerUnavailable, match="no AdamW"):
        make_runner("sklearn", OPTIMIZER_NET, X, Y, optimizer="adamw")
