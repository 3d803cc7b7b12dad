"""The project's own promises: packaging (kernels/ installs as nnaccel.kernels), the README's
set-up commands, CI running the README's test command, and a fast ``import nnaccel``."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_for_installation():
    settings = _pyproject()["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "nnaccel").rglob("__init__.py")
    } | {"nnaccel." + ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "kernels").rglob("__init__.py")}
    assert found == listed, f"add to or remove from pyproject's packages: {sorted(found ^ listed)}"
    assert settings["package-dir"]["nnaccel.kernels"] == "kernels"
    assert not any(name == "kernels" or name.startswith("kernels.") for name in listed)


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_an_install_and_run_command_and_a_test_command():
    main_job, test_command = _readme_commands()[:2]
    assert main_job.startswith("pip install") and "nnaccel train" in main_job
    assert test_command.startswith("pip install") and test_command.endswith("pytest")


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
