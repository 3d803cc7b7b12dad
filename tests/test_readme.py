"""Every code block of README.md and of each page of docs/ runs as written, as a new user following
it would.

Each page's blocks run in the page's order in one folder of the page's own (so ``nnaccel predict``
finds the model an earlier block of the same page saved), each block in a fresh process: a
```python block as a script, a ```bash block's ``nnaccel`` commands through bash. Other shell
lines (``pip install``, ``pytest``, benchmark scripts) are left to CI and to ``benchmarks/``. A
marker comment on the line before a block changes how it is treated:

    <!-- readme-test: needs-gpu -->            runs only where CuPy can use a GPU
    <!-- readme-test: parse-only: REASON -->   its nnaccel commands are parsed (every flag must
                                               exist), not run

Run alone (``-k``), a block that reads an earlier block's files fails for want of them. The
pages' links to each other (and to BENCHMARKS.md) are checked too, anchors included.
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
OPTIONAL_MODULES = {"sklearn", "onnx", "onnxruntime", "dask", "distributed", "matplotlib", "cupy", "torch", "pandas"}
# the pages whose blocks run: the README, then docs/ (each page in a folder of its own)
PAGES = ["README.md", *sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250  # the README leads with what a user does; the rest goes to docs/


@dataclass
class Block:
    language: str
    code: str
    line: int  # where the block's code starts in its page
    marker: str | None
    page: str = "README.md"  # relative to the repository's root

    @property
    def id(self) -> str:
        return f"{self.page.removesuffix('.md')}-line{self.line}-{self.language}"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def page_blocks(page: str) -> list[Block]:
    text = (ROOT / page).read_text()
    return [
        Block(match["language"], match["code"], text.count("\n", 0, match.start("code")) + 1, match["marker"], page)
        for match in BLOCK.finditer(text)
    ]


def readme_blocks() -> list[Block]:
    return page_blocks("README.md")


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
        pytest.fail(f"documented command does not parse (exit {stop.code}): {command}")


@pytest.fixture(scope="module")
def reader_folders(tmp_path_factory):
    """``folder(page)``: a folder standing in for the user's checkout, one per page (made on first
    use, then kept for the page's later blocks): the repository's examples/ and an ``nnaccel``
    command that runs this interpreter's nnaccel."""
    folders: dict[str, Path] = {}

    def folder(page: str) -> Path:
        if page not in folders:
            made = tmp_path_factory.mktemp(Path(page).stem)
            (made / "examples").symlink_to(ROOT / "examples")
            tools = made / ".bin"
            tools.mkdir()
            wrapper = tools / "nnaccel"
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nnaccel "$@"\n')
            wrapper.chmod(0o755)
            folders[page] = made
        return folders[page]

    return folder


def run(arguments: list[str], folder: Path, block: Block) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{folder / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(arguments, cwd=folder, env=environment, capture_output=True, text=True, timeout=SECONDS_PER_BLOCK)
    missing = re.search(r"ModuleNotFoundError: No module named '(\w+)", result.stderr)
    if result.returncode != 0 and missing and missing[1] in OPTIONAL_MODULES:
        pytest.skip(f"{block.where} needs {missing[1]}, which is not installed here")
    assert result.returncode == 0, (
        f"the block at {block.where} failed (exit {result.returncode}):\n"
        f"{block.code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )
    return result


def _params():
    params = []
    for block in (block for page in PAGES for block in page_blocks(page)):
        marks = [pytest.mark.gpu] if block.marker == "needs-gpu" else []
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


@pytest.mark.parametrize("block", _params())
def test_documented_block_runs_as_written(block: Block, reader_folders):
    reader_folder = reader_folders(block.page)
    if block.language == "python":
        script = reader_folder / f"block_line{block.line}.py"
        script.write_text(block.code)
        run([sys.executable, script.name], reader_folder, block)
        return
    commands = nnaccel_commands(block.code)
    if not commands:
        pytest.skip(f"{block.where} has no nnaccel command (pip, pytest or a script)")
    if block.marker and block.marker.startswith("parse-only"):
        for command in commands:
            check_flags(command)
        return
    run(["bash", "-e", "-c", "\n".join(commands)], reader_folder, block)


def test_every_python_block_and_nnaccel_command_is_collected():
    # the extraction itself: a README edit that hides blocks from it (another fence, a typo in a
    # marker) would otherwise pass silently
    blocks = readme_blocks()
    assert sum(block.language == "python" for block in blocks) >= 4
    every_page = [block for page in PAGES for block in page_blocks(page)]
    assert sum(block.language == "python" for block in every_page) >= 14
    assert all(block.marker in (None, "needs-gpu") or block.marker.startswith("parse-only: ") for block in blocks)
    commands = [command for block in blocks if block.language == "bash" for command in nnaccel_commands(block.code)]
    assert any(command.startswith("nnaccel train --dataset circle") for command in commands)  # after `pip install &&`
    assert any("nnaccel train --dataset spiral" in command and "--plot spiral.png" in command for command in commands)
    assert "NNACCEL_DTYPE=float64 nnaccel train --dataset xor     # float32 (default) | float64" in commands


def test_every_docs_page_has_blocks_and_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert len(PAGES) > 1, "docs/ has no pages"
    for page in PAGES[1:]:
        blocks = page_blocks(page)
        assert blocks, f"{page} has no code block"
        assert all(block.marker in (None, "needs-gpu") or block.marker.startswith("parse-only: ") for block in blocks)
        assert f"]({page})" in readme, f"README.md does not link to {page}"
    assert len(readme.splitlines()) <= README_MAX_LINES, "README.md is for users: move details to docs/"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_lead_somewhere():
    broken = []
    for page in [*PAGES, "BENCHMARKS.md"]:
        text = re.sub(r"```.*?```", "", (ROOT / page).read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            path, _, anchor = target.partition("#")
            linked = ((ROOT / page).parent / path).resolve() if path else ROOT / page
            if not linked.exists():
                broken.append(f"{page}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", linked.read_text(), flags=re.S), re.M)
                if anchor not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{page}: {target} (no such heading)")
    assert broken == []


def test_command_words_drops_environment_prefixes():
    assert command_words("env -u A -u B X=1 nnaccel bench --m 1e4  # note") == ["nnaccel", "bench", "--m", "1e4"]
    assert nnaccel_commands("pip install -e . && nnaccel info\npytest\n") == ["nnaccel info"]
