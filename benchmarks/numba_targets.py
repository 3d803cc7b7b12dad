"""The Numba backend's targets (issue 3), measured side by side and printed with their verdicts.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numba_targets.py [--rounds 5]

1. 2-6-6-1 (tanh hidden, sigmoid output, float32), one full-batch training step (forward, backward,
   update; data already on the backend) at m = 1e6 and 1e7: Numba backend vs NumPy backend
   (target >= 10x examples/s) vs PyTorch CPU (target >= 8x; the faster of the autograd step
   ``nnaccel bench`` times as torch-cpu and a hand-written backprop step, torch using every CPU).
   The contenders run in turns within each round (each trains untimed for 0.2 s, then one step is
   timed); a ratio is taken per round and the median over rounds is reported, so load from other
   processes hits all contenders alike.
2. Peak memory of a training run (``Network.fit``, 3 epochs, full batch) at m = 1e7, in a fresh
   subprocess: peak resident set size (VmHWM) against 2 x (bytes of X and Y) + 150 MB. Both the
   absolute peak and the peak above the process's size after its imports are reported.
3. 784-256-10 (relu, softmax, float32) at m = 60000: the step time against the GEMM floor (the
   step's matmul FLOPs at the float32 GEMM rate of a large ``np.matmul`` measured in the same
   round), target <= 1.25x, and against the NumPy backend's step (target: never slower).
4. First-step overhead with a warm cache: a fresh process's first training step minus a later one
   (target <= 1 s), for a fused (2-6-6-1) and a layered (784-256-10) network. One process runs
   first to warm the cache.

The pieces are ``nnaccel.bench``'s, so these figures and ``nnaccel bench``'s measure the same
things: the steps are its runners (``runners.backend_runner``, ``peers.torch_runner``) on its data
(``runners.make_data``), the GEMM rate is ``limits.cpu_gemm`` and the FLOP count
``roofline.step_flops``.
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

from nnaccel.bench.limits import cpu_gemm  # noqa: E402
from nnaccel.bench.memory import resident_bytes  # noqa: E402
from nnaccel.bench.peers import torch_runner  # noqa: E402
from nnaccel.bench.roofline import step_flops  # noqa: E402
from nnaccel.bench.runner_types import RunnerUnavailable  # noqa: E402
from nnaccel.bench.runners import backend_runner, make_data  # noqa: E402
from nnaccel.bench.spec import parse_nets  # noqa: E402

MIB = 2**20
SMALL = parse_nets("2-6-6-1", "tanh")[0]  # sigmoid output
WIDE = parse_nets("784-256-10", "relu")[0]  # softmax output


# ----- helpers ---------------------------------------------------------------------------------------
def nnaccel_step(backend: str, net, X, Y):
    """A callable running one full-batch step of nnaccel on ``backend`` (warmed up once): the step
    ``nnaccel bench`` times."""
    step = backend_runner(backend, net, X, Y).step
    step()
    return step


def torch_steps(X, Y):
    """{name: step} for PyTorch CPU on 2-6-6-1 with torch using every CPU: the autograd step that
    ``nnaccel bench`` times as torch-cpu, and a hand-written backprop step (warmed up once each)."""
    import torch

    torch.set_num_threads(os.cpu_count())
    steps = {"torch autograd": torch_runner(SMALL, X, Y).step, "torch manual": torch_manual_step(X, Y)}
    for step in steps.values():
        step()
    return steps


def torch_manual_step(X, Y):
    """One 2-6-6-1 step written out without autograd, from nnaccel's initial weights: PyTorch's
    best case, since it skips the graph autograd records."""
    import torch
    import torch.nn.functional as F

    from nnaccel.bench.runner_types import DTYPE, LEARNING_RATE
    from nnaccel.nn.initialization import initial_params

    params = [(torch.from_numpy(W), torch.from_numpy(b)) for W, b in initial_params(SMALL.architecture(), 0, DTYPE)]
    X_torch, Y_torch = torch.from_numpy(X), torch.from_numpy(Y)
    m = X.shape[1]

    @torch.no_grad()
    def step():
        (W1, b1), (W2, b2), (W3, b3) = params
        H1 = torch.tanh(torch.addmm(b1, W1, X_torch))
        H2 = torch.tanh(torch.addmm(b2, W2, H1))
        A3 = torch.addmm(b3, W3, H2)
        loss = F.binary_cross_entropy_with_logits(A3, Y_torch, reduction="sum")
        dA3 = torch.sigmoid(A3).sub_(Y_torch).mul_(1.0 / m)  # dA = (H - Y) / m
        dA2 = W3.t().mm(dA3).mul_(1.0 - H2 * H2)  # tanh' = 1 - H^2
        dA1 = W2.t().mm(dA2).mul_(1.0 - H1 * H1)
        grads = [
            (dA1.mm(X_torch.t()), dA1.sum(1, keepdim=True)),
            (dA2.mm(H1.t()), dA2.sum(1, keepdim=True)),
            (dA3.mm(H2.t()), dA3.sum(1, keepdim=True)),
        ]
        for (W, b), (dW, db) in zip(params, grads):
            W.sub_(dW, alpha=LEARNING_RATE)
            b.sub_(db, alpha=LEARNING_RATE)
        return loss

    return step


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


# ----- 1. throughput of 2-6-6-1 ----------------------------------------------------------------------
def throughput(m: int, rounds: int, with_torch: bool) -> dict:
    X, Y = make_data(SMALL, m)
    steps = {"numba": nnaccel_step("numba", SMALL, X, Y), "numpy": nnaccel_step("numpy", SMALL, X, Y)}
    if with_torch:
        try:
            steps.update(torch_steps(X, Y))
        except (ImportError, RunnerUnavailable):
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

    network = nna.Network(list(SMALL.layers), SMALL.activation, SMALL.output, backend="numba", dtype="float32")
    baseline, _ = resident_bytes()
    X, Y = make_data(SMALL, m)
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
    X, Y = make_data(WIDE, m)
    steps = {"numba": nnaccel_step("numba", WIDE, X, Y), "numpy": nnaccel_step("numpy", WIDE, X, Y)}
    flops = step_flops(WIDE.layers, m)
    numba_times, numpy_times, floors, rates = [], [], [], []
    for _ in range(rounds):
        rate = cpu_gemm()["gemm_gflops"] * 1e9
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
    spec, m = (SMALL, 100_000) if net == "2-6-6-1" else (WIDE, 10_000)
    step = backend_runner("numba", spec, *make_data(spec, m)).step  # its buffers and kernels come at the first step
    step_times = [time_once(step) for _ in range(4)]
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
            ratio = record["numba_over_numpy"]
            line = f"    numba / numpy = {ratio:.2f}x (target >= 10x: {verdict(ratio >= 10)})"
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
            f"  numba / floor = {record['numba_over_floor']:.2f}x "
            f"(target <= 1.25x: {verdict(record['numba_over_floor'] <= 1.25)}); "
            f"numba / numpy time = {record['numba_over_numpy_time']:.2f} "
            f"(target <= 1: {verdict(record['numba_over_numpy_time'] <= 1.0)})"
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
