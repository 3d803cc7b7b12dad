"""Dask arrays whose chunks any worker can rebuild from their source: a ``.npy`` file on a shared
path, or the Playground generator. After a worker dies, Dask recomputes its chunks from here."""

from __future__ import annotations

import os

import numpy as np

from ..data.large import DEFAULT_CHUNK, check_arguments, chunk_widths, playground_chunk
from ..data.sources import NpyFile


def from_npy(path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK):
    """A Dask array (rows, m) of the ``.npy`` file's columns (a 1-D file is one row), chunked
    along m; each chunk is read by the worker that needs it, so ``path`` must be readable on every
    worker (a shared file system). The header and size are checked here, before any work."""
    import dask.array as da
    from dask.base import tokenize

    header = NpyFile(path)
    if len(header.shape) not in (1, 2):
        raise ValueError(f"{header.path!r} holds a {len(header.shape)}-D array; expected (rows, m) or (m,)")
    rows, m = (1, header.shape[0]) if len(header.shape) == 1 else header.shape
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of columns; got {chunk_size!r}")
    return da.map_blocks(
        _read_npy_block,
        header,
        chunks=((rows,), tuple(chunk_widths(m, int(chunk_size)))),
        dtype=header.dtype,
        meta=np.empty((0, 0), header.dtype),
        name=f"read-npy-{tokenize(header.path, os.stat(header.path).st_mtime_ns, header.shape, header.dtype.str, chunk_size)}",
    )


def _read_npy_block(header: NpyFile, block_info=None) -> np.ndarray:
    start, stop = block_info[None]["array-location"][1]
    handle = os.open(header.path, os.O_RDONLY)
    try:
        return header.read_columns(handle, start, stop)
    finally:
        os.close(handle)


def playground_arrays(
    name: str = "circle",
    samples: int = 1_000_000,
    *,
    noise: float = 0.0,
    seed: int = 0,
    features=("x1", "x2"),
    dtype="float32",
    chunk_size: int = DEFAULT_CHUNK,
):
    """(X (len(features), samples), Y (1, samples)) as Dask arrays generated chunk by chunk on the
    workers: the same numbers ``nnaccel.data.write_playground_npy`` writes with these arguments."""
    import dask.array as da

    features, dtype = check_arguments(name, samples, noise, features, dtype, chunk_size)
    rows = len(features) + 1
    both = da.map_blocks(
        _playground_block,
        name,
        noise,
        seed,
        tuple(features),
        dtype.name,
        int(chunk_size),
        chunks=((rows,), tuple(chunk_widths(int(samples), int(chunk_size)))),
        dtype=dtype,
        meta=np.empty((0, 0), dtype),
    )
    return both[:-1], both[-1:]


def _playground_block(name, noise, seed, features, dtype, chunk_size, block_info=None) -> np.ndarray:
    start, stop = block_info[None]["array-location"][1]
    X, Y = playground_chunk(name, start // chunk_size, stop - start, noise=noise, seed=seed, features=features)
    return np.concatenate([X, Y]).astype(dtype)
