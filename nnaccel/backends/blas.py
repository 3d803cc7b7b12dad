"""C = alpha A B + beta C on the BLAS that NumPy itself runs its matmuls on.

``np.matmul`` computes A B into a fresh or overwritten C. A plain SGD step of a wide layer needs
W - lr (1/m) dA H_prev^T, which BLAS's gemm computes in place as one product with alpha = -lr/m
and beta = 1: the gradient is never written out, and the update's pass over every weight is gone.
NumPy keeps its BLAS to itself, so ``numpy_gemm`` finds it among the loaded libraries (NumPy's
wheels bundle OpenBLAS) and calls its ``cblas_?gemm``. It is the same library, so the same thread
pool, as NumPy's matmuls. Where none is found (another platform, or a NumPy built on another BLAS),
``numpy_gemm`` returns None and callers keep their matmul and update.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..threads import loaded_openblas_paths

ROW_MAJOR, NO_TRANSPOSE, TRANSPOSE = 101, 111, 112  # the CBLAS enumerations
# (name, integer type): NumPy 2's OpenBLAS (64-bit integers, its symbols prefixed "scipy_"),
# NumPy 1's (64-bit, suffixed "64_"), and a plain 32-bit CBLAS
_SYMBOLS = (
    ("scipy_cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm", ctypes.c_int32),
)


@dataclass(frozen=True)
class Operand:
    """A 2-D array as gemm reads it: transposed or not, its leading dimension, its address."""

    transpose: int
    leading: int
    address: int

    @classmethod
    def of(cls, array: np.ndarray) -> Operand | None:
        """The operand of ``array`` (rows, columns), or None when neither axis has unit stride."""
        rows, columns = array.shape
        row_stride, column_stride = (stride // array.itemsize for stride in array.strides)
        if (column_stride == 1 or columns == 1) and row_stride >= max(1, columns):
            return cls(NO_TRANSPOSE, row_stride, array.ctypes.data)
        if (row_stride == 1 or rows == 1) and column_stride >= max(1, rows):
            return cls(TRANSPOSE, column_stride, array.ctypes.data)
        return None


@dataclass(frozen=True)
class Gemm:
    """``gemm(alpha, A, B, beta, C)``: C (M, N) = alpha A (M, K) B (K, N) + beta C, in place, for
    float32 and float64 arrays of one dtype; C's rows contiguous, A and B any BLAS layout."""

    functions: dict  # dtype -> the ctypes function

    def __call__(self, alpha: float, A: np.ndarray, B: np.ndarray, beta: float, C: np.ndarray) -> None:
        dtype, (M, K), N = C.dtype, A.shape, B.shape[1]
        out = Operand.of(C)
        if dtype not in self.functions or A.dtype != dtype or B.dtype != dtype or out is None or out.transpose != NO_TRANSPOSE:
            raise ValueError(
                f"gemm takes float32 or float64 arrays of one dtype, C with contiguous rows; got {A.dtype}, "
                f"{B.dtype} and {C.dtype} {C.shape} with strides {C.strides}"
            )
        if B.shape[0] != K or C.shape != (M, N):
            raise ValueError(f"gemm: A {A.shape} B {B.shape} does not give C {C.shape}")
        if min(M, N, K) == 0:  # nothing to multiply: C = beta C
            C[...] = 0 if beta == 0 else beta * C
            return
        first, second = Operand.of(A), Operand.of(B)
        # an operand with neither axis contiguous (a view with steps) is copied first, and the copy
        # held until the call returns
        if first is None:
            A = np.ascontiguousarray(A)
            first = Operand.of(A)
        if second is None:
            B = np.ascontiguousarray(B)
            second = Operand.of(B)
        assert first is not None and second is not None  # a C-ordered array always has one
        self.functions[dtype](
            ROW_MAJOR,
            first.transpose,
            second.transpose,
            M,
            N,
            K,
            alpha,
            first.address,
            first.leading,
            second.address,
            second.leading,
            beta,
            out.address,
            out.leading,
        )


def _bind(library: ctypes.CDLL) -> dict | None:
    """{dtype: gemm} from the first naming scheme whose single and double gemm ``library`` has."""
    for pattern, integer in _SYMBOLS:
        functions = {}
        for dtype, letter, real in ((np.dtype(np.float32), "s", ctypes.c_float), (np.dtype(np.float64), "d", ctypes.c_double)):
            function = getattr(library, pattern.format(letter), None)
            if function is None:
                break
            pointer = ctypes.c_void_p
            # (order, transpose A, transpose B, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
            arguments = [ctypes.c_int] * 3 + [integer] * 3 + [real, pointer, integer, pointer, integer, real, pointer]
            function.argtypes = [*arguments, integer]
            function.restype = None
            functions[dtype] = function
        if len(functions) == 2:
            return functions
    return None


def _agrees_with_matmul(gemm: Gemm) -> bool:
    """A small product of every layout the callers use, against ``np.matmul``."""
    rng = np.random.default_rng(0)
    for dtype in gemm.functions:
        A, B = rng.random((5, 3)).astype(dtype), rng.random((4, 3)).astype(dtype).T  # B: a transposed layout
        C = rng.random((5, 4)).astype(dtype)
        expected = 0.5 * (A @ B) - 2.0 * C
        gemm(0.5, A, B, -2.0, C)
        if not np.allclose(C, expected, rtol=1e-5, atol=1e-5):
            return False
    return True


@cache
def numpy_gemm() -> Gemm | None:
    """The gemm of the OpenBLAS that NumPy loaded (checked on a small product), or None."""
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy's BLAS is loaded by its first matmul at the latest
    for path in sorted(loaded_openblas_paths(), key=lambda path: "numpy" not in path):  # NumPy's own first
        try:
            functions = _bind(ctypes.CDLL(path))
        except OSError:
            continue
        if functions is not None:
            gemm = Gemm(functions)
            if _agrees_with_matmul(gemm):
                return gemm
    return None
