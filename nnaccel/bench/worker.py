"""Benchmark jobs in fresh processes: ``python -m nnaccel.bench.worker`` reads a JSON job on stdin
and prints one result line (``RESULT_MARKER`` + JSON) on stdout per result.

Jobs:

- ``{"kind": "limits", "gpu": true}``: the machine's GEMM rate and bandwidth (limits.py).
- ``{"kind": "series", "runner": "numpy", "layers": [2, 6, 6, 1], "activation": "tanh",
  "output": "sigmoid", "ms": [10000, 100000], "batch": null, "optimizer": "sgd", "warmup": 1,
  "repeat": 10, "max_seconds": 1.0, "seed": 0}``: one result per m, each with ``"m"``.

Every case must start from a clean process, so that its peak memory is its own (memory.py) and it
inherits no other case's heap, caches or thread pools. On the CPU the worker imports the runner's
library once (PyTorch alone takes seconds), then forks one child per case, before any thread pool
of its own has started. GPU runners never fork (a CUDA context does not survive a fork): their
cases run one after another in the worker, each measured from an emptied device memory pool. Where
there is no fork (Windows), each CPU case runs in the worker in turn and host memory is not
measured.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys

from ..errors import BackendUnavailable
from .memory import HOST_METHOD, HostPeak
from .runners import RunnerUnavailable, make_data, make_runner
from .spec import GPU_RUNNERS, NetSpec
from .timing import CudaEvents, time_steps, time_steps_cuda

RESULT_MARKER = "NNACCEL-BENCH-RESULT "
# Examples in the warm-up that compiles JIT kernels and starts thread pools before memory is
# measured (kernels compile per type, not per size, so a small batch compiles everything).
COMPILE_WARMUP_M = 64


def run_job(job: dict) -> dict:
    """The result of one limits or case job, as a dict; never raises for a runner that cannot run
    or fails."""
    try:
        if job["kind"] == "limits":
            from .limits import measure_limits

            return {"status": "ok", "limits": measure_limits(gpu=job.get("gpu", True))}
        return run_case(job)
    except (BackendUnavailable, RunnerUnavailable) as error:
        return {"status": "unavailable", "reason": str(error)}
    except MemoryError as error:
        return {"status": "error", "reason": f"out of memory at m={job.get('m')}" + (f": {error}" if str(error) else "")}
    except Exception as error:  # a failing case is reported as a line, and the run goes on
        return {"status": "error", "reason": f"{type(error).__name__}: {error}"}


def run_series(job: dict, emit) -> None:
    """``emit(result)`` for each m of a series job, in order; stops after an "unavailable"."""
    isolate = job["runner"] not in GPU_RUNNERS and hasattr(os, "fork")
    if isolate:
        _preload(job["runner"])
    for m in job["ms"]:
        case = {**job, "kind": "case", "m": m}
        result = _in_child(case) if isolate else run_job(case)
        result["m"] = m
        emit(result)
        if result["status"] == "unavailable":
            break


def _preload(runner: str) -> None:
    """Import the runner's libraries (no computation, so no thread pool starts before the fork)."""
    modules = {
        "numba": ["numba", "nnaccel.backends.numba_backend"],
        "torch-cpu": ["torch"],
        "sklearn": ["sklearn.neural_network"],
    }.get(runner, [])
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # the child meets the same error and reports it as the case's result
            return


def _in_child(case: dict) -> dict:
    """run_job(case) in a forked child; its result comes back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, send the result, leave without cleanup handlers
        os.close(read_end)
        try:
            payload = json.dumps(run_job(case)).encode()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if payload:
        return json.loads(payload)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        hint = ", probably out of memory" if number == signal.SIGKILL else ""
        return {"status": "error", "reason": f"the case's process was killed by signal {number}{hint}"}
    return {"status": "error", "reason": f"the case's process exited with status {os.WEXITSTATUS(status)}"}


def run_case(job: dict) -> dict:
    net = NetSpec(tuple(job["layers"]), job["activation"], job["output"])
    name, m, seed = job["runner"], int(job["m"]), int(job.get("seed", 0))
    rows = name == "sklearn"  # scikit-learn takes (m, n); give it that layout without a second copy

    batch, optimizer = job.get("batch"), job.get("optimizer", "sgd")
    warm_m = min(m, max(COMPILE_WARMUP_M, 2 * (batch or 0) + 1))
    compile_runner = make_runner(name, net, *make_data(net, warm_m, seed, rows), seed, batch, optimizer)
    for _ in range(2):
        compile_runner.step()
    compile_runner.synchronize()
    del compile_runner
    gc.collect()

    memory = _memory_tracker(name)
    memory.start()
    runner = make_runner(name, net, *make_data(net, m, seed, rows), seed, batch, optimizer)
    if runner.events:
        seconds = time_steps_cuda(
            runner.step,
            CudaEvents(runner.events),
            warmup=job["warmup"],
            repeat=job["repeat"],
            max_seconds=job["max_seconds"],
        )
        timer = f"CUDA events ({runner.events})"
    else:
        seconds = time_steps(
            runner.step, runner.synchronize, warmup=job["warmup"], repeat=job["repeat"], max_seconds=job["max_seconds"]
        )
        timer = "time.perf_counter"
    return {
        "status": "ok",
        "seconds": seconds,
        "timer": timer,
        "memory_bytes": memory.peak_bytes(),
        "memory_method": memory.method,
        "threads": runner.threads,
        "timed": runner.timed,
        "device": runner.device,
    }


def _memory_tracker(name: str):
    if name == "cupy":
        return _CupyPoolPeak()
    if name == "torch-cuda":
        return _TorchCudaPeak()
    return _HostTracker()


class _HostTracker:
    def __init__(self):
        self.peak = HostPeak()
        self.method = HOST_METHOD

    def start(self) -> None:
        if not self.peak.start():
            self.method = "not measured: needs Linux's /proc/self/clear_refs"

    def peak_bytes(self) -> int | None:
        return self.peak.peak_bytes()


class _CupyPoolPeak:
    method = "GPU bytes held by CuPy's memory pool (its high-water mark)"

    def start(self) -> None:
        import cupy

        self.pool = cupy.get_default_memory_pool()
        self.pool.free_all_blocks()
        self.baseline = self.pool.total_bytes()

    def peak_bytes(self) -> int:
        return int(self.pool.total_bytes() - self.baseline)


class _TorchCudaPeak:
    method = "GPU bytes: torch.cuda.max_memory_allocated"

    def start(self) -> None:
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        self.baseline = torch.cuda.memory_allocated()

    def peak_bytes(self) -> int:
        import torch

        return int(torch.cuda.max_memory_allocated() - self.baseline)


def main() -> int:
    job = json.loads(sys.stdin.read())

    def emit(result: dict) -> None:
        sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
        sys.stdout.flush()

    if job["kind"] == "series":
        run_series(job, emit)
    else:
        emit(run_job(job))
    return 0


if __name__ == "__main__":
    sys.exit(main())
