"""examples/sklearn_real_data.py's claim: on scikit-learn's bundled datasets (standardised), with
the same MLP hyperparameters, NNClassifier and NNRegressor score (mean over seeds) within a small
margin of MLPClassifier/MLPRegressor, for each solver: adam, sgd with Nesterov momentum, lbfgs and
adam with early stopping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sklearn_real_data.py"
# the margin on the mean test score; early stopping on a validation set of a few dozen examples
# stops at noisy epochs, so its cases average over more seeds and get a wider margin
MARGIN = {"accuracy": 0.02, "R^2": 0.02}
EARLY_STOPPING_MARGIN = 0.03
# what each dataset's scikit-learn model reaches (well above chance, or a constant prediction)
FLOOR = {"iris": 0.8, "breast cancer": 0.9, "digits": 0.9, "diabetes": 0.25}
# (dataset, solver, seeds): the quick ones run by default, the others are marked slow
QUICK = [
    ("iris", "adam", 3),
    ("iris", "sgd", 3),
    ("iris", "early_stopping", 10),
    ("breast cancer", "lbfgs", 3),
    ("breast cancer", "early_stopping", 3),
    ("diabetes", "sgd", 3),
    ("diabetes", "lbfgs", 3),
    ("diabetes", "early_stopping", 10),
]
SLOW = [
    ("iris", "lbfgs", 3),
    ("breast cancer", "adam", 3),
    ("breast cancer", "sgd", 3),
    ("digits", "adam", 3),
    ("digits", "sgd", 3),
    ("digits", "lbfgs", 3),
    ("digits", "early_stopping", 3),
    ("diabetes", "adam", 3),
]
CASES = [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in QUICK] + [
    pytest.param(*case, id=f"{case[0]}-{case[1]}", marks=pytest.mark.slow) for case in SLOW
]


def load_example():
    spec = importlib.util.spec_from_file_location("sklearn_real_data", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_dataset_and_solver_is_compared():
    example = load_example()
    assert set(example.DATASETS) == {"iris", "breast cancer", "digits", "diabetes"}
    assert set(example.SOLVERS) == {"adam", "sgd", "lbfgs", "early_stopping"}
    assert {(dataset, solver) for dataset, solver, _ in QUICK + SLOW} == {
        (dataset, solver) for dataset in example.DATASETS for solver in example.SOLVERS
    }


@pytest.mark.parametrize("dataset, solver, seeds", CASES)
def test_within_a_small_margin_of_scikit_learn(dataset, solver, seeds):
    (row,) = load_example().compare(seeds=seeds, backend="numpy", datasets=[dataset], solvers=[solver])
    margin = EARLY_STOPPING_MARGIN if solver == "early_stopping" else MARGIN[row["metric"]]
    assert abs(row["nnaccel"] - row["scikit-learn"]) <= margin, row
    assert row["scikit-learn"] > FLOOR[dataset] and row["nnaccel"] > FLOOR[dataset], row
