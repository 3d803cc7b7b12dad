"""The backend interface and the layer-by-layer forward and backward passes built on it.

A backend is a class with a handful of array operations (the primitives below). The passes in this
file are written once against those primitives, so a new backend only implements the primitives;
a backend with something faster (a fused whole-network kernel) overrides ``loss_and_gradients``.

The generic code here uses nothing but the primitives, in-place ``*=`` and ``.T``, so it runs on any
array library that follows the Python array API (it is tested on ``array-api-strict``).

Shapes follow the lecture: X is (n, m), one column per example; W[i] is (p_i, p_{i-1}); b[i] is
(p_i, 1); A[i] = W[i] H[i-1] + b[i] and H[i] = act(A[i]) are (p_i, m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..core.architecture import Architecture


class Array(Protocol):
    """A backend's array (numpy.ndarray, cupy.ndarray, an array-API array), as the generic code
    uses it: its shape, dtype and transpose, slices and in-place writes (``W[...] = W_saved``).

    Arithmetic stays in the backends' primitives, so it is not part of this interface. Indexing
    returns Any: an index may give an array or a scalar, and each library types that differently.
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...

    @property
    def dtype(self) -> Any: ...

    @property
    def T(self) -> Array: ...

    def __getitem__(self, key: Any, /) -> Any: ...

    def __setitem__(self, key: Any, value: Any, /) -> None: ...


@dataclass
class Workspace:
    """Buffers for one batch size m, allocated once and reused by every step.

    ``H[i]`` holds the output of hidden layer i+1, (p_{i+1}, m); ``output`` holds the output layer's
    pre-activation, then its gradient dA, (p_L, m); ``scratch`` holds the (max p, m) buffers that the
    backward pass uses for dH: two used in turn, or one when the backend's ``activation_backward``
    writes dA into H's buffer (the forward pass may borrow ``scratch[0]`` as a temporary).
    A backend that needs buffers of its own subclasses it (``workspace_type``).
    """

    m: int
    H: list
    output: Array
    scratch: list


# The backend contract. Every backend implements the primitives (the base raises
# NotImplementedError); a hook has a working default here that a backend overrides when it has
# something better. tests/test_backend_contract.py checks every backend against these lists.
PRIMITIVES = (
    "asarray",
    "to_numpy",
    "to_float",
    "empty",
    "zeros",
    "copy",
    "matmul",
    "bias_activation",
    "activation_backward",
    "output_loss_gradient",
    "output_activation",
    "row_sums",
    "update",
    "momentum_update",
    "adam_update",
    "take_columns",
    "take_rows",
    "all_finite",
)
HOOKS = (
    "indices",
    "synchronize",
    "stream_chunks",
    "memory_info",
    "threading_report",
    "uses_fused_pass",
    "workspace",
    "plan",
    "loss_and_gradients",
    "forward",
    "loss_sum",
    "device",
    "settings",
)


class Backend:
    """Array operations every backend provides: the ``PRIMITIVES`` (subclasses implement them) and
    the ``HOOKS`` (defaults here, overridden where a backend does better)."""

    name = "base"
    # what ``workspace`` builds: Workspace, or a subclass holding a backend's own buffers too
    workspace_type = Workspace
    # True when ``activation_backward`` leaves dA in H's buffer rather than dH's: the backward pass
    # then needs one (max p, m) scratch buffer instead of two.
    activation_backward_into_H = False

    # ----- primitives: every backend implements these -------------------------------------------
    def asarray(self, array, dtype) -> Array:
        """Move a host array to the backend (no copy when it is already there with that dtype)."""
        raise NotImplementedError

    def to_numpy(self, array):
        """Copy a backend array to a NumPy array on the host."""
        raise NotImplementedError

    def to_float(self, value) -> float:
        """Read a backend scalar as a Python float (on a GPU this synchronises)."""
        raise NotImplementedError

    def empty(self, shape: tuple[int, ...], dtype) -> Array:
        raise NotImplementedError

    def zeros(self, shape: tuple[int, ...], dtype) -> Array:
        raise NotImplementedError

    def copy(self, array: Array) -> Array:
        """A new array with the same values, on the backend."""
        raise NotImplementedError

    def matmul(self, A: Array, B: Array, out: Array) -> Array:
        """out = A @ B; A and B may be transposed views (``W.T``)."""
        raise NotImplementedError

    def bias_activation(self, A: Array, b: Array, activation: str, scratch: Array) -> Array:
        """In place: A (p, m) becomes H = act(A + b), b is (p, 1). ``scratch`` is a free (p, m) buffer."""
        raise NotImplementedError

    def activation_backward(self, dH: Array, H: Array, activation: str) -> Array:
        """Return dA = dH * act'(A) (p, m), with act' written in terms of H (p, m), computed in place:
        into dH's buffer, or into H's when ``activation_backward_into_H`` is True.

        H is not needed afterwards and may be overwritten.
        """
        raise NotImplementedError

    def output_loss_gradient(self, A: Array, b: Array, Y: Array, output: str) -> Array:
        """In place: A (p, m) becomes dA = H - Y with H = out(A + b); returns the summed loss.

        The loss is computed stably from A + b: binary cross-entropy for sigmoid, categorical
        cross-entropy for softmax, half the squared error for identity, summed over every entry.
        The return value is a backend scalar, so reading it is the caller's choice (and sync).
        """
        raise NotImplementedError

    def output_activation(self, A: Array, b: Array, output: str) -> Array:
        """In place: A (p, m) becomes H = out(A + b) (the prediction, no loss)."""
        raise NotImplementedError

    def row_sums(self, dA: Array, out: Array) -> Array:
        """out (p, 1) = the sum of dA (p, m) over its m columns."""
        raise NotImplementedError

    def update(self, W: Array, dW: Array, lr: float, l1: float, l2: float) -> None:
        """In place: W -= lr * (dW + l1 * sign(W) + l2 * W)."""
        raise NotImplementedError

    def momentum_update(
        self, W: Array, dW: Array, buffer: Array, lr: float, momentum: float, nesterov: bool, l1: float, l2: float
    ) -> None:
        """In place, SGD with momentum (``nnaccel.optim.SGD``): g = dW + l2 W + l1 sign(W);
        buffer = momentum buffer + g; W -= lr (g + momentum buffer) if nesterov else lr buffer."""
        raise NotImplementedError

    def adam_update(
        self,
        W: Array,
        dW: Array,
        m: Array,
        v: Array,
        step_size: float,
        beta1: float,
        beta2: float,
        eps: float,
        bias2_sqrt: float,
        decay: float,
        l1: float,
        l2: float,
    ) -> None:
        """In place, one Adam/AdamW step (``nnaccel.optim.Adam``): g = dW + l2 W + l1 sign(W) (W
        before the decay); W *= decay; m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g^2;
        W -= step_size m / (sqrt(v) / bias2_sqrt + eps)."""
        raise NotImplementedError

    def indices(self, order) -> Array:
        """A host integer array (m,) of column indices, on the backend (one copy per epoch, so
        the mini-batch steps that slice it copy nothing to the device)."""
        return order

    def take_columns(self, X: Array, indices: Array, out: Array) -> Array:
        """out = X[:, indices] (gathers a shuffled mini-batch); indices come from ``indices``."""
        raise NotImplementedError

    def take_rows(self, rows: Array, indices: Array, out: Array) -> Array:
        """out = rows[indices] (gathers a shuffled mini-batch of examples stored as rows)."""
        raise NotImplementedError

    def all_finite(self, array: Array) -> bool:
        raise NotImplementedError

    # ----- hooks: defaults a backend may override --------------------------------------------------
    def synchronize(self) -> None:
        """Wait for queued work to finish (a no-op on the CPU); for timing only."""

    def stream_chunks(self, chunks, dtype):
        """Host chunk pairs (X, Y) as backend arrays, in order (``data.sources.device_chunks``).
        A GPU backend overrides it to copy the next chunk while the current one computes; it may
        hold a host chunk until copied (the reader never reuses one)."""
        return ((self.asarray(X, dtype), self.asarray(Y, dtype)) for X, Y in chunks)

    def memory_info(self) -> tuple[int, int] | None:
        """(free, total) bytes of the device's memory, or None where the backend does not track
        it (the CPU backends: host memory is the operating system's)."""
        return None

    def threading_report(self) -> dict | None:
        """The backend's thread pool (library version, layer, thread count) for ``nnaccel info``,
        or None when it runs no pool of its own."""
        return None

    def uses_fused_pass(self, architecture: Architecture, dtype=None) -> bool:
        """Whether ``loss_and_gradients`` runs ``architecture`` through a fully fused
        whole-network kernel (each backend has its own width limit; none here)."""
        return False

    # ----- description -----------------------------------------------------------------------------
    def device(self) -> str:
        """Where this backend's arrays live and its work runs, in words."""
        return "CPU"

    def settings(self) -> dict:
        """The settings that change what this backend runs (its constructor's arguments)."""
        return {}

    def __repr__(self) -> str:
        # what a user needs to tell backends apart: the name they select it by, where it runs and
        # the settings that change its kernels (the default repr is only an object address)
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings().items())
        return f"<nnaccel backend {self.name!r} on {self.device()}{f' ({settings})' if settings else ''}>"

    # ----- buffers ---------------------------------------------------------------------------------
    def workspace(self, architecture: Architecture, m: int, dtype) -> Workspace:
        """Allocate the buffers of one step for a batch of m columns."""
        hidden = architecture.layers[1:-1]
        widest = max(architecture.layers[1:])
        return self.workspace_type(
            m=m,
            H=[self.empty((p, m), dtype) for p in hidden],
            output=self.empty((architecture.n_outputs, m), dtype),
            scratch=[self.empty((widest, m), dtype) for _ in range(1 if self.activation_backward_into_H else 2)],
        )

    def plan(self, architecture: Architecture, dtype, batch_size: int | None, optimizer=None):
        """The training plan for these settings (see ``plans``); backends with faster paths
        override this."""
        from .plans import Plan

        return Plan(self, architecture, dtype, batch_size, optimizer)

    # ----- passes built from the primitives --------------------------------------------------------
    def forward_hidden(self, architecture: Architecture, params: list, X: Array, workspace: Workspace) -> list:
        """Run the hidden layers and the output matmul; return [X, H1, ..., H_{L-1}].

        Leaves the output layer's W H + b pending: ``workspace.output`` holds W_L H_{L-1} (no bias).
        """
        H = [X]
        for index, (W, b) in enumerate(params[:-1]):
            A = workspace.H[index]
            self.matmul(W, H[-1], A)  # A = W H_prev
            scratch = workspace.scratch[0][: A.shape[0], :]
            self.bias_activation(A, b, architecture.activations[index], scratch)  # H = act(A + b)
            H.append(A)
        W_out, _ = params[-1]
        self.matmul(W_out, H[-1], workspace.output)  # A_L = W_L H_{L-1}
        return H

    def forward(self, architecture: Architecture, params: list, X: Array, workspace: Workspace) -> Array:
        """The network's output H_L (p_L, m), in ``workspace.output``."""
        self.forward_hidden(architecture, params, X, workspace)
        return self.output_activation(workspace.output, params[-1][1], architecture.output)

    def loss_sum(self, architecture: Architecture, params: list, X: Array, Y: Array, workspace: Workspace) -> Array:
        """The summed loss over the m columns of X (a backend scalar); no gradients."""
        self.forward_hidden(architecture, params, X, workspace)
        return self.output_loss_gradient(workspace.output, params[-1][1], Y, architecture.output)

    def loss_and_gradients(
        self,
        architecture: Architecture,
        params: list,
        X: Array,
        Y: Array,
        workspace: Workspace,
        grads: list,
        scale: float,
    ) -> Array:
        """Backpropagation. Writes ``scale`` times the summed gradients into ``grads``.

        With ``scale = 1/m`` the gradients are those of the mean loss (the lecture's); a caller that
        sums gradients over chunks of a larger batch passes 1/m_total. Returns the summed loss.
        """
        H = self.forward_hidden(architecture, params, X, workspace)
        dA = workspace.output
        loss = self.output_loss_gradient(dA, params[-1][1], Y, architecture.output)  # dA_L = H_L - Y
        for index in reversed(range(architecture.depth)):
            W, _ = params[index]
            dW, db = grads[index]
            self.matmul(dA, H[index].T, dW)  # dW = (1/m) dA H_prev^T
            dW *= scale
            self.row_sums(dA, db)  # db = (1/m) sum(dA, axis=1)
            db *= scale
            if index == 0:
                break
            # dH must not overwrite dA: alternate two buffers, unless dA lives in H's buffer
            dH = workspace.scratch[index % len(workspace.scratch)][: W.shape[1], :]
            self.matmul(W.T, dA, dH)  # dH_prev = W^T dA
            dA = self.activation_backward(dH, H[index], architecture.activations[index - 1])  # dA = dH * act'
        return loss
