"""The machine's limits, measured in the same run as the benchmarks: GEMM rate and memory bandwidth.

- GEMM: float32 C = A @ B on large square matrices, 2 n^3 FLOPs per product; the best of several
  runs (the rate the hardware and BLAS can reach).
- Bandwidth: the STREAM triad a[i] = b[i] + s * c[i] on float64 arrays far larger than the caches.
  Bytes counted per pass: 24 per element, as STREAM counts them (8 read from b, 8 read from c,
  8 written to a); the write-allocate read of ``a`` that most CPUs also do is not counted, so like
  STREAM the figure is slightly below the true traffic. On the CPU the triad is one parallel Numba
  loop over all cores; without Numba it falls back to NumPy, which makes two passes
  (a = s * c, then a += b) and so reports less than the hardware gives.

The GPU versions run on CuPy (imported only when it can run) and are timed with CUDA events.
"""

from __future__ import annotations

import time

import numpy as np

from .memory import available_memory

CPU_GEMM_SIZE = 2048
CPU_TRIAD_ELEMENTS = 1 << 24  # 128 MiB per float64 array: 4x a 32 MiB L3 cache, as STREAM asks
GPU_GEMM_SIZE = 8192
GPU_TRIAD_ELEMENTS = 1 << 26  # 512 MiB per array, far beyond any GPU's L2
TRIAD_BYTES_PER_ELEMENT = 24
GEMM_RUNS = 3
TRIAD_RUNS = 10


def measure_limits(gpu: bool = True) -> dict:
    """{"cpu": {...}, "gpu": {...} or None, "gpu_note": why not}, each with gemm_gflops and
    stream_gbps and the method behind them."""
    limits: dict[str, dict | str | None] = {"cpu": {**cpu_gemm(), **cpu_triad()}, "gpu": None, "gpu_note": None}
    if gpu:
        from ..backends import unavailable_reason

        reason = unavailable_reason("cupy")
        if reason is None:
            limits["gpu"] = {**gpu_gemm(), **gpu_triad()}
        else:
            limits["gpu_note"] = reason
    return limits


def cpu_gemm(size: int = CPU_GEMM_SIZE, runs: int = GEMM_RUNS) -> dict:
    """Best float32 GEMM rate of NumPy's BLAS on (size, size) matrices, in GFLOP/s."""
    rng = np.random.default_rng(0)
    A = rng.random((size, size), dtype=np.float32)
    B = rng.random((size, size), dtype=np.float32)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)  # warm-up: BLAS threads start, pages are touched
    best = min(_seconds(lambda: np.matmul(A, B, out=C)) for _ in range(runs))
    return {
        "gemm_gflops": 2 * size**3 / best / 1e9,
        "gemm_method": f"float32 {size}x{size} np.matmul, best of {runs}, 2n^3 FLOPs",
    }


def cpu_triad(elements: int = CPU_TRIAD_ELEMENTS, runs: int = TRIAD_RUNS) -> dict:
    """Best STREAM triad bandwidth in GB/s (1e9 bytes), 24 bytes counted per element."""
    elements = _fit_in_memory(elements)
    b = np.full(elements, 1.0)
    c = np.full(elements, 2.0)
    a = np.empty(elements)
    try:
        from .triad_kernel import triad

        method = "Numba parallel loop"

        def one_pass():
            triad(a, b, c, 3.0)

    except ImportError:
        method = "NumPy, two passes (Numba not installed: reads low)"

        def one_pass():
            np.multiply(c, 3.0, out=a)
            np.add(a, b, out=a)  # not `a += b`: that would make `a` local to this function

    one_pass()  # warm-up: compiles the kernel, touches every page
    best = min(_seconds(one_pass) for _ in range(runs))
    if not np.all(a[:: max(1, elements // 1000)] == 7.0):
        raise RuntimeError("the bandwidth triad computed wrong values; its timing cannot be trusted")
    return {
        "stream_gbps": TRIAD_BYTES_PER_ELEMENT * elements / best / 1e9,
        "stream_method": (
            f"triad a = b + s*c, float64, {elements} elements ({elements * 8 >> 20} MiB per array), "
            f"{method}, best of {runs}, {TRIAD_BYTES_PER_ELEMENT} bytes counted per element"
        ),
    }


def gpu_gemm(size: int = GPU_GEMM_SIZE, runs: int = GEMM_RUNS) -> dict:
    """Best float32 cuBLAS GEMM rate on the current CUDA device, timed with CUDA events."""
    import cupy

    A = cupy.random.random((size, size), dtype=cupy.float32)
    B = cupy.random.random((size, size), dtype=cupy.float32)
    C = cupy.empty_like(A)
    cupy.matmul(A, B, out=C)
    best = min(_cuda_seconds(lambda: cupy.matmul(A, B, out=C)) for _ in range(runs))
    return {
        "gemm_gflops": 2 * size**3 / best / 1e9,
        "gemm_method": f"float32 {size}x{size} cupy.matmul (cuBLAS), CUDA events, best of {runs}",
        "device_name": _cuda_device_name(),
    }


def gpu_triad(elements: int = GPU_TRIAD_ELEMENTS, runs: int = TRIAD_RUNS) -> dict:
    """Best STREAM triad bandwidth of the CUDA device in GB/s, one elementwise kernel per pass."""
    import cupy

    free_bytes, _ = cupy.cuda.runtime.memGetInfo()
    elements = int(min(elements, free_bytes // (8 * 3 * 4)))  # at most a quarter of free memory
    kernel = cupy.ElementwiseKernel("float64 b, float64 c, float64 s", "float64 a", "a = b + s * c", "nnaccel_triad")
    b = cupy.full(elements, 1.0)
    c = cupy.full(elements, 2.0)
    a = cupy.empty(elements)
    kernel(b, c, 3.0, a)
    best = min(_cuda_seconds(lambda: kernel(b, c, 3.0, a)) for _ in range(runs))
    return {
        "stream_gbps": TRIAD_BYTES_PER_ELEMENT * elements / best / 1e9,
        "stream_method": (
            f"triad a = b + s*c, float64, {elements} elements, one CuPy elementwise kernel, "
            f"CUDA events, best of {runs}, {TRIAD_BYTES_PER_ELEMENT} bytes counted per element"
        ),
    }


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _cuda_seconds(function) -> float:
    import cupy

    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    function()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3


def _cuda_device_name() -> str:
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties.get("name", b"CUDA device")
    return name.decode() if isinstance(name, bytes) else str(name)


def _fit_in_memory(elements: int) -> int:
    """Shrink the triad arrays to a quarter of the available memory on small machines."""
    available = available_memory()
    if available is None:
        return elements
    return int(max(1 << 20, min(elements, available // (8 * 3 * 4))))
