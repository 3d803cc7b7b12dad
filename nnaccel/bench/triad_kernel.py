"""The STREAM triad as one parallel Numba loop (imported only by limits.py, only when Numba is installed)."""

import numba


@numba.njit(parallel=True, cache=True)
def triad(a, b, c, scalar):
    """a = b + scalar * c, element by element, split over every core; a, b, c are (N,) float64."""
    for index in numba.prange(a.shape[0]):
        a[index] = b[index] + scalar * c[index]
