"""``nnaccel export``: a saved model, with its preprocessing, as an ONNX file.

The graph takes raw rows as ``nnaccel predict`` does (standardisation, Playground features and the
class order are in it), so onnxruntime on the same rows gives the same predictions.
"""

from __future__ import annotations

import os


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a saved model as ONNX",
        description=(
            "Write a saved model, with its preprocessing, as an ONNX file (needs pip install 'nnaccel[onnx]'). "
            "The graph's float32 input 'rows' (batch, inputs) takes raw rows as nnaccel predict does; a classifier "
            "gives 'probabilities' (batch, classes) and 'label' (batch,), a regression model 'prediction' "
            "(batch, outputs). The class names and input columns are in the model's metadata."
        ),
    )
    parser.add_argument(
        "--model", required=True, metavar="FILE.npz", help="a model from nnaccel train --save (or a checkpoint, or Network.save)"
    )
    parser.add_argument("--out", required=True, metavar="FILE.onnx", help="the ONNX file to write (atomically)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..data.files import check_readable
    from ..nn.model import load_model

    check_readable(args.model, "model file")
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise ValueError(f"--out {args.out!r} is a directory; give a file name such as model.onnx")
    if not os.path.isdir(os.path.dirname(out)):
        raise FileNotFoundError(f"--out {args.out!r}: the folder {os.path.dirname(out)!r} does not exist")
    if out == os.path.abspath(args.model):
        raise ValueError(f"--out {args.out!r} would overwrite the model file; give another name, such as model.onnx")
    try:
        import onnx  # noqa: F401  (checked before the model is read)
    except ImportError:
        raise ValueError("nnaccel export needs the onnx package: pip install 'nnaccel[onnx]' (or pip install onnx)") from None
    load_model(args.model, backend="numpy").to_onnx(out)
    return 0
