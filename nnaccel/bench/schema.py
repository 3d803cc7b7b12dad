"""The JSON Schema of ``nnaccel bench --json`` (format "nnaccel-bench", version 1).

The contract's part: ``results`` records with ``backend``, ``net``, ``m``, ``step_s`` (median
seconds per step) and ``examples_per_s``; ``limits`` with ``gemm_gflops`` and ``stream_gbps``.
Everything else is described here so scripts can rely on it too. Times are seconds, memory bytes,
rates per second; GFLOP/s and GB/s use powers of ten.
"""

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INTEGER_OR_NULL = {"type": ["integer", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}

_DEVICE_LIMITS = {
    "type": "object",
    "required": ["gemm_gflops", "stream_gbps", "gemm_method", "stream_method"],
    "properties": {
        "gemm_gflops": {"type": "number", "exclusiveMinimum": 0},
        "stream_gbps": {"type": "number", "exclusiveMinimum": 0},
        "gemm_method": {"type": "string"},
        "stream_method": {"type": "string"},
        "device_name": {"type": "string"},
    },
}

RESULT = {
    "type": "object",
    "required": [
        "backend",
        "kind",
        "device",
        "net",
        "layers",
        "activation",
        "output",
        "m",
        "optimizer",
        "step_s",
        "step_s_q1",
        "step_s_q3",
        "step_s_min",
        "step_s_max",
        "repeats",
        "examples_per_s",
        "speedup_vs_numpy",
        "peak_memory_bytes",
        "memory_method",
        "flops",
        "bytes",
        "roofline_s",
        "roofline_fraction",
        "timer",
        "timed",
        "threads",
        "case_wall_s",
        "crossover",
    ],
    "properties": {
        "backend": {"type": "string", "description": "an nnaccel backend, or a peer: torch-cpu, torch-cuda, sklearn"},
        "kind": {"enum": ["backend", "peer"]},
        "device": {"enum": ["cpu", "gpu"]},
        "net": {"type": "string", "pattern": "^[0-9]+(-[0-9]+)+$"},
        "layers": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2},
        "activation": {"type": "string"},
        "output": {"enum": ["sigmoid", "softmax", "identity"]},
        "m": {"type": "integer", "minimum": 1},
        "optimizer": {"enum": ["sgd", "momentum", "nesterov", "adam", "adamw"], "description": "the update of each step"},
        "step_s": {"type": "number", "exclusiveMinimum": 0, "description": "median seconds per step"},
        "step_s_q1": {"type": "number", "minimum": 0},
        "step_s_q3": {"type": "number", "minimum": 0},
        "step_s_min": {"type": "number", "minimum": 0},
        "step_s_max": {"type": "number", "minimum": 0},
        "repeats": {"type": "integer", "minimum": 1, "description": "timed steps"},
        "examples_per_s": {"type": "number", "exclusiveMinimum": 0, "description": "m / step_s"},
        "speedup_vs_numpy": _NUMBER_OR_NULL,
        "peak_memory_bytes": _INTEGER_OR_NULL,
        "memory_method": {"type": "string"},
        "flops": {"type": "integer", "minimum": 0, "description": "matrix-product FLOPs of one step"},
        "bytes": {"type": "integer", "minimum": 0, "description": "bytes one step must move at least"},
        "roofline_s": _NUMBER_OR_NULL,
        "roofline_fraction": _NUMBER_OR_NULL,
        "timer": {"type": "string"},
        "timed": {"type": "string"},
        "threads": _INTEGER_OR_NULL,
        "case_wall_s": {"type": "number", "minimum": 0},
        "crossover": {"type": "boolean"},
    },
}

JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nnaccel bench results",
    "type": "object",
    "required": [
        "format",
        "version",
        "created",
        "command",
        "settings",
        "machine",
        "versions",
        "threads",
        "limits",
        "results",
        "not_run",
        "crossover",
    ],
    "properties": {
        "format": {"const": "nnaccel-bench"},
        "version": {"const": 1},
        "created": {"type": "string"},
        "command": _STRING_OR_NULL,
        "settings": {
            "type": "object",
            "required": ["backends", "peers", "nets", "m", "repeat", "warmup", "max_seconds", "dtype", "lr", "seed"],
        },
        "machine": {
            "type": "object",
            "properties": {"others_cpu_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1}},
            "required": [
                "cpu",
                "logical_cpus",
                "usable_cpus",
                "memory_bytes",
                "system",
                "gpu",
                "gpu_note",
                "load_average",
                "others_cpu_share",
            ],
        },
        "versions": {
            "type": "object",
            "required": ["python", "nnaccel", "numpy", "numba", "torch", "scikit-learn", "cupy"],
            "additionalProperties": _STRING_OR_NULL,
        },
        "threads": {"type": "object", "required": ["logical_cpus", "blas", "per_runner", "environment"]},
        "limits": {
            "type": "object",
            "required": ["gemm_gflops", "stream_gbps", "gemm_method", "stream_method", "gpu", "gpu_note"],
            "properties": {
                "gemm_gflops": {"type": "number", "exclusiveMinimum": 0},
                "stream_gbps": {"type": "number", "exclusiveMinimum": 0},
                "gpu": {"oneOf": [{"type": "null"}, _DEVICE_LIMITS]},
                "gpu_note": _STRING_OR_NULL,
            },
        },
        "results": {"type": "array", "items": RESULT},
        "not_run": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["backend", "reason"],
                "properties": {"backend": {"type": "string"}, "reason": {"type": "string"}, "m": {"type": "integer"}},
            },
        },
        "crossover": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["net", "m", "gpu_backend", "cpu_backend", "note"],
                "properties": {"m": _INTEGER_OR_NULL},
            },
        },
    },
}
