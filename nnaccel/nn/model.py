"""A model: a network with the preprocessing of its file, taking raw rows as ``nnaccel predict`` does.

``load_model(path)`` reads any nnaccel model file: one from ``nnaccel train --save`` (or a
checkpoint), which carries the preprocessing the training applied (input columns, standardisation,
Playground features, class names, a standardised regression target), or a plain ``Network.save``
file, whose inputs are taken as they are. ``nnaccel predict`` uses the same object, so the command
line and Python cannot disagree.

Rows follow scikit-learn and data files: (m, columns), one example per row; a pandas (or any)
DataFrame has its columns matched by name where the file knows the names.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..data.pipeline import TASKS, Pipeline, identity_pipeline
from ..data.playground import FEATURES
from . import checkpoint
from .network import Network


class Model:
    """A network and the preprocessing that feeds it: raw rows (m, columns) in, predictions out.

    ``network``: the ``Network``; ``pipeline``: its ``nnaccel.data.pipeline.Pipeline``;
    ``training``: a checkpoint's training record (None for a model file); ``trained``: what trained
    it (nnaccel version, backend, settings; None if the file does not say); ``path``: the file read.
    """

    def __init__(
        self,
        network: Network,
        pipeline: Pipeline | None = None,
        *,
        training: dict | None = None,
        trained: dict | None = None,
        path: str | None = None,
    ):
        self.network = network
        self.trained = trained
        self.pipeline = pipeline if pipeline is not None else identity_pipeline(network.layers, network.output)
        self.training = training
        self.path = path
        check_pipeline(self.pipeline, network, repr(path) if path else "the model")

    # ----- description ---------------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        """The raw input columns, in order."""
        return list(self.pipeline.inputs)

    @property
    def classes(self) -> list | None:
        """The class labels in the order of ``predict_proba``'s columns (None for regression)."""
        return list(self.pipeline.class_list) if self.pipeline.task == "classification" else None

    @property
    def task(self) -> str:
        return self.pipeline.task

    def __repr__(self) -> str:
        return f"Model(inputs={self.inputs}, task={self.task!r}, network={self.network!r})"

    def summary(self) -> str:
        """Layers, activations, parameter count, preprocessing and training, as lines of text."""
        from .summary import model_summary

        return model_summary(self)

    # ----- prediction ----------------------------------------------------------------------------
    def raw_inputs(self, rows) -> np.ndarray:
        """The raw input columns of ``rows`` as (len(inputs), m) float64.

        ``rows``: a 2-D array (m, len(inputs)), taken by position; or a DataFrame (anything with
        ``.columns``), its columns matched by name when it has every input name, else by position;
        or a data file's ``Table``."""
        return raw_inputs(rows, self.pipeline)

    def activations(self, rows) -> np.ndarray:
        """The output layer's activations H (outputs, m) for raw ``rows`` (m, columns)."""
        return self.network.forward(self.pipeline.inputs_of(self.raw_inputs(rows)))

    def predict(self, rows) -> np.ndarray:
        """Predictions for raw ``rows`` (m, columns): the class labels (m,) for a classifier (its
        file's class names); the target values (m,), or (m, outputs), in the label's units for
        regression."""
        return self.pipeline.predictions(self.activations(rows))

    def predict_proba(self, rows) -> np.ndarray:
        """(m, classes): each class's probability for raw ``rows`` (m, columns), columns in the order
        of ``classes`` (a sigmoid output gives [1 - p, p])."""
        if self.pipeline.task != "classification":
            raise ValueError("this model is a regression model: it has no class probabilities; use predict()")
        return self.pipeline.probabilities(self.activations(rows))

    # ----- export --------------------------------------------------------------------------------
    def to_onnx(self, path: str | os.PathLike) -> None:
        """Write the model, preprocessing included, as ONNX (needs ``pip install nnaccel[onnx]``).

        One float32 input ``rows`` (batch, len(inputs)) of raw rows; a classifier has outputs
        ``probabilities`` (batch, classes) and ``label`` (batch,), the class names; a regression
        model ``prediction`` (batch, outputs) in the label's units. Written atomically."""
        from .onnx_export import model_graph, write_onnx

        write_onnx(path, model_graph(self.network.architecture, self.network.get_params(), self.pipeline))


def load_model(path: str | os.PathLike, backend=None) -> Model:
    """Read any nnaccel model file (``nnaccel train --save``, a checkpoint, ``Network.save``) as a
    ``Model`` on ``backend`` (None: the current backend); a ValueError names a damaged file."""
    path = os.fspath(path)
    saved = checkpoint.load(path, backend=backend)
    record, pipeline = saved.pipeline, None
    if record is not None:
        if not isinstance(record, dict):
            raise ValueError(f"{path!r} is damaged: its preprocessing record is not a mapping")
        try:
            pipeline = Pipeline.from_dict(record)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path!r} is damaged: {error}") from None
    return Model(saved.network, pipeline, training=saved.training, trained=saved.trained, path=path)


# ----- checks ------------------------------------------------------------------------------------
def _numbers(values, count: int | None = None, positive: bool = False) -> bool:
    """Whether ``values`` is a list of ``count`` finite numbers (positive ones when asked)."""
    if not isinstance(values, list) or (count is not None and len(values) != count):
        return False
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if positive and value <= 0:
            return False
    return True


def pipeline_problem(pipeline: Pipeline, network: Network) -> str | None:
    """What is inconsistent between a file's preprocessing record and its network, or None."""
    if pipeline.task not in TASKS:
        return f"unknown task {pipeline.task!r}"
    inputs = pipeline.inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(name, str) for name in inputs):
        return "its input names are not a list of column names"
    if pipeline.features is not None:
        if (
            not isinstance(pipeline.features, list)
            or not pipeline.features
            or any(name not in FEATURES for name in pipeline.features)
        ):
            return f"its Playground features {pipeline.features!r} are not among {', '.join(FEATURES)}"
        if len(inputs) != 2:
            return f"it builds Playground features from {len(inputs)} inputs (they need exactly 2)"
    if (pipeline.mean is None) != (pipeline.scale is None):
        return "it has a standardisation mean without a scale (or the reverse)"
    if pipeline.mean is not None and not (
        _numbers(pipeline.mean, len(inputs)) and _numbers(pipeline.scale, len(inputs), positive=True)
    ):
        return f"its standardisation does not give one finite mean and positive scale per input ({len(inputs)})"
    if pipeline.task == "classification":
        classes = pipeline.classes
        if not isinstance(classes, list) or len(classes) < 2 or len({str(value) for value in classes}) != len(classes):
            return "a classifier's class list is missing, has fewer than 2 classes, or repeats one"
    else:
        if isinstance(pipeline.outputs, bool) or not isinstance(pipeline.outputs, int) or pipeline.outputs < 1:
            return f"its number of regression targets {pipeline.outputs!r} is not a positive integer"
        if (pipeline.target_mean is None) != (pipeline.target_scale is None):
            return "it has a target mean without a scale (or the reverse)"
        if pipeline.target_mean is not None and not (
            _numbers(pipeline.target_mean, pipeline.outputs) and _numbers(pipeline.target_scale, pipeline.outputs, positive=True)
        ):
            return "its target standardisation does not give one finite mean and positive scale per target"
    if pipeline.n_inputs != network.layers[0]:
        return f"its preprocessing makes {pipeline.n_inputs} inputs for a {network.layers[0]}-input network"
    if pipeline.n_outputs != network.layers[-1] or pipeline.output != network.output:
        return (
            f"its preprocessing expects {pipeline.n_outputs} {pipeline.output} output(s) but the network has "
            f"{network.layers[-1]} {network.output} output(s)"
        )
    return None


def check_pipeline(pipeline: Pipeline, network: Network, where: str) -> None:
    """A ValueError naming ``where`` if the preprocessing cannot feed the network."""
    problem = pipeline_problem(pipeline, network)
    if problem is not None:
        raise ValueError(f"{where} is damaged: {problem}")


# ----- rows -> raw input columns -----------------------------------------------------------------
def choose_columns(names: list[str], pipeline: Pipeline, where: str) -> list[int]:
    """Which of the columns ``names`` are the model's inputs, in its order: by name when every input
    name is there; by position when none is and the count matches (or is one more and the extra is
    the label column); otherwise a ValueError naming what is missing."""
    wanted = pipeline.inputs
    if all(name in names for name in wanted):
        return [names.index(name) for name in wanted]
    present = [name for name in wanted if name in names]
    columns = list(range(len(names)))
    if pipeline.label is not None and pipeline.label in names and len(names) == len(wanted) + 1:
        columns.remove(names.index(pipeline.label))
    if present or len(columns) != len(wanted):
        missing = [name for name in wanted if name not in names]
        raise ValueError(
            f"{where} has {len(names)} column(s) ({', '.join(names)}) but the model takes {len(wanted)} input(s) "
            f"({', '.join(wanted)})" + (f"; missing: {', '.join(missing)}" if present else "") + "; give rows with those columns"
        )
    return columns


def _finite(values: np.ndarray, names: list[str], where: str) -> np.ndarray:
    if not np.isfinite(values).all():
        row, column = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(
            f"{where}: row {row}, column {names[column]!r} is {values[row, column]} (a missing or infinite value); "
            "fill or drop such rows first"
        )
    return values


def raw_inputs(rows, pipeline: Pipeline) -> np.ndarray:
    """The model's raw input columns of ``rows`` as (len(inputs), m) float64 (see ``Model.raw_inputs``)."""
    if hasattr(rows, "names") and hasattr(rows, "numbers"):  # a data file's Table
        indices = choose_columns(list(rows.names), pipeline, rows.path)
        return rows.numbers([rows.names[index] for index in indices]).T
    if hasattr(rows, "columns") and not isinstance(rows, np.ndarray):  # a DataFrame, by duck typing
        names = [str(name) for name in rows.columns]
        indices = choose_columns(names, pipeline, "the DataFrame")
        columns = []
        for index in indices:
            try:
                columns.append(np.asarray(rows[rows.columns[index]], dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(
                    f"the DataFrame's column {names[index]!r} is not numeric; every input column must be numeric "
                    "(encode categories as numbers first)"
                ) from None
        values = np.stack(columns, axis=1) if columns else np.empty((0, 0))
        return _finite(values, [names[index] for index in indices], "the DataFrame").T
    try:
        values = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("rows must be numeric: a 2-D array (m, columns) or a DataFrame") from None
    if values.ndim != 2:
        raise ValueError(
            f"rows must be 2-D (m examples, {len(pipeline.inputs)} columns); got shape {values.shape}"
            + ("; for one example use rows.reshape(1, -1)" if values.ndim == 1 else "")
        )
    if values.shape[1] != len(pipeline.inputs):
        raise ValueError(
            f"rows have {values.shape[1]} column(s) but the model takes {len(pipeline.inputs)} input(s) "
            f"({', '.join(pipeline.inputs)}); pass rows of shape (m, {len(pipeline.inputs)}), one example per row"
        )
    return _finite(values, pipeline.inputs, "rows").T
