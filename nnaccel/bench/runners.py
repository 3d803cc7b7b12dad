"""A runner turns (network, data) into a ``step()`` the timer calls: one full training step each.

For an nnaccel backend the step is one step of the network's training plan (forward + backward +
the optimizer's update) on data that is already on the backend's device; peers (peers.py) do the
same work in other libraries. ``optimizer`` is a name of ``nnaccel.optim.OPTIMIZERS`` with its
defaults (momentum 0.9; Adam's betas 0.9, 0.999, eps 1e-8; AdamW's weight decay 0.01).
"""

from __future__ import annotations

import numpy as np

from ..backends import BACKEND_NAMES
from . import peers
from .runner_types import DTYPE, LEARNING_RATE, Runner, RunnerUnavailable, blas_threads, mini_batch_timed
from .spec import NetSpec

# Runner and RunnerUnavailable live in runner_types (peers.py needs them too); callers of
# make_runner take them from here as well.
__all__ = ["DTYPE", "LEARNING_RATE", "Runner", "RunnerUnavailable", "backend_runner", "make_data", "make_runner"]


def make_data(net: NetSpec, m: int, seed: int = 0, rows: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's data, the same for every runner: X (n, m) uniform in [-1, 1) and Y
    (outputs, m) labels that suit the output layer, float32, from ``seed``.

    With ``rows=True`` X holds the same values but is the transposed view of a C-ordered (m, n)
    array, the layout scikit-learn takes, so no runner needs a second copy of the data.
    """
    rng = np.random.default_rng(seed)
    n, outputs = net.layers[0], net.layers[-1]
    X = np.empty((m, n), dtype=DTYPE).T if rows else np.empty((n, m), dtype=DTYPE)
    for feature in range(n):  # one draw per feature, so both layouts get the same values
        X[feature] = rng.random(m, dtype=DTYPE)
    X *= 2
    X -= 1
    if net.output == "softmax":
        Y = np.zeros((outputs, m), dtype=DTYPE)
        Y[rng.integers(0, outputs, m), np.arange(m)] = 1  # one-hot columns
    elif net.output == "sigmoid":
        Y = (rng.random((outputs, m), dtype=DTYPE) < 0.5).astype(DTYPE)
    else:
        Y = rng.standard_normal((outputs, m), dtype=DTYPE)
    return X, Y


def make_runner(
    name: str, net: NetSpec, X: np.ndarray, Y: np.ndarray, seed: int = 0, batch: int | None = None, optimizer: str = "sgd"
) -> Runner:
    """The runner ``name`` (a backend or a peer) for ``net`` on X (n, m), Y (outputs, m), updating
    with ``optimizer``. With ``batch`` (fewer than m) its step is one epoch of mini-batch steps
    over the m examples."""
    batch = None if batch is None or batch >= X.shape[1] else int(batch)
    if name in BACKEND_NAMES:
        return backend_runner(name, net, X, Y, seed, batch, optimizer)
    if name == "torch-cpu":
        return peers.torch_runner(net, X, Y, seed, device="cpu", batch=batch, optimizer=optimizer)
    if name == "torch-cuda":
        return peers.torch_runner(net, X, Y, seed, device="cuda", batch=batch, optimizer=optimizer)
    if name == "sklearn":
        if batch is not None:
            raise RunnerUnavailable("the scikit-learn runner times full-batch steps only (no --batch)")
        return peers.sklearn_runner(net, X, Y, seed, optimizer=optimizer)
    raise ValueError(f"unknown runner {name!r}")


def backend_runner(
    name: str, net: NetSpec, X: np.ndarray, Y: np.ndarray, seed: int = 0, batch: int | None = None, optimizer: str = "sgd"
) -> Runner:
    """An nnaccel backend's training step with ``optimizer`` (with ``batch``: one epoch of
    mini-batch steps, in the shuffled order of epoch 0), through the network's plan, which keeps
    the optimizer's state from step to step. Raises BackendUnavailable if the backend cannot run."""
    from ..nn.network import Network
    from ..nn.training import epoch_order
    from ..optim import Hyperparameters

    network = Network(list(net.layers), net.activation, net.output, seed=seed, backend=name, dtype=DTYPE)
    backend = network.backend
    plan = network.plan(batch, optimizer)
    data = plan.load(X, Y)
    order = epoch_order(seed, 0, X.shape[1]) if batch is not None else None
    hyper = Hyperparameters(LEARNING_RATE)

    def step():
        return plan.epoch(network.parameters, data, order, hyper)

    return Runner(
        name=name,
        step=step,
        timed=full_batch_timed(optimizer) if batch is None else mini_batch_timed(batch, optimizer),
        synchronize=backend.synchronize,
        events="cupy" if name == "cupy" else None,
        threads=_backend_threads(name),
        params=lambda: [array for pair in network.get_params() for array in pair],
        keep=[network, data],
    )


def full_batch_timed(optimizer: str = "sgd") -> str:
    update = "update" if optimizer == "sgd" else f"{optimizer} update"
    return f"one full-batch training step: forward + backward + {update}, data on the device"


def _backend_threads(name: str) -> int | None:
    if name == "numba":
        import numba

        return int(numba.get_num_threads())
    if name == "numpy":
        return blas_threads()
    return None
