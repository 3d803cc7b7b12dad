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
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--no-install", str(tmp_path)],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300,
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
