"""The CuPy backend: the network on an NVIDIA GPU.

Matmuls go to cuBLAS (``cupy.matmul`` into the step's buffers); bias + activation, activation
derivative x upstream gradient, output loss + gradient and the parameter update are fused CUDA C
kernels (``kernels/cuda/layers.cu``); a network small enough for registers runs forward, loss and
backward in one fully fused numba.cuda kernel (``kernels/cuda_fused.py``). Parameters, buffers and
data stay on the device, memory comes from CuPy's memory pool, and nothing in a step copies to the
host or synchronises: the loss comes back as a device scalar that the caller reads when it wants
(``fit`` reads it once per epoch).

Data larger than the GPU streams from host memory in column chunks (``ColumnStream``): pinned
host buffers and a second CUDA stream, so the copy of chunk k+1 overlaps the compute of chunk k.

This module imports CuPy only when a ``CupyBackend`` is created, so its pure helpers (the
out-of-memory advice, the chunk plan) work, and are tested, on machines without a GPU.
"""

from __future__ import annotations

import importlib
import math

import numpy as np

from ..kernels import activations as scalar
from .base import Backend

# Leave this share of the free device memory unplanned when suggesting a batch size (cuBLAS
# workspaces, the memory pool's rounding, other processes).
MEMORY_HEADROOM = 0.8


# ----- pure helpers (no CuPy needed) -----------------------------------------------------------------
def bytes_per_example(layers, itemsize: int) -> int:
    """Device bytes one example (column) of a mini-batch step needs: its X and Y columns, every
    layer's activations and the two backward scratch columns; layers = (n, p_1, ..., p_L)."""
    layers = tuple(layers)
    columns = layers[0] + layers[-1] + sum(layers[1:]) + 2 * max(layers[1:])
    return columns * itemsize


def suggested_batch_size(free_bytes: int, layers, itemsize: int) -> int:
    """The largest batch size whose step buffers fit in ``free_bytes`` (with headroom), rounded
    down to a multiple of 1024 when that large; 0 when not even one example fits."""
    fits = int(free_bytes * MEMORY_HEADROOM) // bytes_per_example(layers, itemsize)
    return fits - fits % 1024 if fits >= 2048 else max(fits, 0)


def _gigabytes(count: int) -> str:
    return f"{count / 1e9:.2f} GB"


def out_of_memory_message(what: str, shape, dtype, free_bytes: int, total_bytes: int, layers=None) -> str:
    """The error text for a failed device allocation of an array of ``shape`` and ``dtype``.

    ``what`` names the array ("X", "the step buffers for m = 100000 examples"); with ``layers``
    the text suggests the batch size that fits.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    text = (
        f"GPU out of memory: {what} needs a {tuple(shape)} {dtype.name} array ({_gigabytes(size)}) "
        f"but the GPU has {_gigabytes(free_bytes)} free of {_gigabytes(total_bytes)}"
    )
    if layers is None:
        return text + "; free GPU memory (other processes, other arrays) or use a smaller problem"
    batch = suggested_batch_size(free_bytes, layers, dtype.itemsize)
    if batch < 1:
        return text + "; not even one example's buffers fit: free GPU memory first"
    return text + f"; a batch of up to {batch} examples fits: pass batch_size={batch} to fit"


def chunk_bounds(m: int, chunk: int) -> list[tuple[int, int]]:
    """[(start, stop)] column ranges of at most ``chunk`` columns covering 0..m."""
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of columns; got {chunk}")
    return [(start, min(start + chunk, m)) for start in range(0, m, chunk)]


# ----- the backend -----------------------------------------------------------------------------------
class CupyBackend(Backend):
    """Backend on the current CUDA device (``cupy.cuda.Device``).

    ``fused``: run networks small enough for registers through the fully fused kernel (default);
    False forces the layer-by-layer pass (the benchmark compares the two).
    """

    name = "cupy"

    def __init__(self, fused: bool = True):
        self.xp = importlib.import_module("cupy")
        self.fused = fused
        self.pool = self.xp.get_default_memory_pool()
        self._layers = importlib.import_module("nnaccel.kernels.cuda_layers")
        self._fused_kernels = None  # kernels/cuda_fused.py, imported at the first fused step
        self._ones = {}  # dtype name -> a device vector of ones, for row sums through cuBLAS
        self._order_host = None  # the host index array whose device copy is _order_device
        self._order_device = None
        self.multiprocessors = self.xp.cuda.Device().attributes["MultiProcessorCount"]

    # ----- memory ------------------------------------------------------------------------------------
    def memory_info(self) -> tuple[int, int]:
        """(free, total) device bytes, counting the memory pool's cached blocks as free."""
        free, total = self.xp.cuda.runtime.memGetInfo()
        return free + self.pool.free_bytes(), total

    def _allocate(self, make, what: str, shape, dtype, layers=None):
        """``make()``, turning a device out-of-memory error into one that says what fits."""
        out_of_memory = self.xp.cuda.memory.OutOfMemoryError
        try:
            return make()
        except out_of_memory:
            self.pool.free_all_blocks()  # the pool's cached blocks may be what is in the way
        try:
            return make()
        except out_of_memory as error:
            free, total = self.memory_info()
            raise MemoryError(out_of_memory_message(what, shape, dtype, free, total, layers)) from error

    # ----- moving arrays -----------------------------------------------------------------------------
    def asarray(self, array, dtype):
        xp = self.xp
        if isinstance(array, xp.ndarray) and array.dtype == dtype and array.flags.c_contiguous:
            return array
        shape = np.shape(array)
        return self._allocate(lambda: xp.ascontiguousarray(xp.asarray(array, dtype=dtype)), "an input", shape, dtype)

    def to_numpy(self, array) -> np.ndarray:
        return self.xp.asnumpy(array)

    def to_float(self, scalar_value) -> float:
        return float(scalar_value)  # a device scalar: this copies to the host and synchronises

    def empty(self, shape, dtype):
        return self._allocate(lambda: self.xp.empty(shape, dtype=dtype), "a buffer", shape, dtype)

    def zeros(self, shape, dtype):
        return self._allocate(lambda: self.xp.zeros(shape, dtype=dtype), "a buffer", shape, dtype)

    def copy(self, array):
        return self._allocate(array.copy, "a copy", array.shape, array.dtype)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    # ----- linear algebra ----------------------------------------------------------------------------
    def matmul(self, A, B, out):
        return self.xp.matmul(A, B, out=out)  # cuBLAS gemm, A and B may be transposed views

    def row_sums(self, dA, out):
        # db = dA 1: a cuBLAS gemv, deterministic and at memory bandwidth for any (p, m)
        m = dA.shape[1]
        ones = self._ones.get(dA.dtype.name)
        if ones is None or ones.shape[0] < m:
            ones = self._ones[dA.dtype.name] = self.empty((m, 1), dA.dtype)
            ones.fill(1)
        return self.xp.matmul(dA, ones[:m], out=out)

    def take_columns(self, X, indices, out):
        if not isinstance(indices, self.xp.ndarray):
            indices = self._device_indices(indices)
        return self.xp.take(X, indices, axis=1, out=out)

    def _device_indices(self, indices):
        """Host indices on the device, copying each host index array once.

        ``fit`` passes consecutive slices of one shuffled order per epoch: the whole order is copied
        at its first slice and later slices are views of that copy, so a mini-batch step copies
        nothing. (An index array changed in place after its first use is not seen again.)
        """
        indices = np.asarray(indices)
        order = indices.base if isinstance(indices.base, np.ndarray) else indices
        if order.ndim != 1 or indices.ndim != 1 or indices.strides != order.strides or order.dtype.kind not in "iu":
            return self.xp.asarray(indices)
        if order is not self._order_host:
            self._order_host, self._order_device = order, self.xp.asarray(order)
        start = (indices.ctypes.data - order.ctypes.data) // order.itemsize
        return self._order_device[start : start + indices.shape[0]]

    def all_finite(self, array) -> bool:
        return bool(self.xp.isfinite(array).all())

    # ----- fused elementwise kernels -----------------------------------------------------------------
    def bias_activation(self, A, b, activation, scratch):
        self._layers.bias_activation(A, b, scalar.activation_code(activation))  # H = act(A + b)
        return A

    def activation_backward(self, dH, H, activation):
        self._layers.activation_backward(dH, H, scalar.activation_code(activation))  # dA = dH * act'
        return dH

    def output_loss_gradient(self, A, b, Y, output):
        xp = self.xp
        partial_loss = xp.empty(self._layers.MAX_BLOCKS, dtype=xp.float64)
        total = xp.empty(1, dtype=xp.float64)
        self._layers.output_loss_gradient(A, b, Y, scalar.output_code(output), partial_loss, total)  # dA = H - Y
        return total[0]

    def output_activation(self, A, b, output):
        self._layers.output_activation(A, b, scalar.output_code(output))
        return A

    def update(self, W, dW, lr, l1, l2):
        self._layers.update(W, dW, lr, l1, l2)  # W -= lr (dW + l1 sign(W) + l2 W)

    # ----- passes ------------------------------------------------------------------------------------
    def workspace(self, architecture, m, dtype):
        return self._allocate(
            lambda: super(CupyBackend, self).workspace(architecture, m, dtype),
            f"the step buffers for a batch of m = {m} examples",
            (max(architecture.layers[1:]), m),
            dtype,
            architecture.layers,
        )

    def uses_fused(self, architecture, dtype) -> bool:
        """Whether ``loss_and_gradients`` runs this network through the fully fused kernel."""
        if not self.fused:
            return False
        kernels = self._fused()
        return kernels is not None and kernels.fits_fused(architecture.layers, np.dtype(dtype).itemsize)

    def loss_and_gradients(self, architecture, params, X, Y, workspace, grads, scale):
        try:
            if self.uses_fused(architecture, X.dtype):
                return self._fused_loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)
            return super().loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)
        except self.xp.cuda.memory.OutOfMemoryError as error:
            free, total = self.memory_info()
            raise MemoryError(
                out_of_memory_message(
                    f"a training step on m = {X.shape[1]} examples", (max(architecture.layers), X.shape[1]),
                    X.dtype, free, total, architecture.layers,
                )
            ) from error

    def _fused(self):
        """kernels/cuda_fused.py, or None where numba.cuda cannot launch on this GPU."""
        if self._fused_kernels is None:
            try:
                module = importlib.import_module("nnaccel.kernels.cuda_fused")
                from numba import config

                simulated = bool(config.ENABLE_CUDASIM)  # the simulator cannot launch on CuPy arrays
            except ImportError:
                module, simulated = None, True
            self._fused_kernels = False if simulated else module
        return self._fused_kernels or None

    def _fused_loss_and_gradients(self, architecture, params, X, Y, workspace, grads, scale):
        from numba import cuda

        kernels = self._fused()
        xp = self.xp
        m = X.shape[1]
        partials = workspace.extra.get("fused_partials")
        if partials is None:
            blocks = kernels.grid_blocks(m, self.multiprocessors)
            partials = workspace.extra["fused_partials"] = self.empty(kernels.partials_shape(architecture.layers, blocks), X.dtype)
        loss = xp.empty(1, dtype=X.dtype)
        stream_pointer = xp.cuda.get_current_stream().ptr
        stream = cuda.external_stream(stream_pointer) if stream_pointer else 0

        def view(array):  # the same device memory as a numba array, with no synchronisation
            return cuda.as_cuda_array(array, sync=False)

        kernels.fused_loss_and_gradients(
            architecture.layers,
            architecture.activations,
            architecture.output,
            [(view(W), view(b)) for W, b in params],
            view(X),
            view(Y),
            view(partials),
            [(view(dW), view(db)) for dW, db in grads],
            view(loss),
            scale,
            stream,
        )
        return loss[0]

    # ----- data larger than the device ---------------------------------------------------------------
    def stream_columns(self, arrays, chunk: int, dtype) -> "ColumnStream":
        """Iterate over column chunks of host arrays (each (rows, m)) copied to the device; see ColumnStream."""
        return ColumnStream(self, arrays, chunk, dtype)

    def streamed_loss_and_gradients(self, architecture, params, X, Y, grads, chunk: int):
        """Gradients of the mean loss over host arrays X (n, m), Y (outputs, m) that need not fit on
        the device: chunk by chunk through ``stream_columns``, summed into ``grads``. Returns the
        summed loss (a device scalar)."""
        m = X.shape[1]
        dtype = params[0][0].dtype
        chunk_grads = [(self.empty(dW.shape, dtype), self.empty(db.shape, dtype)) for dW, db in grads]
        for dW, db in grads:
            dW.fill(0)
            db.fill(0)
        workspaces = {}
        total = self.xp.zeros((), dtype=self.xp.float64)
        for start, stop, (X_chunk, Y_chunk) in self.stream_columns([X, Y], chunk, dtype):
            size = stop - start
            if size not in workspaces:
                workspaces[size] = self.workspace(architecture, size, dtype)
            total += self.loss_and_gradients(architecture, params, X_chunk, Y_chunk, workspaces[size], chunk_grads, 1.0 / m)
            for (dW, db), (dW_chunk, db_chunk) in zip(grads, chunk_grads):
                dW += dW_chunk
                db += db_chunk
        return total


class ColumnStream:
    """Column chunks of host arrays, copied to the GPU on a second stream while the GPU computes.

    ``for start, stop, device_arrays in ColumnStream(backend, [X, Y], chunk, dtype): ...`` yields,
    for each chunk of at most ``chunk`` columns, C-contiguous device arrays (rows, stop - start)
    holding columns start:stop of each host array. Two device buffers and two pinned host buffers per
    array alternate: while the caller's work on chunk k is queued on the current stream, chunk k+1
    is staged into pinned memory and copied on the copy stream. Events order the two streams, so the
    host never waits for the compute stream; it waits only when the pinned buffer it is about to
    refill is still being copied from. A yielded array is valid until the next iteration.
    """

    def __init__(self, backend: CupyBackend, arrays, chunk: int, dtype):
        import cupyx

        xp = backend.xp
        self.xp = xp
        self.arrays = [np.asarray(array) for array in arrays]
        m = self.arrays[0].shape[1]
        if any(array.ndim != 2 or array.shape[1] != m for array in self.arrays):
            raise ValueError("stream_columns needs 2-D arrays (rows, m) with the same number of columns m")
        self.bounds = chunk_bounds(m, chunk)
        width = min(chunk, m)
        self.dtype = np.dtype(dtype)
        self.copy_stream = xp.cuda.Stream(non_blocking=True)
        # flat buffers, so a shorter last chunk is still a contiguous (rows, width) view
        self.pinned = [[cupyx.empty_pinned(array.shape[0] * width, self.dtype) for array in self.arrays] for _ in range(2)]
        self.device = [
            [backend.empty((array.shape[0] * width,), self.dtype) for array in self.arrays] for _ in range(2)
        ]
        self.copied = [xp.cuda.Event(disable_timing=True) for _ in range(2)]
        self.consumed = [xp.cuda.Event(disable_timing=True) for _ in range(2)]

    def __len__(self) -> int:
        return len(self.bounds)

    def __iter__(self):
        compute = self.xp.cuda.get_current_stream()
        if self.bounds:
            self._copy(0)
        for index, (start, stop) in enumerate(self.bounds):
            slot = index % 2
            if index + 1 < len(self.bounds):
                self._copy(index + 1)  # overlaps the work the caller queues on chunk `index`
            compute.wait_event(self.copied[slot])
            yield start, stop, [self._view(buffer, array, stop - start) for buffer, array in zip(self.device[slot], self.arrays)]
            self.consumed[slot].record(compute)

    @staticmethod
    def _view(flat, array, width: int):
        rows = array.shape[0]
        return flat[: rows * width].reshape(rows, width)

    def _copy(self, index: int) -> None:
        start, stop = self.bounds[index]
        slot = index % 2
        width = stop - start
        self.copied[slot].synchronize()  # the pinned buffer's previous copy has left it
        for host, pinned in zip(self.arrays, self.pinned[slot]):
            np.copyto(self._view(pinned, host, width), host[:, start:stop], casting="same_kind")
        self.copy_stream.wait_event(self.consumed[slot])  # the compute stream is done with the device buffer
        for host, pinned, device in zip(self.arrays, self.pinned[slot], self.device[slot]):
            self._view(device, host, width).set(self._view(pinned, host, width), stream=self.copy_stream)
        self.copied[slot].record(self.copy_stream)
