"""Large Playground datasets, generated and written straight to ``.npy`` files chunk by chunk.

Memory stays at one chunk whatever the size, so anyone can make a 10-GB dataset to try streaming:

    write_playground_npy("X.npy", "Y.npy", "circle", 10**9)
    net.fit("X.npy", "Y.npy", epochs=1, lr=0.1)

Chunk j (``chunk_size`` points) is an independent Playground draw seeded with (seed, j), its
columns shuffled (the Playground generators emit each class as a block). The same chunks feed
``nnaccel.distributed.playground_arrays``, so a file and a Dask array made with the same arguments
hold the same numbers. The spiral's points lie at fixed places along its arms, so each chunk
repeats them (moved by the noise): use some noise for a large spiral.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import time

import numpy as np

from ..core.validation import resolve_dtype
from .playground import check_dataset, check_features, expand_features, make_dataset

DEFAULT_CHUNK = 1 << 20


def chunk_widths(samples: int, chunk_size: int) -> list[int]:
    """The number of points in each chunk: ``chunk_size``, then what is left."""
    return [min(chunk_size, samples - start) for start in range(0, samples, chunk_size)]


def playground_chunk(
    name: str, index: int, width: int, *, noise: float = 0.0, seed: int = 0, features=("x1", "x2")
) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``index`` of a large Playground dataset: (X (len(features), width), Y (1, width)), float64."""
    points, Y = make_dataset(name, max(width, 2), noise, seed=[seed, index])  # the generators need 2 points
    order = np.random.default_rng([seed, index, 1]).permutation(points.shape[1])[:width]
    return expand_features(points[:, order], features), Y[:, order]


def check_arguments(name: str, samples, noise: float, features, dtype, chunk_size) -> tuple[list[str], np.dtype]:
    """Check everything before any byte is written; returns (features, dtype)."""
    check_dataset(name, noise)
    for value, label in ((samples, "samples"), (chunk_size, "chunk_size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer; got {value!r}")
    if samples < 2:
        raise ValueError(f"samples must be at least 2; got {samples}")
    features = check_features(features)
    dtype = resolve_dtype(dtype)
    return features, dtype


def write_playground_npy(
    X_path: str | os.PathLike,
    Y_path: str | os.PathLike,
    name: str = "circle",
    samples: int = 1_000_000,
    *,
    noise: float = 0.0,
    seed: int = 0,
    features=("x1", "x2"),
    dtype="float32",
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
) -> dict:
    """Write a Playground dataset of ``samples`` points as X (len(features), samples) and
    Y (1, samples) ``.npy`` files (row-major, as ``np.save`` writes them), one chunk at a time.

    Both files appear only when complete (written beside their final names, then renamed), and
    the free disk space is checked first. Returns {"X": path, "Y": path, "shape": ..., "bytes": ...}.
    """
    features, dtype = check_arguments(name, samples, noise, features, dtype, chunk_size)
    samples, chunk_size = int(samples), int(chunk_size)
    paths = [os.fspath(X_path), os.fspath(Y_path)]
    if os.path.abspath(paths[0]) == os.path.abspath(paths[1]):
        raise ValueError("X and Y must go to two different files")
    rows = [len(features), 1]
    sizes = [count * samples * dtype.itemsize for count in rows]
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(paths[0]))).free
    if sum(sizes) + (64 << 20) > free:
        raise ValueError(f"the dataset needs {sum(sizes) / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free there")

    for path in paths:
        remove_dead_partials(path)
    temporaries = [f"{path}.partial-{os.getpid()}" for path in paths]
    handles = []
    try:
        offsets = []
        for temporary, count in zip(temporaries, rows):
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # less the umask, as open() does
            handles.append(handle)
            offsets.append(_write_header(handle, dtype, (count, samples)))
        started, start = time.perf_counter(), 0
        for index, width in enumerate(chunk_widths(samples, chunk_size)):
            X, Y = playground_chunk(name, index, width, noise=noise, seed=seed, features=features)
            for handle, offset, block in zip(handles, offsets, (X, Y)):
                block = np.ascontiguousarray(block, dtype)
                for row in range(block.shape[0]):  # row-major file: each row's part is one run of bytes
                    _pwrite_all(handle, block[row], offset + (row * samples + start) * dtype.itemsize)
            start += width
            if progress:
                _print_progress(start, samples, sum(sizes), time.perf_counter() - started)
        for handle in handles:
            os.fsync(handle)
    except BaseException:
        for handle in handles:
            os.close(handle)
        for temporary in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)
        raise
    for handle in handles:
        os.close(handle)
    # Never a new X beside an old Y: the old Y goes first, so an interrupt between the renames
    # leaves an X without its Y (a clear "missing" error on read), not a mismatched pair.
    if os.path.lexists(paths[1]):
        os.unlink(paths[1])
    for temporary, path in zip(temporaries, paths):
        os.replace(temporary, path)
    if progress:
        print(file=sys.stderr)
    return {"X": paths[0], "Y": paths[1], "shape": (rows[0], samples), "bytes": sum(sizes) + sum(offsets)}


def remove_dead_partials(path: str) -> list[str]:
    """Delete ``PATH.partial-PID`` files that a killed ``write_playground_npy`` left: owned by
    this user, and PID no longer runs (a live writer's file is kept). Returns those removed."""
    from ..io import remove_dead_writers_files

    def writer(entry: str, name: str) -> int | None:
        prefix, _, pid = entry.rpartition(".partial-")
        return int(pid) if prefix == name and pid.isdigit() else None

    return remove_dead_writers_files(path, writer)


def _write_header(handle: int, dtype: np.dtype, shape: tuple[int, int]) -> int:
    """Write a .npy header for a row-major array; returns the data's offset."""
    header = io.BytesIO()
    fields = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(header, fields)
    data = header.getvalue()
    _pwrite_all(handle, np.frombuffer(data, np.uint8), 0)
    return len(data)


def _pwrite_all(handle: int, array: np.ndarray, offset: int) -> None:
    view = np.ascontiguousarray(array).data.cast("B")  # .data: its buffer (a memoryview)
    done = 0
    while done < len(view):
        done += os.pwrite(handle, view[done:], offset + done)


def _print_progress(done: int, total: int, size: int, elapsed: float) -> None:
    print(
        f"\rwrote {done:,} of {total:,} points ({size * done / total / 1e9:.2f} of {size / 1e9:.2f} GB) in {elapsed:.0f}s",
        end="",
        file=sys.stderr,
        flush=True,
    )
