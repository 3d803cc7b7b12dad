"""Training plans: how a backend runs the steps of an epoch.

A plan is bound to one (architecture, dtype, batch size, optimizer) and owns the buffers its steps
reuse: the step workspaces, the gradients, the batch buffers and the optimizer's state. The
network asks its backend for a plan (``Backend.plan``) and keeps it while those four stay the same.

* ``load(X, Y)`` puts checked host data X (n, m), Y (outputs, m) on the backend, in the layout the
  plan reads batches from;
* ``epoch(params, data, order, hyper)`` runs every step of one epoch, the batches taken in
  ``order`` (a permutation of the m columns, or None for their stored order), and returns the
  summed loss (a backend scalar: reading it is the caller's choice, and on a GPU a sync);
* ``run_batches(params, X, Y, hyper)`` runs consecutive batches of backend arrays X (n, k),
  Y (outputs, k) (the streamed path hands each block of batches to it);
* ``step(params, X, Y, hyper)`` is one update from one batch.

``Plan`` below is the generic plan, built on the backend primitives of ``base.Backend`` (NumPy,
CuPy, any array-API library); a backend with faster paths returns its own subclass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.architecture import Architecture
from ..optim import Hyperparameters, OptimizerState, resolve_optimizer
from .base import Array

# Step workspaces kept per plan: a training width, its last batch, and the evaluation chunks.
CACHED_WIDTHS = 4


@dataclass
class TrainingData:
    """Data of one ``fit`` on the backend: X (n, m) and Y (outputs, m); ``rows`` is X's examples
    as contiguous rows (m, n) when the plan gathers mini-batches from it, else None."""

    X: Array
    Y: Array
    rows: Array | None = None

    @property
    def m(self) -> int:
        return self.X.shape[1]


@dataclass
class BatchBuffers:
    """A gathered mini-batch: ``rows`` (batch, n), X's columns as rows; ``Y`` (outputs, batch)."""

    rows: Array
    Y: Array


class Plan:
    """The generic plan: each step is the backend's ``loss_and_gradients`` and the optimizer's
    update; a shuffled mini-batch is gathered from an example-contiguous copy of X (contiguous
    rows, rather than columns scattered over the (n, m) array)."""

    def __init__(self, backend, architecture: Architecture, dtype, batch_size: int | None, optimizer=None):
        self.backend = backend
        self.architecture = architecture
        self.dtype = np.dtype(dtype)
        self.batch_size = batch_size  # None: full batch
        self.optimizer = resolve_optimizer(optimizer)
        self.state: OptimizerState | None = None  # the optimizer's arrays, made at the first step
        self._grads: list | None = None
        self._workspaces: dict = {}
        self._batches: dict[int, BatchBuffers] = {}

    # ----- data ------------------------------------------------------------------------------------
    @property
    def mini_batch_size(self) -> int:
        """``batch_size`` where the plan runs mini-batches (only a mini-batched path asks for it)."""
        if self.batch_size is None:
            raise RuntimeError("a full-batch plan (batch_size None) has no mini-batch size")
        return self.batch_size

    def gathers_batches(self, m: int) -> bool:
        """True when an epoch over m columns has more than one batch (so shuffling gathers)."""
        return self.batch_size is not None and self.batch_size < m

    def load(self, X: np.ndarray, Y: np.ndarray) -> TrainingData:
        """Checked host arrays X (n, m), Y (outputs, m) on the backend; with an example-contiguous
        copy of X when epochs are mini-batched."""
        backend = self.backend
        rows = backend.asarray(np.ascontiguousarray(X.T), self.dtype) if self.gathers_batches(X.shape[1]) else None
        return TrainingData(backend.asarray(X, self.dtype), backend.asarray(Y, self.dtype), rows)

    # ----- epochs ----------------------------------------------------------------------------------
    def epoch(self, params: list, data: TrainingData, order: np.ndarray | None, hyper: Hyperparameters):
        """Every step of one epoch; returns the summed loss (a backend scalar)."""
        if not self.gathers_batches(data.m):
            return self.step(params, data.X, data.Y, hyper)
        if order is None:
            return self.run_batches(params, data.X, data.Y, hyper)
        backend = self.backend
        indices = backend.indices(order)  # one host-to-device copy per epoch
        batch_size, total = self.mini_batch_size, 0.0
        for start in range(0, data.m, batch_size):
            batch = indices[start : min(start + batch_size, data.m)]
            buffers = self._batch_buffers(batch.shape[0], data)
            rows = backend.take_rows(data.rows, batch, buffers.rows)  # (batch, n), contiguous rows
            Y = backend.take_columns(data.Y, batch, buffers.Y)
            total = total + self.step(params, rows.T, Y, hyper)
        return total

    def run_batches(self, params: list, X, Y, hyper: Hyperparameters):
        """Steps over consecutive batches of X (n, k), Y (outputs, k); returns the summed loss."""
        k = X.shape[1]
        batch = k if self.batch_size is None else self.batch_size
        total = 0.0
        for start in range(0, k, batch):
            stop = min(start + batch, k)  # the array API leaves slices past the end unspecified
            total = total + self.step(params, X[:, start:stop], Y[:, start:stop], hyper)
        return total

    def step(self, params: list, X, Y, hyper: Hyperparameters):
        """One update from the batch X (n, b), Y (outputs, b); returns its summed loss (before the
        update)."""
        width = X.shape[1]
        grads = self.gradient_buffers(params)
        loss = self.backend.loss_and_gradients(self.architecture, params, X, Y, self.workspace(width), grads, 1.0 / width)
        self.update(params, grads, hyper)
        return loss

    def update(self, params: list, grads: list, hyper: Hyperparameters) -> None:
        """The optimizer's update from the mean-loss gradients ``grads``, shaped like ``params``."""
        self.optimizer.update(self.backend, params, grads, self.optimizer_state(params), hyper)

    # ----- the optimizer's state -------------------------------------------------------------------
    def optimizer_state(self, params: list) -> OptimizerState:
        """The optimizer's state on the backend, made (zeros, step 0) at the first use."""
        if self.state is None:
            self.reset_state(params)
        return self.current_state()

    def current_state(self) -> OptimizerState:
        """The optimizer's state once made (by ``optimizer_state`` or ``reset_state``)."""
        if self.state is None:
            raise RuntimeError("the plan's optimizer state is read before it is made (call optimizer_state first)")
        return self.state

    def reset_state(self, params: list) -> None:
        """A fresh optimizer state (a new run: no momentum, no moments, step 0)."""
        self.state = self.optimizer.initial_state(self.backend, params, self.dtype)

    def snapshot_state(self) -> OptimizerState | None:
        """A backend copy of the optimizer's state (None before the first use), for ``restore_state``."""
        if self.state is None:
            return None
        copy = self.backend.copy
        arrays = [[(copy(W), copy(b)) for W, b in part] for part in (self.state.first, self.state.second)]
        return OptimizerState(self.state.step, *arrays)

    def restore_state(self, snapshot: OptimizerState | None) -> None:
        """Back to ``snapshot`` (from ``snapshot_state``), in place: the state's arrays stay the
        plan's own (the Numba plans' are views of their packed vectors)."""
        if snapshot is None or self.state is None:
            return
        for part, saved in ((self.state.first, snapshot.first), (self.state.second, snapshot.second)):
            for (W, b), (W_saved, b_saved) in zip(part, saved):
                W[...] = W_saved
                b[...] = b_saved
        self.state.step = snapshot.step

    def state_to_host(self, params: list) -> OptimizerState:
        """The optimizer's state with NumPy copies of its arrays (for a checkpoint)."""
        state, backend = self.optimizer_state(params), self.backend
        host = [
            [(backend.to_numpy(W).copy(), backend.to_numpy(b).copy()) for W, b in arrays]
            for arrays in (state.first, state.second)
        ]
        return OptimizerState(state.step, *host)

    def load_state(self, params: list, host: OptimizerState) -> None:
        """Continue from ``host`` (what ``state_to_host`` returned, maybe read from a file): its
        step count and arrays, checked against this optimizer's."""
        self.reset_state(params)
        state = self.current_state()
        for name in ("first", "second"):
            target, source = getattr(state, name), getattr(host, name)
            if len(target) != len(source):
                raise ValueError(
                    f"the saved optimizer state does not fit {self.optimizer!r} on this network "
                    f"({len(source)} layers of {name} moments, expected {len(target)})"
                )
            for (W, b), (W_saved, b_saved) in zip(target, source):
                if tuple(W.shape) != tuple(np.shape(W_saved)) or tuple(b.shape) != tuple(np.shape(b_saved)):
                    raise ValueError("the saved optimizer state has arrays of other shapes than this network's parameters")
                W[...] = self.backend.asarray(np.asarray(W_saved), self.dtype)
                b[...] = self.backend.asarray(np.asarray(b_saved), self.dtype)
        state.step = int(host.step)

    def warm_up(self, params: list) -> None:
        """Compile whatever the plan's steps and evaluations run, on a few examples of zeros,
        leaving ``params`` unchanged (nothing to compile in the generic plan)."""

    # ----- evaluation ------------------------------------------------------------------------------
    def loss_sum(self, params: list, X, Y):
        """The summed loss over the columns of backend arrays X (n, k), Y (outputs, k)."""
        return self.backend.loss_sum(self.architecture, params, X, Y, self.workspace(X.shape[1]))

    def forward(self, params: list, X):
        """The output layer's activations H_L (outputs, k) for backend array X (n, k), in a buffer
        of the plan (valid until its next call)."""
        return self.backend.forward(self.architecture, params, X, self.workspace(X.shape[1]))

    # ----- buffers ---------------------------------------------------------------------------------
    def gradient_buffers(self, params: list) -> list:
        """Backend arrays [(dW, db)] shaped like the parameters, allocated once."""
        if self._grads is None:
            backend = self.backend
            self._grads = [(backend.empty(W.shape, self.dtype), backend.empty(b.shape, self.dtype)) for W, b in params]
        return self._grads

    def workspace(self, width: int):
        """The step buffers for batches of ``width`` columns (full batches and the last one, or the
        chunks of an evaluation), allocated once per width."""
        if width not in self._workspaces:
            if len(self._workspaces) >= CACHED_WIDTHS:
                self._workspaces.clear()
            self._workspaces[width] = self.backend.workspace(self.architecture, width, self.dtype)
        return self._workspaces[width]

    def _batch_buffers(self, width: int, data: TrainingData) -> BatchBuffers:
        if width not in self._batches:
            backend = self.backend
            self._batches[width] = BatchBuffers(
                backend.empty((width, data.X.shape[0]), self.dtype), backend.empty((data.Y.shape[0], width), self.dtype)
            )
        return self._batches[width]
