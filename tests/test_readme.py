"""Every code block of README.md runs as written, as a new user following it would.

The blocks run in README order in one folder (so ``nnaccel predict`` finds the model an earlier
block saved), each in a fresh process: a ```python block as a script, a ```bash block's
``nnaccel`` commands through bash. Other shell lines (``pip install``, ``pytest``, benchmark
scripts) are left to CI and to ``benchmarks/``. A marker comment on the line before a block
changes how it is treated:

    <!-- readme-test: needs-gpu -->            runs only where CuPy can use a GPU
    <!-- readme-test: parse-only: REASON -->   its nnaccel commands are parsed (every flag must
                                               exist), not run

Run alone (``-k``), a block that reads an earlier block's files fails for want of them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>.*?) -->\n)?```(?P<language>python|bash)\n(?P<code>.*?)```", re.S)
SECONDS_PER_BLOCK = 180  # generous: a Dask cluster starts in seconds, slower on a busy machine
# a block that imports one of these is skipped where it is not installed (an extra of nnaccel)
OPTIONAL_MODULES = {"sklearn", "onnx", "onnxruntime", "dask", "distributed", "matplotlib", "cupy", "torch"}


@dataclass
class Block:
    language: str
    code: str
    line: int  # where the block's code starts in README.md
    marker: str | None

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language}"


def readme_blocks() -> list[Block]:
    text = (ROOT / "README.md").read_text()
    return [
        Block(match["language"], match["code"], text.count("\n", 0, match.start("code")) + 1, match["marker"])
        for match in BLOCK.finditer(text)
    ]


def nnaccel_commands(code: str) -> list[str]:
    """The shell commands of a bash block that run ``nnaccel`` (after ``VAR=value`` and ``env -u
    VAR`` prefixes), one per line or ``&&`` part; the rest (pip, pytest, scripts) is dropped."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            if command_words(part)[:1] == ["nnaccel"]:
                commands.append(part.strip())
    return commands


def command_words(command: str) -> list[str]:
    """``command`` split as the shell would, without its environment prefixes and comment."""
    words = shlex.split(command, comments=True)
    if words[:1] == ["env"]:
        words = words[1:]
        while words[:1] == ["-u"]:
            words = words[2:]
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]
    return words


def check_flags(command: str) -> None:
    """Parse ``command``'s arguments as ``nnaccel`` would, without running it."""
    from nnaccel.cli.main import build_parser

    try:
        build_parser().parse_args(command_words(command)[1:])
    except SystemExit as stop:
        pytest.fail(f"README command does not parse (exit {stop.code}): {command}")


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory) -> Path:
    """A folder standing in for the user's checkout: the repository's examples/ and an ``nnaccel``
    command that runs this interpreter's nnaccel."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(ROOT / "examples")
    tools = folder / ".bin"
    tools.mkdir()
    wrapper = tools / "nnaccel"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nnaccel "$@"\n')
    wrapper.chmod(0o755)
    return folder


def run(arguments: list[str], folder: Path, block: Block) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{folder / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(arguments, cwd=folder, env=environment, capture_output=True, text=True, timeout=SECONDS_PER_BLOCK)
    missing = re.search(r"ModuleNotFoundError: No module named '(\w+)", result.stderr)
    if result.returncode != 0 and missing and missing[1] in OPTIONAL_MODULES:
        pytest.skip(f"README.md line {block.line} needs {missing[1]}, which is not installed here")
    assert result.returncode == 0, (
        f"README.md block at line {block.line} failed (exit {result.returncode}):\n"
        f"{block.code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )
    return result


def _params():
    params = []
    for block in readme_blocks():
        marks = [pytest.mark.gpu] if block.marker == "needs-gpu" else []
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


@pytest.mark.parametrize("block", _params())
def test_readme_block_runs_as_written(block: Block, reader_folder: Path):
    if block.language == "python":
        script = reader_folder / f"readme_line{block.line}.py"
        script.write_text(block.code)
        run([sys.executable, script.name], reader_folder, block)
        return
    commands = nnaccel_commands(block.code)
    if not commands:
        pytest.skip(f"README.md line {block.line} has no nnaccel command (pip, pytest or a script)")
    if block.marker and block.marker.startswith("parse-only"):
        for command in commands:
            check_flags(command)
        return
    run(["bash", "-e", "-c", "\n".join(commands)], reader_folder, block)


def test_every_python_block_and_nnaccel_command_is_collected():
    # the extraction itself: a README edit that hides blocks from it (another fence, a typo in a
    # marker) would otherwise pass silently
    blocks = readme_blocks()
    assert sum(block.language == "python" for block in blocks) >= 5
    assert all(block.marker in (None, "needs-gpu") or block.marker.startswith("parse-only: ") for block in blocks)
    commands = [command for block in blocks if block.language == "bash" for command in nnaccel_commands(block.code)]
    assert any(command.startswith("nnaccel train --dataset circle") for command in commands)  # after `pip install &&`
    assert any("nnaccel train --dataset spiral" in command and "--plot spiral.png" in command for command in commands)
    assert "NNACCEL_DTYPE=float64 nnaccel train --dataset xor     # float32 (default) | float64" in commands


def test_command_words_drops_environment_prefixes():
    assert command_words("env -u A -u B X=1 nnaccel bench --m 1e4  # note") == ["nnaccel", "bench", "--m", "1e4"]
    assert nnaccel_commands("pip install -e . && nnaccel info\npytest\n") == ["nnaccel info"]
