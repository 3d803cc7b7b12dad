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

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ..io import atomic_write
from .network import Network, read_model_file

CHECKPOINT_FORMAT = "nnaccel-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class SavedModel:
    """What a model or checkpoint file holds: the network and its two records (None if absent)."""

    network: Network
    pipeline: dict | None
    training: dict | None


def save(path: str | os.PathLike, network: Network, *, pipeline: dict | None = None, training: dict | None = None) -> None:
    """Write ``network`` with its records to one ``.npz`` file, atomically."""
    arrays = {"config": np.array(json.dumps(network.config()))}
    for index, (W, b) in enumerate(network.get_params()):
        arrays[f"W{index}"], arrays[f"b{index}"] = W, b
    if pipeline is not None:
        arrays["pipeline"] = np.array(json.dumps(pipeline))
    if training is not None:
        arrays["training"] = np.array(json.dumps({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **training}))
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load(path: str | os.PathLike, backend=None, *, checkpoint: bool = False) -> SavedModel:
    """Read a file written by ``save`` or ``Network.save``; with ``checkpoint=True`` it must hold
    the training record. Any other file is a ValueError naming it."""
    path = os.fspath(path)
    config, params = read_model_file(path)
    records = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in ("pipeline", "training"):
                records[name] = json.loads(str(archive[name])) if name in archive.files else None
    except (zipfile.BadZipFile, EOFError, KeyError, OSError, ValueError) as error:
        raise ValueError(f"{path!r} is not a readable nnaccel model file (truncated or corrupt: {error})") from error
    training = records["training"]
    if training is not None and training.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} has a training record nnaccel does not recognise")
    if training is not None and training.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} was written by a newer nnaccel (checkpoint format {training['version']}); upgrade nnaccel")
    if checkpoint and training is None:
        raise ValueError(
            f"{path!r} is a model file without training state, not a checkpoint; "
            "write checkpoints with nnaccel train --checkpoint FILE"
        )
    network = Network(
        config["layers"],
        config["activations"] if config["activations"] else "tanh",
        config["output"],
        seed=config.get("seed", 0),
        backend=backend,
        dtype=config["dtype"],
    )
    network.set_params(params)
    return SavedModel(network, records["pipeline"], training)
