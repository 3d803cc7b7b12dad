"""The Numba backend's targets (issue 3), measured side by side and printed with their verdicts.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numba_targets.py [--rounds 5]

1. 2-6-6-1 (tanh hidden, sigmoid output, float32), one full-batch training step (forward, backward,
   update; data already on the backend) at m = 1e6 and 1e7: Numba backend vs NumPy backend
   (target >= 10x examples/s) vs PyTorch CPU (target >= 8x; the faster of an autograd step and a
   hand-written backprop step, with torch using every CPU). The contenders run in turns within each
   round (each trains untimed for 0.2 s, then one step is timed); a ratio is taken per round and the
   median over rounds is reported, so load from other processes hits all contenders alike.
2. Peak memory of a training run (``Network.fit``, 3 epochs, full batch) at m = 1e7, in a fresh
   subprocess: peak resident set size (VmHWM) against 2 x (bytes of X and Y) + 150 MB. Both the
   absolute peak and the peak above the process's size after its imports are reported.
3. 784-256-10 (relu, softmax, float32) at m = 60000: the step time against the GEMM floor (the
   step's matmul FLOPs at the float32 GEMM rate of a large ``np.matmul`` measured in the same
   round), target <= 1.25x, and against the NumPy backend's step (target: never slower).
4. First-step overhead with a warm cache: a fresh process's first training step minus a later one
   (target <= 1 s), for a fused (2-6-6-1) and a layered (784-256-10) network. One process runs
   first to warm the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_started = time.perf_counter()
# nnaccel before NumPy, as the nnaccel command does: it sets OpenBLAS's busy-wait (nnaccel/threads.py)
import nnaccel  # noqa: E402, F401

IMPORT_SECONDS = time.perf_counter() - _started  # reported by the first-step child

import numpy as np  # noqa: E402
from nnaccel.bench.memory import resident_bytes  # noqa: E402

MIB = 2**20


# ----- helpers ---------------------------------------------------------------------------------------


def xor_data(m: int, seed: int = 0):
    """X (2, m) float32 standard normal, Y (1, m) float32 xor-like labels, made without temporaries."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, m), dtype=np.float32)
    Y = np.empty((1, m), dtype=np.float32)
    np.greater_equal(X[0] * X[1], 0.0, out=Y[0], casting="unsafe")
    return X, Y


def mnist_like_data(m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((784, m), dtype=np.float32)
    Y = np.zeros((10, m), dtype=np.float32)
    Y[rng.integers(0, 10, m), np.arange(m)] = 1.0
    return X, Y


def nnaccel_step(backend: str, layers, activation, output, X, Y):
    """A callable running one full-batch step of nnaccel on ``backend`` (warmed up once)."""
    import nnaccel as nna
    from nnaccel.nn.training import full_batch_step

    network = nna.Network(layers, activation, output, backend=backend, dtype="float32")
    X_backend = network.backend.asarray(X, network.dtype)
    Y_backend = network.backend.asarray(Y, network.dtype)
    grads = network.gradient_buffers()

    def step():
        full_batch_step(network, X_backend, Y_backend, grads, lr=0.1)

    step()
    return step


def torch_steps(X, Y):
    """{name: step} for PyTorch CPU on 2-6-6-1 (tanh, sigmoid + BCE): autograd and hand-written."""
    import torch
    import torch.nn.functional as F

    from nnaccel.core.architecture import Architecture
    from nnaccel.nn.initialization import initial_params

    torch.set_num_threads(os.cpu_count())
    architecture = Architecture.build([2, 6, 6, 1], "tanh", "sigmoid")
    X_torch = torch.from_numpy(X)
    Y_torch = torch.from_numpy(Y)
    m = X.shape[1]
    lr = 0.1

    def fresh_params(requires_grad):
        return [
            (torch.from_numpy(W.copy()).requires_grad_(requires_grad), torch.from_numpy(b.copy()).requires_grad_(requires_grad))
            for W, b in initial_params(architecture, 0, np.float32)
        ]

    autograd_params = fresh_params(True)
    flat = [tensor for pair in autograd_params for tensor in pair]

    def autograd_step():
        (W1, b1), (W2, b2), (W3, b3) = autograd_params
        H1 = torch.tanh(torch.addmm(b1, W1, X_torch))
        H2 = torch.tanh(torch.addmm(b2, W2, H1))
        A3 = torch.addmm(b3, W3, H2)
        loss = F.binary_cross_entropy_with_logits(A3, Y_torch, reduction="sum") / m
        grads = torch.autograd.grad(loss, flat)
        with torch.no_grad():
            for tensor, gradient in zip(flat, grads):
                tensor.sub_(gradient, alpha=lr)

    manual_params = fresh_params(False)

    @torch.no_grad()
    def manual_step():
        (W1, b1), (W2, b2), (W3, b3) = manual_params
        H1 = torch.tanh(torch.addmm(b1, W1, X_torch))
        H2 = torch.tanh(torch.addmm(b2, W2, H1))
        A3 = torch.addmm(b3, W3, H2)
        loss = F.binary_cross_entropy_with_logits(A3, Y_torch, reduction="sum")
        dA3 = torch.sigmoid(A3).sub_(Y_torch).mul_(1.0 / m)  # dA = (H - Y) / m
        dH2 = W3.t().mm(dA3)
        dA2 = dH2.mul_(1.0 - H2 * H2)  # tanh' = 1 - H^2
        dH1 = W2.t().mm(dA2)
        dA1 = dH1.mul_(1.0 - H1 * H1)
        grads = [
            (dA1.mm(X_torch.t()), dA1.sum(1, keepdim=True)),
            (dA2.mm(H1.t()), dA2.sum(1, keepdim=True)),
            (dA3.mm(H2.t()), dA3.sum(1, keepdim=True)),
        ]
        for (W, b), (dW, db) in zip(manual_params, grads):
            W.sub_(dW, alpha=lr)
            b.sub_(db, alpha=lr)
        return loss

    autograd_step()
    manual_step()
    return {"torch autograd": autograd_step, "torch manual": manual_step}


def time_once(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


SETTLE_SECONDS = 0.2  # longer than any pool's busy-wait (OpenBLAS's default is about 0.1 s)


def time_settled(step) -> float:
    """Untimed steps for SETTLE_SECONDS (at least one), then one timed step. The previous
    contender's thread pools (OpenBLAS, Numba's and PyTorch's OpenMP workers) busy-wait for a while
    after their work and would take cores from this one; meanwhile this one trains as it does in a
    loop of steps, with its own threads awake (a pause instead would time a step that first waits
    for sleeping threads and an idle core to wake)."""
    started = time.perf_counter()
    step()
    while time.perf_counter() - started < SETTLE_SECONDS:
        step()
    return time_once(step)


def gemm_rate(size: int = 2048) -> float:
    """float32 FLOP/s of a large square np.matmul (best of 3)."""
    A = np.random.default_rng(0).random((size, size), dtype=np.float32)
    B = np.random.default_rng(1).random((size, size), dtype=np.float32)
    C = np.empty((size, size), dtype=np.float32)
    np.matmul(A, B, out=C)
    best = min(time_once(lambda: np.matmul(A, B, out=C)) for _ in range(3))
    return 2.0 * size**3 / best


def matmul_flops(layers, m: int) -> float:
    """FLOPs of one training step's matmuls: forward W H, backward dW = dA H^T and dH = W^T dA
    (dH for every layer but the first)."""
    products = [layers[index] * layers[index + 1] for index in range(len(layers) - 1)]
    return 2.0 * m * (2 * sum(products) + sum(products[1:]))


# ----- 1. throughput of 2-6-6-1 ----------------------------------------------------------------------
def throughput(m: int, rounds: int, with_torch: bool) -> dict:
    X, Y = xor_data(m)
    steps = {
        "numba": nnaccel_step("numba", [2, 6, 6, 1], "tanh", "sigmoid", X, Y),
        "numpy": nnaccel_step("numpy", [2, 6, 6, 1], "tanh", "sigmoid", X, Y),
    }
    if with_torch:
        try:
            steps.update(torch_steps(X, Y))
        except ImportError:
            print("  (PyTorch is not installed: no torch figures)")
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(time_settled(step))
    record = {"m": m, "examples_per_s": {name: m / statistics.median(values) for name, values in times.items()}}
    record["numba_over_numpy"] = statistics.median(b / a for a, b in zip(times["numba"], times["numpy"]))
    torch_names = [name for name in steps if name.startswith("torch")]
    if torch_names:
        # per round, the faster torch variant
        best_torch = [min(times[name][index] for name in torch_names) for index in range(rounds)]
        record["numba_over_torch"] = statistics.median(b / a for a, b in zip(times["numba"], best_torch))
    return record


# ----- 2. peak memory (child process) ----------------------------------------------------------------
def memory_child(m: int) -> dict:
    import nnaccel as nna

    network = nna.Network([2, 6, 6, 1], "tanh", "sigmoid", backend="numba", dtype="float32")
    baseline, _ = resident_bytes()
    X, Y = xor_data(m)
    history = network.fit(X, Y, epochs=3, lr=0.1)
    current, peak = resident_bytes()
    return {
        "m": m,
        "data_bytes": X.nbytes + Y.nbytes,
        "baseline_bytes": baseline,
        "peak_bytes": peak,
        "final_loss": history["loss"][-1],
    }


def run_child(*arguments: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, *arguments], check=True, capture_output=True, text=True, env=os.environ.copy()
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ----- 3. 784-256-10 against the GEMM floor ------------------------------------------------------------
def gemm_floor(m: int, rounds: int) -> dict:
    layers = [784, 256, 10]
    X, Y = mnist_like_data(m)
    steps = {
        "numba": nnaccel_step("numba", layers, "relu", "softmax", X, Y),
        "numpy": nnaccel_step("numpy", layers, "relu", "softmax", X, Y),
    }
    flops = matmul_flops(layers, m)
    numba_times, numpy_times, floors, rates = [], [], [], []
    for _ in range(rounds):
        rate = gemm_rate()
        numba_times.append(time_settled(steps["numba"]))
        numpy_times.append(time_settled(steps["numpy"]))
        rates.append(rate)
        floors.append(flops / rate)
    return {
        "m": m,
        "gemm_gflops": statistics.median(rates) / 1e9,
        "floor_s": statistics.median(floors),
        "numba_step_s": statistics.median(numba_times),
        "numpy_step_s": statistics.median(numpy_times),
        "numba_over_floor": statistics.median(t / f for t, f in zip(numba_times, floors)),
        "numba_over_numpy_time": statistics.median(a / b for a, b in zip(numba_times, numpy_times)),
    }


# ----- 4. first step with a warm cache (child process) -------------------------------------------------
def first_step_child(net: str) -> dict:
    import nnaccel as nna
    from nnaccel.nn.training import full_batch_step

    if net == "2-6-6-1":
        layers, activation, output = [2, 6, 6, 1], "tanh", "sigmoid"
        X, Y = xor_data(100_000)
    else:
        layers, activation, output = [784, 256, 10], "relu", "softmax"
        X, Y = mnist_like_data(10_000)
    network = nna.Network(layers, activation, output, backend="numba", dtype="float32")
    grads = network.gradient_buffers()
    step_times = [time_once(lambda: full_batch_step(network, X, Y, grads, lr=0.1)) for _ in range(4)]
    return {"net": net, "import_s": IMPORT_SECONDS, "first_s": step_times[0], "later_s": statistics.median(step_times[1:])}


# ----- main ------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", default="1e6,1e7", help="batch sizes for 2-6-6-1 (default 1e6,1e7)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per measurement (default 5)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--only", default="throughput,memory,gemm,first", help="sections to run")
    parser.add_argument("--json", help="also write the records to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, value = args.child
        record = memory_child(int(float(value))) if kind == "memory" else first_step_child(value)
        print(json.dumps(record))
        return 0

    import numba

    sections = set(args.only.split(","))
    records: dict = {"numba_threads": numba.get_num_threads(), "cpus": os.cpu_count()}
    print(f"Numba {numba.__version__}, {numba.get_num_threads()} threads; NumPy {np.__version__}; {os.cpu_count()} CPUs")

    if "throughput" in sections:
        print("\n1. 2-6-6-1 full-batch step (float32), examples/s; ratios are medians of per-round ratios")
        records["throughput"] = []
        for m in (int(float(text)) for text in args.m.split(",")):
            record = throughput(m, args.rounds, not args.no_torch)
            records["throughput"].append(record)
            rates = ", ".join(f"{name} {rate / 1e6:.1f} M/s" for name, rate in record["examples_per_s"].items())
            print(f"  m = {m:.0e}: {rates}")
            line = f"    numba / numpy = {record['numba_over_numpy']:.2f}x (target >= 10x: {verdict(record['numba_over_numpy'] >= 10)})"
            if "numba_over_torch" in record:
                ratio = record["numba_over_torch"]
                line += f"; numba / best torch = {ratio:.2f}x (target >= 8x: {verdict(ratio >= 8)})"
            print(line)

    if "memory" in sections:
        record = run_child("--child", "memory", "1e7")
        limit = 2 * record["data_bytes"] + 150 * MIB
        above = record["peak_bytes"] - record["baseline_bytes"]
        record.update(limit_bytes=limit, peak_above_baseline_bytes=above)
        records["memory"] = record
        print("\n2. Peak memory of Network.fit (3 epochs) at m = 1e7, fresh process")
        print(
            f"  X + Y = {record['data_bytes'] / MIB:.0f} MiB; limit 2 (X + Y) + 150 MiB = {limit / MIB:.0f} MiB\n"
            f"  peak RSS {record['peak_bytes'] / MIB:.0f} MiB ({verdict(record['peak_bytes'] <= limit)}); "
            f"above the post-import baseline of {record['baseline_bytes'] / MIB:.0f} MiB: {above / MIB:.0f} MiB "
            f"= {above / record['data_bytes']:.2f}x (X + Y) ({verdict(above <= limit)})"
        )

    if "gemm" in sections:
        record = gemm_floor(60_000, args.rounds)
        records["gemm"] = record
        print("\n3. 784-256-10 (relu, softmax, float32) full-batch step at m = 60000")
        print(
            f"  GEMM rate {record['gemm_gflops']:.0f} GFLOP/s -> floor {record['floor_s'] * 1e3:.0f} ms; "
            f"numba {record['numba_step_s'] * 1e3:.0f} ms, numpy {record['numpy_step_s'] * 1e3:.0f} ms\n"
            f"  numba / floor = {record['numba_over_floor']:.2f}x (target <= 1.25x: {verdict(record['numba_over_floor'] <= 1.25)}); "
            f"numba / numpy time = {record['numba_over_numpy_time']:.2f} (target <= 1: {verdict(record['numba_over_numpy_time'] <= 1.0)})"
        )

    if "first" in sections:
        print("\n4. First training step in a fresh process, cache warm (first - later)")
        records["first_step"] = []
        for net in ("2-6-6-1", "784-256-10"):
            run_child("--child", "first", net)  # warms the cache (compiles on a cold one)
            record = run_child("--child", "first", net)
            overhead = record["first_s"] - record["later_s"]
            record["overhead_s"] = overhead
            records["first_step"].append(record)
            print(
                f"  {net}: first {record['first_s']:.3f} s, later {record['later_s']:.3f} s, overhead {overhead:.3f} s "
                f"(target <= 1 s: {verdict(overhead <= 1.0)}); import nnaccel {record['import_s']:.2f} s"
            )

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(records, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
