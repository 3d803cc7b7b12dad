"""``nnaccel train``: the TensorFlow Playground's controls from a terminal."""

from __future__ import annotations

import json
import time

import numpy as np

from ..data.playground import CLASSIFICATION, DATASETS, FEATURES, expand_features, make_dataset, train_test_split
from ..nn.activations import HIDDEN_ACTIVATIONS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network on a Playground dataset",
        description="Train a network with the TensorFlow Playground's controls.",
    )
    parser.add_argument("--dataset", default="circle", choices=DATASETS, help="Playground dataset (default circle)")
    parser.add_argument("--samples", type=int, default=500, help="number of points (default 500)")
    parser.add_argument("--noise", type=float, default=0.0, help="noise in percent, 0-50 as in the Playground (default 0)")
    parser.add_argument("--ratio", type=float, default=50.0, help="training share in percent (default 50)")
    parser.add_argument("--features", default="x1,x2", help=f"comma list of {','.join(FEATURES)} (default x1,x2)")
    parser.add_argument("--hidden", default="4,2", help="hidden layer sizes, e.g. 6,6; empty for none (default 4,2)")
    parser.add_argument("--activation", default="tanh", choices=HIDDEN_ACTIVATIONS, help="hidden activation (default tanh)")
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--epochs", type=int, default=500, help="passes over the training data (default 500)")
    parser.add_argument("--batch-size", type=int, default=10, help="examples per step; 0 for full batch (default 10)")
    parser.add_argument("--regularization", default="none", choices=("none", "l1", "l2"))
    parser.add_argument("--reg-rate", type=float, default=0.0, help="regularization rate (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling (default 0)")
    parser.add_argument("--backend", default=None, help="numpy, numba, cupy or auto (default: NNACCEL_BACKEND, else auto)")
    parser.add_argument("--save", metavar="FILE.npz", help="write the trained model here")
    parser.add_argument("--json", metavar="FILE", help="write final metrics and per-epoch history here")
    parser.set_defaults(run=run)


def parse_sizes(text: str) -> list[int]:
    """'6,6' -> [6, 6]; '' or '0' -> [] (no hidden layer)."""
    text = text.strip()
    if text in ("", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated positive integers like 6,6; got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise ValueError(f"--hidden sizes must be positive; got {text!r}")
    return sizes


def check_arguments(args) -> None:
    if not 0.0 <= args.noise <= 50.0:
        raise ValueError(f"--noise is a percent in [0, 50]; got {args.noise}")
    if not 0.0 < args.ratio <= 100.0:
        raise ValueError(f"--ratio is the training percent in (0, 100]; got {args.ratio}")
    if args.samples < 2:
        raise ValueError(f"--samples must be at least 2; got {args.samples}")
    if args.batch_size < 0:
        raise ValueError(f"--batch-size must be >= 0 (0 means full batch); got {args.batch_size}")
    if args.reg_rate < 0:
        raise ValueError(f"--reg-rate must be >= 0; got {args.reg_rate}")


def run(args) -> int:
    import nnaccel as nna

    check_arguments(args)
    hidden = parse_sizes(args.hidden)
    features = [name.strip() for name in args.features.split(",") if name.strip()]
    points, Y = make_dataset(args.dataset, args.samples, args.noise / 100.0, args.seed)
    X = expand_features(points, features)
    X_train, Y_train, X_test, Y_test = train_test_split(X, Y, args.ratio / 100.0, args.seed)
    classification = args.dataset in CLASSIFICATION
    network = nna.Network(
        [X.shape[0], *hidden, 1],
        activation=args.activation,
        output="sigmoid" if classification else "identity",
        seed=args.seed,
        backend=args.backend,
    )
    l1 = args.reg_rate if args.regularization == "l1" else 0.0
    l2 = args.reg_rate if args.regularization == "l2" else 0.0
    started = time.perf_counter()
    history = network.fit(
        X_train,
        Y_train,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size or None,
        l1=l1,
        l2=l2,
        validation=(X_test, Y_test) if X_test.shape[1] else None,
        seed=args.seed,
    )
    seconds = time.perf_counter() - started
    metrics = {
        "dataset": args.dataset,
        "backend": network.backend.name,
        "layers": network.layers,
        "train_loss": network.loss(X_train, Y_train),
        "test_loss": network.loss(X_test, Y_test) if X_test.shape[1] else None,
        "seconds": seconds,
    }
    if classification:
        metrics["train_accuracy"] = float(np.mean(network.predict(X_train) == Y_train))
        if X_test.shape[1]:
            metrics["test_accuracy"] = float(np.mean(network.predict(X_test) == Y_test))
    print(f"{args.dataset}: network {'-'.join(map(str, network.layers))} on {network.backend.name}, {args.epochs} epochs in {seconds:.2f}s")
    print(f"training loss {metrics['train_loss']:.4f}" + (f"  test loss {metrics['test_loss']:.4f}" if metrics["test_loss"] is not None else ""))
    if classification:
        print(f"training accuracy {metrics['train_accuracy']:.3f}" + (f"  test accuracy {metrics['test_accuracy']:.3f}" if "test_accuracy" in metrics else ""))
    if args.save:
        network.save(args.save)
    if args.json:
        from ..io import atomic_write

        payload = json.dumps({"metrics": metrics, "history": history}, indent=2).encode()
        atomic_write(args.json, lambda handle: handle.write(payload))
    return 0
