"""examples/sklearn_real_data.py's claim: on scikit-learn's bundled datasets, NNClassifier and
NNRegressor score within 2 points of MLPClassifier/MLPRegressor trained with the same settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sklearn_real_data.py"


def load_example():
    spec = importlib.util.spec_from_file_location("sklearn_real_data", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_within_two_points_of_scikit_learn():
    rows = load_example().compare(seeds=3, backend="numpy")
    assert [row["dataset"] for row in rows] == ["breast cancer", "digits", "diabetes"]
    for row in rows:
        assert abs(row["nnaccel"] - row["scikit-learn"]) <= 0.02, row
        # and both really learnt something: well above chance (or a constant prediction)
        assert row["scikit-learn"] > (0.9 if row["metric"] == "accuracy" else 0.2), row
