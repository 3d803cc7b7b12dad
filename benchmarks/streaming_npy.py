"""Streaming a large .npy dataset (issue 6): peak memory and epoch time against one read of the file.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/streaming_npy.py --gb 4 --backend numba
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/streaming_npy.py --gb 10 --batch 256

Writes a Playground circle dataset of ``--gb`` GB (X (2, m) and Y (1, m), float32 by default) with
``nnaccel.data.write_playground_npy`` into ``--dir`` (kept with ``--keep``, else deleted at the
end), then times, each in a fresh subprocess so its peak resident memory (VmHWM) is its own:

- ``read``: one pass of the same chunked reader training uses (positioned reads in a background
  thread, per-chunk checks, conversion to the network dtype), without computing anything;
- ``epoch``: one epoch of ``Network.fit`` on the two paths (2-6-6-1, tanh, sigmoid): full batch,
  or mini-batch SGD in batches of ``--batch`` consecutive examples (a streamed epoch's order);
- ``compute``: the same computation on one chunk already in memory (the gradient, or an unshuffled
  mini-batch ``fit`` of the chunk), repeated, scaled to m: what the epoch would cost if reading
  were free.

``cold``: the files' pages are dropped from the page cache first (posix_fadvise DONTNEED), so the
read comes from the disk; ``warm``: the file was just read, so it comes from the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from nnaccel.bench.memory import resident_bytes

LAYERS = [2, 6, 6, 1]


def drop_from_page_cache(paths) -> None:
    for path in paths:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
            os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(handle)


def child(kind: str, X_path: str, Y_path: str, backend: str, dtype: str, batch: int | None) -> dict:
    import numpy as np

    import nnaccel as nna
    from nnaccel.data.sources import NpySource, default_chunk_columns, host_chunks, prefetch

    net = nna.Network(LAYERS, activation="tanh", output="sigmoid", seed=0, backend=backend, dtype=dtype)
    source = NpySource(X_path, Y_path)
    columns = default_chunk_columns(net.architecture, net.dtype)
    X_map, Y_map = np.load(X_path, mmap_mode="r"), np.load(Y_path, mmap_mode="r")
    net.gradients(X_map[:, :4096], Y_map[:, :4096])  # compile the kernels outside the timing
    if batch is not None:
        net.prepare(batch)
    before, _ = resident_bytes()
    started = time.perf_counter()
    if kind == "read":
        count = 0
        for _, X, _ in prefetch(host_chunks(source, net.architecture, net.dtype, columns=columns)):
            count += X.shape[1]
        assert count == source.m
    elif kind == "epoch":
        net.fit(X_path, Y_path, epochs=1, lr=0.1, batch_size=batch)
    else:  # compute: one chunk in memory, its work repeated (timed from the second), scaled to m
        X = np.ascontiguousarray(X_map[:, :columns], net.dtype)
        Y = np.ascontiguousarray(Y_map[:, :columns], net.dtype)
        if batch is None:  # the chunk's gradient
            grads, workspace = net.gradient_buffers(), net.workspace(columns)

            def work():
                net.backend.loss_and_gradients(net.architecture, net.parameters, X, Y, workspace, grads, 1.0 / source.m)

            repeats = 30
        else:  # an epoch of the chunk, in order

            def work():
                net.fit(X, Y, epochs=1, lr=0.1, batch_size=batch, shuffle=False)

            repeats = 5
        work()
        started = time.perf_counter()
        for _ in range(repeats):
            work()
    seconds = time.perf_counter() - started
    if kind == "compute":
        seconds *= source.m / (repeats * columns)
    _, peak = resident_bytes()
    return {"seconds": seconds, "peak_rss": peak, "rss_before": before, "chunk_columns": columns}


def run_child(kind: str, arguments) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--dir",
        arguments.dir,
        "--backend",
        arguments.backend,
        "--dtype",
        arguments.dtype,
        *(["--batch", str(arguments.batch)] if arguments.batch else []),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=4.0, help="dataset size in GB (default 4)")
    parser.add_argument("--dir", default="/tmp/nnaccel-streaming", help="where to write the dataset")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--dtype", default="float32", help="file and network dtype (default float32)")
    parser.add_argument("--batch", type=int, help="mini-batch size of the epochs (default: full batch)")
    parser.add_argument("--keep", action="store_true", help="keep the dataset afterwards")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    X_path, Y_path = os.path.join(arguments.dir, "X.npy"), os.path.join(arguments.dir, "Y.npy")
    if arguments.child:
        print(json.dumps(child(arguments.child, X_path, Y_path, arguments.backend, arguments.dtype, arguments.batch)))
        return

    import numpy as np

    from nnaccel.data.large import write_playground_npy

    os.makedirs(arguments.dir, exist_ok=True)
    samples = int(arguments.gb * 1e9) // (3 * np.dtype(arguments.dtype).itemsize)
    if not (os.path.exists(X_path) and np.load(X_path, mmap_mode="r").shape == (2, samples)):
        started = time.perf_counter()
        write_playground_npy(X_path, Y_path, "circle", samples, noise=0.1, dtype=arguments.dtype, progress=True)
        print(f"wrote {samples:,} examples in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    size = os.path.getsize(X_path) + os.path.getsize(Y_path)
    results = {
        "file_bytes": size,
        "m": samples,
        "backend": arguments.backend,
        "dtype": arguments.dtype,
        "batch": arguments.batch,
        "runs": {},
    }
    try:
        # compute before and after, so a change in the machine's load between runs shows
        results["runs"]["compute"] = run_child("compute", arguments)
        for cache in ("cold", "warm"):
            for kind in ("read", "epoch"):
                if cache == "cold":
                    drop_from_page_cache([X_path, Y_path])
                else:
                    run_child("read", arguments)  # bring the whole file into the page cache
                results["runs"][f"{kind}-{cache}"] = run_child(kind, arguments)
                run = results["runs"][f"{kind}-{cache}"]
                print(f"{kind:7s} {cache}: {run['seconds']:7.2f} s  peak RSS {run['peak_rss'] / 1e6:7.0f} MB", file=sys.stderr)
        results["runs"]["compute-after"] = run_child("compute", arguments)
    finally:
        if not arguments.keep:
            os.unlink(X_path)
            os.unlink(Y_path)
    runs = results["runs"]
    for cache in ("cold", "warm"):
        results[f"epoch_over_read_{cache}"] = runs[f"epoch-{cache}"]["seconds"] / runs[f"read-{cache}"]["seconds"]
        results[f"epoch_over_max_read_compute_{cache}"] = runs[f"epoch-{cache}"]["seconds"] / max(
            runs[f"read-{cache}"]["seconds"], runs["compute"]["seconds"]
        )
        results[f"peak_rss_over_file_{cache}"] = runs[f"epoch-{cache}"]["peak_rss"] / size
    batches = "full batch" if arguments.batch is None else f"batch {arguments.batch}"
    print(f"file {size / 1e9:.2f} GB, m = {samples:,}, backend {arguments.backend}, {arguments.dtype}, {batches}")
    print(
        f"compute alone (one chunk in memory, scaled to m): {runs['compute']['seconds']:.2f} s before, "
        f"{runs['compute-after']['seconds']:.2f} s after"
    )
    for cache in ("cold", "warm"):
        print(
            f"{cache}: read {runs[f'read-{cache}']['seconds']:.2f} s, epoch {runs[f'epoch-{cache}']['seconds']:.2f} s, "
            f"epoch/read {results[f'epoch_over_read_{cache}']:.2f}, "
            f"epoch/max(read, compute) {results[f'epoch_over_max_read_compute_{cache}']:.2f}, "
            f"peak RSS {runs[f'epoch-{cache}']['peak_rss'] / 1e6:.0f} MB = "
            f"{100 * results[f'peak_rss_over_file_{cache}']:.1f}% of the file"
        )
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
