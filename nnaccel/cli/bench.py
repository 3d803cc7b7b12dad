"""``nnaccel bench``: training throughput of each backend and peer library, beside the machine's limits."""

from __future__ import annotations

import shlex
import sys

from ..backends import BACKEND_NAMES
from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUTS
from ..io import check_writable
from ..optim import OPTIMIZERS

DESCRIPTION = """\
Time one full-batch training step (forward + backward + --optimizer's update, data already on the
device) of each network at each m, on each backend and peer library, each case in a fresh process: warm-up steps,
then the median and spread of up to --repeat timed steps. The machine's GEMM rate and memory
bandwidth are measured in the same run, and each result is given as a fraction of its roofline
bound. Backends or peers that cannot run here are listed with the reason.

--m takes sizes and ranges, comma-separated:
  1e4,1e5,1e6     these sizes
  1e4:1e7         whole decades from 1e4 to 1e7 (1e4, 1e5, 1e6, 1e7); B is added if off the grid
  1e4:1e6:3       3 log-spaced sizes per decade (finer, to find the GPU crossover)
The table marks the smallest m at which a GPU backend beats the best CPU backend.

For steady numbers, unset variables that slow the BLAS down on some machines, e.g.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nnaccel bench
"""


def add_parser(subparsers) -> None:
    import argparse

    parser = subparsers.add_parser(
        "bench",
        help="time training steps on each backend, beside the machine's limits and peer libraries",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKEND_NAMES),
        help=f"comma list of {', '.join(BACKEND_NAMES)} (default: all; those that cannot run are listed with why)",
    )
    parser.add_argument(
        "--peers",
        default="auto",
        help="comma list of torch, torch-cpu, torch-cuda, sklearn; auto (default: those installed) or none",
    )
    parser.add_argument(
        "--net", default="2-6-6-1", help="layer sizes joined by '-', several separated by commas (default 2-6-6-1)"
    )
    parser.add_argument(
        "--m", default="1e4,1e5,1e6", help="examples per step: list and/or range, see above (default 1e4,1e5,1e6)"
    )
    parser.add_argument(
        "--batch",
        default="full",
        help="comma list of mini-batch sizes and/or 'full': with a size each timing is one epoch of "
        "mini-batch SGD over the m examples (default full: one full-batch step)",
    )
    parser.add_argument(
        "--optimizer",
        default="sgd",
        choices=tuple(OPTIMIZERS),
        help="the update of every timed step, full batch and mini-batch: sgd (default, W -= lr dW), momentum or "
        "nesterov (momentum 0.9), adam (betas 0.9, 0.999, eps 1e-8), adamw (also weight decay 0.01); the torch "
        "peers step the matching torch.optim class with the same values, sklearn its own solver (no adamw)",
    )
    parser.add_argument("--repeat", type=int, default=10, help="timed steps per case, at most (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps at each m before timing (default 1)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1.0,
        help="stop a case's timed steps after this many seconds, once 3 are done (default 1)",
    )
    parser.add_argument("--activation", default="tanh", choices=HIDDEN_ACTIVATIONS, help="hidden activation (default tanh)")
    parser.add_argument(
        "--output",
        default="auto",
        choices=("auto",) + OUTPUTS,
        help="output layer (default auto: sigmoid for one unit, softmax for more)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and initial weights (default 0)")
    parser.add_argument("--json", metavar="FILE", help="write every result, the limits, machine and versions here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw examples/s against m (log-log) into this PNG")
    parser.set_defaults(run=run)


def settings_from_args(args):
    """Parse and check every argument; raises ValueError (exit 2) before any work is done."""
    from ..bench.engine import BenchSettings, check_settings
    from ..bench.spec import parse_backends, parse_batches, parse_m, parse_nets, parse_peers

    settings = BenchSettings(
        backends=parse_backends(args.backends),
        peers=parse_peers(args.peers),
        nets=parse_nets(args.net, args.activation, args.output),
        m=parse_m(args.m),
        batch=parse_batches(args.batch),
        optimizer=args.optimizer,
        repeat=args.repeat,
        warmup=args.warmup,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    check_settings(settings)
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path is None:
            continue
        check_writable(path, option)
    if args.plot is not None:
        if not args.plot.lower().endswith(".png"):
            raise ValueError(f"--plot writes a PNG; give a file name ending in .png, not {args.plot!r}")
        from ..bench.plot import check_available

        check_available()
    return settings


def command_line(args) -> str:
    """The command that repeats this run, spelled out with every setting."""
    words = [
        "nnaccel",
        "bench",
        "--backends",
        args.backends,
        "--peers",
        args.peers,
        "--net",
        args.net,
        "--m",
        args.m,
        "--batch",
        args.batch,
        "--optimizer",
        args.optimizer,
    ]
    words += ["--repeat", str(args.repeat), "--warmup", str(args.warmup), "--max-seconds", f"{args.max_seconds:g}"]
    words += ["--activation", args.activation, "--output", args.output, "--seed", str(args.seed)]
    return shlex.join(words)


def run(args) -> int:
    from ..bench.engine import run_bench
    from ..bench.report import format_table, write_json

    settings = settings_from_args(args)
    report = run_bench(settings, progress=sys.stderr.isatty(), command=command_line(args))
    print(format_table(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        from ..bench.plot import save_plot

        save_plot(report, args.plot)
        print(f"wrote {args.plot}")
    if not report["results"]:
        print("nnaccel: error: no benchmark case ran (the lines above say why)", file=sys.stderr)
        return 1
    return 0
