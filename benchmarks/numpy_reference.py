"""The NumPy backend's reference figures for issue 2: one training step of 2-6-6-1 (tanh hidden,
sigmoid output, float32, full batch) at m = 1e6 and 1e7, and its peak memory at m = 1e7.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numpy_reference.py [--m 1e6,1e7]

Each m runs in a fresh subprocess, so the memory figure is that process's own: its peak resident
set size minus its resident size after the imports and before any data (the data is included),
and that difference as a multiple of the bytes of X and Y. The step and its data are the ones
``nnaccel bench`` times (``nnaccel.bench.runners``: forward + backward + update, data already on
the backend); the figure is the median of ``--repeat`` steps after one warm-up step. The peak also
covers one ``Network.fit`` epoch (input checks included), the path users take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from nnaccel.bench.memory import resident_bytes
from nnaccel.bench.spec import parse_nets

NET = parse_nets("2-6-6-1", "tanh")[0]  # sigmoid output


def measure(m: int, repeat: int) -> dict:
    """Run in the child: build the data, time steps, report memory."""
    import statistics
    import time

    import nnaccel as nna
    from nnaccel.bench.runners import backend_runner, make_data

    baseline, _ = resident_bytes()
    X, Y = make_data(NET, m)
    data_bytes = X.nbytes + Y.nbytes

    runner = backend_runner("numpy", NET, X, Y)  # the step `nnaccel bench` times
    runner.step()  # warm-up: allocates the workspace
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        runner.step()
        runner.synchronize()
        times.append(time.perf_counter() - started)
    _, step_peak = resident_bytes()
    network = nna.Network(list(NET.layers), NET.activation, NET.output, backend="numpy", dtype="float32")
    network.fit(X, Y, epochs=1, lr=0.1)
    _, fit_peak = resident_bytes()
    step_s = statistics.median(times)
    return {
        "backend": "numpy",
        "net": NET.label,
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
