"""Model and checkpoint files: a ``Network.save`` file plus two JSON records.

Both are one ``.npz``: ``config`` and ``W0, b0, ...`` exactly as ``Network.save`` writes them (so
``Network.load`` reads either), plus

- ``pipeline``: the preprocessing that turns raw data rows into the network's X (see
  ``nnaccel.data.pipeline``), so ``nnaccel predict`` can repeat it;
- ``training`` (checkpoints only): the epochs completed, the per-epoch history and every setting
  the run needs to continue (hyperparameters, data source, train/test split seed).

Plain gradient descent keeps no optimiser state beyond the parameters, and epoch e's batch order
depends only on (seed, e), so these records are all a resumed run needs to end with the same
parameters as an uninterrupted one. Files are written atomically: an interrupted write leaves the
previous file whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .network import Network, from_file_config, read_model_file

CHECKPOINT_FORMAT = "nnaccel-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class SavedModel:
    """What a model or checkpoint file holds: the network and its two records (None if absent)."""

    network: Network
    pipeline: dict | None
    training: dict | None
    trained: dict | None = None  # what trained it (nnaccel train --save): version, backend, settings


def save(path: str | os.PathLike, network: Network, *, pipeline: dict | None = None, training: dict | None = None,
         trained: dict | None = None) -> None:
    """Write ``network`` with its records to one ``.npz`` file, atomically; ``trained`` (see
    ``trained_record``) says what trained it, for ``nnaccel info --model``."""
    records = {}
    if trained is not None:
        records["trained"] = trained
    if pipeline is not None:
        records["pipeline"] = pipeline
    if training is not None:
        records["training"] = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **training}
    network.save(path, records)


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
    if checkpoint:
        check_training_record(training, path)
    network = from_file_config(Network, path, config, params, backend)
    trained = records.get("trained")
    return SavedModel(network, records.get("pipeline"), training, trained if isinstance(trained, dict) else None)


# the training settings a model file records about its run
TRAINED_SETTINGS = ("dataset", "data", "epochs", "lr", "batch_size", "activation", "hidden", "optimizer",
                    "regularization", "reg_rate", "seed", "ratio")


def trained_record(settings: dict, network: Network) -> dict:
    """What trained ``network``: the nnaccel version, its backend and the run's main settings."""
    from .. import __version__

    record = {"nnaccel": __version__, "backend": network.backend.name}
    record.update({key: settings[key] for key in TRAINED_SETTINGS if settings.get(key) is not None})
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
    elif (isinstance(training.get("epochs_completed"), bool) or not isinstance(training.get("epochs_completed"), int)
          or training["epochs_completed"] < 0):
        problem = "the training record has no count of epochs completed"
    if problem:
        raise ValueError(f"{path!r} is a damaged checkpoint: {problem}; resume from another checkpoint or start again")
