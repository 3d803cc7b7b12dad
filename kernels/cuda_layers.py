"""The CuPy backend's fused elementwise kernels: CUDA C in ``kernels/cuda_layers.cu``.

``layers_source()`` is the complete source (the activation codes and constants prepended as
#defines from the one place each is defined), which CuPy compiles with NVRTC through
``cupy.RawModule`` and the tests compile with ``nvcc``. The launch functions take CuPy arrays,
queue one kernel on the current stream and return at once: nothing here copies to the host or
synchronises.

Shapes: A, H, dH, Y are (p, m) C-contiguous; b is (p, 1).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from nnaccel.core import activations as constants

from . import activations as scalar

SOURCE_PATH = Path(__file__).with_name("cuda_layers.cu")
THREADS = 256  # NNACCEL_THREADS in layers.cu
# Arguments go to the kernels as NumPy scalars of the exact C type (long long, int, T).
# Grid-stride kernels use at most this many blocks along x, so the loss has at most this many
# partial sums (one per block) and the final sum is one block's work.
MAX_BLOCKS = 4096
KERNEL_NAMES = (
    "bias_activation",
    "activation_backward",
    "output_loss_gradient",
    "output_activation",
    "update",
    "momentum_update",
    "adam_update",
)


def definitions() -> dict[str, str]:
    """The #define names and values layers.cu expects, from kernels/activations.py and core/activations.py."""
    values = {f"NNACCEL_{name.upper()}": str(code) for name, code in scalar.ACTIVATION_CODES.items()}
    values.update({f"NNACCEL_OUTPUT_{name.upper()}": str(code) for name, code in scalar.OUTPUT_CODES.items()})
    values.update(
        NNACCEL_LEAKY_RELU_SLOPE=repr(float(constants.LEAKY_RELU_SLOPE)),
        NNACCEL_ELU_ALPHA=repr(float(constants.ELU_ALPHA)),
        NNACCEL_SELU_ALPHA=repr(float(constants.SELU_ALPHA)),
        NNACCEL_SELU_SCALE=repr(float(constants.SELU_SCALE)),
    )
    return values


def layers_source() -> str:
    """The full CUDA C source: the #defines, then layers.cu."""
    header = "".join(f"#define {name} {value}\n" for name, value in definitions().items())
    return header + SOURCE_PATH.read_text()


def kernel_names() -> list[str]:
    """The extern "C" kernels layers.cu defines (each for float and double, plus sum_partials)."""
    return [f"{name}_{ctype}" for name in KERNEL_NAMES for ctype in ("float", "double")] + ["sum_partials"]


@functools.cache
def _module():
    import cupy

    # NVRTC compiles once per process and CuPy caches the binary on disk across processes.
    return cupy.RawModule(code=layers_source(), options=("--std=c++14",))


def _kernel(name: str, dtype):
    ctype = "float" if dtype.itemsize == 4 else "double"
    return _module().get_function(f"{name}_{ctype}")


def _blocks(count: int) -> int:
    return max(1, min(-(-count // THREADS), MAX_BLOCKS))


def bias_activation(A, b, code: int) -> None:
    """In place: A (p, m) becomes H = act(A + b)."""
    p, m = A.shape
    grid = (_blocks(m), min(p, 65535))
    _kernel("bias_activation", A.dtype)(grid, (THREADS,), (A, b, np.int64(p), np.int64(m), np.int32(code)))


def activation_backward(dH, H, code: int) -> None:
    """In place: dH (p, m) becomes dA = dH * act'(A), act' written from H (p, m)."""
    _kernel("activation_backward", dH.dtype)((_blocks(dH.size),), (THREADS,), (dH, H, np.int64(dH.size), np.int32(code)))


def output_loss_gradient(A, b, Y, code: int, partial_loss, total):
    """In place: A (p, m) becomes dA = H - Y. ``total`` (a 1-element float64 device array) gets the
    summed loss; ``partial_loss`` is float64 scratch with at least MAX_BLOCKS entries."""
    p, m = A.shape
    blocks = _blocks(m)
    _kernel("output_loss_gradient", A.dtype)(
        (blocks,), (THREADS,), (A, b, Y, np.int64(p), np.int64(m), np.int32(code), partial_loss)
    )
    _module().get_function("sum_partials")((1,), (THREADS,), (partial_loss, np.int32(blocks), total))
    return total


def output_activation(A, b, code: int) -> None:
    """In place: A (p, m) becomes H = out(A + b)."""
    p, m = A.shape
    _kernel("output_activation", A.dtype)((_blocks(m),), (THREADS,), (A, b, np.int64(p), np.int64(m), np.int32(code)))


def update(W, dW, lr: float, l1: float, l2: float) -> None:
    """In place: W -= lr * (dW + l1 sign(W) + l2 W)."""
    scalar_type = W.dtype.type
    _kernel("update", W.dtype)(
        (_blocks(W.size),), (THREADS,), (W, dW, np.int64(W.size), scalar_type(lr), scalar_type(l1), scalar_type(l2))
    )


def momentum_update(W, dW, buffer, lr: float, momentum: float, nesterov: bool, l1: float, l2: float) -> None:
    """In place, SGD with momentum: buffer = momentum buffer + g, W -= lr (g + momentum buffer) or
    lr buffer, with g = dW + l2 W + l1 sign(W)."""
    t = W.dtype.type
    _kernel("momentum_update", W.dtype)(
        (_blocks(W.size),),
        (THREADS,),
        (W, dW, buffer, np.int64(W.size), t(lr), t(momentum), np.int32(bool(nesterov)), t(l1), t(l2)),
    )


def adam_update(
    W, dW, m, v, step_size: float, beta1: float, beta2: float, eps: float, bias2_sqrt: float, decay: float, l1: float, l2: float
) -> None:
    """In place, one Adam/AdamW step on W, its first and second moments m and v (see
    ``nnaccel.optim.Adam``)."""
    t = W.dtype.type
    _kernel("adam_update", W.dtype)(
        (_blocks(W.size),),
        (THREADS,),
        (W, dW, m, v, np.int64(W.size), t(step_size), t(beta1), t(beta2), t(eps), t(bias2_sqrt), t(decay), t(l1), t(l2)),
    )
