"""nnaccel's scikit-learn estimators against scikit-learn's own MLP on the datasets that ship with
scikit-learn: breast cancer and digits (accuracy), diabetes (R^2).

Both sides get the same network and the same plain mini-batch gradient descent: hidden layer sizes,
activation, learning rate, epochs, batch size, and L2 penalty (scikit-learn's ``alpha`` is
``l2 = alpha / batch_size`` in nnaccel). The MLP runs with ``solver="sgd", momentum=0,
nesterovs_momentum=False, learning_rate="constant"`` and never stops early. Inputs are
standardised, and so is the diabetes target, for both. Each score is the mean over several seeds
(each seed draws the initial weights and the shuffling), on a fixed held-out quarter of the data.

    python examples/sklearn_real_data.py [--seeds 5] [--backend numpy]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nnaccel.sklearn import NNClassifier, NNRegressor

# name: (loader, task, hyperparameters shared by both libraries)
EXPERIMENTS = {
    "breast cancer": (load_breast_cancer, "classification",
                      dict(hidden_layer_sizes=(32,), activation="relu", lr=0.01, epochs=100, batch_size=32, alpha=1e-4)),
    "digits": (load_digits, "classification",
               dict(hidden_layer_sizes=(64,), activation="relu", lr=0.01, epochs=100, batch_size=32, alpha=1e-4)),
    "diabetes": (load_diabetes, "regression",
                 dict(hidden_layer_sizes=(32,), activation="tanh", lr=0.001, epochs=100, batch_size=16, alpha=1e-4)),
}


def scikit_learn_model(task: str, settings: dict, seed: int):
    """MLPClassifier/MLPRegressor as plain SGD with the given settings."""
    mlp = (MLPClassifier if task == "classification" else MLPRegressor)(
        hidden_layer_sizes=settings["hidden_layer_sizes"], activation=settings["activation"],
        solver="sgd", momentum=0.0, nesterovs_momentum=False, learning_rate="constant",
        learning_rate_init=settings["lr"], max_iter=settings["epochs"], batch_size=settings["batch_size"],
        alpha=settings["alpha"], shuffle=True, tol=0.0, n_iter_no_change=settings["epochs"] + 1,
        random_state=seed,
    )
    return mlp


def nnaccel_model(task: str, settings: dict, seed: int, backend: str | None):
    """NNClassifier/NNRegressor with the same settings."""
    return (NNClassifier if task == "classification" else NNRegressor)(
        hidden_layer_sizes=settings["hidden_layer_sizes"], activation=settings["activation"],
        lr=settings["lr"], epochs=settings["epochs"], batch_size=settings["batch_size"],
        l2=settings["alpha"] / settings["batch_size"], random_state=seed, backend=backend,
    )


def pipeline(task: str, model):
    """Standardised inputs (and target, for regression) around ``model``."""
    steps = make_pipeline(StandardScaler(), model)
    return steps if task == "classification" else TransformedTargetRegressor(steps, transformer=StandardScaler())


def compare(seeds: int = 5, backend: str | None = "numpy", names=None) -> list[dict]:
    """For each dataset: nnaccel's and scikit-learn's mean test score (accuracy or R^2) and time."""
    rows = []
    for name in names or EXPERIMENTS:
        loader, task, settings = EXPERIMENTS[name]
        X, y = loader(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y if task == "classification" else None
        )
        scores = {"nnaccel": [], "scikit-learn": []}
        seconds = {"nnaccel": 0.0, "scikit-learn": 0.0}
        for seed in range(seeds):
            for library, make in (("nnaccel", lambda: nnaccel_model(task, settings, seed, backend)),
                                  ("scikit-learn", lambda: scikit_learn_model(task, settings, seed))):
                model = pipeline(task, make())
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch count here
                    model.fit(X_train, y_train)
                seconds[library] += time.perf_counter() - started
                scores[library].append(model.score(X_test, y_test))
        rows.append({
            "dataset": name, "metric": "accuracy" if task == "classification" else "R^2",
            "nnaccel": float(np.mean(scores["nnaccel"])), "nnaccel_std": float(np.std(scores["nnaccel"])),
            "scikit-learn": float(np.mean(scores["scikit-learn"])), "scikit-learn_std": float(np.std(scores["scikit-learn"])),
            "nnaccel_s": seconds["nnaccel"] / seeds, "scikit-learn_s": seconds["scikit-learn"] / seeds,
            "settings": settings,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds to average over (default 5)")
    parser.add_argument("--backend", default="numpy", help="nnaccel backend (default numpy)")
    args = parser.parse_args()
    rows = compare(args.seeds, args.backend)
    print(f"{'dataset':14s} {'metric':8s} {'nnaccel':>16s} {'scikit-learn':>16s} {'difference':>10s}   seconds per fit (nnaccel / sklearn)")
    for row in rows:
        print(f"{row['dataset']:14s} {row['metric']:8s} {row['nnaccel']:9.4f} ± {row['nnaccel_std']:.3f}"
              f" {row['scikit-learn']:9.4f} ± {row['scikit-learn_std']:.3f} {row['nnaccel'] - row['scikit-learn']:+10.4f}"
              f"   {row['nnaccel_s']:.2f} / {row['scikit-learn_s']:.2f}")
    for row in rows:
        print(f"  {row['dataset']}: {row['settings']}")


if __name__ == "__main__":
    main()
