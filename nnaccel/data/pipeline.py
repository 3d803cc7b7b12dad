"""From raw columns to the network's X and Y and back: the preprocessing a saved model carries.

A ``Pipeline`` records what ``nnaccel train`` did to the data, so ``nnaccel predict`` repeats it on
new rows: which raw input columns it read, how it standardised them (with statistics of the
training part alone), which Playground features it built from two inputs, and how labels map to
the output layer (classes for sigmoid or softmax, a standardised target for identity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .playground import FEATURES, expand_features

TASKS = ("classification", "regression")
# Integer labels with at most this many distinct values (and few compared with the examples) are
# classes; more are a regression target (ages, counts, prices).
MAX_CLASSES = 100


def _column(values: list[float] | None, name: str) -> np.ndarray:
    """A standardisation's per-row values as a column (k, 1), to broadcast over (k, m)."""
    if values is None:
        raise ValueError(f"the pipeline's standardisation has no {name}")
    return np.reshape(values, (-1, 1))


@dataclass
class Pipeline:
    """``inputs``: raw input column names, in order. ``features``: the Playground features built
    from the two raw inputs (None: the inputs as they are). ``mean``/``scale``: per raw input, the
    standardisation (None: none). ``task``: classification or regression. ``classes``: the label of
    each class number (classification). ``target_mean``/``target_scale``: per output, the
    standardisation of a regression target (None: none). ``label``: the label column's name.
    ``outputs``: the number of regression targets."""

    inputs: list[str]
    task: str
    features: list[str] | None = None
    mean: list[float] | None = None
    scale: list[float] | None = None
    classes: list | None = None
    target_mean: list[float] | None = None
    target_scale: list[float] | None = None
    label: str | None = None
    outputs: int = 1

    @property
    def class_list(self) -> list:
        """``classes``, which a classification pipeline always has."""
        if self.classes is None:
            raise ValueError("this classification pipeline has no classes")
        return self.classes

    # ----- the network it feeds ----------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.features) if self.features else len(self.inputs)

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            return 1 if len(self.class_list) == 2 else len(self.class_list)
        return self.outputs

    @property
    def output(self) -> str:
        if self.task == "classification":
            return "sigmoid" if len(self.class_list) == 2 else "softmax"
        return "identity"

    # ----- forward: raw data -> X, Y ---------------------------------------------------------------
    def inputs_of(self, raw: np.ndarray) -> np.ndarray:
        """The network's X (n, m) from the raw input columns ``raw`` (len(inputs), m)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.shape[0] != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} input columns ({', '.join(self.inputs)}); got {raw.shape[0]}")
        if self.mean is not None:
            raw = (raw - _column(self.mean, "mean")) / _column(self.scale, "scale")
        return expand_features(raw, self.features) if self.features else raw

    def targets_of(self, labels: np.ndarray) -> np.ndarray:
        """The network's Y (outputs, m) from labels (m,) (or (outputs, m) for a multi-output target)."""
        if self.task == "classification":
            classes = self.class_list
            index = class_indices(labels, classes)
            if len(classes) == 2:
                return index.astype(np.float64).reshape(1, -1)
            return np.eye(len(classes))[:, index]
        Y = np.asarray(labels, dtype=np.float64).reshape(self.n_outputs, -1)
        if self.target_mean is not None:
            Y = (Y - _column(self.target_mean, "target_mean")) / _column(self.target_scale, "target_scale")
        return Y

    # ----- backward: network output -> predictions ------------------------------------------------
    def predictions(self, H: np.ndarray) -> np.ndarray:
        """Labels (m,) for classification; target values (m,) or (m, outputs) for regression, in the
        label's own units; from the output layer's activations H (outputs, m)."""
        if self.task == "classification":
            index = (H[0] >= 0.5).astype(np.int64) if H.shape[0] == 1 else np.argmax(H, axis=0)
            return np.asarray(self.classes)[index]
        values = H.astype(np.float64)
        if self.target_mean is not None:
            values = values * _column(self.target_scale, "target_scale") + _column(self.target_mean, "target_mean")
        return values[0] if values.shape[0] == 1 else values.T

    def probabilities(self, H: np.ndarray) -> np.ndarray:
        """(m, classes): each class's probability, in the order of ``classes``."""
        if H.shape[0] == 1:
            return np.stack([1.0 - H[0], H[0]], axis=1).astype(np.float64)
        return H.T.astype(np.float64)

    # ----- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Pipeline:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        pipeline = cls(**known)
        if pipeline.task not in TASKS or not pipeline.inputs:
            raise ValueError("the model's preprocessing record is damaged (unknown task or no inputs)")
        return pipeline


def identity_pipeline(layers: list[int], output: str) -> Pipeline:
    """The pipeline of a model saved from Python with ``Network.save``: raw inputs as they are."""
    inputs = [f"x{index + 1}" for index in range(layers[0])]
    if output == "identity":
        return Pipeline(inputs, "regression", outputs=layers[-1])
    classes = [0, 1] if output == "sigmoid" else list(range(layers[-1]))
    return Pipeline(inputs, "classification", classes=classes)


def infer_task(labels: np.ndarray) -> str:
    """classification for text labels, 0/1 labels and a few integer classes; else regression."""
    if labels.dtype.kind not in "biuf":
        return "classification"
    distinct = np.unique(labels)
    if len(distinct) <= 2 and np.isin(distinct, (0.0, 1.0)).all():
        return "classification"
    integer = bool(np.all(distinct == np.round(distinct)))
    if integer and 2 < len(distinct) <= min(MAX_CLASSES, max(2, len(labels) // 5)):
        return "classification"
    return "regression"


def class_list(labels: np.ndarray) -> list:
    """The sorted distinct labels, as plain Python values (ints for integral numbers)."""
    distinct = np.unique(labels)
    if distinct.dtype.kind not in "biuf":
        return [str(value) for value in distinct]
    if np.all(distinct == np.round(distinct)):
        return [int(value) for value in distinct]
    return [float(value) for value in distinct]


def class_indices(labels: np.ndarray, classes: list) -> np.ndarray:
    """Each label's index in ``classes`` (m,); a ValueError for a label the model never saw."""
    if isinstance(classes[0], str):
        lookup = {value: index for index, value in enumerate(classes)}
        labels = np.asarray(labels).astype(str)
    else:
        lookup = {float(value): index for index, value in enumerate(classes)}
        labels = np.asarray(labels, dtype=np.float64)
    try:
        return np.fromiter(
            (lookup[value if isinstance(value, str) else float(value)] for value in labels.tolist()), np.int64, len(labels)
        )
    except KeyError as error:
        raise ValueError(f"label {error.args[0]!r} is not one of the classes {classes}") from None


def build_pipeline(
    raw_train: np.ndarray,
    labels_train: np.ndarray,
    *,
    all_labels: np.ndarray | None = None,
    inputs: list[str],
    task: str = "auto",
    standardize: bool = True,
    features: list[str] | None = None,
    label: str | None = None,
) -> Pipeline:
    """Fit the preprocessing to the training part: inputs ``raw_train`` (len(inputs), m_train) and
    labels ``labels_train`` (m_train,). ``all_labels`` (m,), when given, decide the task and the
    classes, so a class seen only in the test part still has its number."""
    labels = labels_train if all_labels is None else all_labels
    if task == "auto":
        task = infer_task(labels)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected auto, classification or regression")
    if features:
        if len(inputs) != 2:
            raise ValueError(
                f"the Playground features ({', '.join(FEATURES)}) are built from exactly two input columns; "
                f"this data has {len(inputs)} ({', '.join(inputs)}); leave out --features"
            )
        expand_features(np.zeros((2, 1)), features)  # names checked before any work
    pipeline = Pipeline(list(inputs), task, features=list(features) if features else None, label=label)
    if standardize:
        mean = raw_train.mean(axis=1)
        scale = raw_train.std(axis=1)
        pipeline.mean, pipeline.scale = mean.tolist(), np.where(scale > 0, scale, 1.0).tolist()
    if task == "classification":
        pipeline.classes = class_list(labels)
        if len(pipeline.classes) < 2:
            raise ValueError(f"the labels hold only one class ({pipeline.classes[0]!r}); a classifier needs two or more")
        if len(pipeline.classes) > MAX_CLASSES and labels.dtype.kind in "biuf":
            raise ValueError(
                f"the labels hold {len(pipeline.classes)} distinct values, too many classes; "
                "pass --task regression if they are a quantity"
            )
    else:
        if labels.dtype.kind not in "biuf":
            raise ValueError("the label column holds text, so it cannot be a regression target; use --task classification")
        if standardize:
            target = np.asarray(labels_train, dtype=np.float64).reshape(pipeline.outputs, -1)
            spread = target.std(axis=1)
            pipeline.target_mean = target.mean(axis=1).tolist()
            pipeline.target_scale = np.where(spread > 0, spread, 1.0).tolist()
    return pipeline
