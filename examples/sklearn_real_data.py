"""nnaccel's scikit-learn estimators against scikit-learn's own MLP on the datasets that ship with
scikit-learn: iris, digits and breast cancer (test accuracy), diabetes (test R^2).

Both sides get the same class of model with the same hyperparameters, spelt the same way: the
estimator is built from one dict of MLPClassifier/MLPRegressor parameters, once with scikit-learn's
class and once with nnaccel's. Four solvers: Adam (scikit-learn's default), SGD with Nesterov
momentum, L-BFGS, and Adam with early stopping. Inputs are standardised, and so is the diabetes
target, for both. Each score is the mean over several seeds (``random_state``: the initial weights,
the shuffling and the early-stopping split), on a fixed held-out quarter of the data.

    python examples/sklearn_real_data.py [--seeds 5] [--backend numpy] [--datasets iris,digits]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nnaccel.sklearn import NNClassifier, NNRegressor

# name: (loader, task, the network and batches both libraries train)
DATASETS = {
    "iris": (load_iris, "classification", dict(hidden_layer_sizes=(16,), activation="relu", batch_size=16)),
    "breast cancer": (load_breast_cancer, "classification", dict(hidden_layer_sizes=(32,), activation="relu", batch_size=32)),
    "digits": (load_digits, "classification", dict(hidden_layer_sizes=(64,), activation="relu", batch_size=64)),
    "diabetes": (load_diabetes, "regression", dict(hidden_layer_sizes=(32,), activation="tanh", batch_size=32, alpha=10.0)),
}
# name: the solver's MLP parameters, shared by both libraries (the rest are scikit-learn's defaults)
SOLVERS = {
    "adam": dict(solver="adam", learning_rate_init=1e-3, max_iter=200),
    "sgd": dict(solver="sgd", learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True, max_iter=200),
    "lbfgs": dict(solver="lbfgs", max_iter=200),
    "early_stopping": dict(
        solver="adam", learning_rate_init=0.01, max_iter=200, early_stopping=True, validation_fraction=0.2, n_iter_no_change=20
    ),
}
LIBRARIES = {"nnaccel": (NNClassifier, NNRegressor), "scikit-learn": (MLPClassifier, MLPRegressor)}


def model(library: str, task: str, parameters: dict, seed: int, backend: str | None):
    """The library's estimator with ``parameters``, inside standardisation of X (and of y for
    regression)."""
    classifier, regressor = LIBRARIES[library]
    extra = {"backend": backend} if library == "nnaccel" else {}
    estimator = (classifier if task == "classification" else regressor)(**parameters, random_state=seed, **extra)
    steps = make_pipeline(StandardScaler(), estimator)
    return steps if task == "classification" else TransformedTargetRegressor(steps, transformer=StandardScaler())


def split(dataset: str):
    loader, task, _ = DATASETS[dataset]
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y if task == "classification" else None)


def compare(seeds: int = 5, backend: str | None = "numpy", datasets=None, solvers=None) -> list[dict]:
    """For each dataset and solver: both libraries' mean test score (accuracy or R^2) over
    ``seeds`` seeds, its spread, and the mean seconds per fit."""
    rows = []
    for dataset in datasets or DATASETS:
        _, task, network = DATASETS[dataset]
        X_train, X_test, y_train, y_test = split(dataset)
        for solver in solvers or SOLVERS:
            parameters = {**network, **SOLVERS[solver]}
            row = {"dataset": dataset, "solver": solver, "metric": "accuracy" if task == "classification" else "R^2"}
            for library in LIBRARIES:
                scores, seconds = [], 0.0
                for seed in range(seeds):
                    estimator = model(library, task, parameters, seed, backend)
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the budget here
                        estimator.fit(X_train, y_train)
                    seconds += time.perf_counter() - started
                    scores.append(estimator.score(X_test, y_test))
                row[library], row[f"{library}_std"] = float(np.mean(scores)), float(np.std(scores))
                row[f"{library}_s"] = seconds / seeds
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds to average over (default 5)")
    parser.add_argument("--backend", default="numpy", help="nnaccel backend (default numpy)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma list (default all)")
    parser.add_argument("--solvers", default=",".join(SOLVERS), help="comma list (default all)")
    args = parser.parse_args()
    rows = compare(args.seeds, args.backend, args.datasets.split(","), args.solvers.split(","))
    print(f"{'dataset':14s} {'solver':15s} {'metric':8s} {'nnaccel':>15s} {'scikit-learn':>15s} {'difference':>10s}")
    for row in rows:
        print(
            f"{row['dataset']:14s} {row['solver']:15s} {row['metric']:8s} {row['nnaccel']:8.4f} ± {row['nnaccel_std']:.3f}"
            f" {row['scikit-learn']:8.4f} ± {row['scikit-learn_std']:.3f} {row['nnaccel'] - row['scikit-learn']:+10.4f}"
        )
    for dataset, (_, _, network) in DATASETS.items():
        print(f"  {dataset}: {network}")
    for solver, parameters in SOLVERS.items():
        print(f"  {solver}: {parameters}")


if __name__ == "__main__":
    main()
