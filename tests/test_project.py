"""The project's own promises: packaging (kernels/ installs as nnaccel.kernels), the README's
set-up commands, CI running the README's test command, and a fast ``import nnaccel``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_for_installation():
    settings = _pyproject()["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "nnaccel").rglob("__init__.py")} | {
        "nnaccel." + ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "kernels").rglob("__init__.py")
    }
    assert found == listed, f"add to or remove from pyproject's packages: {sorted(found ^ listed)}"
    assert settings["package-dir"]["nnaccel.kernels"] == "kernels"
    assert not any(name == "kernels" or name.startswith("kernels.") for name in listed)


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_an_install_and_run_command_and_a_test_command():
    main_job, test_command = _readme_commands()[:2]
    assert main_job.startswith("pip install") and "nnaccel train" in main_job
    assert test_command.startswith("pip install") and " && pytest" in test_command


def test_ci_runs_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_import_nnaccel_loads_no_optional_or_jit_library():
    code = (
        "import sys, nnaccel; "
        "heavy = [name for name in ('numba', 'cupy', 'dask', 'distributed', 'matplotlib', 'sklearn', 'torch') "
        "if name in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# ----- layering ----------------------------------------------------------------------------------------
# Each part of the package, from the bottom: a module imports only from its own layer or below.
LAYERS = {
    "core": 0,
    "optim": 0,
    "errors": 0,
    "io": 0,
    "threads": 0,
    "kernels": 1,
    "backends": 2,
    "data": 2,
    "nn": 3,
    "bench": 4,
    "cli": 4,
    "sklearn": 4,
    "distributed": 4,
    "plot": 4,
}


def _part(module: str) -> str:
    """'nnaccel.backends.plans' -> 'backends'."""
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path, module: str):
    """The nnaccel modules ``path`` imports (at the top or inside functions), absolute names."""
    import ast

    package = module.rsplit(".", 1)[0] if not path.name == "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("nnaccel"):
                names = [f"{target}.{alias.name}" for alias in node.names] if target.count(".") == 0 else [target]
                yield from names
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("nnaccel"))


def test_dependencies_point_one_way():
    """cli, sklearn, distributed, bench -> nn -> backends, data -> kernels -> core: nothing reaches up."""
    modules = {
        f"nnaccel.{p.relative_to(ROOT / 'nnaccel').with_suffix('').as_posix().replace('/', '.')}": p
        for p in (ROOT / "nnaccel").rglob("*.py")
    }
    modules.update({f"nnaccel.kernels.{p.stem}": p for p in (ROOT / "kernels").glob("*.py")})
    upward = []
    for module, path in sorted(modules.items()):
        module = module.removesuffix(".__init__")
        part = _part(module)
        if part not in LAYERS:
            continue
        for target in _imports(path, module):
            target_part = _part(target)
            if target_part in LAYERS and LAYERS[target_part] > LAYERS[part]:
                upward.append(f"{module} imports {target}")
    assert upward == []
