"""Model and checkpoint files: a ``Network.save`` file plus two JSON records.

Both are one ``.npz``: ``config`` and ``W0, b0, ...`` exactly as ``Network.save`` writes them (so
``Network.load`` reads either), plus

- ``pipeline``: the preprocessing that turns raw data rows into the network's X (see
  ``nnaccel.data.pipeline``), so ``nnaccel predict`` can repeat it;
- ``training`` (checkpoints only): the epochs completed, the per-epoch history and every setting
  the run needs to continue (hyperparameters, data source, train/test split seed).

A checkpoint also holds what the run carries between epochs besides the parameters (a
``TrainingState``): the optimizer's step count and arrays (a momentum buffer, Adam's moments) as
further arrays ``optimizer_first_W0``, ``optimizer_first_b0``, ..., ``optimizer_second_W0``, ...;
the learning-rate schedule's numbers; and early stopping's, with the best epoch's parameters as
``stopping_best_W0``, .... The ``training`` record's ``state`` says how many of each there are.
Epoch e's batch order depends only on (seed, e), so with these a resumed run ends with exactly the
parameters of an uninterrupted one. Checkpoints of format 1 (before optimizers) hold no state: they
were plain gradient descent, which needs none. Files are written atomically: an interrupted write
leaves the previous file whole.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any, NoReturn

import numpy as np

from ..optim import Adam, OptimizerState, ScheduleState, StoppingState, resolve_optimizer, resolve_schedule
from .network import Network, from_file_config, read_model_file
from .training import TrainingState

CHECKPOINT_FORMAT = "nnaccel-checkpoint"
CHECKPOINT_VERSION = 2  # 2 adds the optimizer's, the schedule's and early stopping's state


@dataclass
class SavedModel:
    """What a model or checkpoint file holds: the network and its two records (None if absent)."""

    network: Network
    pipeline: dict | None
    training: dict | None
    trained: dict | None = None  # what trained it (nnaccel train --save): version, backend, settings
    state: TrainingState | None = None  # a checkpoint's optimizer, schedule and stopping state (NumPy arrays)


def save(
    path: str | os.PathLike,
    network: Network,
    *,
    pipeline: dict | None = None,
    training: dict | None = None,
    trained: dict | None = None,
    state: TrainingState | None = None,
) -> None:
    """Write ``network`` with its records to one ``.npz`` file, atomically; ``trained`` (see
    ``trained_record``) says what trained it, for ``nnaccel info --model``; ``state`` (with
    ``training``) is the run's optimizer, schedule and early-stopping state."""
    records: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    if trained is not None:
        records["trained"] = trained
    if pipeline is not None:
        records["pipeline"] = pipeline
    if training is not None:
        records["training"] = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **training}
        if state is not None:
            records["training"]["state"], arrays = state_entries(network, state)
    network.save(path, records, arrays)


def load(path: str | os.PathLike, backend=None, *, checkpoint: bool = False) -> SavedModel:
    """Read a file written by ``save`` or ``Network.save``; with ``checkpoint=True`` it must hold
    the training record. Any other file is a ValueError naming it."""
    path = os.fspath(path)
    config, params, records = read_model_file(path, ("pipeline", "training", "trained"))
    training = records.get("training")
    if training is not None and training.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} has a training record nnaccel does not recognise")
    if training is not None and training.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} was written by a newer nnaccel (checkpoint format {training['version']}); upgrade nnaccel")
    if checkpoint and training is None:
        raise ValueError(
            f"{path!r} is a model file without training state, not a checkpoint; "
            "write checkpoints with nnaccel train --checkpoint FILE"
        )
    state = None
    if checkpoint:
        check_training_record(training, path)
    network = from_file_config(Network, path, config, params, backend)
    if checkpoint and training is not None:  # (a checkpoint without one is refused above)
        state = read_state(path, training, network.get_params())
    trained = records.get("trained")
    return SavedModel(network, records.get("pipeline"), training, trained if isinstance(trained, dict) else None, state)


# the training settings a model file records about its run
TRAINED_SETTINGS = (
    "dataset",
    "data",
    "epochs",
    "lr",
    "batch_size",
    "activation",
    "hidden",
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "lr_schedule",
    "early_stopping",
    "regularization",
    "reg_rate",
    "seed",
    "ratio",
)


def trained_record(settings: dict, network: Network, history: dict | None = None) -> dict:
    """What trained ``network``: the nnaccel version, its backend and the run's main settings;
    with early stopping, the best epoch (whose parameters it holds) and the last one run."""
    from .. import __version__

    record = {"nnaccel": __version__, "backend": network.backend.name}
    record.update({key: settings[key] for key in TRAINED_SETTINGS if settings.get(key) is not None})
    for key in ("best_epoch", "last_epoch"):
        if history and history.get(key) is not None:
            record[key] = history[key]
    return record


def check_training_record(training, path: str) -> None:
    """A ValueError naming ``path`` unless the training record has what ``--resume`` reads: a
    ``settings`` object, a ``history`` with a list of losses and a whole ``epochs_completed``."""
    problem = None
    if not isinstance(training, dict):
        problem = "the training record is not an object"
    elif not isinstance(training.get("settings"), dict):
        problem = "the training record has no settings"
    elif not isinstance(training.get("history"), dict) or not isinstance(training["history"].get("loss"), list):
        problem = "the training record has no history of losses"
    elif (
        isinstance(training.get("epochs_completed"), bool)
        or not isinstance(training.get("epochs_completed"), int)
        or training["epochs_completed"] < 0
    ):
        problem = "the training record has no count of epochs completed"
    if problem:
        _damaged(path, problem)


# ----- the training state ---------------------------------------------------------------------------
def state_entries(network: Network, state: TrainingState) -> tuple[dict, dict]:
    """(record, arrays) that store ``state``: the record (JSON) has the step count and the numbers,
    the arrays (NumPy, named as in this module's docstring) the optimizer's and the best epoch's."""
    backend, record, arrays = network.backend, {}, {}
    optimizer = state.capture_optimizer()
    if optimizer is not None:
        for part in ("first", "second"):
            arrays.update(_named(f"optimizer_{part}", getattr(optimizer, part)))
        record["optimizer"] = {"step": int(optimizer.step), "first": len(optimizer.first), "second": len(optimizer.second)}
    if state.schedule is not None:
        record["schedule"] = {key: _finite_or_none(value) for key, value in asdict(state.schedule).items()}
    if state.stopping is not None:
        stopping = state.stopping
        best = [(backend.to_numpy(W), backend.to_numpy(b)) for W, b in stopping.best_params]
        arrays.update(_named("stopping_best", best))
        record["stopping"] = {
            "best": _finite_or_none(stopping.best),
            "best_epoch": stopping.best_epoch,
            "bad_epochs": stopping.bad_epochs,
            "best_params": len(best),
        }
    return record, arrays


def _named(prefix: str, pairs: list) -> dict:
    arrays = {}
    for index, (W, b) in enumerate(pairs):
        arrays[f"{prefix}_W{index}"], arrays[f"{prefix}_b{index}"] = W, b
    return arrays


def _finite_or_none(value):
    """inf (no loss seen yet) as None, so the record stays strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_state(path: str, training: dict, params: list) -> TrainingState:
    """The ``TrainingState`` a checkpoint holds (host arrays), checked against its settings and the
    network's parameters ``params``; a ValueError naming ``path`` if it is missing or damaged. A
    checkpoint without state (format 1, plain gradient descent) gives a fresh state."""
    settings = training["settings"]
    try:
        optimizer = resolve_optimizer(settings.get("optimizer", "sgd"))
        schedule = resolve_schedule(settings.get("lr_schedule"))
    except (ValueError, TypeError, AttributeError):
        _damaged(path, "its optimizer or lr_schedule setting is not one nnaccel knows")
    record = training.get("state")
    needs = _moment_counts(optimizer, len(params)) != (0, 0) or schedule is not None or settings.get("early_stopping")
    if record is None and not needs:
        return TrainingState()
    if not isinstance(record, dict):
        _damaged(path, "its optimizer state is missing (the training record has no state)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return TrainingState(
                optimizer=_optimizer_state(path, record.get("optimizer"), archive, params, optimizer),
                schedule=_schedule_state(path, record.get("schedule")) if schedule is not None else None,
                stopping=_stopping_state(path, record.get("stopping"), archive, params)
                if settings.get("early_stopping")
                else None,
            )
    except DamagedCheckpoint:
        raise
    # a damaged member of the archive: the same many types read_model_file meets
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        KeyError,
        RuntimeError,
        NotImplementedError,
        ValueError,
        zlib.error,
        struct.error,
    ) as error:
        _damaged(path, f"its optimizer state cannot be read ({error})")


def _moment_counts(optimizer, depth: int) -> tuple[int, int]:
    """How many layers of first and second moments ``optimizer`` keeps."""
    if isinstance(optimizer, Adam):
        return depth, depth
    return (depth, 0) if optimizer.momentum else (0, 0)


def _optimizer_state(path: str, record, archive, params: list, optimizer) -> OptimizerState | None:
    first, second = _moment_counts(optimizer, len(params))
    if record is None and (first, second) == (0, 0):
        return None  # plain gradient descent: nothing to continue
    if not isinstance(record, dict) or not _whole(record.get("step")):
        _damaged(path, "its optimizer state is missing or has no step count")
    if (record.get("first"), record.get("second")) != (first, second):
        _damaged(path, f"its optimizer state does not fit the {optimizer.name} optimizer of its settings")
    return OptimizerState(
        record["step"],
        _arrays(path, archive, "optimizer_first", params, first),
        _arrays(path, archive, "optimizer_second", params, second),
    )


def _schedule_state(path: str, record) -> ScheduleState:
    names = {spec.name for spec in fields(ScheduleState)}
    if not isinstance(record, dict) or set(record) != names:
        _damaged(path, "its learning-rate schedule state is missing or incomplete")
    values: dict[str, Any] = {key: math.inf if key == "best" and value is None else value for key, value in record.items()}
    state = ScheduleState(**values)  # the record's JSON values, checked below
    numbers = (state.base_lr, state.lr, state.best)
    if not all(_number(value) for value in numbers) or not all(
        _whole(value) for value in (state.epochs, state.examples, state.bad_epochs, state.cooldown)
    ):
        _damaged(path, "its learning-rate schedule state holds values that are not numbers")
    if not isinstance(state.finished, bool):
        _damaged(path, "its learning-rate schedule state holds values that are not numbers")
    return state


def _stopping_state(path: str, record, archive, params: list) -> StoppingState:
    if not isinstance(record, dict) or not all(_whole(record.get(key)) for key in ("best_epoch", "bad_epochs", "best_params")):
        _damaged(path, "its early-stopping state is missing or incomplete")
    best = math.inf if record.get("best") is None else record["best"]
    if not _number(best) or record["best_params"] not in (0, len(params)):
        _damaged(path, "its early-stopping state is damaged")
    best_params = _arrays(path, archive, "stopping_best", params, record["best_params"])
    return StoppingState(best, record["best_epoch"], record["bad_epochs"], best_params)


def _arrays(path: str, archive, prefix: str, params: list, count: int) -> list:
    """[(W-like, b-like)] of the ``count`` layers stored under ``prefix``, each shaped and typed as
    the parameter it belongs to, finite."""
    pairs = []
    for index in range(count):
        pair = []
        for letter, reference in zip("Wb", params[index]):
            name = f"{prefix}_{letter}{index}"
            if name not in archive.files:
                _damaged(path, f"its optimizer state lacks the array {name}")
            array = archive[name]
            if array.shape != reference.shape or array.dtype != reference.dtype or not np.all(np.isfinite(array)):
                _damaged(path, f"its array {name} is not a finite {reference.dtype} array of shape {reference.shape}")
            pair.append(array)
        pairs.append(tuple(pair))
    return pairs


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


class DamagedCheckpoint(ValueError):
    """A checkpoint whose training record or state cannot be resumed; the message names the file."""


def _damaged(path: str, problem: str) -> NoReturn:
    raise DamagedCheckpoint(f"{path!r} is a damaged checkpoint: {problem}; resume from another checkpoint or start again")


def state_on(network: Network, state: TrainingState) -> TrainingState:
    """``state`` (as ``load`` read it) ready for ``network.fit``: the best epoch's parameters moved
    to the network's backend (the optimizer's are loaded into the plan by ``fit``)."""
    if state.stopping is not None and state.stopping.best_params:
        backend, dtype = network.backend, network.dtype
        state.stopping.best_params = [
            (backend.asarray(W, dtype), backend.asarray(b, dtype)) for W, b in state.stopping.best_params
        ]
    return state
