"""benchmarks/gpu_check.sh, the one-command GPU check, exercised without a GPU.

The script must parse, and its dry run (no install, no GPU) must run the CPU runners of
benchmarks/gpu_check.py and write the JSON and the table, with every GPU target reported as not
measured rather than passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "benchmarks" / "gpu_check.sh"

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
def test_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_bash
def test_dry_run_writes_the_report(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "NNACCEL_BACKEND"}
    environment["GPU_CHECK_CASE_SECONDS"] = "0.1"  # the shortest timing: this checks the plumbing
    environment["PYTHON"] = sys.executable  # the interpreter running the tests, activated or not
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--no-install", str(tmp_path)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] is True
    measured = [record for record in report["results"] if "examples_per_s" in record]
    assert {record["runner"] for record in measured} >= {"numpy"}
    for record in measured:
        assert record["step_s"] > 0 and record["examples_per_s"] == pytest.approx(record["m"] / record["step_s"])
    assert {record["net"] for record in measured} == {"2-6-6-1", "784-256-10"}
    assert len(report["targets"]) == 3
    assert all(target["met"] is None for target in report["targets"])  # nothing GPU was measured
    table = (tmp_path / "gpu_check.txt").read_text()
    assert "NOT MEASURED" in table and "numpy" in table
    assert (tmp_path / "info.txt").read_text().startswith("nnaccel")


@needs_bash
def test_without_a_gpu_it_stops_at_once_using_python3_when_there_is_no_python(tmp_path):
    from nnaccel.backends import unavailable_reason

    if unavailable_reason("cupy") is None:
        pytest.skip("a GPU is usable here: the check would run")
    bin_dir = tmp_path / "bin"  # a PATH with python3 (this interpreter) and no `python`
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in ("bash", "dirname", "mkdir", "tee", "timeout", "env"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHON", "NNACCEL_BACKEND")}
    environment["PATH"] = str(bin_dir)
    environment["PYTHONPATH"] = str(REPOSITORY)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT), "--no-install", str(tmp_path / "out")],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no usable GPU"), result.stdout + result.stderr
    assert "== benchmark" not in result.stdout
