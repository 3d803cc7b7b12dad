"""What a benchmark run measures: the runners, the networks and the batch sizes, parsed from the
command line's text and checked before any work starts.

Syntax of ``--m`` (documented in ``nnaccel bench --help`` and README.md):

- a comma list of sizes: ``1e4,1e5,1e6`` or ``10000,250000`` (scientific notation allowed, each an
  integer >= 1);
- a range ``A:B``: A, 10A, 100A, ... up to B (whole decades), and B itself if it is not on that grid;
- a range ``A:B:K``: K log-spaced sizes per decade from A to B (``1e4:1e6:2`` is 1e4, 31623, 1e5,
  316228, 1e6), for finding a crossover more finely;
- lists and ranges mix: ``100,1e4:1e6``. Sizes are sorted and duplicates dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..backends import BACKEND_NAMES
from ..core.activations import HIDDEN_ACTIVATIONS
from ..core.architecture import Architecture

# Peers: other libraries training the same network on the same data (see peers.py).
PEER_NAMES = ("torch-cpu", "torch-cuda", "sklearn")
# "torch" in --peers stands for both torch runners.
PEER_ALIASES = {"torch": ("torch-cpu", "torch-cuda")}
# The device each runner computes on; the roofline uses that device's limits.
GPU_RUNNERS = ("cupy", "torch-cuda")
MAX_M = 10**10  # far beyond any machine's memory for even a 1-1 network; catches typos like 1e40


@dataclass(frozen=True)
class NetSpec:
    """One network to benchmark: its layer sizes, hidden activation and output layer."""

    layers: tuple[int, ...]
    activation: str
    output: str

    @property
    def label(self) -> str:
        """The ``--net`` spelling, e.g. ``2-6-6-1``."""
        return "-".join(str(size) for size in self.layers)

    def architecture(self) -> Architecture:
        return Architecture.build(self.layers, self.activation, self.output)


def device_of(runner: str) -> str:
    """``"gpu"`` or ``"cpu"``: where a runner does its arithmetic."""
    return "gpu" if runner in GPU_RUNNERS else "cpu"


def parse_backends(text: str) -> list[str]:
    """``"numpy,numba"`` -> ["numpy", "numba"]; an unknown name raises ValueError listing the valid ones."""
    names = _comma_list(text, "--backends")
    for name in names:
        if name not in BACKEND_NAMES:
            raise ValueError(f"unknown backend {name!r} in --backends; valid names are {', '.join(BACKEND_NAMES)}")
    return _unique(names)


def parse_peers(text: str) -> list[str]:
    """``"torch,sklearn"`` -> the peer runners; ``"none"`` -> []; ``"auto"`` -> every peer."""
    text = text.strip().lower()
    if text == "none":
        return []
    if text == "auto":
        return list(PEER_NAMES)
    names: list[str] = []
    for name in _comma_list(text, "--peers"):
        if name in PEER_ALIASES:
            names.extend(PEER_ALIASES[name])
        elif name in PEER_NAMES:
            names.append(name)
        else:
            valid = ", ".join(("auto", "none", *PEER_ALIASES, *PEER_NAMES))
            raise ValueError(f"unknown peer {name!r} in --peers; valid names are {valid}")
    return _unique(names)


def parse_nets(text: str, activation: str = "tanh", output: str = "auto") -> list[NetSpec]:
    """``"2-6-6-1,784-256-10"`` -> one NetSpec each. ``output="auto"`` is sigmoid for one output
    unit and softmax for more."""
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown --activation {activation!r}; expected one of {', '.join(HIDDEN_ACTIVATIONS)}")
    nets = []
    for part in _comma_list(text, "--net"):
        if not re.fullmatch(r"[0-9]+(-[0-9]+)+", part):
            raise ValueError(
                f"--net expects layer sizes from input to output joined by '-', like 2-6-6-1 or "
                f"784-256-10 (several separated by commas); got {part!r}"
            )
        layers = tuple(int(size) for size in part.split("-"))
        if min(layers) < 1:
            raise ValueError(f"--net layer sizes must be positive; got {part!r}")
        chosen_output = output
        if output == "auto":
            chosen_output = "sigmoid" if layers[-1] == 1 else "softmax"
        Architecture.build(layers, activation, chosen_output)  # the same checks a Network makes
        nets.append(NetSpec(layers, activation, chosen_output))
    return _unique(nets)


def parse_m(text: str) -> list[int]:
    """The batch sizes of ``--m`` (syntax in this module's docstring), sorted, without duplicates."""
    sizes: set[int] = set()
    for part in _comma_list(text, "--m"):
        if ":" in part:
            sizes.update(_parse_range(part))
        else:
            sizes.add(_parse_size(part, part))
    return sorted(sizes)


def _parse_range(part: str) -> list[int]:
    pieces = part.split(":")
    if len(pieces) not in (2, 3):
        raise ValueError(f"--m range {part!r} must be A:B or A:B:K (K sizes per decade), like 1e4:1e7")
    start, stop = _parse_size(pieces[0], part), _parse_size(pieces[1], part)
    per_decade = 1
    if len(pieces) == 3:
        if not pieces[2].strip().isdigit() or int(pieces[2]) < 1:
            raise ValueError(f"--m range {part!r}: K (sizes per decade) must be a positive integer")
        per_decade = int(pieces[2])
    if stop < start:
        raise ValueError(f"--m range {part!r} runs backwards; write the smaller size first, like 1e4:1e7")
    sizes = []
    step = 0
    while True:
        # Rounding the exponent first keeps 1e4:1e7 exact (no 99999 from floating-point powers).
        size = round(start * 10 ** round(step / per_decade, 12))
        if size > stop:
            break
        sizes.append(size)
        step += 1
    if sizes[-1] != stop:
        sizes.append(stop)
    return sizes


def _parse_size(text: str, context: str) -> int:
    problem = (
        f"--m expects batch sizes like 1e4,1e5,1e6 or a range like 1e4:1e7 (see nnaccel bench --help); "
        f"{text.strip()!r} in {context!r} is not a whole number >= 1"
    )
    try:
        value = float(text)
    except ValueError:
        raise ValueError(problem) from None
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise ValueError(problem)
    if value > MAX_M:
        raise ValueError(f"--m {text.strip()!r} is larger than {MAX_M:.0e}; no machine holds that batch")
    return int(value)


def parse_batches(text: str) -> list[int | None]:
    """The batch sizes of ``--batch``: positive integers, and ``full`` (None: full-batch steps)."""
    batches: list[int | None] = []
    for part in _comma_list(text, "--batch"):
        if part.lower() == "full":
            batches.append(None)
            continue
        try:
            size = int(part)
        except ValueError:
            size = 0
        if size < 1:
            raise ValueError(f"--batch expects positive batch sizes and/or 'full', like 32,256,full; got {part!r}")
        batches.append(size)
    return _unique(batches)


def _comma_list(text: str, option: str) -> list[str]:
    parts = [part.strip().lower() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise ValueError(f"{option} expects a comma-separated list without empty items; got {text!r}")
    return parts


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))
