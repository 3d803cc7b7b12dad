"""Shuffled orders of examples: ``Generator.permutation``'s, drawn faster for large m.

A mini-batch epoch over m examples shuffles m indices; at a million examples NumPy's shuffle took
as long as the small networks' whole epoch of training. ``permutation`` gives exactly
``np.random.default_rng(entropy).permutation(m)``, so runs draw the batches earlier releases drew;
from ``COMPILED_FROM`` entries the shuffle runs in a compiled loop (``kernels/numba_shuffle.py``).
"""

from __future__ import annotations

import sys

import numpy as np

# From this many entries the compiled loop shuffles (below, NumPy's loop is fast enough, and a run
# on small data need not compile it).
COMPILED_FROM = 1 << 16
# Raw 64-bit draws taken from the bit generator per block (512 KiB): a block covers about 90,000
# entries, and the draws left over in the last block are never used.
RAW_BLOCK = 1 << 16
_LARGEST_32_BIT = 0xFFFFFFFF


def permutation(entropy, m: int, dtype=np.int64) -> np.ndarray:
    """``np.random.default_rng(entropy).permutation(m)`` as an array of ``dtype`` (an integer type
    that holds m - 1): the entries 0 .. m-1 in shuffled order, (m,)."""
    order = np.arange(m, dtype=dtype)
    generator = np.random.default_rng(entropy)
    bit_generator = generator.bit_generator
    # NumPy draws 64-bit values for indices from 2^32 on, and its PCG64 hands out the halves of a
    # 64-bit draw in little-endian order: elsewhere NumPy shuffles
    compiled = m >= COMPILED_FROM and m - 1 <= _LARGEST_32_BIT and sys.byteorder == "little"
    if not compiled or type(bit_generator) is not np.random.PCG64:
        generator.shuffle(order)
        return order
    from ..kernels.numba_shuffle import shuffle_down

    index = m - 1
    while index > 0:
        draws = bit_generator.random_raw(RAW_BLOCK).view(np.uint32)  # NumPy's 32-bit draws, in order
        index = shuffle_down(order, draws, index)
    return order
