"""The Fisher-Yates shuffle of NumPy's ``Generator.shuffle``, compiled: the same permutation from
the same random draws, in about half the time at a million examples and a third at ten million.

NumPy's loop draws each swap's index by rejection (``random_interval``: 32-bit draws masked to the
smallest power of two above the index, redrawn while over it), and every rejection is a branch the
processor cannot predict, which also stalls the swaps' loads from an array larger than the cache.
Here the draws come in blocks from the bit generator's raw 64-bit outputs (``random_raw``), read as
the 32-bit values NumPy's PCG64 hands out (the low half of each output, then the high half), and
the loop around them is compiled. ``nnaccel.data.orders`` drives it and checks when it applies.
"""

from __future__ import annotations

import numba
import numpy as np

from .numba_rows import OPTIONS


@numba.njit(**OPTIONS)
def shuffle_down(order, draws, index):
    """Continue ``Generator.shuffle`` on order (m,) at ``index`` (m - 1 at the start: the loop runs
    from the last entry down to entry 1), swapping entry i with entry j, j drawn in [0, i] from the
    32-bit values ``draws`` as NumPy draws it. Returns the index the draws ran out at (the next
    block continues there: that entry's rejected draws are already spent), or 0 when done. Every
    index must be below 2^32 (NumPy then draws 32-bit values)."""
    mask = np.int64(0xFFFFFFFF)
    position, count = 0, draws.size
    while index > 0:
        while (mask >> 1) >= index:
            mask >>= 1  # the smallest 2^k - 1 >= index
        j = index + 1  # no draw accepted yet
        while position < count:
            value = np.int64(draws[position]) & mask
            position += 1
            if value <= index:
                j = value
                break
        if j > index:
            return index
        held = order[j]  # swap entries i and j
        order[j] = order[index]
        order[index] = held
        index -= 1
    return index
