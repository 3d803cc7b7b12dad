"""Dask data-parallel training (issue 6): time per full-batch step on a LocalCluster against the
in-process backend, on the same data.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_step.py --m 1e7 --workers 2

2-6-6-1 (tanh, sigmoid), float32, the Playground circle. In process: ``full_batch_step`` on the
data already in memory, with ``--backend`` (default numba, all cores). Dask: ``--workers``
processes of one thread each (Numba's threads set to cores / workers), the data generated on the
workers in ``--chunks`` chunks and persisted, each step one graph and one compute
(``nnaccel.distributed.training.DataParallel.step``), every worker on ``--backend``. The figure is
the median of ``--repeat`` steps after two warm-up steps, the two timed in turn (so a change in
the machine's load hits both); the Dask step's fixed cost is measured the same way at a tiny m.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

LAYERS = [2, 6, 6, 1]


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def in_process_step(m: int, chunk: int, backend: str):
    """A function running one full-batch step in this process, the data already on the backend."""
    import nnaccel as nna
    from nnaccel.data.large import chunk_widths, playground_chunk
    from nnaccel.nn.training import full_batch_step

    parts = [playground_chunk("circle", index, width, noise=0.1) for index, width in enumerate(chunk_widths(m, chunk))]
    net = nna.Network(LAYERS, seed=0, backend=backend, dtype="float32")
    X = net.backend.asarray(np.concatenate([X for X, _ in parts], axis=1), net.dtype)
    Y = net.backend.asarray(np.concatenate([Y for _, Y in parts], axis=1), net.dtype)
    grads = net.gradient_buffers()
    return lambda: net.backend.to_float(full_batch_step(net, X, Y, grads, 0.1))


def dask_trainer(client, m: int, chunk: int, backend: str):
    """The same data generated on the workers and persisted there, ready to step."""
    import nnaccel as nna
    from nnaccel.distributed import playground_arrays
    from nnaccel.distributed.training import DataParallel

    net = nna.Network(LAYERS, seed=0, backend="numpy", dtype="float32")
    X, Y = playground_arrays("circle", m, noise=0.1, chunk_size=chunk)
    return DataParallel(client, net, X, Y, backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", default="1e7")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=4, help="chunks of the data (default 4: 2 per worker)")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", help="write the results here")
    arguments = parser.parse_args()
    m = int(float(arguments.m))
    chunk = -(-m // arguments.chunks)

    from nnaccel.distributed import connect

    results = {"m": m, "workers": arguments.workers, "chunks": arguments.chunks, "backend": arguments.backend}
    local_step = in_process_step(m, chunk, arguments.backend)
    with connect("local", workers=arguments.workers) as client:
        trainer = dask_trainer(client, m, chunk, arguments.backend)
        results["placement"] = {address: len(keys) for address, keys in client.has_what().items()}
        tiny_m = 4 * arguments.workers * 1024  # 4 chunks of 1024 per worker: the cost of a step, not of its work
        tiny = dask_trainer(client, tiny_m, 1024, arguments.backend)
        dask_step = lambda: trainer.step(0.1, 0.0, 0.0)  # noqa: E731
        tiny_step = lambda: tiny.step(0.1, 0.0, 0.0)  # noqa: E731
        for step in (local_step, dask_step, tiny_step, local_step, dask_step, tiny_step):  # warm-up, compile
            step()
        times = {"in_process": [], "dask": [], "dask_tiny": []}
        for _ in range(arguments.repeat):  # interleaved, so a change in the machine's load hits both
            times["in_process"].append(timed(local_step))
            times["dask"].append(timed(dask_step))
            times["dask_tiny"].append(timed(tiny_step))
        trainer.release()
        tiny.release()
    results["in_process_step_s"] = statistics.median(times["in_process"])
    results["dask_step_s"] = statistics.median(times["dask"])
    results["dask_fixed_cost_s"] = statistics.median(times["dask_tiny"])
    results["ratio"] = results["dask_step_s"] / results["in_process_step_s"]
    results["ratios_each_repeat"] = [d / i for d, i in zip(times["dask"], times["in_process"])]
    print(
        f"m = {m:,}, 2-6-6-1 float32, {arguments.backend}: in process {results['in_process_step_s'] * 1e3:.0f} ms/step; "
        f"Dask LocalCluster ({arguments.workers} workers, chunks per worker {sorted(results['placement'].values())}) "
        f"{results['dask_step_s'] * 1e3:.0f} ms/step = {results['ratio']:.2f}x (per repeat "
        f"{min(results['ratios_each_repeat']):.2f}-{max(results['ratios_each_repeat']):.2f}x); Dask's fixed cost per "
        f"step (m = {tiny_m:,}) {results['dask_fixed_cost_s'] * 1e3:.1f} ms"
    )
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
