"""The benchmark report as a terminal table, and as the ``--json`` file (written atomically)."""

from __future__ import annotations

import json
import os

from ..io import atomic_write

COLUMNS = ("m", "backend", "step (median", "± IQR/2)", "examples/s", "vs numpy", "peak memory", "roofline")
RIGHT_ALIGNED = {0, 2, 3, 4, 5, 6, 7}
BUSY_SHARE = 0.1  # other programs using more of the CPUs than this make the table say so


def format_table(report: dict) -> str:
    """The whole report as text: machine and limits, one table per network, then notes."""
    lines = _header(report)
    for net, batch in _groups(report):
        records = [r for r in report["results"] if r["net"] == net and r.get("batch") == batch]
        output = report["settings"]["outputs"][net]
        steps = "full-batch steps" if batch is None else f"epochs of mini-batches of {batch}"
        lines += ["", f"{net} ({report['settings']['activation']} hidden, {output} output), {steps}"]
        if records:
            lines += _table(records)
        else:
            lines.append("  (no case ran)")
    lines += _notes(report)
    return "\n".join(lines)


def _groups(report: dict) -> list:
    """(network, batch size) of each table: every network's full-batch table, and its mini-batch
    tables that have results (a batch of at least m is timed as a full batch)."""
    batches = report["settings"].get("batch", [None])
    groups = []
    for net in report["settings"]["nets"]:
        for batch in batches:
            if batch is None or any(r["net"] == net and r.get("batch") == batch for r in report["results"]):
                groups.append((net, batch))
    return groups


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write the report as indented JSON, atomically (a crash leaves the old file, not half a file)."""
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _header(report: dict) -> list[str]:
    machine, limits = report["machine"], report["limits"]
    memory = f", {machine['memory_bytes'] / 2**30:.1f} GiB RAM" if machine.get("memory_bytes") else ""
    gpu = machine["gpu"] or "none" + (f" ({machine['gpu_note']})" if machine.get("gpu_note") else "")
    optimizer = report["settings"].get("optimizer", "sgd")
    update = "update" if optimizer == "sgd" else f"{optimizer} update"
    lines = [
        f"nnaccel bench: seconds per full-batch training step (forward + backward + {update}), "
        f"{report['settings']['dtype']}, data already on the device",
        f"machine: {machine['cpu']}, {machine['usable_cpus']} usable of {machine['logical_cpus']} logical CPUs, "
        f"{machine['system']}{memory}",
        f"GPU:     {gpu}",
        f"limits:  CPU GEMM {limits['gemm_gflops']:.0f} GFLOP/s, CPU bandwidth {limits['stream_gbps']:.1f} GB/s (STREAM triad)",
    ]
    if limits.get("gpu"):
        gpu_limits = limits["gpu"]
        lines[-1] += f"; GPU GEMM {gpu_limits['gemm_gflops']:.0f} GFLOP/s, GPU bandwidth {gpu_limits['stream_gbps']:.0f} GB/s"
    if machine_was_busy(machine):
        share = machine.get("others_cpu_share")
        load = machine.get("load_average") or {}
        what = (
            f"other programs used {100 * share:.0f}% of the CPUs during this run"
            if share is not None
            else f"the load average was {_one_decimal(load.get('start'))} at the start of this run"
        )
        lines.append(f"warning: {what}: timings are noisy, multithreaded ones most, and slower than on an idle machine")
    return lines


def machine_was_busy(machine: dict) -> bool:
    """True when other programs used more than 10% of the CPUs during the run; where that was not
    measured, when the load average before the run exceeded half the CPUs."""
    share = machine.get("others_cpu_share")
    if share is not None:
        return share > BUSY_SHARE
    start = (machine.get("load_average") or {}).get("start")
    return start is not None and start > 0.5 * (machine["usable_cpus"] or 1)


def _table(records: list[dict]) -> list[str]:
    rows = [list(COLUMNS)]
    previous_m = None
    for record in sorted(records, key=lambda r: r["m"]):  # stable: keeps the run's runner order
        name = record["backend"] + (" (peer)" if record["kind"] == "peer" else "")
        if record["crossover"]:
            name += " <- GPU crossover"
        rows.append(
            [
                f"{record['m']:,}" if record["m"] != previous_m else "",
                name,
                format_seconds(record["step_s"]),
                f"± {spread_percent(record):.0f}%",
                format_count(record["examples_per_s"]),
                "-" if record["speedup_vs_numpy"] is None else _two_digits(record["speedup_vs_numpy"]) + "x",
                "n/a" if record["peak_memory_bytes"] is None else format_bytes(record["peak_memory_bytes"]),
                "-" if record["roofline_fraction"] is None else f"{100 * record['roofline_fraction']:.3g}%",
            ]
        )
        previous_m = record["m"]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[index]) if index in RIGHT_ALIGNED else cell.ljust(widths[index]) for index, cell in enumerate(row)
        ]
        # The median and its spread read as one column: "1.23 ms ± 4%".
        lines.append("  " + "  ".join(cells[:3]) + " " + "  ".join(cells[3:]))
    return lines


def _notes(report: dict) -> list[str]:
    settings = report["settings"]
    lines = [
        "",
        f"step: median of up to {settings['repeat']} timed steps (fewer past {settings['max_seconds']:g} s) after "
        f"{settings['warmup']} warm-up step{'' if settings['warmup'] == 1 else 's'}, ± half the interquartile range; "
        "vs numpy: the NumPy backend's time / this time;",
        "peak memory: rise of the case's peak RSS (GPU: device pool) over its start, data included "
        "(page-granular; below ~1 MiB mostly noise);",
        "roofline: bound / step, bound = max(bytes that must move / bandwidth, matmul FLOPs / GEMM rate).",
    ]
    described = set()
    for record in report["results"]:
        if record["kind"] == "peer" and record["backend"] not in described:
            described.add(record["backend"])
            lines.append(f"{record['backend']} (peer): {record['timed']}")
    for entry in report["not_run"]:
        where = f" ({entry['net']}, m={entry['m']:,})" if "m" in entry else ""
        lines.append(f"not run: {entry['backend']}{where}: {entry['reason']}")
    for entry in report["crossover"]:
        lines.append(
            f"GPU crossover for {entry['net']}: " + (f"m = {entry['m']:,}; " if entry["m"] else "none; ") + entry["note"]
        )
    return lines


def _one_decimal(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _two_digits(value: float) -> str:
    """1.2345 -> '1.23'; 0.0123 -> '0.012' (small values keep two significant digits)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def spread_percent(record: dict) -> float:
    """Half the interquartile range as a percentage of the median."""
    return 100 * (record["step_s_q3"] - record["step_s_q1"]) / 2 / record["step_s"]


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_count(count: float) -> str:
    """8.1e6 -> '8.1 M'."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {suffix}"
    return f"{count:.3g}"


def format_bytes(count: int) -> str:
    for suffix, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {suffix}"
    return f"{count} B"
