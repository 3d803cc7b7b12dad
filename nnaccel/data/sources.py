"""Training data that need not fit in memory: sources that ``fit`` reads chunk by chunk along m.

A source hands out host (NumPy) column blocks ``(X_chunk (n, w), Y_chunk (outputs, w))``; training
holds a few chunks at a time, so memory is bounded by the chunk width, whatever m is.

- ``NpySource``: two ``.npy`` files; the header is checked against the file size before training
  (a truncated file is a clear error naming it), then chunks are read with positioned reads
  (``os.preadv``), not a memory map, so the pages read never count in the process's memory.
- ``ArraySource``: anything sliceable as ``X[:, a:b]``: NumPy arrays (memory-mapped or not), zarr
  and h5py arrays. Reads follow the array's own chunking where it has one.
- ``DaskSource``: Dask arrays, one Dask block (or several small ones) per chunk, computed in this
  process (for data-parallel training on a cluster see ``nnaccel.distributed``).
- ``ChunkSource``: any iterable of ``(X_chunk, Y_chunk)`` pairs; for more than one epoch it must be
  re-iterable or a function returning a fresh iterable (an iterator is consumed by one pass).

``as_source(X, Y)`` turns what a user passes to ``fit`` into a source (None for in-memory arrays,
which keep the in-memory path). The backend moves chunks to its device through
``device_chunks``: the backend's ``stream_chunks(chunks, dtype)`` hook (CuPy: copy the next
chunk host-to-device while the current one computes) takes the transfer over.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

from ..core import background
from .orders import permutation

# A chunk's data plus the training step's buffers for it stay under about this many bytes.
CHUNK_BYTES = 64 << 20
CHUNK_ALIGN = 1024
_NUMERIC_KINDS = "biuf"


# ----- chunk sizes and orders ------------------------------------------------------------------------
def default_chunk_columns(architecture, dtype, budget_bytes: int = CHUNK_BYTES) -> int:
    """Columns per chunk so that the chunk (X, Y) and a full-batch step's buffers on it (every
    layer's H, the output, two scratch rows of the widest layer) take about ``budget_bytes``."""
    layers = architecture.layers
    rows = layers[0] + 2 * layers[-1] + sum(layers[1:-1]) + 2 * max(layers[1:])
    columns = budget_bytes // (rows * np.dtype(dtype).itemsize)
    return max(CHUNK_ALIGN, columns // CHUNK_ALIGN * CHUNK_ALIGN)


def uniform_boundaries(m: int, columns: int) -> list[int]:
    """[0, columns, 2 columns, ..., m]: chunk j is columns boundaries[j]:boundaries[j + 1]."""
    return list(range(0, m, columns)) + [m]


def grouped_boundaries(sizes: Iterable[int], columns: int) -> list[int]:
    """Boundaries that join consecutive stored blocks of ``sizes`` columns until a chunk has at
    least ``columns`` (a stored block is never split: reading part of one costs the whole)."""
    boundaries, width = [0], 0
    for size in sizes:
        width += int(size)
        if width >= columns:
            boundaries.append(boundaries[-1] + width)
            width = 0
    if width:
        boundaries.append(boundaries[-1] + width)
    return boundaries


def chunk_order(seed: int, epoch: int, chunks: int) -> np.ndarray:
    """The order an epoch of mini-batch training visits a random-access source's chunks in."""
    return np.random.default_rng([seed, epoch]).permutation(chunks)


def column_order(seed: int, epoch: int, chunk: int, width: int) -> np.ndarray:
    """The shuffled order of the columns of chunk ``chunk`` (its index in the source) in an epoch."""
    return permutation([seed, epoch, chunk], width)


def epoch_column_order(seed: int, epoch: int, boundaries: list[int]) -> np.ndarray:
    """The global column order of one shuffled epoch over a random-access source: chunks in
    ``chunk_order``, each chunk's columns in ``column_order``. Mini-batches are consecutive runs of
    ``batch_size`` columns of this order (a batch may span two chunks), so streamed mini-batch
    training equals in-memory training on ``X[:, order]`` without shuffling."""
    parts = []
    for chunk in chunk_order(seed, epoch, len(boundaries) - 1):
        start, stop = boundaries[chunk], boundaries[chunk + 1]
        parts.append(start + column_order(seed, epoch, int(chunk), stop - start))
    return np.concatenate(parts)


# ----- .npy files ------------------------------------------------------------------------------------
class NpyFile:
    """A ``.npy`` file's header, checked against the file's size: shape, dtype, order, data offset."""

    def __init__(self, path: str | os.PathLike, role: str = "data"):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{role} file {self.path!r} does not exist")
        if not os.path.isfile(self.path):
            raise ValueError(f"{role} file {self.path!r} is not a regular file")
        fmt = np.lib.format
        with open(self.path, "rb") as handle:
            try:
                version = fmt.read_magic(handle)
            except ValueError:
                raise ValueError(
                    f"{self.path!r} is not a .npy file (it does not start with the .npy signature); "
                    "write it with numpy.save or nnaccel.data.write_playground_npy"
                ) from None
            try:
                if version == (1, 0):
                    shape, fortran_order, dtype = fmt.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, fortran_order, dtype = fmt.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            except Exception as error:  # a garbled header fails in numpy's parser with several error types
                raise ValueError(
                    f"{self.path!r} has a corrupt or unsupported .npy header ({type(error).__name__}: {error})"
                ) from None
            self.offset = handle.tell()
        if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{self.path!r} holds {dtype} values; nnaccel trains on numbers (float32 or float64)")
        self.shape, self.fortran_order, self.dtype = tuple(int(size) for size in shape), bool(fortran_order), dtype
        expected = self.offset + math.prod(self.shape) * dtype.itemsize
        actual = os.path.getsize(self.path)
        if actual < expected:
            raise ValueError(
                f"{self.path!r} is truncated: its header describes a {self.shape} {dtype} array, "
                f"{expected} bytes with the header, but the file has {actual} bytes "
                "(cut off while writing or copying?); write or copy it again"
            )
        if actual > expected:
            raise ValueError(
                f"{self.path!r} is corrupt: it has {actual - expected} bytes more than its header "
                f"describes (a {self.shape} {dtype} array); write it again"
            )

    def read_columns(self, handle: int, start: int, stop: int) -> np.ndarray:
        """Columns start:stop of the 2-D array (rows, m), or elements start:stop of a 1-D one as a
        (1, stop - start) row, read from the open file descriptor ``handle``, in the file's dtype."""
        width = stop - start
        itemsize = self.dtype.itemsize
        if len(self.shape) == 1:
            out = np.empty((1, width), self.dtype)
            _pread_into(handle, out.reshape(-1), self.offset + start * itemsize, self.path)
            return out
        rows, m = self.shape
        if self.fortran_order:  # each column is contiguous: the block is one run of bytes
            block = np.empty((width, rows), self.dtype)
            _pread_into(handle, block.reshape(-1), self.offset + start * rows * itemsize, self.path)
            return np.ascontiguousarray(block.T)
        out = np.empty((rows, width), self.dtype)
        for row in range(rows):  # row-major: one run per row
            _pread_into(handle, out[row], self.offset + (row * m + start) * itemsize, self.path)
        return out


def _pread_into(handle: int, array: np.ndarray, offset: int, path: str) -> None:
    """Fill the contiguous ``array`` with the file's bytes from ``offset`` (os.preadv releases the GIL)."""
    view = array.data.cast("B")  # .data: its buffer (a memoryview)
    done = 0
    while done < len(view):
        count = os.preadv(handle, [view[done:]], offset + done)
        if count == 0:
            raise ValueError(f"{path!r} ended early while reading it (was it truncated during training?)")
        done += count


# ----- sources ---------------------------------------------------------------------------------------
class DataSource:
    """Base of the training-data sources: ``n_features``, ``n_outputs`` and ``m`` (None while not
    yet known), plus how to read one epoch's chunks."""

    random_access = True
    n_features: int
    n_outputs: int
    m: int | None
    chunk_size: int | None = None
    names: tuple[str, str] = ("X", "Y")

    def passes_left_ok(self, passes: int) -> None:
        """Raise if the source cannot be read ``passes`` times."""

    @property
    def examples(self) -> int:
        """``m`` where the source knows it (a random-access source always does)."""
        if self.m is None:
            raise ValueError("the source's number of examples (m) is not known before a pass over it")
        return self.m

    def boundaries(self, columns: int) -> list[int]:
        """Chunk boundaries for chunks of about ``columns`` columns (``chunk_size`` overrides it)."""
        return uniform_boundaries(self.examples, self.chunk_size or columns)

    def open(self) -> contextlib.AbstractContextManager[Callable[[int, int], tuple]]:
        """A context whose value reads columns start:stop as (X (n, w), Y (outputs, w)) arrays."""
        raise NotImplementedError

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[str, str]]]:
        """One sequential pass: (X_chunk, Y_chunk, names) per chunk (the sources that are not
        ``random_access`` read this way)."""
        raise NotImplementedError


def _check_pair_shapes(X_shape, Y_shape, names) -> tuple[int, int, int]:
    """(n, outputs, m) of the (n, m) X and (outputs, m) or (m,) Y, or a ValueError naming them."""
    if len(X_shape) != 2:
        raise ValueError(
            f"{names[0]} must be 2-D with shape (n features, m examples), one column per example; got shape {tuple(X_shape)}"
        )
    n, m = X_shape
    if len(Y_shape) == 1:
        Y_shape = (1, Y_shape[0])
    if len(Y_shape) != 2:
        raise ValueError(f"{names[1]} must be 2-D with shape (outputs, m); got shape {tuple(Y_shape)}")
    if Y_shape[1] != m:
        hint = " (is one of them transposed? nnaccel reads one column per example)" if Y_shape[0] == m else ""
        raise ValueError(f"{names[0]} has m = {m} examples (columns) but {names[1]} has {Y_shape[1]}; they must match{hint}")
    if m == 0:
        raise ValueError(f"{names[0]} has no examples (m = 0)")
    return n, Y_shape[0], m


class NpySource(DataSource):
    """X (n, m) and Y (outputs, m) (or (m,)) in two ``.npy`` files, read in column chunks.

    ``chunk_size``: columns per chunk (default: sized from the network, see
    ``default_chunk_columns``). Files are checked (header, size) when the source is created.
    """

    def __init__(self, X_path: str | os.PathLike, Y_path: str | os.PathLike, *, chunk_size: int | None = None):
        self.X_file, self.Y_file = NpyFile(X_path, "X"), NpyFile(Y_path, "Y")
        self.names = (self.X_file.path, self.Y_file.path)
        self.n_features, self.n_outputs, self.m = _check_pair_shapes(self.X_file.shape, self.Y_file.shape, self.names)
        self.chunk_size = _check_chunk_size(chunk_size)

    @contextlib.contextmanager
    def open(self):
        X_handle = os.open(self.X_file.path, os.O_RDONLY)
        try:
            Y_handle = os.open(self.Y_file.path, os.O_RDONLY)
            try:
                for handle in (X_handle, Y_handle):
                    if hasattr(os, "posix_fadvise"):  # ask for large read-ahead: the reads are sequential
                        os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                yield lambda start, stop: (
                    self.X_file.read_columns(X_handle, start, stop),
                    self.Y_file.read_columns(Y_handle, start, stop),
                )
            finally:
                os.close(Y_handle)
        finally:
            os.close(X_handle)


class ArraySource(DataSource):
    """X (n, m) and Y (outputs, m) (or (m,)) as anything sliceable ``X[:, a:b]`` with ``shape``
    and ``dtype``: NumPy arrays (memory-mapped or not), zarr arrays, h5py datasets.

    Chunks follow the arrays' own chunking (zarr, h5py) when they have one: a chunk joins whole
    stored blocks.
    """

    def __init__(self, X, Y, *, chunk_size: int | None = None, names: tuple[str, str] = ("X", "Y")):
        for array, name in ((X, names[0]), (Y, names[1])):
            if not (hasattr(array, "shape") and hasattr(array, "dtype") and hasattr(array, "__getitem__")):
                raise ValueError(f"{name} must be an array with shape, dtype and slicing; got {type(array).__name__}")
            if np.dtype(array.dtype).kind not in _NUMERIC_KINDS:
                raise ValueError(f"{name} has dtype {array.dtype}; expected numbers (float32 or float64)")
        self.X, self.Y, self.names = X, Y, names
        self.n_features, self.n_outputs, self.m = _check_pair_shapes(X.shape, Y.shape, names)
        self.chunk_size = _check_chunk_size(chunk_size)
        for array, name in ((X, names[0]), (Y, names[1])):
            _check_zarr_complete(array, name)

    def boundaries(self, columns: int) -> list[int]:
        stored = _stored_columns(self.X)
        if stored is None or self.chunk_size is not None:
            return uniform_boundaries(self.examples, self.chunk_size or columns)
        return grouped_boundaries(_block_sizes(self.examples, stored), columns)

    @contextlib.contextmanager
    def open(self):
        yield self._read

    def _read(self, start: int, stop: int):
        X = _read_columns(self.X, self.names[0], start, stop)
        Y = _read_columns(self.Y, self.names[1], start, stop)
        return X, Y.reshape(self.n_outputs, stop - start)


def _check_zarr_complete(array, name: str) -> None:
    """A zarr array with a stored chunk missing would read it as the fill value (zeros) and train
    on them silently: refuse it, naming the array."""
    if _module(array) != "zarr":
        return
    try:
        stored, expected = array.nchunks_initialized, array.nchunks
    except Exception:  # a store that cannot list its chunks: reads will tell
        return
    if stored < expected:
        raise ValueError(
            f"{name} (zarr array {getattr(array, 'store_path', '')}) has {expected - stored} of its {expected} chunks "
            "missing; they would read as the fill value (zeros): rewrite the array"
        )


def _read_columns(array, name: str, start: int, stop: int) -> np.ndarray:
    """Columns start:stop of ``array`` ((rows, m) or (m,)); a failed read of a stored block (a
    damaged zarr or h5py chunk) is a ValueError naming the array and the columns."""
    try:
        return np.asarray(array[start:stop] if len(array.shape) == 1 else array[:, start:stop])
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # codecs raise RuntimeError, ValueError, OSError...
        raise ValueError(
            f"{name}: columns {start}:{stop} could not be read ({type(error).__name__}: {error}); the stored data is damaged"
        ) from None


class DaskSource(DataSource):
    """X (n, m) and Y (outputs, m) as Dask arrays, chunked along m; each chunk is computed in this
    process (with Dask's current scheduler) as training reaches it. Chunks join whole Dask blocks."""

    def __init__(self, X, Y, *, chunk_size: int | None = None, names: tuple[str, str] = ("X", "Y")):
        if any(math.isnan(size) for size in (*X.shape, *Y.shape)):
            raise ValueError("Dask arrays with unknown chunk sizes cannot be streamed; call X.compute_chunk_sizes() first")
        self.n_features, self.n_outputs, self.m = _check_pair_shapes(X.shape, Y.shape, names)
        for array, name in ((X, names[0]), (Y, names[1])):
            if np.dtype(array.dtype).kind not in _NUMERIC_KINDS:
                raise ValueError(f"{name} has dtype {array.dtype}; expected numbers (float32 or float64)")
        self.X = X.rechunk({0: -1})
        Y = Y.reshape(1, -1) if Y.ndim == 1 else Y
        self.Y = Y.rechunk({0: -1, 1: self.X.chunks[1]})
        self.names = names
        self.chunk_size = _check_chunk_size(chunk_size)

    def boundaries(self, columns: int) -> list[int]:
        return grouped_boundaries(self.X.chunks[1], self.chunk_size or columns)

    @contextlib.contextmanager
    def open(self):
        import dask

        yield lambda start, stop: dask.compute(self.X[:, start:stop], self.Y[:, start:stop])


class ChunkSource(DataSource):
    """Chunks ``(X_chunk (n, w), Y_chunk (outputs, w))`` from an iterable, read in the order it
    yields them.

    ``chunks``: a function returning a fresh iterable for each pass (e.g. ``lambda: read(...)``),
    or a re-iterable (a list, or an object whose ``__iter__`` starts over). An iterator (a
    generator) can be read once: it serves one epoch only. ``m``: the total number of columns, if
    known (it is learned in the first pass otherwise, and checked in every later one).
    Mini-batch training shuffles the columns within each chunk; the chunk order is the iterable's.
    """

    random_access = False

    def __init__(self, chunks, *, m: int | None = None, names: tuple[str, str] = ("X", "Y")):
        self.names = names
        if callable(chunks) and not hasattr(chunks, "__iter__"):
            self._factory, self.one_shot = chunks, False
        elif hasattr(chunks, "__iter__"):
            self.one_shot = iter(chunks) is chunks
            self._factory = lambda: chunks
        else:
            raise ValueError(
                f"expected an iterable of (X_chunk, Y_chunk) pairs or a function returning one; got {type(chunks).__name__}"
            )
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1):
            raise ValueError(f"m must be a positive integer (the total number of columns); got {m!r}")
        self.m = None if m is None else int(m)
        self._declared_m = self.m
        self._first_pass: Iterator | None = None
        iterator = iter(self._factory())
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError("the chunk iterable yielded no chunks; it has no examples") from None
        X_chunk, Y_chunk = self._pair(first, 0)
        self.n_features, self.n_outputs, _ = _check_pair_shapes(X_chunk.shape, Y_chunk.shape, self._chunk_names(0))
        self._first_pass = _chain_first((X_chunk, Y_chunk), iterator)

    def passes_left_ok(self, passes: int) -> None:
        if self.one_shot and passes > 1:
            raise ValueError(
                f"the chunk source is an iterator, which can be read only once, but training needs {passes} passes "
                "over it; pass a function that returns a fresh iterable (e.g. lambda: read_chunks(...)) or a "
                "re-iterable object such as a list"
            )

    def _chunk_names(self, index: int) -> tuple[str, str]:
        return (f"{self.names[0]} (chunk {index})", f"{self.names[1]} (chunk {index})")

    def _pair(self, item, index: int):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(
                f"chunk {index} of the iterable is a {type(item).__name__}; each chunk must be a pair (X_chunk, Y_chunk)"
            )
        X_chunk, Y_chunk = (np.asarray(array) for array in item)
        if Y_chunk.ndim == 1:
            Y_chunk = Y_chunk.reshape(1, -1)
        return X_chunk, Y_chunk

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[str, str]]]:
        """One pass: (X_chunk, Y_chunk, names) per chunk; checks m at the end of the pass."""
        if self._first_pass is not None:
            iterator, self._first_pass = self._first_pass, None
        elif self.one_shot:
            raise ValueError("the chunk iterator has been read already; pass a function that returns a fresh iterable")
        else:
            iterator = iter(self._factory())
        seen = 0
        for index, item in enumerate(iterator):
            X_chunk, Y_chunk = self._pair(item, index)
            yield X_chunk, Y_chunk, self._chunk_names(index)
            seen += X_chunk.shape[1]
        if seen == 0:
            raise ValueError("the chunk iterable yielded no chunks in this pass")
        if self.m is not None and seen != self.m:
            known = "was given as" if self._declared_m is not None else "was in the first pass"
            raise ValueError(f"the chunk iterable yielded {seen} columns in this pass, but m {known} {self.m}")
        self.m = seen


def _chain_first(first, iterator):
    yield first
    yield from iterator


def _check_chunk_size(chunk_size) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of columns; got {chunk_size!r}")
    return int(chunk_size)


def _stored_columns(array) -> int | None:
    """Columns per stored block along m for zarr/h5py arrays; None for unchunked arrays."""
    chunks = getattr(array, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == 2 and isinstance(chunks[1], (int, np.integer)):
        return int(chunks[1])
    return None


def _block_sizes(m: int, stored: int) -> list[int]:
    return [min(stored, m - start) for start in range(0, m, stored)]


# ----- recognising what the user passed ---------------------------------------------------------------
def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def _module(value) -> str:
    return type(value).__module__.split(".")[0]


def _is_dask_array(value) -> bool:
    return _module(value) == "dask" and hasattr(value, "chunks") and hasattr(value, "dask")


def _open_path(path, role: str):
    """An array view of a data file: a .npy header (NpyFile) or a zarr array."""
    path = os.fspath(path)
    if path.endswith(".npy"):
        return NpyFile(path, role)
    if (
        path.rstrip("/").endswith(".zarr")
        or os.path.isfile(os.path.join(path, "zarr.json"))
        or os.path.isfile(os.path.join(path, ".zarray"))
    ):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{role} zarr array {path!r} does not exist")
        try:
            import zarr
        except ImportError:
            raise ValueError(f"reading {path!r} needs zarr; install it with `pip install zarr`") from None
        try:
            return zarr.open_array(path, mode="r")
        except Exception as error:  # zarr raises several types for a missing or broken store
            raise ValueError(f"{path!r} could not be opened as a zarr array ({type(error).__name__}: {error})") from None
    raise ValueError(f"{role} file {path!r}: expected a .npy file or a .zarr array")


def _original_npy_map(array) -> str | None:
    """The file behind a whole-file memory map from ``np.load(path, mmap_mode=...)``, else None."""
    if not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename):
        return None
    try:
        header = NpyFile(array.filename)
    except (ValueError, OSError):
        return None
    order_matches = array.flags.f_contiguous if header.fortran_order else array.flags.c_contiguous
    if header.offset == array.offset and header.shape == array.shape and header.dtype == array.dtype and order_matches:
        return array.filename
    return None


def as_source(X, Y=None, *, chunk_size: int | None = None) -> DataSource | None:
    """What ``fit`` was given, as a source read in chunks; None for in-memory arrays.

    Accepted: a ``DataSource`` (Y None); two ``.npy`` or ``.zarr`` paths; arrays memory-mapped
    with ``np.load(..., mmap_mode="r")`` (read with positioned reads); zarr or h5py arrays; Dask
    arrays; an iterable of (X_chunk, Y_chunk) pairs or a function returning one (Y None).
    """
    if isinstance(X, DataSource):
        if Y is not None:
            raise ValueError("X is a data source, which holds Y too; pass Y=None")
        return X
    if Y is None:
        if isinstance(X, np.ndarray) or _is_path(X):
            raise ValueError("Y is missing: pass fit(X, Y), or one data source (or chunk iterable) as X")
        return ChunkSource(X)
    if _is_path(X) or _is_path(Y):
        if not (_is_path(X) and _is_path(Y)):
            raise ValueError("pass X and Y both as file paths, or both as arrays")
        X_file, Y_file = _open_path(X, "X"), _open_path(Y, "Y")
        if isinstance(X_file, NpyFile) and isinstance(Y_file, NpyFile):
            return NpySource(X_file.path, Y_file.path, chunk_size=chunk_size)
        X_array = np.load(X_file.path, mmap_mode="r") if isinstance(X_file, NpyFile) else X_file
        Y_array = np.load(Y_file.path, mmap_mode="r") if isinstance(Y_file, NpyFile) else Y_file
        return ArraySource(X_array, Y_array, chunk_size=chunk_size, names=(os.fspath(X), os.fspath(Y)))
    if _is_dask_array(X) or _is_dask_array(Y):
        import dask.array as da

        return DaskSource(da.asarray(X), da.asarray(Y), chunk_size=chunk_size)
    X_path, Y_path = _original_npy_map(X), _original_npy_map(Y)
    if X_path and Y_path:
        return NpySource(X_path, Y_path, chunk_size=chunk_size)
    if isinstance(X, np.memmap) or isinstance(Y, np.memmap) or _module(X) in ("zarr", "h5py") or _module(Y) in ("zarr", "h5py"):
        return ArraySource(X, Y, chunk_size=chunk_size)
    if chunk_size is not None:
        return ArraySource(np.asarray(X), np.asarray(Y), chunk_size=chunk_size)
    return None


def check_source(source: DataSource, architecture, passes: int = 1, role: str = "training") -> None:
    """Raise a ValueError, before any training, if ``source`` does not suit the network (features,
    outputs) or cannot be read ``passes`` times."""
    n, outputs = architecture.n_inputs, architecture.n_outputs
    X_name, Y_name = source.names
    if source.n_features != n:
        hint = " (it looks transposed: nnaccel reads one column per example)" if source.m == n else ""
        raise ValueError(
            f"{role} data {X_name} has {source.n_features} rows but the network's input layer has {n} features; "
            f"it must be (n, m) = ({n}, m){hint}"
        )
    if source.n_outputs != outputs:
        raise ValueError(
            f"{role} data {Y_name} has {source.n_outputs} rows but the network has {outputs} outputs; it must be ({outputs}, m)"
        )
    source.passes_left_ok(passes)


# ----- one epoch's chunks ----------------------------------------------------------------------------
def host_chunks(source: DataSource, architecture, dtype, *, columns: int, order=None) -> Iterator:
    """Checked host chunks (X (n, w), Y (outputs, w)) in ``dtype``, with each chunk's index in the
    source: ``(index, X, Y)``. ``order``: the chunk indices to visit (random-access sources;
    default all, in order). Every chunk is checked as it is read (shape, NaN or infinite values,
    labels that suit the output layer), with the columns it came from named in the error."""
    from ..core.validation import check_X, check_Y

    if not source.random_access:
        for index, (X, Y, names) in enumerate(source.chunks()):
            X = check_X(X, architecture, names[0])
            Y = check_Y(Y, architecture, X.shape[1], names[1])
            yield index, np.ascontiguousarray(X, dtype), np.ascontiguousarray(Y, dtype)
        return
    boundaries = source.boundaries(columns)
    order = range(len(boundaries) - 1) if order is None else order
    with source.open() as read:
        for index in order:
            start, stop = boundaries[index], boundaries[index + 1]
            X, Y = read(start, stop)
            where = f" (columns {start}:{stop})"
            X = check_X(X, architecture, source.names[0] + where)
            Y = check_Y(Y, architecture, stop - start, source.names[1] + where)
            yield int(index), np.ascontiguousarray(X, dtype), np.ascontiguousarray(Y, dtype)


class ColumnOrders:
    """Each chunk's ``column_order`` in turn, for an epoch that visits the chunks ``(index, width)``
    of ``upcoming`` in that order (known ahead for a random-access source; else None): the next
    chunk's order is drawn on a background thread while this chunk is gathered. Drawing a
    permutation of a chunk's columns costs more than reading and gathering them."""

    def __init__(self, seed: int, epoch: int, upcoming: Sequence[tuple[int, int]] | None = None):
        self.seed, self.epoch = seed, epoch
        self.upcoming = list(upcoming or ())
        self.position = 0  # how many chunks have come
        self.lookahead = background.Lookahead(column_order)

    def __call__(self, index: int, width: int) -> np.ndarray:
        self.position += 1
        following = None
        if self.position < len(self.upcoming):
            following = (self.seed, self.epoch, *self.upcoming[self.position])
        return self.lookahead((self.seed, self.epoch, index, width), following)


def batch_blocks(
    chunks: Iterable, batch: int, *, seed: int, epoch: int, shuffle: bool, upcoming: Sequence[tuple[int, int]] | None = None
) -> Iterator:
    """Regroup host chunks ``(index, X, Y)`` into blocks of whole mini-batches side by side:
    ``(X (n, count batch), Y (outputs, count batch))``, batch k being columns k batch to
    (k + 1) batch, the layout the plans' ``run_batches`` steps through. Each chunk's columns are
    shuffled (``column_order``) when ``shuffle``; the columns left over at a chunk's end start the
    next block's first batch; the epoch's last columns make one final, shorter batch.
    ``upcoming``: the chunks' (index, width) in the order they come, when known ahead (see
    ``ColumnOrders``)."""
    orders = ColumnOrders(seed, epoch, upcoming)
    X_rest = Y_rest = None
    for index, X, Y in chunks:
        width = X.shape[1]
        order = orders(index, width) if shuffle else np.arange(width)
        carried = 0 if X_rest is None else X_rest.shape[1]
        count = (carried + width) // batch
        used = count * batch - carried  # columns of this chunk that go into whole batches
        if count:
            X_block = np.empty((X.shape[0], count * batch), X.dtype)
            Y_block = np.empty((Y.shape[0], count * batch), Y.dtype)
            _gather_columns(X, X_rest, order[:used], X_block)
            _gather_columns(Y, Y_rest, order[:used], Y_block)
            X_rest = X[:, order[used:]] if used < width else None
            Y_rest = Y[:, order[used:]] if used < width else None
            yield X_block, Y_block
        else:  # the chunk and the carried columns make less than one batch
            X_rest = X[:, order] if X_rest is None else np.concatenate([X_rest, X[:, order]], axis=1)
            Y_rest = Y[:, order] if Y_rest is None else np.concatenate([Y_rest, Y[:, order]], axis=1)
    if X_rest is not None and Y_rest is not None and X_rest.shape[1]:
        yield X_rest, Y_rest


def _gather_columns(source: np.ndarray, carried, order: np.ndarray, out: np.ndarray) -> None:
    """out (rows, k) = the carried columns, then source's columns in ``order``."""
    head = 0 if carried is None else carried.shape[1]
    if head:
        out[:, :head] = carried
    for row in range(out.shape[0]):  # one gather per row, into a contiguous row of out
        np.take(source[row], order, out=out[row, head:], mode="clip")


Item = TypeVar("Item")  # what a prefetched iterable yields


def prefetch(items: Iterable[Item], depth: int = 1) -> Generator[Item, None, None]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead, so reading the next
    chunk (file reads release the GIL) overlaps the current chunk's computation. Errors in the
    thread are raised here; closing the iterator stops the thread."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((finished, None))
        except BaseException as error:  # handed to the consumer, which raises it
            put((None, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="nnaccel-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is finished:
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                slots.get_nowait()
        thread.join()


def device_chunks(backend, chunks: Iterable, dtype) -> Iterator:
    """Host chunk pairs moved to ``backend``'s device by its ``stream_chunks`` hook (a GPU
    backend overlaps the copy of the next chunk with the current one's work)."""
    return iter(backend.stream_chunks(chunks, dtype))
