"""``nnaccel.bench``'s modules import one another in one direction: no cycles, lazy imports
inside functions included (a cycle there still ties the two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "nnaccel" / "bench"


def sibling_imports(path: Path) -> set[str]:
    """The bench modules that ``path`` imports (``from .x import``, ``from . import x``), anywhere."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module} if node.module else {alias.name for alias in node.names}
    return {name.split(".")[0] for name in names} & {module.stem for module in BENCH.glob("*.py")}


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, or None."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        module, path = stack.pop()
        for imported in graph[module]:
            if imported == start:
                return path + [start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, path + [imported]))
    return None


def test_bench_modules_import_each_other_without_cycles():
    graph = {path.stem: sibling_imports(path) for path in BENCH.glob("*.py")}
    assert "runner_types" in graph["peers"] and "peers" in graph["runners"]  # the graph is read
    cycles = [cycle for module in graph if (cycle := cycle_from(module, graph))]
    assert not cycles, " ; ".join(" -> ".join(cycle) for cycle in cycles)
