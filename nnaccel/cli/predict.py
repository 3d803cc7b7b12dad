"""``nnaccel predict``: a saved model's predictions for the rows of a ``.csv`` or ``.npy`` file.

The model file carries the preprocessing ``nnaccel train`` applied (input columns, standardisation,
Playground features, class labels), so the data file holds raw rows as the training data did. A
model saved from Python with ``Network.save`` takes its inputs as they are. The work is
``nnaccel.load_model``'s, so this command and Python cannot disagree.
"""

from __future__ import annotations

import csv
import io
import os
import sys

import numpy as np

from ..data.pipeline import Pipeline


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict with a saved model",
        description=(
            "Print (or write) a saved model's predictions for each row of a .csv (header row) or .npy "
            "file. CSV columns are matched by name when the model knows its input names, else by position."
        ),
    )
    parser.add_argument(
        "--model", required=True, metavar="FILE.npz", help="a model from nnaccel train --save (or a checkpoint, or Network.save)"
    )
    parser.add_argument("--data", required=True, metavar="FILE", help=".csv with a header row, or .npy, one example per row")
    parser.add_argument("--out", metavar="FILE", help="write here (.csv, or .npy for the bare predictions) instead of printing")
    parser.add_argument("--backend", help="numpy, numba, cupy or auto (default: NNACCEL_BACKEND, else auto)")
    parser.set_defaults(run=run)


def _text(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else format(float(value), ".8g")
    return str(value)


def predictions_table(pipeline: Pipeline, H: np.ndarray) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(header, rows of text, bare predictions) for the output activations H (outputs, m)."""
    predicted = pipeline.predictions(H)
    if pipeline.task == "classification":
        probabilities = pipeline.probabilities(H)
        header = ["prediction"] + [f"p_{value}" for value in pipeline.class_list]
        rows = [[_text(label)] + [format(p, ".6g") for p in row] for label, row in zip(predicted, probabilities)]
        return header, rows, predicted
    values = np.asarray(predicted).reshape(H.shape[1], -1)
    header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{index + 1}" for index in range(values.shape[1])]
    return header, [[_text(value) for value in row] for row in values], predicted


def run(args) -> int:
    from ..data.files import check_readable, read_table
    from ..io import atomic_write, check_writable
    from ..nn.model import load_model

    check_readable(args.model, "model file")
    check_readable(args.data)
    out = os.path.abspath(args.out) if args.out else None
    if out is not None:
        check_writable(args.out, "--out")
        if out in (os.path.abspath(args.data), os.path.abspath(args.model)):
            raise ValueError(f"--out {args.out!r} would overwrite an input file")
    model = load_model(args.model, backend=args.backend)  # what nnaccel.load_model gives Python
    H = model.activations(read_table(args.data))
    header, rows, predicted = predictions_table(model.pipeline, H)
    if out is not None and out.lower().endswith(".npy"):
        bare = np.asarray(predicted)
        bare = bare.astype(str) if bare.dtype == object else bare
        atomic_write(out, lambda handle: np.save(handle, bare, allow_pickle=False))
        return 0
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # quotes a label holding a comma or a quote
    writer.writerow(header)
    writer.writerows(rows)
    if out is None:
        sys.stdout.write(text.getvalue())
    else:
        payload = text.getvalue().encode()
        atomic_write(out, lambda handle: handle.write(payload))
    return 0
