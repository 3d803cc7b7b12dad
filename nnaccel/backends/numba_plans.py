"""The Numba backend's mini-batch training plans (see ``plans`` for the interface).

* ``FusedEpochPlan`` (every layer narrow enough for the fused pass): one serial kernel call (the
  ``run_epoch`` of ``numba_minibatch.epoch_kernel``, compiled for the network's activations,
  output, update rule, batch path and dtype; it also evaluates) runs every step of a chunk of the
  epoch (16384 examples gathered in their shuffled order, whole batches; the next chunk is
  gathered on a background thread while the kernel trains on this one); the parameters stay
  packed in one vector throughout.
* ``LayeredStepPlan`` (wider networks): each step is the layer-by-layer pass with the matmuls on
  BLAS and the elementwise work in serial kernels (a few hundred thousand entries: cheaper than
  waking a second thread pool beside BLAS's), gradients into one flat vector, and one update call
  for every layer. A shuffled batch is gathered from an example-contiguous copy of X.

Full-batch epochs, and mini-batches so large that a parallel pass pays for its launch, go through
the generic ``Plan`` (the backend's parallel fused or layered pass). Every kernel here is serial:
the same results for any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import background
from ..kernels import activations as scalar
from ..kernels import numba_minibatch as kernels
from ..kernels import numba_network as network
from ..kernels import numba_optim
from ..optim import SGD, Adam, Hyperparameters, OptimizerState
from . import blas
from .packing import PackedLayout, pack, unpack
from .plans import Plan, TrainingData

# From this many examples per batch a step runs the parallel fused pass: its launch (waking the
# pool, tens of microseconds) is then a small part of the step.
PARALLEL_BATCH = 4096
# Up to this many examples an evaluation (a loss, a prediction) runs serially on the plan's kernels:
# the pool's launch would cost as much as the work (and the parallel pass need not be compiled).
SERIAL_EVALUATION = 1 << 14
# From this many parameters a momentum or Adam update runs in parallel (see
# ``numba_optim.update_parameters_parallel``); plain SGD's update is cheap enough serially.
PARALLEL_UPDATE = 1 << 16
# Examples per gathered chunk of a shuffled epoch on the fused plan (rounded to whole batches).
GATHER_COLUMNS = 1 << 14


def update_rule(optimizer, hyper: Hyperparameters) -> tuple[int, np.ndarray]:
    """(rule code, settings vector) of ``numba_optim.update_parameters`` for an optimizer of
    ``nnaccel.optim`` at this epoch's ``hyper``."""
    settings = np.zeros(len(numba_optim.SETTINGS))
    settings[:3] = hyper.lr, hyper.l1, hyper.l2
    if isinstance(optimizer, Adam):
        settings[3:7] = optimizer.beta1, optimizer.beta2, optimizer.eps, optimizer.weight_decay
        return numba_optim.RULE_ADAM, settings
    if isinstance(optimizer, SGD) and optimizer.momentum:
        settings[3:5] = optimizer.momentum, float(optimizer.nesterov)
        return numba_optim.RULE_MOMENTUM, settings
    if isinstance(optimizer, SGD):
        return numba_optim.RULE_SGD, settings
    raise ValueError(f"the Numba plans run the optimizers of nnaccel.optim; got {optimizer!r}")


def host_array(array: object) -> np.ndarray:
    """``array`` as the NumPy array it is: the Numba plans load their data with NumPy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"the Numba plans run on NumPy arrays, got {type(array).__name__}")
    return array


class _PackedPlan(Plan):
    """A plan whose steps read and update one flat parameter vector ``theta``."""

    def __init__(self, backend, architecture, dtype, batch_size, optimizer=None):
        super().__init__(backend, architecture, dtype, batch_size, optimizer)
        # the kernels' update rule (a plan's optimizer never changes); refuses one they do not run
        self.rule, _ = update_rule(self.optimizer, Hyperparameters(0.0))
        self.layout = PackedLayout.of(architecture)
        self.theta = np.empty(self.layout.count, dtype=self.dtype)
        self.theta_views = self.layout.views(self.theta)
        self.fast = self.dtype == np.float32  # the library-free float32 functions
        self.first = self.second = np.zeros(1, dtype=self.dtype)  # the optimizer's state, laid out like theta

    def reset_state(self, params) -> None:
        """Fresh state vectors laid out like theta; the state's per-layer arrays are views of them,
        so the generic steps (full batches) and the packed kernels update the same numbers."""
        fresh = self.optimizer.initial_state(self.backend, params, self.dtype)
        count = self.layout.count
        self.first = np.zeros(count if fresh.first else 1, dtype=self.dtype)
        self.second = np.zeros(count if fresh.second else 1, dtype=self.dtype)
        self.state = OptimizerState(
            0, self.layout.views(self.first) if fresh.first else [], self.layout.views(self.second) if fresh.second else []
        )

    def load(self, X, Y) -> TrainingData:
        """Checked host arrays X (n, m), Y (outputs, m); for mini-batches, X's examples as
        contiguous rows (m, n), from which shuffled batches are gathered, and X as the (n, m) view
        of those rows (what an unshuffled epoch slices). X's own memory when X is the transpose of
        row-major (m, n) data, as a user's examples usually are: then nothing is copied."""
        if not self.gathers_batches(X.shape[1]):
            return super().load(X, Y)
        rows = np.ascontiguousarray(X.T, dtype=self.dtype)
        return TrainingData(rows.T, np.ascontiguousarray(Y, dtype=self.dtype), rows)

    def packed_steps(self, batch: int) -> bool:
        """True when batches of ``batch`` examples run on this plan's serial kernels."""
        return batch < PARALLEL_BATCH

    def epoch(self, params, data: TrainingData, order, hyper: Hyperparameters):
        if not self.gathers_batches(data.m) or not self.packed_steps(self.mini_batch_size):
            return super().epoch(params, data, order, hyper)
        self.optimizer_state(params)
        pack(params, self.theta_views)
        total = self.packed_epoch(data, order, hyper)
        unpack(self.theta_views, params)
        return total

    def run_batches(self, params, X, Y, hyper: Hyperparameters):
        if self.batch_size is None or not self.packed_steps(self.batch_size):
            return super().run_batches(params, X, Y, hyper)
        self.optimizer_state(params)
        pack(params, self.theta_views)
        total = self.packed_batches(X, Y, hyper)
        unpack(self.theta_views, params)
        return total

    def warm_up(self, params) -> None:
        """Run one epoch (with a shuffled order) and the evaluations on zeros, on copies of the
        parameters: Numba compiles the kernels, or loads them from its cache."""
        copies = [(W.copy(), b.copy()) for W, b in params]
        n, outputs = self.architecture.n_inputs, self.architecture.n_outputs
        m = 2 if self.batch_size is None else min(2 * self.batch_size, PARALLEL_BATCH) + 1
        X, Y = np.zeros((n, m), dtype=self.dtype), np.zeros((outputs, m), dtype=self.dtype)
        order = np.arange(m) if self.gathers_batches(m) else None
        kept = self.state, self.first, self.second  # a run's optimizer state survives the warm-up
        self.reset_state(copies)
        self.epoch(copies, self.load(X, Y), order, Hyperparameters(0.0))
        self.state, self.first, self.second = kept
        self.loss_sum(copies, X, Y)  # evaluations get C-ordered arrays (a run's validation data)
        self.forward(copies, X)

    def packed_epoch(self, data: TrainingData, order, hyper: Hyperparameters):
        raise NotImplementedError

    def packed_batches(self, X, Y, hyper: Hyperparameters):
        raise NotImplementedError


@dataclass
class EpochScratch:
    """The epoch kernel's scratch for blocks of ``block`` examples: H (units, block) for every
    layer's H then dA, dH (block,), shift and normaliser (block,) float64 for a softmax output, and
    h (n + units,) for one example at a time."""

    H: np.ndarray
    dH: np.ndarray
    shift: np.ndarray
    normaliser: np.ndarray
    h: np.ndarray

    @classmethod
    def of(cls, architecture, dtype, block: int) -> EpochScratch:
        units = sum(architecture.layers[1:])
        return cls(
            np.empty((units, block), dtype),
            np.empty(block, dtype),
            np.empty(block),
            np.empty(block),
            np.empty(architecture.layers[0] + units, dtype),
        )

    def arrays(self) -> tuple:
        """(H, dH, shift, normaliser, h), in the kernel's order."""
        return self.H, self.dH, self.shift, self.normaliser, self.h


class FusedEpochPlan(_PackedPlan):
    """Small networks: a whole epoch of mini-batch steps in one serial kernel call."""

    def __init__(self, backend, architecture, dtype, batch_size, optimizer=None):
        super().__init__(backend, architecture, dtype, batch_size, optimizer)
        self.gradients = np.empty(self.layout.count)  # float64 sums of one batch
        block = network.block_size(architecture.layers, self.dtype.itemsize)
        self.scratch = EpochScratch.of(architecture, self.dtype, block if batch_size is None else min(block, int(batch_size)))
        # two chunks of the epoch's examples in their visiting order (see ``_gather``)
        self._chunks: list[TrainingData | None] = [None, None]
        self._unused = np.empty((architecture.n_outputs, 1), dtype=self.dtype)  # Y or out, when not read
        # the kernel compiled for this kind of network (activations, output, rule, batch, dtype):
        # it runs the epochs of mini-batches and the serial evaluations; a plan whose steps run the
        # parallel pass gets one that only evaluates
        hidden, output = self.layout.codes[:-1], self.layout.codes[-1]
        # plain SGD at batch 1 trains on a kernel of its own, so its epoch kernel only evaluates
        one_example_sgd = batch_size is not None and int(batch_size) == 1 and self.rule == numba_optim.RULE_SGD
        self.train_examples = kernels.example_kernel(*self.layout.arrays(), self.fast) if one_example_sgd else None
        trains_here = batch_size is not None and self.packed_steps(batch_size) and not one_example_sgd
        kernel_batch = int(batch_size) if trains_here else None
        self.run_epoch = kernels.epoch_kernel(hidden, output, self.rule, kernel_batch, self.fast)
        full_blocks = self.scratch.H.shape[1] == block
        self.evaluation_scratch = self.scratch if full_blocks else EpochScratch.of(architecture, self.dtype, block)
        self._no_settings = np.zeros(len(numba_optim.SETTINGS))  # an evaluation's: it updates nothing

    def load(self, X, Y) -> TrainingData:
        if self.batch_size is not None and not self.packed_steps(self.batch_size):
            return super().load(X, Y)
        return TrainingData(np.ascontiguousarray(X, dtype=self.dtype), np.ascontiguousarray(Y, dtype=self.dtype))

    def packed_epoch(self, data: TrainingData, order, hyper: Hyperparameters):
        if order is None:
            return self.packed_batches(data.X, data.Y, hyper)
        # the shuffled epoch is gathered a chunk of whole batches at a time: each batch is then a
        # slice, the chunk stays in cache while its steps run, and no copy of all of X is made;
        # the next chunk is gathered on the background thread while the kernel trains on this one
        batch_size = self.mini_batch_size
        chunk = batch_size * max(1, GATHER_COLUMNS // batch_size)
        starts = range(0, data.m, chunk)
        total = 0.0
        pending = background.submit(self._gather, data, order[:chunk], 0)
        try:
            for index, start in enumerate(starts):
                X, Y = pending.result()
                if index + 1 < len(starts):
                    following = order[start + chunk : start + 2 * chunk]
                    pending = background.submit(self._gather, data, following, (index + 1) % 2)
                total += self.packed_batches(X, Y, hyper)
        finally:
            background.wait_quietly(pending)  # an interrupted epoch leaves no gather writing a buffer
        return np.float64(total)

    def packed_batches(self, X, Y, hyper: Hyperparameters):
        _, settings = update_rule(self.optimizer, hyper)  # the settings at this epoch's lr, l1 and l2
        batch_size, state = int(self.mini_batch_size), self.current_state()
        if self.train_examples is not None:
            X, Y = np.ascontiguousarray(X, dtype=self.dtype), np.ascontiguousarray(Y, dtype=self.dtype)
            total = self.train_examples(X, Y, self.theta, hyper.lr, hyper.l1, hyper.l2)
            state.step += X.shape[1]
            return np.float64(total)
        total = self.run_epoch(
            np.ascontiguousarray(X, dtype=self.dtype),
            np.ascontiguousarray(Y, dtype=self.dtype),
            self.theta,
            *self.layout.arrays(),
            kernels.TRAIN,
            batch_size,
            settings,
            state.step,
            self.first,
            self.second,
            self.gradients,
            *self.scratch.arrays(),
            self._unused,
        )
        state.step += -(-X.shape[1] // batch_size)  # one update per batch
        return np.float64(total)

    def loss_sum(self, params, X, Y):
        if X.shape[1] > SERIAL_EVALUATION:
            return super().loss_sum(params, X, Y)
        return np.float64(self._evaluate(params, X, Y, kernels.LOSS, self._unused))

    def forward(self, params, X):
        if X.shape[1] > SERIAL_EVALUATION:
            return super().forward(params, X)
        out = np.empty((self.architecture.n_outputs, X.shape[1]), dtype=self.dtype)
        self._evaluate(params, X, self._unused, kernels.PREDICT, out)
        return out

    def _evaluate(self, params, X, Y, mode: int, out) -> float:
        pack(params, self.theta_views)
        return self.run_epoch(
            np.ascontiguousarray(X, dtype=self.dtype),
            np.ascontiguousarray(Y, dtype=self.dtype),
            self.theta,
            *self.layout.arrays(),
            mode,
            max(1, X.shape[1]),  # one batch of every column
            self._no_settings,
            0,
            self.first,
            self.second,
            self.gradients,
            *self.evaluation_scratch.arrays(),
            out,
        )

    def _gather(self, data: TrainingData, columns: np.ndarray, slot: int) -> tuple:
        """X[:, columns] and Y[:, columns], C-contiguous, in the buffers of ``slot`` (0 or 1: one is
        filled while the kernel reads the other), kept for the next epoch."""
        width = columns.shape[0]
        chunk = self._chunks[slot]
        if chunk is None or chunk.X.shape != (data.X.shape[0], width):
            chunk = TrainingData(np.empty((data.X.shape[0], width), self.dtype), np.empty((data.Y.shape[0], width), self.dtype))
            self._chunks[slot] = chunk
        X, Y = host_array(chunk.X), host_array(chunk.Y)
        np.take(host_array(data.X), columns, axis=1, out=X, mode="clip")
        np.take(host_array(data.Y), columns, axis=1, out=Y, mode="clip")
        return X, Y


@dataclass
class StepBuffers:
    """One layered step's arrays for batches of ``width`` columns: ``H[i]`` (p_{i+1}, width) for
    each hidden layer, ``output`` (p_L, width) for A_L then dA_L, ``dH`` (max hidden p, width), and
    the gathered batch: ``rows`` (width, n) and ``Y`` (p_L, width)."""

    H: list
    output: np.ndarray
    dH: np.ndarray
    rows: np.ndarray
    Y: np.ndarray


class LayeredStepPlan(_PackedPlan):
    """Wide networks: per step, BLAS matmuls, serial elementwise kernels, one update call."""

    def __init__(self, backend, architecture, dtype, batch_size, optimizer=None):
        super().__init__(backend, architecture, dtype, batch_size, optimizer)
        self.flat_gradients = np.empty(self.layout.count, dtype=self.dtype)
        self.gradient_views = self.layout.views(self.flat_gradients)
        self.hidden_codes = [scalar.activation_code(name) for name in architecture.activations]
        self.output_code = scalar.output_code(architecture.output)
        self._buffers: dict[int, StepBuffers] = {}
        # plain SGD without L1 updates each W inside its gradient's product (see ``_step``)
        self.gemm = blas.numpy_gemm() if self.rule == numba_optim.RULE_SGD else None
        self.weights_in_product = False

    def _set_epoch(self, hyper: Hyperparameters) -> None:
        """The update's settings at this epoch's lr, l1 and l2, and whether gemm does the weights'."""
        _, self.settings = update_rule(self.optimizer, hyper)
        self.weights_in_product = self.gemm is not None and hyper.l1 == 0.0

    def packed_epoch(self, data: TrainingData, order, hyper: Hyperparameters):
        if order is None:
            return self.packed_batches(data.X, data.Y, hyper)
        self._set_epoch(hyper)
        batch_size, total = self.mini_batch_size, 0.0
        for start in range(0, data.m, batch_size):
            batch = order[start : start + batch_size]
            buffers = self._step_buffers(batch.shape[0])
            np.take(host_array(data.rows), batch, axis=0, out=buffers.rows, mode="clip")  # (batch, n), contiguous rows
            np.take(host_array(data.Y), batch, axis=1, out=buffers.Y, mode="clip")
            total += self._step(buffers.rows.T, buffers, hyper)
        return np.float64(total)

    def packed_batches(self, X, Y, hyper: Hyperparameters):
        self._set_epoch(hyper)
        batch_size, total = self.mini_batch_size, 0.0
        for start in range(0, X.shape[1], batch_size):
            X_batch = X[:, start : start + batch_size]
            buffers = self._step_buffers(X_batch.shape[1])
            buffers.Y[...] = Y[:, start : start + batch_size]
            total += self._step(X_batch, buffers, hyper)
        return np.float64(total)

    def _step(self, X, buffers: StepBuffers, hyper: Hyperparameters) -> float:
        """One step on X (n, width) and ``buffers.Y`` (the update by ``self.rule`` and
        ``self.settings``, set for the epoch); returns the batch's summed loss.

        Plain SGD without L1 (``weights_in_product``) updates each W in its gradient's product,
        W = (1 - lr l2) W - (lr / width) dA H_prev^T, one gemm with beta 1 - lr l2 (after
        dH_prev = W^T dA has read W): the gradient is never stored, and the update pass reads the
        biases only."""
        params, grads, layout = self.theta_views, self.gradient_views, self.layout
        width = X.shape[1]
        H = [X]
        for index, (W, b) in enumerate(params[:-1]):
            A = buffers.H[index]
            np.matmul(W, H[-1], out=A)  # A = W H_prev
            kernels.bias_activation(A, b, self.hidden_codes[index], self.fast)  # H = act(A + b)
            H.append(A)
        W_out, b_out = params[-1]
        dA = buffers.output
        np.matmul(W_out, H[-1], out=dA)  # A_L = W_L H_{L-1}
        _, db_out = grads[-1]
        loss = kernels.output_loss_gradient(dA, b_out, buffers.Y, self.output_code, self.fast, db_out)  # dA_L = H_L - Y
        lr, l2 = hyper.lr, hyper.l2
        for index in range(len(params) - 1, -1, -1):
            W, _ = params[index]
            if index > 0:
                dH = buffers.dH[: W.shape[1]]
                np.matmul(W.T, dA, out=dH)  # dH_prev = W^T dA
            if self.weights_in_product:
                self.gemm(-lr / width, dA, H[index].T, 1.0 - lr * l2, W)  # W -= lr (dA H_prev^T / width + l2 W)
            else:
                dW, _ = grads[index]
                np.matmul(dA, H[index].T, out=dW)  # dW = dA H_prev^T (scaled by 1/m in the update)
            if index == 0:
                break
            _, db = grads[index - 1]
            kernels.activation_backward(dH, H[index], self.hidden_codes[index - 1], db)  # dA = dH * act'; db = sum(dA)
            dA = H[index]
        state = self.current_state()
        state.step += 1
        if self.weights_in_product:
            numba_optim.sgd_update_biases(self.theta, self.flat_gradients, 1.0 / width, lr, layout.sizes, layout.bias_offsets)
            return loss
        update = numba_optim.update_parameters
        if self.rule != numba_optim.RULE_SGD and layout.count >= PARALLEL_UPDATE:
            update = numba_optim.update_parameters_parallel
        update(
            self.theta,
            self.flat_gradients,
            1.0 / width,
            self.first,
            self.second,
            self.rule,
            self.settings,
            state.step,
            layout.sizes,
            layout.weight_offsets,
            layout.bias_offsets,
        )
        return loss

    def _step_buffers(self, width: int) -> StepBuffers:
        if width not in self._buffers:
            if len(self._buffers) >= 2:
                self._buffers.clear()
            layers, dtype = self.architecture.layers, self.dtype
            hidden = layers[1:-1]
            self._buffers[width] = StepBuffers(
                H=[np.empty((p, width), dtype=dtype) for p in hidden],
                output=np.empty((layers[-1], width), dtype=dtype),
                dH=np.empty((max(hidden, default=1), width), dtype=dtype),
                rows=np.empty((width, layers[0]), dtype=dtype),
                Y=np.empty((layers[-1], width), dtype=dtype),
            )
        return self._buffers[width]
