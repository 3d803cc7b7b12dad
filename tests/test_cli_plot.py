"""``nnaccel train --plot``: the panel reports the same losses as the printed summary."""

from __future__ import annotations

import json
import re

import pytest
from support import cli


def test_plot_and_summary_report_the_trained_networks_losses(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")  # text as text, to read it back
    plot, report = tmp_path / "out.svg", tmp_path / "out.json"
    code, out, err = cli(
        "train",
        "--backend",
        "numpy",
        "--dataset",
        "circle",
        "--epochs",
        "20",
        "--lr",
        "0.1",
        "--plot",
        plot,
        "--json",
        report,
        "--quiet",
    )
    assert code == 0, err
    metrics = json.loads(report.read_text())["metrics"]
    line = f"training loss {metrics['train_loss']:.4f}   test loss {metrics['test_loss']:.4f}"
    assert line in out.splitlines()
    svg = plot.read_text()
    titles = [re.sub(r"\s+", " ", text) for text in re.findall(r">([^<>]*training loss[^<>]*)<", svg)]
    assert re.sub(r"\s+", " ", line) in titles
    # the last epoch's batch mean is another number (the weights moved during the epoch): the one
    # the plot once showed under the same name
    history = json.loads(report.read_text())["history"]
    assert f"{history['train_loss'][-1]:.4f}" != f"{metrics['train_loss']:.4f}"
