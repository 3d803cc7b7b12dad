"""Throughput of one training step (forward + backward + update) on a GPU machine, against targets.

Run by ``benchmarks/gpu_check.sh``; by hand: ``python benchmarks/gpu_check.py --out DIR``.
``--dry-run`` runs only the CPU portions at small sizes (what a machine without a GPU can check).

Cases: 2-6-6-1 (tanh, sigmoid) at m = 1e5, 1e6, 1e7, 1e8 and 784-256-10 (relu, softmax) at
m = 6e4, 1e6, float32, full batch. Runners: numpy, numba, cupy-fused (the fully fused kernel where
the network fits it), cupy-layers (layer by layer), torch-cuda (eager autograd + SGD, when PyTorch
with CUDA is installed). GPU steps are timed with CUDA events on the stream, CPU steps with the
host clock. Sizes are capped by free device memory, and the CPU runners by ``--max-cpu-m`` so the
whole check stays within its time budget. Writes ``gpu_check.json`` and ``gpu_check.txt`` (a table)
into ``--out``.

Mini-batch cases (``MINI_BATCH_CASES``): one epoch of shuffled mini-batch SGD through each
backend's training plan (784-256-10 at batch 32 and 256, 2-6-6-1 at batch 32), numpy, numba and
cupy; the CuPy plan's steps queue no host synchronisation, so the epoch is timed with CUDA events.

Targets: cupy-fused >= 10x cupy-layers for 2-6-6-1 at m = 1e7; cupy-layers >= 0.8x torch-cuda for
784-256-10 (at each m both ran).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

NETWORKS = {
    "2-6-6-1": ([2, 6, 6, 1], "tanh", "sigmoid", [10**5, 10**6, 10**7, 10**8]),
    "784-256-10": ([784, 256, 10], "relu", "softmax", [60_000, 10**6]),
}
DRY_RUN_SIZES = {"2-6-6-1": [10**4, 10**5], "784-256-10": [2_000]}
# Mini-batch cases (network, m, batch): each timing is one epoch of shuffled mini-batch SGD.
MINI_BATCH_CASES = [("784-256-10", 30_000, 32), ("784-256-10", 30_000, 256), ("2-6-6-1", 10**6, 32)]
DRY_RUN_MINI_BATCH_CASES = [("784-256-10", 2_000, 256), ("2-6-6-1", 10**4, 32)]
MINI_BATCH_RUNNERS = ("numpy", "numba", "cupy-layers")
GPU_RUNNERS = ("cupy-fused", "cupy-layers", "torch-cuda")
CPU_RUNNERS = ("numpy", "numba")
FUSED_SPEEDUP_TARGET = 10.0
TORCH_RATIO_TARGET = 0.8
DEVICE_MEMORY_SHARE = 0.6  # use at most this share of the free device memory for one case


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check_results", help="folder for gpu_check.json and gpu_check.txt")
    parser.add_argument("--dry-run", action="store_true", help="CPU runners only, small sizes (no GPU needed)")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds for the whole benchmark")
    parser.add_argument("--case-seconds", type=float, default=2.0, help="timed seconds per case, at most")
    parser.add_argument("--max-cpu-m", type=float, default=1e7, help="largest m the CPU runners are timed at")
    parser.add_argument("--tests", help="a file holding the gpu tests' pytest output, summarised in the JSON")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    device = describe_device(args.dry_run)
    runners = CPU_RUNNERS if args.dry_run else CPU_RUNNERS + GPU_RUNNERS
    sizes = DRY_RUN_SIZES if args.dry_run else {name: spec[3] for name, spec in NETWORKS.items()}
    results = []
    for net, (layers, activation, output, _) in NETWORKS.items():
        for m in sizes[net]:
            for runner in runners:
                remaining = args.budget - (time.perf_counter() - started)
                record = {"runner": runner, "net": net, "m": m}
                reason = skip_reason(runner, layers, m, args, device, remaining)
                time_case(
                    record, reason, functools.partial(time_runner, runner, layers, activation, output, m, args.case_seconds)
                )
                results.append(record)

    cases = DRY_RUN_MINI_BATCH_CASES if args.dry_run else MINI_BATCH_CASES
    for net, m, batch in cases:
        layers, activation, output, _ = NETWORKS[net]
        for runner in MINI_BATCH_RUNNERS:
            remaining = args.budget - (time.perf_counter() - started)
            record = {"runner": runner, "net": net, "m": m, "batch": batch}
            reason = skip_reason(runner, layers, m, args, device, remaining)
            time_case(
                record,
                reason,
                functools.partial(time_mini_batch, runner, layers, activation, output, m, batch, args.case_seconds),
            )
            results.append(record)

    report = {
        "device": device,
        "dry_run": args.dry_run,
        "python": platform.python_version(),
        "results": results,
        "targets": targets(results),
        "tests": summarise_tests(args.tests),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    table = format_table(report)
    (out / "gpu_check.txt").write_text(table)
    print(table)
    return 0


def time_case(record: dict, reason: str | None, seconds) -> None:
    """Fill ``record`` with ``seconds()`` (one step's or epoch's time) and its rate, or with why it
    was skipped or failed, and print it."""
    if reason is None:
        try:
            step_s = seconds()
            record.update(step_s=step_s, examples_per_s=record["m"] / step_s)
        except MemoryError as error:
            reason = f"out of memory: {error}"
        except Exception as error:  # one failing runner must not lose the others' numbers
            reason = f"failed: {type(error).__name__}: {error}"
    if reason is not None:
        record["skipped"] = reason
    print(format_record(record), flush=True)


# ----- the machine -----------------------------------------------------------------------------------
def describe_device(dry_run: bool) -> dict:
    from nnaccel.backends import unavailable_reason

    reason = unavailable_reason("cupy")
    if dry_run or reason is not None:
        return {"gpu": None, "why_not": "dry run" if dry_run else reason}
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    free, total = cupy.cuda.runtime.memGetInfo()
    return {
        "gpu": properties["name"].decode() if isinstance(properties["name"], bytes) else str(properties["name"]),
        "multiprocessors": properties["multiProcessorCount"],
        "memory_total_bytes": total,
        "memory_free_bytes": free,
        "cupy": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
    }


def step_bytes(layers, m: int, runner: str) -> int:
    """Device bytes a float32 step of ``runner`` needs at m: the data plus the step's buffers."""
    from nnaccel.backends.cupy_backend import bytes_per_example

    per_example = bytes_per_example(layers, 4)
    if runner == "torch-cuda":
        per_example *= 3  # autograd keeps A and H of every layer, and their gradients
    return per_example * m


def skip_reason(runner: str, layers, m: int, args, device: dict, remaining: float) -> str | None:
    if remaining <= 0:
        return "time budget spent"
    if runner in CPU_RUNNERS:
        if m > args.max_cpu_m:
            return f"CPU runners are capped at m = {args.max_cpu_m:.0e} (--max-cpu-m) to keep the check short"
        if runner == "numba":
            from nnaccel.backends import unavailable_reason

            return unavailable_reason("numba")
        return None
    if device.get("gpu") is None:
        return f"no GPU: {device.get('why_not')}"
    if runner == "torch-cuda":
        try:
            import torch
        except ImportError:
            return "PyTorch is not installed"
        if not torch.cuda.is_available():
            return "this PyTorch has no CUDA"
    if runner == "cupy-fused":
        from nnaccel.kernels.cuda_fused import fits_fused

        if not fits_fused(layers, 4):
            return "the network is too large for the fused kernel (layer by layer is cupy-layers)"
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    free += cupy.get_default_memory_pool().free_bytes()
    needed = step_bytes(layers, m, runner)
    if needed > DEVICE_MEMORY_SHARE * free:
        return f"needs about {needed / 1e9:.1f} GB of the GPU's {free / 1e9:.1f} GB free"
    return None


# ----- timing ----------------------------------------------------------------------------------------
def time_runner(runner, layers, activation, output, m, case_seconds) -> float:
    """Median seconds of one full-batch training step."""
    if runner == "torch-cuda":
        return time_torch(layers, activation, output, m, case_seconds)
    import nnaccel as nna
    from nnaccel.nn.training import full_batch_step

    if runner.startswith("cupy"):
        from nnaccel.backends.cupy_backend import CupyBackend

        backend = CupyBackend(fused=runner == "cupy-fused")
    else:
        backend = nna.backends.load_backend(runner)
    network = nna.Network(layers, activation, output, backend=backend, dtype="float32")
    X, Y = make_data(backend, layers, output, m)

    def step():
        full_batch_step(network, X, Y, 1e-3)

    if runner.startswith("cupy"):
        return cuda_event_seconds(step, case_seconds)
    return host_seconds(step, backend.synchronize, case_seconds)


def time_mini_batch(runner, layers, activation, output, m, batch, case_seconds) -> float:
    """Median seconds of one epoch of mini-batch SGD (shuffled) through the backend's plan."""
    import nnaccel as nna
    from nnaccel.nn.training import epoch_order
    from nnaccel.optim import Hyperparameters

    backend = nna.backends.load_backend("cupy" if runner.startswith("cupy") else runner)
    network = nna.Network(layers, activation, output, backend=backend, dtype="float32")
    plan = network.plan(batch)
    X, Y = make_data(nna.backends.load_backend("numpy"), layers, output, m)
    data = plan.load(X, Y)
    order = epoch_order(0, 0, m)

    def epoch():
        plan.epoch(network.parameters, data, order, Hyperparameters(1e-3))

    if runner.startswith("cupy"):
        return cuda_event_seconds(epoch, case_seconds)
    return host_seconds(epoch, backend.synchronize, case_seconds)


def make_data(backend, layers, output, m):
    """Random X (n, m) and labels Y (outputs, m), made where the backend keeps its data."""
    n, outputs = layers[0], layers[-1]
    if backend.name == "cupy":
        import cupy

        X = cupy.random.standard_normal((n, m), dtype=cupy.float32)
        classes = cupy.random.randint(0, outputs if output == "softmax" else 2, m)
        Y = (cupy.arange(outputs)[:, None] == classes[None, :]) if output == "softmax" else classes[None, :]
        return X, cupy.ascontiguousarray(Y, dtype=cupy.float32)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, m), dtype=np.float32)
    classes = rng.integers(0, outputs if output == "softmax" else 2, m)
    Y = (np.arange(outputs)[:, None] == classes[None, :]) if output == "softmax" else classes[None, :]
    return X, np.ascontiguousarray(Y, dtype=np.float32)


def host_seconds(step, synchronize, case_seconds: float) -> float:
    step()  # warm-up: compilation, first-touch of buffers
    synchronize()
    times = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < case_seconds and len(times) < 50):
        before = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - before)
    return float(np.median(times))


def cuda_event_seconds(step, case_seconds: float) -> float:
    """Median device time of ``step`` between CUDA events on the current stream."""
    import cupy

    step()
    step()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    started = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - started < case_seconds and len(times) < 200):
        begin, end = cupy.cuda.Event(), cupy.cuda.Event()
        begin.record()
        step()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(begin, end) / 1e3)
    return float(np.median(times))


def time_torch(layers, activation, output, m, case_seconds) -> float:
    """PyTorch eager on the same GPU: nn.Sequential, the matching loss, autograd, SGD, float32."""
    import torch

    device = torch.device("cuda")
    torch.manual_seed(0)
    modules = []
    activations = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
    for index, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:])):
        modules.append(torch.nn.Linear(fan_in, fan_out))
        if index < len(layers) - 2:
            modules.append(activations[activation]())
    model = torch.nn.Sequential(*modules).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
    X = torch.randn(m, layers[0], device=device)  # torch's layout: one row per example
    if output == "softmax":
        target = torch.randint(0, layers[-1], (m,), device=device)
        loss_function = torch.nn.CrossEntropyLoss()
    else:
        target = torch.randint(0, 2, (m, 1), device=device).float()
        loss_function = torch.nn.BCEWithLogitsLoss()

    def step():
        optimiser.zero_grad(set_to_none=False)
        loss = loss_function(model(X), target)
        loss.backward()
        optimiser.step()

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    times = []
    started = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - started < case_seconds and len(times) < 200):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        step()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end) / 1e3)
    return float(np.median(times))


# ----- targets and the report ------------------------------------------------------------------------
def _rate(results, runner, net, m):
    for record in results:
        if (
            (record["runner"], record["net"], record["m"]) == (runner, net, m)
            and "examples_per_s" in record
            and not record.get("batch")
        ):
            return record["examples_per_s"]
    return None


def targets(results) -> list[dict]:
    checks = []
    fused, layers = _rate(results, "cupy-fused", "2-6-6-1", 10**7), _rate(results, "cupy-layers", "2-6-6-1", 10**7)
    checks.append(_target("cupy-fused / cupy-layers, 2-6-6-1, m = 1e7", fused, layers, FUSED_SPEEDUP_TARGET))
    for m in NETWORKS["784-256-10"][3]:
        ours, torch_rate = _rate(results, "cupy-layers", "784-256-10", m), _rate(results, "torch-cuda", "784-256-10", m)
        checks.append(_target(f"cupy / torch-cuda eager, 784-256-10, m = {m:.0e}", ours, torch_rate, TORCH_RATIO_TARGET))
    return checks


def _target(name, numerator, denominator, goal) -> dict:
    if numerator is None or denominator is None:
        return {"target": name, "goal": goal, "ratio": None, "met": None, "note": "not measured (a runner was skipped)"}
    ratio = numerator / denominator
    return {"target": name, "goal": goal, "ratio": round(ratio, 3), "met": ratio >= goal}


def summarise_tests(path) -> str | None:
    if not path or not os.path.exists(path):
        return None
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else None


def format_record(record) -> str:
    net = record["net"] + (f" b{record['batch']}" if record.get("batch") else "")
    head = f"{record['runner']:12s} {net:11s} m={record['m']:<11,d}"
    if "skipped" in record:
        return f"{head} skipped: {record['skipped']}"
    return f"{head} {record['step_s'] * 1e3:10.3f} ms/step {record['examples_per_s'] / 1e6:10.2f} M examples/s"


def format_table(report) -> str:
    lines = [f"device: {report['device'].get('gpu') or report['device'].get('why_not')}", ""]
    lines.append(f"{'runner':12s} {'net':11s} {'m':>12s} {'ms/step':>11s} {'M ex/s':>11s}")
    for record in report["results"]:
        net = record["net"] + (f" b{record['batch']}" if record.get("batch") else "")
        if "skipped" in record:
            lines.append(f"{record['runner']:12s} {net:11s} {record['m']:>12,d}  skipped: {record['skipped']}")
        else:
            lines.append(
                f"{record['runner']:12s} {net:11s} {record['m']:>12,d} "
                f"{record['step_s'] * 1e3:11.3f} {record['examples_per_s'] / 1e6:11.2f}"
            )
    lines.append("")
    for check in report["targets"]:
        verdict = {True: "MET", False: "NOT MET", None: "NOT MEASURED"}[check["met"]]
        ratio = "-" if check["ratio"] is None else f"{check['ratio']:.2f}x"
        lines.append(f"target {check['target']}: {ratio} (goal >= {check['goal']}x) {verdict}")
    if report.get("tests"):
        lines.append(f"gpu tests: {report['tests']}")
    lines.append(f"benchmark seconds: {report['seconds']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
