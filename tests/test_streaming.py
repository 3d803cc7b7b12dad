"""Training from data read chunk by chunk: every source gives the in-memory result, files are
checked before training, and the large-dataset writer writes what the generator draws.

The oracle is the in-memory path on the same numbers (itself checked against finite differences
and PyTorch in the core tests), in float64 so that only summation order can differ.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import nnaccel as nna
from nnaccel.cli.main import main as cli_main
from nnaccel.data.large import playground_chunk, write_playground_npy
from nnaccel.data.sources import (
    ArraySource,
    ChunkSource,
    DaskSource,
    NpySource,
    as_source,
    epoch_column_order,
    prefetch,
    uniform_boundaries,
)

LAYERS = [3, 5, 4, 1]
M = 1003  # odd, so chunks and batches leave remainders


def make_data(m: int = M, n: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    Y = (X[0] * X[1] + 0.3 * X[2] > 0).astype(np.float64).reshape(1, -1)
    return X, Y


def network(backend: str = "numpy", seed: int = 1):
    return nna.Network(LAYERS, activation="tanh", output="sigmoid", seed=seed, backend=backend, dtype="float64")


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_same_gradients(actual, expected, tolerance=1e-10):
    loss, grads = actual
    loss_expected, grads_expected = expected
    assert abs(loss - loss_expected) <= tolerance * abs(loss_expected)
    for (dW, db), (dW_expected, db_expected) in zip(grads, grads_expected):
        assert relative(dW, dW_expected) <= tolerance
        assert relative(db, db_expected) <= tolerance


@pytest.fixture
def npy_files(tmp_path):
    X, Y = make_data()
    X_path, Y_path = tmp_path / "X.npy", tmp_path / "Y.npy"
    np.save(X_path, X)
    np.save(Y_path, Y)
    return X, Y, str(X_path), str(Y_path)


def all_sources(X, Y, tmp_path):
    """The same data as every kind of source, chunked unevenly."""
    np.save(tmp_path / "Xc.npy", X)
    np.save(tmp_path / "Xf.npy", np.asfortranarray(X))
    np.save(tmp_path / "Y1.npy", Y.ravel())  # a 1-D Y file
    sources = {
        "array": ArraySource(X, Y, chunk_size=97),
        "npy": NpySource(tmp_path / "Xc.npy", tmp_path / "Y1.npy", chunk_size=211),
        "npy-fortran": NpySource(tmp_path / "Xf.npy", tmp_path / "Y1.npy", chunk_size=300),
        "memmap": as_source(
            np.load(tmp_path / "Xc.npy", mmap_mode="r"), np.load(tmp_path / "Y1.npy", mmap_mode="r"), chunk_size=256
        ),
        "chunks-callable": ChunkSource(lambda: ((X[:, a : a + 150], Y[:, a : a + 150]) for a in range(0, X.shape[1], 150))),
        "chunks-list": ChunkSource([(X[:, :500], Y[0, :500]), (X[:, 500:], Y[0, 500:])], m=X.shape[1]),
    }
    zarr = pytest.importorskip("zarr")
    for name, array in (("X", X), ("Y", Y)):
        stored = zarr.create_array(
            store=str(tmp_path / f"{name}.zarr"), shape=array.shape, chunks=(array.shape[0], 128), dtype="float64"
        )
        stored[:] = array
    sources["zarr"] = as_source(str(tmp_path / "X.zarr"), str(tmp_path / "Y.zarr"))
    da = pytest.importorskip("dask.array")
    sources["dask"] = DaskSource(da.from_array(X, chunks=(3, 333)), da.from_array(Y, chunks=(1, 200)))
    return sources


# ----- gradients and full-batch training equal the in-memory result ---------------------------------------
def test_every_source_gives_the_in_memory_gradients(tmp_path, backend_name):
    X, Y = make_data()
    net = network(backend_name)
    expected = net.gradients(X, Y)
    for name, source in all_sources(X, Y, tmp_path).items():
        assert_same_gradients(net.gradients(source), expected), name


def test_gradients_from_npy_paths_equal_in_memory(npy_files):
    X, Y, X_path, Y_path = npy_files
    net = network()
    assert_same_gradients(net.gradients(X_path, Y_path), net.gradients(X, Y))
    assert abs(net.loss(X_path, Y_path) - net.loss(X, Y)) <= 1e-12 * net.loss(X, Y)


def test_full_batch_training_on_every_source_matches_in_memory(tmp_path, backend_name):
    X, Y = make_data()
    reference = network(backend_name)
    expected = reference.fit(X, Y, epochs=4, lr=0.5, l2=1e-3)
    for name, source in all_sources(X, Y, tmp_path).items():
        net = network(backend_name)
        history = net.fit(source, epochs=4, lr=0.5, l2=1e-3)
        assert relative(history["loss"], expected["loss"]) <= 1e-10, name
        for (W, b), (W_expected, b_expected) in zip(net.get_params(), reference.get_params()):
            assert relative(W, W_expected) <= 1e-10 and relative(b, b_expected) <= 1e-10, name


def test_float32_streaming_reads_float64_files(npy_files):
    X, Y, X_path, Y_path = npy_files
    reference = nna.Network(LAYERS, seed=1, backend="numpy", dtype="float32")
    streamed = nna.Network(LAYERS, seed=1, backend="numpy", dtype="float32")
    expected = reference.fit(X, Y, epochs=3, lr=0.5)["loss"]
    assert relative(streamed.fit(X_path, Y_path, epochs=3, lr=0.5)["loss"], expected) <= 1e-5


def test_streamed_validation_equals_in_memory_validation(npy_files):
    X, Y, X_path, Y_path = npy_files
    expected = network().fit(X, Y, epochs=3, lr=0.5, validation=(X[:, :400], Y[:, :400]))
    Xv, Yv = X[:, :400], Y[:, :400]
    history = network().fit(X_path, Y_path, epochs=3, lr=0.5, validation=ArraySource(Xv, Yv, chunk_size=64))
    assert relative(history["val_loss"], expected["val_loss"]) <= 1e-10


# ----- mini-batches ----------------------------------------------------------------------------------
def test_column_orders_drawn_ahead_are_each_chunks_order():
    """Orders drawn ahead on a background thread are ``column_order``'s for the chunk that comes,
    also when the chunks come other than announced (the order is then drawn on the spot)."""
    from nnaccel.data.sources import ColumnOrders, column_order

    upcoming = [(2, 50), (0, 70), (1, 60)]
    orders = ColumnOrders(3, 1, upcoming)
    for index, width in upcoming:
        np.testing.assert_array_equal(orders(index, width), column_order(3, 1, index, width))
    assert orders.lookahead.pending is None  # nothing is drawn after the last chunk
    orders = ColumnOrders(3, 1, upcoming)
    for index, width in [(0, 70), (2, 50), (1, 60), (5, 9)]:
        np.testing.assert_array_equal(orders(index, width), column_order(3, 1, index, width))
    for index, width in upcoming:  # none announced
        np.testing.assert_array_equal(ColumnOrders(3, 1)(index, width), column_order(3, 1, index, width))


@pytest.mark.parametrize("chunk_size,batch_size", [(211, 64), (50, 64), (1003, 100), (128, 1)])
def test_streamed_mini_batches_are_consecutive_runs_of_the_documented_order(chunk_size, batch_size):
    # batches spanning chunks (211/64), chunks smaller than a batch (50/64), one chunk, batch of 1
    X, Y = make_data(m=1003 if batch_size > 1 else 300)
    boundaries = uniform_boundaries(X.shape[1], chunk_size)
    streamed = network()
    history = streamed.fit(ArraySource(X, Y, chunk_size=chunk_size), epochs=2, lr=0.2, batch_size=batch_size, seed=7)
    reference = network()
    losses = []
    for epoch in range(2):
        order = epoch_column_order(7, epoch, boundaries)
        losses += reference.fit(X[:, order], Y[:, order], epochs=1, lr=0.2, batch_size=batch_size, shuffle=False)["loss"]
    assert relative(history["loss"], losses) <= 1e-10
    for (W, _), (W_expected, _) in zip(streamed.get_params(), reference.get_params()):
        assert relative(W, W_expected) <= 1e-10


def test_streamed_mini_batches_on_every_backend(backend_name, npy_files):
    # the backend receives blocks of whole batches (count, n, batch); a GPU backend copies them
    # through its own stream_chunks
    X, Y, X_path, Y_path = npy_files
    history = network(backend_name).fit(NpySource(X_path, Y_path, chunk_size=211), epochs=2, lr=0.2, batch_size=64, seed=3)
    reference, losses = network(backend_name), []
    for epoch in range(2):
        order = epoch_column_order(3, epoch, uniform_boundaries(M, 211))
        losses += reference.fit(X[:, order], Y[:, order], epochs=1, lr=0.2, batch_size=64, shuffle=False)["loss"]
    assert relative(history["loss"], losses) <= 1e-10


def test_epoch_column_order_shuffles_within_and_across_chunks():
    boundaries = uniform_boundaries(1000, 100)
    first, again, second = (epoch_column_order(3, epoch, boundaries) for epoch in (0, 0, 1))
    assert np.array_equal(np.sort(first), np.arange(1000))  # every column once
    assert np.array_equal(first, again)  # a function of (seed, epoch)
    assert not np.array_equal(first, second)
    starts = first[::100] // 100  # each run of 100 is one chunk's columns
    assert sorted(starts.tolist()) == list(range(10)) and starts.tolist() != list(range(10))
    assert all(len(set(first[i : i + 100] // 100)) == 1 for i in range(0, 1000, 100))


def test_mini_batch_streaming_is_deterministic_and_resumes(npy_files):
    X, Y, X_path, Y_path = npy_files
    source = NpySource(X_path, Y_path, chunk_size=200)
    whole = network()
    expected = whole.fit(source, epochs=4, lr=0.3, batch_size=50, seed=5)
    assert network().fit(source, epochs=4, lr=0.3, batch_size=50, seed=5)["loss"] == expected["loss"]
    resumed = network()
    history = resumed.fit(source, epochs=2, lr=0.3, batch_size=50, seed=5)
    resumed.fit(source, epochs=4, lr=0.3, batch_size=50, seed=5, start_epoch=2, history=history)
    assert history["loss"] == expected["loss"]
    for (W, b), (W_expected, b_expected) in zip(resumed.get_params(), whole.get_params()):
        assert np.array_equal(W, W_expected) and np.array_equal(b, b_expected)
    shuffled = network().fit(source, epochs=1, lr=0.3, batch_size=50, seed=6)["loss"]
    assert shuffled != expected["loss"][:1]


def test_an_interrupted_streamed_epoch_resumes_to_the_same_result():
    X, Y = make_data()
    interrupt = {"epoch": None}
    passes = []

    def chunks():
        passes.append(len(passes))
        for start in range(0, M, 300):
            if passes[-1] == interrupt["epoch"] and start >= 600:  # Ctrl-C in the middle of that epoch
                raise KeyboardInterrupt
            yield X[:, start : start + 300], Y[:, start : start + 300]

    expected = network().fit(chunks, epochs=3, lr=0.3, batch_size=100, seed=1)
    passes.clear()
    interrupt["epoch"] = 1
    net = network()
    with pytest.raises(nna.TrainingInterrupted) as stopped:
        net.fit(chunks, epochs=3, lr=0.3, batch_size=100, seed=1)
    assert stopped.value.epoch == 1 and len(stopped.value.history["loss"]) == 1
    interrupt["epoch"] = None
    history = net.fit(chunks, epochs=3, lr=0.3, batch_size=100, seed=1, start_epoch=1, history=stopped.value.history)
    assert history["loss"] == expected["loss"]


def test_chunk_iterables_shuffle_within_each_chunk():
    X, Y = make_data()
    chunks = [(X[:, a : a + 300], Y[:, a : a + 300]) for a in range(0, M, 300)]
    history = network().fit(ChunkSource(chunks), epochs=2, lr=0.2, batch_size=64, seed=2)
    reference, losses = network(), []
    from nnaccel.data.sources import column_order

    for epoch in range(2):
        order = np.concatenate([a + column_order(2, epoch, index, min(300, M - a)) for index, a in enumerate(range(0, M, 300))])
        losses += reference.fit(X[:, order], Y[:, order], epochs=1, lr=0.2, batch_size=64, shuffle=False)["loss"]
    assert relative(history["loss"], losses) <= 1e-10


# ----- iterables that can be read once -------------------------------------------------------------------
def test_an_iterator_serves_one_epoch_and_more_is_a_clear_error_before_training():
    X, Y = make_data()

    def generator():
        for start in range(0, M, 400):
            yield X[:, start : start + 400], Y[:, start : start + 400]

    net = network()
    before = net.get_params()
    with pytest.raises(ValueError, match="read only once.*fresh iterable"):
        net.fit(generator(), epochs=2, lr=0.5)
    assert all(np.array_equal(W, W0) for (W, _), (W0, _) in zip(net.get_params(), before))
    one = net.fit(generator(), epochs=1, lr=0.5)
    assert relative(one["loss"], network().fit(X, Y, epochs=1, lr=0.5)["loss"]) <= 1e-10
    assert relative(network().fit(generator, epochs=3, lr=0.5)["loss"], network().fit(X, Y, epochs=3, lr=0.5)["loss"]) <= 1e-10


def test_a_chunk_iterable_that_changes_length_is_an_error():
    X, Y = make_data()
    widths = iter([M, M - 10])

    def chunks():
        width = next(widths)
        return [(X[:, :width], Y[:, :width])]

    net = network()
    with pytest.raises(ValueError, match="yielded 993 columns in this pass, but m was in the first pass 1003"):
        net.fit(ChunkSource(chunks), epochs=2, lr=0.5)


def test_bad_chunk_items_are_named():
    with pytest.raises(ValueError, match="chunk 0.*pair"):
        ChunkSource([np.zeros((3, 10))])
    with pytest.raises(ValueError, match="no chunks"):
        ChunkSource([])


# ----- files are checked before training -------------------------------------------------------------------
def truncated(path, tmp_path, cut: int = 100) -> str:
    data = open(path, "rb").read()
    bad = tmp_path / "truncated.npy"
    bad.write_bytes(data[:-cut])
    return str(bad)


def test_a_truncated_npy_file_is_a_clear_error_naming_it_before_training(npy_files, tmp_path):
    X, Y, X_path, Y_path = npy_files
    bad = truncated(X_path, tmp_path)
    net = network()
    before = net.get_params()
    calls = []
    with pytest.raises(ValueError, match=r"truncated\.npy.*truncated"):
        net.fit(bad, Y_path, epochs=2, lr=0.5, on_epoch_end=lambda epoch, history: calls.append(epoch))
    assert calls == []
    assert all(np.array_equal(W, W0) for (W, _), (W0, _) in zip(net.get_params(), before))
    # numpy's own memory map says only "mmap length is greater than file size", naming nothing
    with pytest.raises(ValueError, match=r"truncated\.npy.*holds a|truncated\.npy. is truncated"):
        NpySource(X_path, truncated(Y_path, tmp_path, cut=8))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not a numpy file at all" * 4, "not a .npy file"),
        (b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f8', 'fortran_order': Fal", "corrupt or unsupported .npy header"),
    ],
)
def test_a_corrupt_npy_file_is_a_clear_error_naming_it(tmp_path, npy_files, content, message):
    _, _, _, Y_path = npy_files
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"corrupt.npy.*{message}"):
        network().fit(str(bad), Y_path, epochs=1, lr=0.5)


def test_npy_files_with_extra_bytes_objects_or_missing_are_refused(tmp_path, npy_files):
    X, Y, X_path, Y_path = npy_files
    padded = tmp_path / "padded.npy"
    padded.write_bytes(open(X_path, "rb").read() + b"\0" * 16)
    with pytest.raises(ValueError, match="padded.npy.*16 bytes more"):
        NpySource(padded, Y_path)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy.*object"):
        NpySource(objects, Y_path)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        network().fit(str(tmp_path / "missing.npy"), Y_path, epochs=1, lr=0.5)


def test_shapes_are_checked_before_training(tmp_path, npy_files):
    X, Y, X_path, Y_path = npy_files
    np.save(tmp_path / "XT.npy", X.T)
    with pytest.raises(ValueError, match="XT.npy.*1003 rows|m = 3 examples"):
        network().fit(str(tmp_path / "XT.npy"), Y_path, epochs=1, lr=0.5)
    np.save(tmp_path / "Xshort.npy", X[:, :-1])
    with pytest.raises(ValueError, match="m = 1002.*1003"):
        network().fit(str(tmp_path / "Xshort.npy"), Y_path, epochs=1, lr=0.5)
    with pytest.raises(ValueError, match="input layer has 2 features"):
        nna.Network([2, 1], backend="numpy").fit(X_path, Y_path, epochs=1, lr=0.5)


def test_nan_and_bad_labels_in_a_chunk_are_named_and_training_keeps_its_start(tmp_path, npy_files):
    X, Y, X_path, Y_path = npy_files
    X_bad = X.copy()
    X_bad[1, 700] = np.nan
    np.save(tmp_path / "Xnan.npy", X_bad)
    net = network()
    net.fit(X_path, Y_path, epochs=1, lr=0.5)
    start = net.get_params()
    with pytest.raises(ValueError, match=r"Xnan\.npy \(columns 600:800\) contains NaN"):
        net.fit(NpySource(tmp_path / "Xnan.npy", Y_path, chunk_size=200), epochs=1, lr=0.5, batch_size=10)
    assert all(np.array_equal(W, W0) for (W, _), (W0, _) in zip(net.get_params(), start))
    Y_bad = Y.copy()
    Y_bad[0, 5] = 2.0
    np.save(tmp_path / "Ybad.npy", Y_bad)
    with pytest.raises(ValueError, match=r"Ybad\.npy \(columns 0:200\) has labels outside \[0, 1\]"):
        net.fit(NpySource(X_path, tmp_path / "Ybad.npy", chunk_size=200), epochs=1, lr=0.5)


def test_a_missing_or_mixed_y_is_a_clear_error(npy_files):
    X, Y, X_path, Y_path = npy_files
    with pytest.raises(ValueError, match="Y is missing"):
        network().fit(X, epochs=1, lr=0.5)
    with pytest.raises(ValueError, match="both as file paths"):
        network().fit(X_path, Y, epochs=1, lr=0.5)
    with pytest.raises(ValueError, match="holds Y too"):
        network().fit(NpySource(X_path, Y_path), Y, epochs=1, lr=0.5)


def test_memory_mapped_npy_arrays_are_read_with_positioned_reads(npy_files):
    X, Y, X_path, Y_path = npy_files
    source = as_source(np.load(X_path, mmap_mode="r"), np.load(Y_path, mmap_mode="r"))
    assert isinstance(source, NpySource)  # so the pages read never count in the process's memory
    sliced = as_source(np.load(X_path, mmap_mode="r")[:, :500], np.load(Y_path, mmap_mode="r")[:, :500])
    assert isinstance(sliced, ArraySource) and sliced.m == 500
    assert as_source(X, Y) is None  # in-memory arrays keep the in-memory path


# ----- the reader's thread and the backend's transfer hook ------------------------------------------------
def test_prefetch_raises_the_readers_error_and_stops_its_thread():
    def failing():
        yield 1
        raise OSError("disk on fire")

    iterator = prefetch(failing())
    assert next(iterator) == 1
    with pytest.raises(OSError, match="disk on fire"):
        next(iterator)
    before = threading.active_count()
    endless = prefetch(iter(range(10**9)))
    assert next(endless) == 0
    endless.close()
    assert threading.active_count() <= before


def test_a_backend_with_stream_chunks_takes_over_the_transfer(npy_files):
    from nnaccel.backends.numpy_backend import NumpyBackend

    class StreamingBackend(NumpyBackend):
        name = "numpy"
        transferred = 0

        def stream_chunks(self, chunks, dtype):
            for X, Y in chunks:
                StreamingBackend.transferred += X.shape[-1] * (X.shape[0] if X.ndim == 3 else 1)
                yield self.asarray(X, dtype), self.asarray(Y, dtype)

    X, Y, X_path, Y_path = npy_files
    net = nna.Network(LAYERS, seed=1, backend=StreamingBackend(), dtype="float64")
    history = net.fit(NpySource(X_path, Y_path, chunk_size=300), epochs=2, lr=0.5)
    assert StreamingBackend.transferred == 2 * M
    assert relative(history["loss"], network().fit(X, Y, epochs=2, lr=0.5)["loss"]) <= 1e-10


# ----- the large-dataset writer -----------------------------------------------------------------------
def test_write_playground_npy_writes_the_generators_chunks(tmp_path):
    info = write_playground_npy(
        tmp_path / "X.npy",
        tmp_path / "Y.npy",
        "xor",
        2500,
        noise=0.1,
        seed=4,
        features=["x1", "x2", "x1x2"],
        dtype="float64",
        chunk_size=1000,
    )
    X, Y = np.load(tmp_path / "X.npy"), np.load(tmp_path / "Y.npy")
    assert X.shape == (3, 2500) and Y.shape == (1, 2500) and info["shape"] == (3, 2500)
    assert info["bytes"] == os.path.getsize(tmp_path / "X.npy") + os.path.getsize(tmp_path / "Y.npy")
    for index, start in enumerate(range(0, 2500, 1000)):
        X_chunk, Y_chunk = playground_chunk(
            "xor", index, min(1000, 2500 - start), noise=0.1, seed=4, features=["x1", "x2", "x1x2"]
        )
        assert np.array_equal(X[:, start : start + 1000], X_chunk) and np.array_equal(Y[:, start : start + 1000], Y_chunk)
    assert np.allclose(X[2], X[0] * X[1])
    assert 0.4 < Y.mean() < 0.6  # each chunk's columns are shuffled, so any window is balanced
    assert 0.3 < Y[0, :100].mean() < 0.7
    assert sorted(os.listdir(tmp_path)) == ["X.npy", "Y.npy"]  # no partial files left behind


def test_write_playground_npy_checks_everything_before_writing(tmp_path):
    for kwargs, message in (
        ({"name": "moons"}, "unknown dataset"),
        ({"features": ["x9"]}, "unknown feature"),
        ({"dtype": "int8"}, "unsupported dtype 'int8'; expected one of float32, float64"),
        ({"samples": 1}, "at least 2"),
        ({"noise": 3.0}, "fraction"),
    ):
        with pytest.raises(ValueError, match=message):
            write_playground_npy(tmp_path / "X.npy", tmp_path / "Y.npy", **{"name": "circle", "samples": 100, **kwargs})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_playground_npy(tmp_path / "nowhere" / "X.npy", tmp_path / "Y.npy", "circle", 100)
    with pytest.raises(ValueError, match="GB are free"):
        write_playground_npy(tmp_path / "X.npy", tmp_path / "Y.npy", "circle", 10**15)
    assert os.listdir(tmp_path) == []


def test_make_data_command_writes_files_that_train(tmp_path, capsys):
    prefix = str(tmp_path / "circle")
    assert (
        cli_main(
            [
                "make-data",
                "--dataset",
                "circle",
                "--samples",
                "5e3",
                "--noise",
                "10",
                "--chunk-size",
                "2000",
                "--out",
                prefix,
                "--quiet",
            ]
        )
        == 0
    )
    net = nna.Network([2, 4, 1], backend="numpy", dtype="float64")
    history = net.fit(prefix + "_X.npy", prefix + "_Y.npy", epochs=30, lr=0.5, batch_size=100)
    assert history["loss"][-1] < history["loss"][0]
    assert cli_main(["make-data", "--samples", "many", "--out", prefix]) == 2
    assert "--samples must be a whole number" in capsys.readouterr().err


def _zarr_pair(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(2, 400)), (rng.random((1, 400)) > 0.5).astype(float)
    for name, array in (("X", X), ("Y", Y)):
        stored = zarr.create_array(
            store=str(tmp_path / f"{name}.zarr"), shape=array.shape, chunks=(array.shape[0], 100), dtype="float64"
        )
        stored[:] = array
    return str(tmp_path / "X.zarr"), str(tmp_path / "Y.zarr")


def test_a_zarr_array_with_a_deleted_chunk_is_refused(tmp_path):
    X_path, Y_path = _zarr_pair(tmp_path)
    os.unlink(os.path.join(X_path, "c", "0", "2"))
    net = nna.Network([2, 3, 1], backend="numpy")
    with pytest.raises(ValueError, match=r"X.* 1 of its 4 chunks missing"):
        net.fit(X_path, Y_path, epochs=1, lr=0.1)


def test_a_garbage_zarr_chunk_names_the_array(tmp_path):
    X_path, Y_path = _zarr_pair(tmp_path)
    with open(os.path.join(X_path, "c", "0", "1"), "wb") as handle:
        handle.write(b"not zstd at all" * 10)
    net = nna.Network([2, 3, 1], backend="numpy")
    with pytest.raises(ValueError, match=r"X.zarr: columns [0-9]+:[0-9]+ could not be read .*Zstd"):
        net.fit(X_path, Y_path, epochs=1, lr=0.1)
