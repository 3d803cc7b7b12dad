"""The Numba backend: fused CPU kernels, and one fully fused kernel for small networks.

Two paths, chosen per network by ``uses_fused_pass``:

* every layer at most ``fused_max_width`` units wide (the input too): ``network_pass`` in
  ``kernels/numba_network.py`` runs forward, loss and backward for the whole network over blocks of
  examples in one parallel kernel; the step allocates no (p, m) array at all;
* otherwise the layer-by-layer pass of ``Backend``, with the matmuls on BLAS and every elementwise
  step fused into one parallel pass (``kernels/numba_layers.py``).

Both honour ``NUMBA_NUM_THREADS`` and give the same results for any thread count and from run to
run. For float32 data the kernels use library-free tanh, sigmoid and cross-entropy (see
``kernels/activations.py``), which LLVM vectorises; for float64 the exact functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..threads import set_gomp_spincount

set_gomp_spincount()  # before Numba starts its threads (nnaccel/threads.py says why)

import numpy as np  # noqa: E402
from numba import parallel_chunksize  # noqa: E402

from ..core.architecture import Architecture  # noqa: E402
from ..kernels import activations as scalar  # noqa: E402
from ..kernels import numba_layers as layers  # noqa: E402
from ..kernels import numba_network as network  # noqa: E402
from ..kernels import numba_optim  # noqa: E402
from .base import Workspace  # noqa: E402
from .numpy_backend import NumpyBackend  # noqa: E402
from .packing import PackedLayout, pack, unpack  # noqa: E402

# Widest layer (input included) for the fully fused pass. Measured on 2 cores, float32, m = 2e5:
# fused 1.5-2x faster than layered at 16-32 units; from about 40 units the layered pass (BLAS) is
# as fast or faster, except for some deeper networks.
FUSED_MAX_WIDTH = 32
# Threads take the parallel loops' tasks one at a time (dynamic scheduling): on a shared machine a
# thread that loses its core does not hold the others up. Each task writes only its own outputs,
# so the results do not depend on which thread ran it.
DYNAMIC = 1


class NumbaBackend(NumpyBackend):
    """Numba CPU kernels; ``NumbaBackend(fused_max_width=0)`` forces the layer-by-layer path.

    ``block`` (examples per block of the fused pass) defaults to ``numba_network.block_size``.
    """

    name = "numba"
    activation_backward_into_H = True  # dA overwrites H: the layered pass needs one scratch buffer

    def __init__(self, fused_max_width: int = FUSED_MAX_WIDTH, block: int | None = None):
        self.fused_max_width = int(fused_max_width)
        self.block = None if block is None else int(block)

    def uses_fused_pass(self, architecture: Architecture, dtype=None) -> bool:
        """True when every layer of ``architecture`` (input included) has at most
        ``fused_max_width`` units (any dtype)."""
        return max(architecture.layers) <= self.fused_max_width

    def settings(self) -> dict:
        import numba

        block = "auto" if self.block is None else self.block
        return {"fused_max_width": self.fused_max_width, "block": block, "threads": numba.get_num_threads()}

    def plan(self, architecture: Architecture, dtype, batch_size: int | None, optimizer=None):
        """Mini-batches run on the serial plans of ``numba_plans``: a whole epoch per kernel call
        for a network narrow enough to fuse, else steps with one update call; full batches on the
        parallel passes below."""
        from .numba_plans import FusedEpochPlan, LayeredStepPlan

        if self.uses_fused_pass(architecture):
            return FusedEpochPlan(self, architecture, dtype, batch_size, optimizer)
        return LayeredStepPlan(self, architecture, dtype, batch_size, optimizer)

    def threading_report(self) -> dict:
        return _threading_report()

    # ----- primitives on fused kernels ---------------------------------------------------------------
    def bias_activation(self, A, b, activation, scratch):
        layers.bias_activation(A, b, scalar.activation_code(activation), _fast(A))  # H = act(A + b)
        return A

    def activation_backward(self, dH, H, activation):
        sums = np.empty(dH.shape[0])
        layers.activation_backward(dH, H, scalar.activation_code(activation), sums)  # dA = dH * act'
        return H

    def output_loss_gradient(self, A, b, Y, output):
        return layers.output_loss_gradient(A, b, Y, scalar.output_code(output), _fast(A))  # dA = H - Y

    def output_activation(self, A, b, output):
        layers.output_activation(A, b, scalar.output_code(output), _fast(A))
        return A

    def row_sums(self, dA, out):
        layers.row_sums(dA, out)
        return out

    def update(self, W, dW, lr, l1, l2):
        layers.update(W, dW, float(lr), float(l1), float(l2))  # W -= lr (dW + l1 sign(W) + l2 W)

    def momentum_update(self, W, dW, buffer, lr, momentum, nesterov, l1, l2):
        numba_optim.momentum_update(W, dW, buffer, float(lr), float(momentum), bool(nesterov), float(l1), float(l2))

    def adam_update(self, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
        numba_optim.adam_update(
            W,
            dW,
            m,
            v,
            float(step_size),
            float(beta1),
            float(beta2),
            float(eps),
            float(bias2_sqrt),
            float(decay),
            float(l1),
            float(l2),
        )

    # ----- buffers -----------------------------------------------------------------------------------
    def workspace(self, architecture: Architecture, m: int, dtype):
        """Fused path: a ``FusedWorkspace`` (nothing of size m). Layered path: a
        ``LayeredWorkspace``, the base buffers plus the backward pass's row sums."""
        if not self.uses_fused_pass(architecture):
            workspace = super().workspace(architecture, m, dtype)
            return LayeredWorkspace(
                workspace.m, workspace.H, workspace.output, workspace.scratch, sums=np.empty(max(architecture.layers[1:]))
            )
        layout = PackedLayout.of(architecture)
        block = self.block or network.block_size(architecture.layers, np.dtype(dtype).itemsize)
        _, tasks = network.task_layout(m, block)
        theta, gradients = np.empty(layout.count, dtype=dtype), np.empty(layout.count)
        return FusedWorkspace(
            m=m,
            block=block,
            layout=layout,
            theta=theta,
            theta_views=layout.views(theta),
            gradients=gradients,
            gradient_views=layout.views(gradients),
            partial_gradients=np.empty((tasks, layout.count)),
            partial_losses=np.empty(tasks),
            unused=np.empty((architecture.n_outputs, 1), dtype=dtype),
        )

    # ----- passes ------------------------------------------------------------------------------------
    def forward_hidden(self, architecture, params, X, workspace):
        """The layered forward pass (see ``Backend.forward_hidden``): a layer with a small inner
        dimension (few inputs) computes act(W H + b) in one pass; the others use BLAS, then one pass
        for the bias and activation."""
        if isinstance(workspace, FusedWorkspace):
            workspace = self._layered_workspace(architecture, workspace, X.dtype)
        H = self._hidden_layers(architecture, params, X, workspace)
        W_out, _ = params[-1]
        np.matmul(W_out, H[-1], out=workspace.output)  # A_L = W_L H_{L-1}
        return H

    def _hidden_layers(self, architecture, params, X, workspace) -> list:
        """[X, H_1, ..., H_{L-1}], the hidden layers' outputs in the workspace's buffers."""
        H = [X]
        for index, (W, b) in enumerate(params[:-1]):
            A = workspace.H[index]
            code = scalar.activation_code(architecture.activations[index])
            if W.shape[1] <= layers.SMALL_INNER:
                layers.linear_activation(W, H[-1], b, A, code, _fast(A))  # H = act(W H_prev + b)
            else:
                np.matmul(W, H[-1], out=A)  # A = W H_prev
                layers.bias_activation(A, b, code, _fast(A))  # H = act(A + b)
            H.append(A)
        return H

    def forward(self, architecture, params, X, workspace):
        if not isinstance(workspace, FusedWorkspace):
            with parallel_chunksize(DYNAMIC):
                return super().forward(architecture, params, X, workspace)
        if workspace.output is None:
            workspace.output = np.empty((architecture.n_outputs, X.shape[1]), dtype=X.dtype)
        self._fused(architecture, params, X, None, workspace, network.FORWARD, workspace.output)
        return workspace.output

    def loss_sum(self, architecture, params, X, Y, workspace):
        if not isinstance(workspace, FusedWorkspace):
            with parallel_chunksize(DYNAMIC):
                return super().loss_sum(architecture, params, X, Y, workspace)
        return self._fused(architecture, params, X, Y, workspace, network.LOSS)

    def loss_and_gradients(self, architecture, params, X, Y, workspace, grads, scale):
        """Backpropagation (see ``Backend.loss_and_gradients``); the fully fused kernel for small
        networks, else the layered pass with each layer's db summed while dA is formed."""
        if isinstance(workspace, FusedWorkspace):
            self._fused(architecture, params, X, Y, workspace, network.GRADIENTS)
            # the tasks' partial sums, added in task order: the same result for any thread count
            loss = network.sum_partials(workspace.partial_gradients, workspace.partial_losses, scale, workspace.gradients)
            unpack(workspace.gradient_views, grads)
            return np.float64(loss)
        with parallel_chunksize(DYNAMIC):
            return self._layered_loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)

    def _layered_loss_and_gradients(self, architecture, params, X, Y, workspace, grads, scale):
        H = self._hidden_layers(architecture, params, X, workspace)
        W_out, b_out = params[-1]
        if W_out.shape[0] <= layers.SMALL_INNER:
            # a narrow output layer: one pass over H_{L-1} does the output layer and leaves dA_{L-1}
            loss = self._narrow_output_layer(architecture, params, H[-1], Y, workspace, grads, scale)
            dA = H[-1]
            first = architecture.depth - 2
        else:
            dA = workspace.output
            np.matmul(W_out, H[-1], out=dA)  # A_L = W_L H_{L-1}
            loss = self.output_loss_gradient(dA, b_out, Y, architecture.output)  # dA_L = H_L - Y
            _, db = grads[-1]
            layers.row_sums(dA, db)  # db_L = sum(dA_L, axis=1)
            db *= scale
            first = architecture.depth - 1
        sums = workspace.sums
        for index in range(first, -1, -1):
            W, _ = params[index]
            dW, _ = grads[index]
            np.matmul(dA, H[index].T, out=dW)  # dW = (1/m) dA H_prev^T
            dW *= scale
            if index == 0:
                break
            code = scalar.activation_code(architecture.activations[index - 1])
            if W.shape[0] <= layers.SMALL_INNER:
                layers.backward_small_inner(W, dA, H[index], code, sums)  # H becomes dA = (W^T dA) * act'
            else:
                dH = workspace.scratch[0][: W.shape[1]]
                np.matmul(W.T, dA, out=dH)  # dH_prev = W^T dA
                layers.activation_backward(dH, H[index], code, sums)  # H becomes dA = dH * act'; sums = its row sums
            _, db = grads[index - 1]
            np.multiply(sums[: W.shape[1], None], scale, out=db, casting="unsafe")  # db = (1/m) sum(dA)
            dA = H[index]
        return loss

    def _narrow_output_layer(self, architecture, params, H, Y, workspace, grads, scale):
        """``output_layer_pass`` over H = H_{L-1} (q, m): fills dW_L, db_L and db_{L-1}, and H
        becomes dA_{L-1} (unless H is X); returns the summed loss."""
        W_out, b_out = params[-1]
        p, q = W_out.shape
        backward = architecture.depth > 1
        if workspace.output_pass is None:
            columns = layers.output_tile_columns(q, H.dtype.itemsize)
            tiles = -(-workspace.m // columns)
            workspace.output_pass = OutputPassBuffers(
                columns, np.empty((tiles, p * q + p + q)), np.empty(tiles), np.empty(p * q + p + q)
            )
        columns, partial, partial_losses, totals = workspace.output_pass.arrays()
        hidden_code = scalar.activation_code(architecture.activations[-1]) if backward else scalar.IDENTITY
        output_code = scalar.output_code(architecture.output)
        layers.output_layer_pass(
            W_out, b_out, H, Y, output_code, _fast(H), hidden_code, backward, columns, partial, partial_losses
        )
        loss = network.sum_partials(partial, partial_losses, scale, totals)  # tile sums, in tile order
        dW, db = grads[-1]
        dW[...] = totals[: p * q].reshape(p, q)  # dW_L = (1/m) dA_L H_{L-1}^T
        db[...] = totals[p * q : p * q + p].reshape(p, 1)  # db_L = (1/m) sum(dA_L)
        if backward:
            _, db_previous = grads[-2]
            db_previous[...] = totals[p * q + p :].reshape(q, 1)  # db_{L-1} = (1/m) sum(dA_{L-1})
        return np.float64(loss)

    # ----- helpers -----------------------------------------------------------------------------------
    def _fused(self, architecture, params, X, Y, workspace, mode, out=None):
        """Run ``network_pass`` in ``mode``; returns the summed loss (modes LOSS and GRADIENTS)."""
        if X.shape[1] != workspace.m:
            raise ValueError(f"the workspace is for m = {workspace.m} columns but X has {X.shape[1]}")
        pack(params, workspace.theta_views)
        X = np.ascontiguousarray(X)
        Y = workspace.unused if Y is None else np.ascontiguousarray(Y)
        out = workspace.unused if out is None else out
        with parallel_chunksize(DYNAMIC):
            network.network_pass(
                X,
                Y,
                workspace.theta,
                *workspace.layout.arrays(),
                _fast(X),
                mode,
                workspace.block,
                out,
                workspace.partial_gradients,
                workspace.partial_losses,
            )
        return None if mode == network.FORWARD else np.float64(np.sum(workspace.partial_losses))

    def _layered_workspace(self, architecture, workspace, dtype):
        """A layered workspace beside a fused one, for callers of ``forward_hidden``."""
        if workspace.layered is None:
            workspace.layered = NumpyBackend.workspace(self, architecture, workspace.m, dtype)
        return workspace.layered


@dataclass
class OutputPassBuffers:
    """The narrow output layer pass's tiles: ``columns`` per tile, each tile's partial sums
    ``partial`` (tiles, p q + p + q) and ``partial_losses`` (tiles,), and their ``totals``."""

    columns: int
    partial: np.ndarray
    partial_losses: np.ndarray
    totals: np.ndarray

    def arrays(self) -> tuple:
        return self.columns, self.partial, self.partial_losses, self.totals


@dataclass
class LayeredWorkspace(Workspace):
    """The layer-by-layer pass's buffers: the base ones, ``sums`` (max p,) the row sums of each
    dA (float64), and the narrow output layer's tiles, made at its first use."""

    sums: np.ndarray | None = None
    output_pass: OutputPassBuffers | None = None


@dataclass
class FusedWorkspace:
    """The fused pass's buffers for m columns, none of size m: the packed parameters ``theta``
    and their float64 ``gradients`` (with per-layer views), the per-task partial sums
    ``partial_gradients`` (tasks, parameters) and ``partial_losses`` (tasks,), ``unused`` for
    Y or out when not read; ``output`` (outputs, m) for a prediction and ``layered`` (a layered
    workspace) are made at their first use."""

    m: int
    block: int
    layout: PackedLayout
    theta: np.ndarray
    theta_views: list
    gradients: np.ndarray
    gradient_views: list
    partial_gradients: np.ndarray
    partial_losses: np.ndarray
    unused: np.ndarray
    output: np.ndarray | None = None
    layered: Workspace | None = None
    H: list = field(default_factory=list)  # no (p, m) buffers: the activations stay in cache-sized blocks

    @property
    def nbytes(self) -> int:
        """Bytes held, the lazily made buffers left out."""
        return sum(
            array.nbytes for array in (self.theta, self.gradients, self.partial_gradients, self.partial_losses, self.unused)
        )


def _fast(array) -> bool:
    """The library-free (vectorisable) transcendental functions are used for float32 data."""
    return array.dtype == np.float32


def _threading_report() -> dict:
    """Numba's version, threading layer and thread count (runs one tiny cached parallel kernel,
    since Numba picks its threading layer at the first parallel call)."""
    import numba

    probe = np.ones((1, 1))
    layers.row_sums(probe, np.empty((1, 1)))
    return {
        "version": numba.__version__,
        "threading_layer": numba.threading_layer(),
        "threads": numba.get_num_threads(),
        # numba.config sets its settings from the environment at import; the stubs do not list them
        "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,  # type: ignore[attr-defined]
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
    }
