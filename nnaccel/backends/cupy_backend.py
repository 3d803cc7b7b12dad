"""The CuPy backend: the network on an NVIDIA GPU.

Matmuls go to cuBLAS (``cupy.matmul`` into the step's buffers); bias + activation, activation
derivative x upstream gradient, output loss + gradient and the parameter update are fused CUDA C
kernels (``kernels/cuda_layers.cu``); a network small enough for registers runs forward, loss and
backward in one fully fused numba.cuda kernel (``kernels/cuda_fused.py``). Parameters, buffers and
data stay on the device, memory comes from CuPy's memory pool, and nothing in a step copies to the
host or synchronises: the loss comes back as a device scalar that the caller reads when it wants
(``fit`` reads it once per epoch).

Data larger than the GPU streams from host memory in chunks (``ChunkStream``, used by
``nnaccel.data.sources.device_chunks`` through ``stream_chunks``): pinned host buffers and a second
CUDA stream, so the copy of chunk k+1 overlaps the compute of chunk k.

This module imports CuPy only when a ``CupyBackend`` is created, so its pure helpers (the
out-of-memory advice, the chunk plan) work, and are tested, on machines without a GPU.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

from ..kernels import activations as scalar
from .base import Array, Backend, Workspace

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

    ``what`` names the array ("an input", "the step buffers for a batch of m = 100000 examples",
    their rows counted together); with ``layers`` the text suggests the batch size that fits.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    text = (
        f"GPU out of memory allocating {what}, a {tuple(shape)} {dtype.name} array ({_gigabytes(size)}); "
        f"the GPU has {_gigabytes(free_bytes)} free of {_gigabytes(total_bytes)}"
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
@dataclass
class CupyWorkspace(Workspace):
    """The base buffers, and the fully fused kernel's per-block partial sums (made at its first use)."""

    fused_partials: object = None


class CupyBackend(Backend):
    """Backend on the current CUDA device (``cupy.cuda.Device``).

    ``fused``: run networks small enough for registers through the fully fused kernel (default);
    False forces the layer-by-layer pass (the benchmark compares the two).
    """

    name = "cupy"
    workspace_type = CupyWorkspace

    def __init__(self, fused: bool = True):
        self.xp = importlib.import_module("cupy")
        self.fused = fused
        self.pool = self.xp.get_default_memory_pool()
        self._layers = importlib.import_module("nnaccel.kernels.cuda_layers")
        self._fused_kernels = None  # kernels/cuda_fused.py, imported at the first fused step
        self._ones: dict[str, Array] = {}  # dtype name -> a device vector of ones, for row sums through cuBLAS
        self.multiprocessors = self.xp.cuda.Device().attributes["MultiProcessorCount"]

    def device(self) -> str:
        device = self.xp.cuda.Device()
        name = self.xp.cuda.runtime.getDeviceProperties(device.id)["name"]
        return f"GPU {device.id} ({name.decode() if isinstance(name, bytes) else name})"

    def settings(self) -> dict:
        return {"fused": self.fused}

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

    def to_float(self, value) -> float:
        return float(value)  # a device scalar: this copies to the host and synchronises

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

    def indices(self, order):
        return self.xp.asarray(order)

    def take_columns(self, X, indices, out):
        return self.xp.take(X, indices, axis=1, out=out)

    def take_rows(self, rows, indices, out):
        return self.xp.take(rows, indices, axis=0, out=out)

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

    def momentum_update(self, W, dW, buffer, lr, momentum, nesterov, l1, l2):
        self._layers.momentum_update(W, dW, buffer, lr, momentum, nesterov, l1, l2)  # buf = momentum buf + g

    def adam_update(self, W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2):
        self._layers.adam_update(W, dW, m, v, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2)

    # ----- passes ------------------------------------------------------------------------------------
    def workspace(self, architecture, m, dtype):
        try:
            return super().workspace(architecture, m, dtype)
        except MemoryError as error:  # from one of its buffers: say which batch size fits instead
            free, total = self.memory_info()
            raise MemoryError(
                out_of_memory_message(
                    f"the step buffers for a batch of m = {m} examples",
                    (bytes_per_example(architecture.layers, np.dtype(dtype).itemsize) // np.dtype(dtype).itemsize, m),
                    dtype,
                    free,
                    total,
                    architecture.layers,
                )
            ) from error

    def uses_fused_pass(self, architecture, dtype=None) -> bool:
        """Whether ``loss_and_gradients`` runs this network through the fully fused kernel
        (``cuda_fused.fits_fused``: at most 16 units a layer, a register-sized parameter count)."""
        dtype = np.float32 if dtype is None else dtype
        if not self.fused:
            return False
        kernels = self._fused()
        return kernels is not None and kernels.fits_fused(architecture.layers, np.dtype(dtype).itemsize)

    def loss_and_gradients(self, architecture, params, X, Y, workspace, grads, scale):
        try:
            if self.uses_fused_pass(architecture, X.dtype):
                return self._fused_loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)
            return super().loss_and_gradients(architecture, params, X, Y, workspace, grads, scale)
        except self.xp.cuda.memory.OutOfMemoryError as error:
            free, total = self.memory_info()
            raise MemoryError(
                out_of_memory_message(
                    f"a training step on m = {X.shape[1]} examples",
                    (bytes_per_example(architecture.layers, X.dtype.itemsize) // X.dtype.itemsize, X.shape[1]),
                    X.dtype,
                    free,
                    total,
                    architecture.layers,
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
        partials = workspace.fused_partials
        if partials is None:
            blocks = kernels.grid_blocks(m, self.multiprocessors)
            partials = workspace.fused_partials = self.empty(kernels.partials_shape(architecture.layers, blocks), X.dtype)
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
    def stream_chunks(self, chunks, dtype):
        """Host chunks (tuples of arrays, e.g. (X, Y)) as device arrays, copying the next chunk on a
        second stream while the current one computes; the hook ``nnaccel.data.sources.device_chunks``
        calls. Each yielded tuple is valid until the next one is asked for."""
        return iter(ChunkStream(self, chunks, dtype))

    def stream_columns(self, arrays, chunk: int, dtype):
        """``(start, stop, device_arrays)`` for column chunks of host arrays, each (rows, m)."""
        arrays = [np.asarray(array) for array in arrays]
        m = arrays[0].shape[1]
        if any(array.ndim != 2 or array.shape[1] != m for array in arrays):
            raise ValueError("stream_columns needs 2-D arrays (rows, m) with the same number of columns m")
        bounds = chunk_bounds(m, chunk)
        host = (tuple(array[:, start:stop] for array in arrays) for start, stop in bounds)
        for (start, stop), device_arrays in zip(bounds, ChunkStream(self, host, dtype)):
            yield start, stop, list(device_arrays)

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


class ChunkStream:
    """Host chunks copied to the GPU on a second stream while the GPU computes on the previous one.

    ``for arrays in ChunkStream(backend, chunks, dtype)`` takes an iterable of tuples of host arrays
    (any shapes, e.g. (X (n, w), Y (outputs, w))) and yields tuples of C-contiguous device arrays
    with the same values, in ``dtype``. Two slots alternate, each a pinned host buffer and a device
    buffer per array: while the caller's work on chunk k is queued on the current stream, chunk k+1
    is staged into pinned memory on the host and copied on the copy stream. CUDA events order the two
    streams (a copy into a slot waits for the compute that used it; compute on a slot waits for its
    copy), so the host never waits for the compute stream, only for the copy out of the pinned buffer
    it is about to refill. A yielded tuple is valid until the next one is asked for.
    """

    def __init__(self, backend: CupyBackend, chunks, dtype):
        self.backend = backend
        self.xp = backend.xp
        self.chunks = chunks
        self.dtype = np.dtype(dtype)
        self.copy_stream = self.xp.cuda.Stream(non_blocking=True)
        self.pinned: list[list[np.ndarray]] = [[], []]  # per slot, one flat pinned buffer per array
        self.device: list[list[Array]] = [[], []]  # per slot, one flat device buffer per array
        self.copied = [self.xp.cuda.Event(disable_timing=True) for _ in range(2)]
        self.consumed = [self.xp.cuda.Event(disable_timing=True) for _ in range(2)]

    def __iter__(self):
        compute = self.xp.cuda.get_current_stream()
        chunks = iter(self.chunks)
        shapes = self._stage(next(chunks, None), 0, compute)
        slot = 0
        while shapes is not None:
            upcoming = self._stage(next(chunks, None), 1 - slot, compute)  # overlaps the work on this chunk
            compute.wait_event(self.copied[slot])
            yield tuple(flat[: math.prod(shape)].reshape(shape) for flat, shape in zip(self.device[slot], shapes))
            self.consumed[slot].record(compute)
            shapes, slot = upcoming, 1 - slot

    def _stage(self, chunk, slot: int, compute):
        """Start copying ``chunk`` into ``slot``; return its arrays' shapes (None: no chunk)."""
        if chunk is None:
            return None
        arrays = [np.asarray(array) for array in chunk]
        self.copied[slot].synchronize()  # the slot's pinned buffers are no longer being copied from
        self._reserve(slot, [array.size for array in arrays], compute)
        shapes = [array.shape for array in arrays]
        for array, pinned in zip(arrays, self.pinned[slot]):
            np.copyto(pinned[: array.size].reshape(array.shape), array, casting="same_kind")
        self.copy_stream.wait_event(self.consumed[slot])  # the compute stream is done with the slot
        for array, pinned, device in zip(arrays, self.pinned[slot], self.device[slot]):
            device[: array.size].set(pinned[: array.size], stream=self.copy_stream)  # async: pinned memory
        self.copied[slot].record(self.copy_stream)
        return shapes

    def _reserve(self, slot: int, sizes, compute) -> None:
        """Grow the slot's buffers to hold arrays of ``sizes`` entries."""
        import cupyx

        pinned, device = self.pinned[slot], self.device[slot]
        grown = False
        for index, size in enumerate(sizes):
            if index < len(pinned) and pinned[index].size >= size:
                continue
            host, on_device = cupyx.empty_pinned(max(size, 1), self.dtype), self.backend.empty((max(size, 1),), self.dtype)
            if index == len(pinned):
                pinned.append(host)
                device.append(on_device)
            else:
                pinned[index], device[index] = host, on_device
            grown = True
        if grown:
            # A new device buffer may reuse pool memory that queued compute work still reads: the
            # copy stream starts after everything queued so far.
            allocated = self.xp.cuda.Event(disable_timing=True)
            allocated.record(compute)
            self.copy_stream.wait_event(allocated)
