"""``nnaccel bench``'s engine: training throughput per backend beside the machine's limits.

- spec.py: the runners, networks and batch sizes, parsed from the command line's text;
- limits.py: the machine's GEMM rate and STREAM-triad bandwidth (CPU, and GPU with CuPy);
- runners.py, peers.py: one training step on an nnaccel backend, PyTorch or scikit-learn;
- timing.py: warm-up, then per-step times (host clock, or CUDA events on a GPU);
- memory.py: peak memory of a case; worker.py: one case in a fresh process;
- roofline.py: the FLOPs and bytes of a step and its roofline bound;
- engine.py: runs it all; report.py: the table and the JSON file; plot.py: the PNG.

    from nnaccel.bench import BenchSettings, run_bench
    report = run_bench(BenchSettings(backends=["numpy"], peers=[], m=[10_000]))
"""

from .engine import BenchSettings, run_bench

__all__ = ["BenchSettings", "run_bench"]
