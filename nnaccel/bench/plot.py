"""``--plot``: training throughput (examples per second) against m, log-log, one line per runner,
one panel per network, with the CPU's (and GPU's) roofline bound as a dotted line.

matplotlib is imported only here, through its object API (no pyplot state, no display needed).
"""

from __future__ import annotations

import os

COLOURS = {
    "numpy": "#1f77b4",
    "numba": "#ff7f0e",
    "cupy": "#2ca02c",
    "torch-cpu": "#d62728",
    "torch-cuda": "#9467bd",
    "sklearn": "#8c564b",
}


def check_available() -> None:
    """Raise before the benchmark runs if matplotlib is missing, rather than after it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'nnaccel[plot]' (or pip install matplotlib)") from None


def save_plot(report: dict, path: str | os.PathLike) -> None:
    """Draw the report's examples/s against m and write it as a PNG, atomically."""
    check_available()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io import atomic_write

    nets = report["settings"]["nets"]
    figure = Figure(figsize=(8.6 * len(nets), 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(1, len(nets), squeeze=False)[0]
    for axes, net in zip(axes_list, nets):
        _draw_net(axes, report, net)
    machine = report["machine"]
    figure.suptitle(
        f"nnaccel bench: {machine['cpu']}, {machine['usable_cpus']} CPUs"
        + (f", {machine['gpu']}" if machine.get("gpu") else ", no GPU"),
        fontsize=11,
    )
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=130))


def _draw_net(axes, report: dict, net: str) -> None:
    records = [r for r in report["results"] if r["net"] == net]
    runners = list(dict.fromkeys(r["backend"] for r in records))
    for runner in runners:
        points = sorted((r["m"], r["examples_per_s"], r["kind"]) for r in records if r["backend"] == runner)
        peer = points[0][2] == "peer"
        axes.plot(
            [m for m, _, _ in points],
            [rate for _, rate, _ in points],
            marker="o" if not peer else "s",
            linestyle="--" if peer else "-",
            linewidth=2.2 if not peer else 1.5,
            markersize=5,
            color=COLOURS.get(runner),
            label=runner + (" (peer)" if peer else ""),
        )
    for device, style in (("cpu", "grey"), ("gpu", "#2ca02c")):
        bound = sorted({(r["m"], r["m"] / r["roofline_s"]) for r in records if r["device"] == device and r["roofline_s"]})
        if bound:
            axes.plot(
                [m for m, _ in bound],
                [rate for _, rate in bound],
                linestyle=":",
                color=style,
                linewidth=1.5,
                label=f"{device.upper()} roofline bound",
            )
    for entry in report["crossover"]:
        if entry["net"] == net and entry["m"]:
            axes.axvline(entry["m"], color="black", linestyle="-.", linewidth=1)
            axes.annotate(
                f"GPU crossover\nm = {entry['m']:,}",
                (entry["m"], 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(5, 0),
                textcoords="offset points",
                verticalalignment="top",
                fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    output = report["settings"]["outputs"][net]
    axes.set_title(f"{net} ({report['settings']['activation']} hidden, {output} output), {report['settings']['dtype']}")
    axes.set_xlabel("m (examples per full-batch step)")
    axes.set_ylabel("examples per second (higher is better)")
    axes.grid(True, which="major", alpha=0.4)
    axes.grid(True, which="minor", alpha=0.12)
    if records:
        # Beside the panel, so no line is hidden behind it.
        axes.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        axes.text(0.5, 0.5, "no case ran", transform=axes.transAxes, ha="center")
