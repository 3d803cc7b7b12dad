"""Shuffled orders: ``nnaccel.data.orders.permutation`` against NumPy's own ``Generator.permutation``.

Oracle: ``np.random.default_rng(entropy).permutation(m)``, which earlier releases drew every epoch's
order with; the compiled shuffle must give it exactly, whatever the size of its blocks of draws.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.data import orders
from nnaccel.data.sources import column_order
from nnaccel.nn.training import epoch_order

ENTROPIES = ([0, 0], [4, 3], [7, 1, 12])


@pytest.mark.parametrize("m", [orders.COMPILED_FROM - 1, orders.COMPILED_FROM, 2**17 + 1, 300_001, 1_048_576])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_permutation_is_numpys(m, dtype):
    for entropy in ENTROPIES:
        order = orders.permutation(entropy, m, dtype)
        assert order.dtype == dtype and order.shape == (m,)
        np.testing.assert_array_equal(order, np.random.default_rng(entropy).permutation(m))


@pytest.mark.parametrize("raw_block", [1, 2, 3, 64])
def test_compiled_shuffle_is_numpys_across_blocks_of_draws(monkeypatch, raw_block):
    """Blocks of a few draws run out in the middle of an entry's redraws: the next block carries on
    with that entry, as NumPy's single stream of draws does."""
    monkeypatch.setattr(orders, "COMPILED_FROM", 0)
    monkeypatch.setattr(orders, "RAW_BLOCK", raw_block)
    for m in [0, 1, 2, 3, 4, 5, 8, 9, 31, 33, 100, 257, 1000]:
        for entropy in ENTROPIES:
            np.testing.assert_array_equal(orders.permutation(entropy, m), np.random.default_rng(entropy).permutation(m))


def test_numpy_shuffles_where_the_compiled_loop_does_not_apply(monkeypatch):
    """Below ``COMPILED_FROM``, and for indices past 32 bits (NumPy then draws 64-bit values),
    the order is NumPy's own shuffle; the compiled loop is not entered."""
    from nnaccel.kernels import numba_shuffle

    def refuse(*arguments):
        raise AssertionError("the compiled shuffle ran")

    monkeypatch.setattr(numba_shuffle, "shuffle_down", refuse)
    small = orders.COMPILED_FROM - 1
    np.testing.assert_array_equal(orders.permutation([1, 2], small), np.random.default_rng([1, 2]).permutation(small))
    monkeypatch.setattr(orders, "_LARGEST_32_BIT", 1000)  # as if these indices needed 64-bit draws
    m = orders.COMPILED_FROM + 5
    np.testing.assert_array_equal(orders.permutation([1, 2], m), np.random.default_rng([1, 2]).permutation(m))
    monkeypatch.setattr(orders, "_LARGEST_32_BIT", 0xFFFFFFFF)  # the real bound: the compiled loop runs
    with pytest.raises(AssertionError, match="compiled shuffle ran"):
        orders.permutation([1, 2], m)


def test_epoch_and_chunk_orders_are_numpys_permutations():
    """The orders training draws: an epoch's (int32 where m allows) and a streamed chunk's columns."""
    m = 2 * orders.COMPILED_FROM + 7
    order = epoch_order(5, 2, m)
    assert order.dtype == np.int32
    np.testing.assert_array_equal(order, np.random.default_rng([5, 2]).permutation(m))
    columns = column_order(5, 2, 3, m)
    assert columns.dtype == np.int64
    np.testing.assert_array_equal(columns, np.random.default_rng([5, 2, 3]).permutation(m))
