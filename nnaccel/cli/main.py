"""The ``nnaccel`` command: one subcommand per module in this folder.

Each subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int``. Errors become one
line on stderr: exit status 2 for bad arguments or input, 1 for other failures; ``--debug`` shows
the traceback instead. With no subcommand it prints the usage and then that error line (exit 2), so a
first-time user sees the commands.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import BackendUnavailable, TrainingDiverged
from . import bench, export, info, make_data, predict, train

SUBCOMMANDS = [info, train, predict, export, bench, make_data]


class _Parser(argparse.ArgumentParser):
    commands: list[str]  # the subcommands' names, for the message when none is given

    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"nnaccel: error: {message}\n")


def version() -> str:
    """The installed distribution's version (its metadata), or the package's own when it runs from
    a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("nnaccel")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def build_parser() -> _Parser:
    parser = _Parser(prog="nnaccel", description="Train fully connected networks on NumPy, Numba or CuPy.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"nnaccel {version()}")
    # not required=True: a missing command is reported in main, with the usage, not as a bare line
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    parser.commands = list(subparsers.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    argv = [argument for argument in argv if argument != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        parser.error(f"no command given; choose one of {', '.join(parser.commands)} (nnaccel COMMAND --help)")
    args.debug = debug
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("nnaccel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout stopped early (`| head`): not nnaccel's failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush stays quiet
        return 0
    # a backend that cannot run here and an unreachable scheduler are bad input too (exit 2)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError, BackendUnavailable, ConnectionError) as error:
        if debug:
            raise
        print(f"nnaccel: error: {error}", file=sys.stderr)
        return 2
    except (TrainingDiverged, RuntimeError, OSError, MemoryError) as error:
        if debug:
            raise
        print(f"nnaccel: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
