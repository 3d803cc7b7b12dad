"""Dask data-parallel training (issue 6): time per full-batch step on a LocalCluster against the
in-process backend, on the same data.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_step.py --m 1e7 --workers 2

2-6-6-1 (tanh, sigmoid), float32, the Playground circle. In process: ``full_batch_step`` on the
data already in memory, with ``--backend`` (default numba, all cores). Dask: ``--workers``
processes of one thread each (Numba's threads set to cores / workers), the data generated on the
workers in ``--chunks`` chunks and persisted, each step one graph and one compute
(``nnaccel.distributed.training.DataParallel.step``), every worker on ``--backend``. The figure is
the median of ``--repeat`` steps after two warm-up steps; the Dask step's fixed cost is measured
the same way at a tiny m. Both run in this one process, side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

LAYERS = [2, 6, 6, 1]


def median_seconds(step, repeat: int) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def in_process(m: int, chunk: int, backend: str, repeat: int) -> float:
    import nnaccel as nna
    from nnaccel.data.large import chunk_widths, playground_chunk
    from nnaccel.nn.training import full_batch_step

    parts = [playground_chunk("circle", index, width, noise=0.1) for index, width in enumerate(chunk_widths(m, chunk))]
    net = nna.Network(LAYERS, seed=0, backend=backend, dtype="float32")
    X = net.backend.asarray(np.concatenate([X for X, _ in parts], axis=1), net.dtype)
    Y = net.backend.asarray(np.concatenate([Y for _, Y in parts], axis=1), net.dtype)
    del parts
    grads = net._gradient_buffers()
    return median_seconds(lambda: net.backend.to_float(full_batch_step(net, X, Y, grads, 0.1)), repeat)


def on_dask(client, m: int, chunk: int, backend: str, repeat: int) -> tuple[float, dict]:
    import nnaccel as nna
    from nnaccel.distributed import playground_arrays
    from nnaccel.distributed.training import DataParallel

    net = nna.Network(LAYERS, seed=0, backend="numpy", dtype="float32")
    X, Y = playground_arrays("circle", m, noise=0.1, chunk_size=chunk)
    trainer = DataParallel(client, net, X, Y, backend)
    try:
        placement = {address: len(keys) // 2 for address, keys in client.has_what().items()}  # X and Y chunks
        return median_seconds(lambda: trainer.step(0.1, 0.0, 0.0), repeat), placement
    finally:
        trainer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", default="1e7")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=4, help="chunks of the data (default 4: 2 per worker)")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", help="write the results here")
    arguments = parser.parse_args()
    m = int(float(arguments.m))
    chunk = -(-m // arguments.chunks)

    from nnaccel.distributed import connect

    results = {"m": m, "workers": arguments.workers, "chunks": arguments.chunks, "backend": arguments.backend}
    with connect("local", workers=arguments.workers) as client:
        results["dask_step_s"], results["placement"] = on_dask(client, m, chunk, arguments.backend, arguments.repeat)
        results["dask_fixed_cost_s"], _ = on_dask(client, 4 * arguments.workers * 1024, 1024, arguments.backend, arguments.repeat)
    results["in_process_step_s"] = in_process(m, chunk, arguments.backend, arguments.repeat)
    results["ratio"] = results["dask_step_s"] / results["in_process_step_s"]
    print(
        f"m = {m:,}, 2-6-6-1 float32, {arguments.backend}: in process {results['in_process_step_s'] * 1e3:.0f} ms/step; "
        f"Dask LocalCluster ({arguments.workers} workers, {arguments.chunks} chunks {results['placement']}) "
        f"{results['dask_step_s'] * 1e3:.0f} ms/step = {results['ratio']:.2f}x; Dask's fixed cost per step "
        f"{results['dask_fixed_cost_s'] * 1e3:.1f} ms"
    )
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
