"""Runs a benchmark: the machine's limits, then every (network, m, runner) case in its own process,
then the derived columns (examples/s, speed-up over NumPy, roofline fraction) and the GPU crossover.

The result is one dict, the ``--json`` document (schema in schema.py); report.py prints it as a
table and plot.py draws it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from ..backends import BACKEND_NAMES, unavailable_reason
from . import roofline
from .contention import CpuShare
from .memory import available_memory
from .progress import Progress
from .runner_types import DTYPE, LEARNING_RATE
from .spec import PEER_NAMES, NetSpec, device_of
from .timing import summarize
from .worker import RESULT_MARKER

FORMAT = "nnaccel-bench"
FORMAT_VERSION = 1
# Memory a case may plan to use, as a share of what the machine has available.
MEMORY_SHARE = 0.8


@dataclass
class BenchSettings:
    """What to run. ``peers`` are names from spec.PEER_NAMES; the rest as on the command line."""

    backends: list[str] = field(default_factory=lambda: list(BACKEND_NAMES))
    peers: list[str] = field(default_factory=lambda: list(PEER_NAMES))
    nets: list[NetSpec] = field(default_factory=lambda: [NetSpec((2, 6, 6, 1), "tanh", "sigmoid")])
    m: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    # mini-batch sizes: None times one full-batch step; B one epoch of batches of B examples
    batch: list = field(default_factory=lambda: [None])
    optimizer: str = "sgd"  # a name of nnaccel.optim.OPTIMIZERS: every step's update, full batch too
    repeat: int = 10
    warmup: int = 1
    max_seconds: float = 1.0
    seed: int = 0
    gpu_limits: bool = True

    def runners(self) -> list[str]:
        return list(self.backends) + list(self.peers)


def check_settings(settings: BenchSettings) -> None:
    """Raise ValueError for settings no run can satisfy, before any work is done."""
    if not settings.runners():
        raise ValueError("nothing to run: give at least one backend in --backends or one peer in --peers")
    if not settings.nets or not settings.m:
        raise ValueError("give at least one network in --net and one size in --m")
    if settings.repeat < 1 or settings.warmup < 0 or not 0 < settings.max_seconds < math.inf:
        raise ValueError("--repeat must be >= 1, --warmup >= 0 and --max-seconds a finite number > 0")
    if settings.seed < 0:
        raise ValueError(f"--seed must be >= 0; got {settings.seed}")
    from ..optim import OPTIMIZERS

    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown --optimizer {settings.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
    available = available_memory()
    if available is None:
        return
    for net in settings.nets:
        need = estimated_case_bytes(net.layers, max(settings.m))
        if need > MEMORY_SHARE * available:
            raise ValueError(
                f"--m {max(settings.m):.3g} with --net {net.label} needs about {_gigabytes(need)} for the data "
                f"and step buffers, but this machine has {_gigabytes(available)} available; use a smaller --m"
            )


def estimated_case_bytes(layers, m: int) -> int:
    """A generous estimate of one case's memory: X and Y, plus four (p, m) buffers per layer for
    the activations, their gradients and a peer library's temporaries."""
    return 4 * m * (layers[0] + layers[-1] + 4 * sum(layers[1:]))


def run_bench(settings: BenchSettings, progress: bool = False, command: str | None = None) -> dict:
    """Run everything ``settings`` asks for and return the report (the ``--json`` document)."""
    check_settings(settings)
    runners = settings.runners()
    bar = Progress(total=1 + len(settings.nets) * len(settings.batch) * len(runners) * len(settings.m), enabled=progress)
    not_run: list[dict] = []
    unavailable: dict[str, str] = {}
    for runner in runners:
        reason = runner_unavailable_reason(runner)
        if reason is not None:
            unavailable[runner] = reason
            not_run.append({"backend": runner, "reason": reason})

    load_before = _load_average()
    cpu_share = CpuShare()
    cpu_share.start()
    bar.update("measuring the machine's limits (GEMM, bandwidth)")
    limits_result = next(iter(run_worker({"kind": "limits", "gpu": settings.gpu_limits})))
    if limits_result["status"] != "ok":
        raise RuntimeError(f"measuring the machine's limits failed: {limits_result['reason']}")
    limits = flatten_limits(limits_result["limits"])

    records: list[dict] = []
    for net in settings.nets:
        for batch in settings.batch:
            for runner in runners:
                if runner in unavailable:
                    bar.skip(len(settings.m))
                    continue
                _run_series(settings, net, batch, runner, limits, records, not_run, unavailable, bar)
    bar.close()

    add_speedups(records)
    crossovers = find_crossovers(records, settings)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "settings": {
            **{key: value for key, value in asdict(settings).items() if key != "nets"},
            "nets": [net.label for net in settings.nets],
            "activation": settings.nets[0].activation,
            "outputs": {net.label: net.output for net in settings.nets},
            "dtype": DTYPE.__name__,
            "lr": LEARNING_RATE,
        },
        "machine": {
            **machine_description(limits),
            "load_average": {"start": load_before, "end": _load_average()},
            "others_cpu_share": cpu_share.others(),
        },
        "versions": library_versions(),
        "threads": thread_counts(records),
        "limits": limits,
        "results": records,
        "not_run": not_run,
        "crossover": crossovers,
    }


def _run_series(settings, net: NetSpec, batch, runner: str, limits: dict, records, not_run, unavailable, bar) -> None:
    """Every m of one (network, batch size, runner) in one worker; appends to records/not_run."""
    job = {
        "kind": "series",
        "runner": runner,
        "layers": list(net.layers),
        "activation": net.activation,
        "output": net.output,
        "ms": settings.m,
        "batch": batch,
        "optimizer": settings.optimizer,
        "warmup": settings.warmup,
        "repeat": settings.repeat,
        "max_seconds": settings.max_seconds,
        "seed": settings.seed,
    }
    label = net.label if batch is None else f"{net.label} batch {batch}"
    bar.update(f"{runner} {label} m={settings.m[0]:,}")
    started = time.perf_counter()
    for index, result in enumerate(run_worker(job, expected=len(settings.m))):
        m = settings.m[index]
        result["case_wall_s"] = time.perf_counter() - started
        started = time.perf_counter()
        if result["status"] == "unavailable":
            if batch is None:
                unavailable[runner] = result["reason"]
            not_run.append({"backend": runner, "reason": result["reason"]})
            bar.skip(len(settings.m) - index - 1)
            break
        if result["status"] == "ok":
            records.append(make_record(runner, net, m, result, limits, batch, settings.optimizer))
        else:
            not_run.append({"backend": runner, "net": net.label, "m": m, "reason": result["reason"]})
        if index + 1 < len(settings.m):
            bar.update(f"{runner} {label} m={settings.m[index + 1]:,}")


def runner_unavailable_reason(runner: str) -> str | None:
    """Why a runner cannot run, when that is known without starting it (a missing library)."""
    if runner in BACKEND_NAMES:
        return unavailable_reason(runner)
    library = "sklearn" if runner == "sklearn" else "torch"
    if importlib.util.find_spec(library) is None:
        return (
            f"{'scikit-learn' if library == 'sklearn' else 'PyTorch'} is not installed; "
            f"install it with `pip install 'nnaccel[{'bench' if library == 'sklearn' else 'peers'}]'`"
        )
    if runner == "torch-cuda":
        version = _version("torch") or ""
        if version.endswith("+cpu"):
            return f"this PyTorch ({version}) is a CPU-only build"
    return None


def run_worker(job: dict, expected: int = 1) -> Iterator[dict]:
    """Run a job in a fresh Python process (worker.py); yield its ``expected`` results as they come.

    If the process dies early, the missing results are errors that say how it died.
    """
    environment = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "nnaccel.bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=environment,
        )
        try:
            stdin, stdout = process.stdin, process.stdout
            if stdin is None or stdout is None:  # never: both are PIPE above
                raise RuntimeError("the benchmark worker started without its stdin and stdout pipes")
            stdin.write(json.dumps(job))
            stdin.close()
            count = 0
            for line in stdout:
                if line.startswith(RESULT_MARKER):
                    count += 1
                    yield json.loads(line[len(RESULT_MARKER) :])
            status = process.wait()
            if count < expected:
                errors.seek(0)
                failure = _death_reason(status, errors.read())
                for _ in range(expected - count):
                    yield {"status": "error", "reason": failure}
        finally:
            if process.poll() is None:  # interrupted, or the caller stopped early
                process.kill()
                process.wait()


def _death_reason(status: int, stderr: str) -> str:
    if status < 0:
        hint = ", probably out of memory" if -status == 9 else ""
        return f"the worker process was killed by signal {-status}{hint}"
    last_lines = [line for line in stderr.splitlines() if line.strip()][-1:]
    return f"the worker process failed: {last_lines[0] if last_lines else f'exit status {status}'}"


def flatten_limits(measured: dict) -> dict:
    """The contract's ``limits``: CPU ``gemm_gflops`` and ``stream_gbps`` at the top, the method
    behind each, and the GPU's under ``gpu`` (None without one, ``gpu_note`` saying why)."""
    cpu = measured["cpu"]
    return {
        "gemm_gflops": cpu["gemm_gflops"],
        "stream_gbps": cpu["stream_gbps"],
        "gemm_method": cpu["gemm_method"],
        "stream_method": cpu["stream_method"],
        "gpu": measured.get("gpu"),
        "gpu_note": measured.get("gpu_note"),
    }


def make_record(
    runner: str, net: NetSpec, m: int, result: dict, limits: dict, batch: int | None = None, optimizer: str = "sgd"
) -> dict:
    """One row of ``results`` from a worker's timings."""
    stats = summarize(result["seconds"])
    device = device_of(runner)
    device_limits = limits if device == "cpu" else (limits.get("gpu") or {})
    flops = roofline.step_flops(net.layers, m)
    moved = roofline.step_bytes(net.layers, m, DTYPE().itemsize)
    bound = roofline.bound_seconds(flops, moved, device_limits.get("gemm_gflops"), device_limits.get("stream_gbps"))
    return {
        "backend": runner,
        "kind": "backend" if runner in BACKEND_NAMES else "peer",
        "device": device,
        "net": net.label,
        "layers": list(net.layers),
        "activation": net.activation,
        "output": net.output,
        "m": m,
        "batch": None if batch is None or batch >= m else batch,
        "optimizer": optimizer,
        **stats,
        "examples_per_s": m / stats["step_s"],
        "speedup_vs_numpy": None,
        "peak_memory_bytes": result["memory_bytes"],
        "memory_method": result["memory_method"],
        "flops": flops,
        "bytes": moved,
        "roofline_s": bound,
        "roofline_fraction": None if bound is None else bound / stats["step_s"],
        "timer": result["timer"],
        "timed": result["timed"],
        "threads": result["threads"],
        "case_wall_s": result["case_wall_s"],
        "crossover": False,
    }


def add_speedups(records: list[dict]) -> None:
    """speedup_vs_numpy = NumPy's step time / this step time, for the same network and m."""
    numpy_steps = {(r["net"], r["m"], r.get("batch")): r["step_s"] for r in records if r["backend"] == "numpy"}
    for record in records:
        reference = numpy_steps.get((record["net"], record["m"], record.get("batch")))
        record["speedup_vs_numpy"] = None if reference is None else reference / record["step_s"]


def find_crossovers(records: list[dict], settings: BenchSettings) -> list[dict]:
    """Per network, the smallest measured m at which the fastest GPU backend beats the fastest CPU
    backend (nnaccel backends only; peers are for reference). Marks that GPU record."""
    crossovers = []
    for net in settings.nets:
        entry = {"net": net.label, "m": None, "gpu_backend": None, "cpu_backend": None, "note": ""}
        mine = [r for r in records if r["net"] == net.label and r["kind"] == "backend"]
        if not any(r["device"] == "gpu" for r in mine):
            entry["note"] = "no GPU backend ran"
        elif not any(r["device"] == "cpu" for r in mine):
            entry["note"] = "no CPU backend ran"
        else:
            entry["note"] = "the GPU was slower at every m measured"
            for m in sorted({r["m"] for r in mine}):
                gpu = [r for r in mine if r["m"] == m and r["device"] == "gpu"]
                cpu = [r for r in mine if r["m"] == m and r["device"] == "cpu"]
                if not gpu or not cpu:
                    continue
                fastest_gpu = min(gpu, key=lambda r: r["step_s"])
                fastest_cpu = min(cpu, key=lambda r: r["step_s"])
                if fastest_gpu["step_s"] < fastest_cpu["step_s"]:
                    fastest_gpu["crossover"] = True
                    entry.update(
                        m=m,
                        gpu_backend=fastest_gpu["backend"],
                        cpu_backend=fastest_cpu["backend"],
                        note=f"{fastest_gpu['backend']} first beats {fastest_cpu['backend']} at m={m:,}",
                    )
                    break
        crossovers.append(entry)
    return crossovers


def machine_description(limits: dict) -> dict:
    gpu = limits.get("gpu") or {}
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_bytes": _total_memory(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "gpu": gpu.get("device_name"),
        "gpu_note": limits.get("gpu_note"),
    }


def library_versions() -> dict:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("nnaccel", "numpy", "numba", "torch", "scikit-learn", "matplotlib", "threadpoolctl"):
        versions[name] = _version(name)
    versions["cupy"] = next((v for v in map(_version, ("cupy", "cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x")) if v), None)
    return versions


def thread_counts(records: list[dict]) -> dict:
    """Threads each library used (from the records), the BLAS pools, and the variables that set them
    or how long their idle workers spin (see ``nnaccel/threads.py``)."""
    from .runner_types import blas_threads

    per_runner: dict[str, object] = {}
    for record in records:
        per_runner.setdefault(record["backend"], record["threads"])
    variables = (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "OPENBLAS_THREAD_TIMEOUT",
        "GOMP_SPINCOUNT",
        "OMP_WAIT_POLICY",
    )
    return {
        "logical_cpus": os.cpu_count(),
        "blas": blas_threads(),
        "per_runner": per_runner,
        "environment": {name: os.environ[name] for name in variables if name in os.environ},
    }


def _load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gigabytes(count: float) -> str:
    return f"{count / 2**30:.1f} GiB"
