"""The NumPy backend's reference figures for issue 2: one training step of 2-6-6-1 (tanh hidden,
sigmoid output, float32, full batch) at m = 1e6 and 1e7, and its peak memory at m = 1e7.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numpy_reference.py [--m 1e6,1e7]

Each m runs in a fresh subprocess, so the memory figure is that process's own: its peak resident
set size minus its resident size after the imports and before any data (the data is included),
and that difference as a multiple of the bytes of X and Y. The step is timed with
``nnaccel.nn.training.full_batch_step`` (forward + backward + update, data already on the backend);
the figure is the median of ``--repeat`` steps after one warm-up step. The peak also covers one
``Network.fit`` epoch (input checks included), the path users take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from nnaccel.bench.memory import resident_bytes

LAYERS = [2, 6, 6, 1]


def measure(m: int, repeat: int) -> dict:
    """Run in the child: build the data, time steps, report memory."""
    import statistics
    import time

    import numpy as np

    import nnaccel as nna
    from nnaccel.nn.training import full_batch_step

    network = nna.Network(LAYERS, activation="tanh", output="sigmoid", backend="numpy", dtype="float32")
    baseline, _ = resident_bytes()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, m), dtype=np.float32)
    Y = np.empty((1, m), dtype=np.float32)
    np.greater_equal(X[0] * X[1], 0.0, out=Y[0], casting="unsafe")  # xor-like labels
    data_bytes = X.nbytes + Y.nbytes

    backend = network.backend
    grads = network.gradient_buffers()
    full_batch_step(network, X, Y, grads, lr=0.1)  # warm-up: allocates the workspace
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        full_batch_step(network, X, Y, grads, lr=0.1)
        backend.synchronize()
        times.append(time.perf_counter() - started)
    _, step_peak = resident_bytes()
    network.fit(X, Y, epochs=1, lr=0.1)
    _, fit_peak = resident_bytes()
    step_s = statistics.median(times)
    return {
        "backend": "numpy",
        "net": "-".join(map(str, LAYERS)),
        "m": m,
        "step_s": step_s,
        "examples_per_s": m / step_s,
        "data_bytes": data_bytes,
        "step_peak_over_baseline_bytes": step_peak - baseline,
        "fit_peak_over_baseline_bytes": fit_peak - baseline,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", default="1e6,1e7", help="comma list of batch sizes (default 1e6,1e7)")
    parser.add_argument("--repeat", type=int, default=5, help="timed steps per m (default 5)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.repeat)))
        return 0

    sizes = [int(float(text)) for text in args.m.split(",")]
    print(f"{'net':>8} {'m':>10} {'step (s)':>10} {'examples/s':>12} {'peak - base (MiB)':>18} {'x (X+Y)':>8}")
    records = []
    for m in sizes:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", str(m), "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        )
        record = json.loads(completed.stdout.strip().splitlines()[-1])
        peak = max(record["step_peak_over_baseline_bytes"], record["fit_peak_over_baseline_bytes"])
        print(
            f"{record['net']:>8} {m:>10.0e} {record['step_s']:>10.4f} {record['examples_per_s']:>12.3e} "
            f"{peak / 2**20:>18.1f} {peak / record['data_bytes']:>8.2f}"
        )
        records.append(record)
    for record in records:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
