"""``nnaccel make-data``: write a large Playground dataset to two ``.npy`` files, chunk by chunk."""

from __future__ import annotations

import math
import os

from ..data.playground import DATASETS, FEATURES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-data",
        help="write a large Playground dataset to .npy files, to train on out of core",
        description=(
            "Write a Playground dataset straight to PREFIX_X.npy (features, m) and PREFIX_Y.npy (1, m), "
            "one chunk at a time, so its size is limited by the disk, not the memory. "
            "Train on it with net.fit('PREFIX_X.npy', 'PREFIX_Y.npy', ...)."
        ),
    )
    parser.add_argument("--dataset", default="circle", choices=DATASETS, help="Playground dataset (default circle)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--samples", default="1e6", help="number of points, e.g. 1e8 (default 1e6)")
    size.add_argument("--gb", type=float, help="total size of the two files in GB (1e9 bytes), instead of --samples")
    parser.add_argument("--noise", type=float, default=0.0, help="noise in percent, 0-50 as in the Playground (default 0)")
    parser.add_argument("--features", default="x1,x2", help=f"comma list of {','.join(FEATURES)} (default x1,x2)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="value type (default float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--chunk-size", default=str(1 << 20), help="points generated and written at a time (default 1048576)")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX_X.npy and PREFIX_Y.npy")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(run=run)


def parse_count(text: str, flag: str) -> int:
    """'1e8' or '100000000' -> 100000000; a ValueError naming the flag otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{flag} must be a whole number such as 1e8 or 100000000; got {text!r}") from None
    if not value.is_integer() or value < 1:
        raise ValueError(f"{flag} must be a positive whole number; got {text!r}")
    return int(value)


def run(args) -> int:
    import numpy as np

    from ..data.large import check_arguments, write_playground_npy

    if not 0.0 <= args.noise <= 50.0:
        raise ValueError(f"--noise is a percent in [0, 50]; got {args.noise}")
    features = [name.strip() for name in args.features.split(",") if name.strip()]
    chunk_size = parse_count(args.chunk_size, "--chunk-size")
    if args.gb is not None:
        if not (args.gb > 0 and math.isfinite(args.gb)):
            raise ValueError(f"--gb must be a positive number of gigabytes such as 10; got {args.gb}")
        samples = int(args.gb * 1e9) // ((len(features) + 1) * np.dtype(args.dtype).itemsize)
    else:
        samples = parse_count(args.samples, "--samples")
    check_arguments(args.dataset, samples, args.noise / 100.0, features, args.dtype, chunk_size)
    X_path, Y_path = f"{args.out}_X.npy", f"{args.out}_Y.npy"
    info = write_playground_npy(
        X_path,
        Y_path,
        args.dataset,
        samples,
        noise=args.noise / 100.0,
        seed=args.seed,
        features=features,
        dtype=args.dtype,
        chunk_size=chunk_size,
        progress=not args.quiet,
    )
    print(f"{args.dataset}: {samples:,} points, X {info['shape']} {args.dtype}, {info['bytes'] / 1e9:.2f} GB")
    print(f"wrote {os.path.abspath(X_path)} and {os.path.abspath(Y_path)}")
    print(f"train with: net.fit({X_path!r}, {Y_path!r}, epochs=..., lr=...)")
    return 0
