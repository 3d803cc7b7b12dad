"""The network users build: one definition that runs on every backend."""

from __future__ import annotations

import json
import numbers
import os
import struct
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from ..backends import Backend, resolve
from ..core.architecture import Architecture
from ..core.validation import check_non_negative, check_positive, check_representable, check_seed, check_X, check_Y, resolve_dtype
from ..data.sources import as_source, check_source
from ..io import atomic_write
from ..optim import resolve_optimizer
from . import training
from .initialization import initial_params

MODEL_FORMAT = "nnaccel-model"
MODEL_FORMAT_VERSION = 1
# Prediction and loss evaluation run in column chunks of this many examples, so memory stays
# bounded for any m.
EVALUATION_CHUNK = 1 << 16
_CACHED_PLANS = 4


class Network:
    """A fully connected network: X (n, m) -> H (outputs, m), one column per example.

    Parameters
    ----------
    layers: sizes from input to output, e.g. ``[2, 6, 6, 1]``; ``[n, 1]`` is logistic (or linear)
        regression.
    activation: one name for every hidden layer, or one name per hidden layer: sigmoid, tanh, relu,
        leaky_relu, elu, selu, identity.
    output: ``sigmoid`` (binary cross-entropy), ``identity`` (half mean squared error) or
        ``softmax`` (categorical cross-entropy, Y one-hot (classes, m)).
    seed: the initial weights are drawn on the host from it, the same on every backend.
    backend: a backend name, or None for the current backend (``nnaccel.get_backend()``).
    dtype: float32 or float64; None reads ``NNACCEL_DTYPE`` (default float32).
    """

    def __init__(
        self,
        layers: Sequence[int],
        activation: str | Sequence[str] = "tanh",
        output: str = "sigmoid",
        *,
        seed: int = 0,
        backend: str | Backend | None = None,
        dtype=None,
    ):
        self._setup(Architecture.build(layers, activation, output), seed, backend, dtype)
        self._params = self._to_backend(initial_params(self.architecture, seed, self.dtype))

    def _setup(self, architecture: Architecture, seed, backend, dtype) -> None:
        check_seed(seed)
        self.architecture = architecture
        self.dtype = resolve_dtype(dtype)
        self.backend = resolve(backend)
        self.seed = seed
        self._plans: dict = {}

    # ----- description -----------------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        return list(self.architecture.layers)

    @property
    def activations(self) -> list[str]:
        return list(self.architecture.activations)

    @property
    def output(self) -> str:
        return self.architecture.output

    def __repr__(self) -> str:
        return (
            f"Network(layers={self.layers}, activation={self.activations}, output={self.output!r}, "
            f"backend={self.backend.name!r}, dtype={self.dtype.name!r})"
        )

    # ----- parameters ------------------------------------------------------------------------------
    def get_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W, b)] per layer as NumPy copies: W (p_i, p_{i-1}), b (p_i, 1)."""
        return [(self.backend.to_numpy(W).copy(), self.backend.to_numpy(b).copy()) for W, b in self._params]

    def set_params(self, params) -> None:
        """Replace the parameters; ``params`` has the form ``get_params`` returns."""
        params = list(params)
        if len(params) != self.architecture.depth:
            raise ValueError(f"expected {self.architecture.depth} (W, b) pairs, one per layer; got {len(params)}")
        checked = []
        for index, pair in enumerate(params):
            W, b = (np.asarray(array) for array in pair)
            fan_out, fan_in = self.architecture.layers[index + 1], self.architecture.layers[index]
            if W.shape != (fan_out, fan_in) or b.shape not in ((fan_out, 1), (fan_out,)):
                raise ValueError(
                    f"layer {index + 1}: expected W of shape {(fan_out, fan_in)} and b of shape {(fan_out, 1)}; "
                    f"got {W.shape} and {b.shape}"
                )
            if W.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
                raise ValueError(f"layer {index + 1}: parameters must be numeric; got {W.dtype} and {b.dtype}")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise ValueError(f"layer {index + 1}: parameters contain NaN or infinite values")
            # copies, so training never writes into the caller's arrays
            checked.append((np.array(W, dtype=self.dtype), np.array(b, dtype=self.dtype).reshape(fan_out, 1)))
        self._params = self._to_backend(checked)

    def _to_backend(self, params) -> list:
        return [(self.backend.asarray(W, self.dtype), self.backend.asarray(b, self.dtype)) for W, b in params]

    # ----- the parameters on the backend, for training code -----------------------------------------
    @property
    def parameters(self) -> list:
        """The live [(W, b)] backend arrays that training updates in place (``get_params`` gives
        NumPy copies). Assigning a list of backend arrays shaped alike replaces them."""
        return self._params

    @parameters.setter
    def parameters(self, params: list) -> None:
        self._params = params

    def gradient_buffers(self) -> list:
        """New backend arrays [(dW, db)] shaped like the parameters."""
        return [(self.backend.empty(W.shape, self.dtype), self.backend.empty(b.shape, self.dtype)) for W, b in self._params]

    def workspace(self, m: int):
        """The step buffers for batch size m, the full-batch plan's (allocated once per size)."""
        return self.plan(None).workspace(m)

    def plan(self, batch_size: int | None, optimizer=None):
        """The backend's training plan for mini-batches of ``batch_size`` examples (None: full
        batch) and ``optimizer`` (a name or an object of ``nnaccel.optim``; None: plain SGD), kept
        while the settings stay the same (it owns the step buffers and the optimizer's state)."""
        optimizer = resolve_optimizer(optimizer)
        key = (batch_size, optimizer)
        if key not in self._plans:
            if len(self._plans) >= _CACHED_PLANS:
                self._plans.clear()
            self._plans[key] = self.backend.plan(self.architecture, self.dtype, batch_size, optimizer)
        return self._plans[key]

    def prepare(self, batch_size: int | None = None, optimizer=None) -> None:
        """Compile the backend's kernels for training this network with ``batch_size`` (None: full
        batch) and ``optimizer`` (as ``fit`` takes it; None: plain SGD) and for evaluating it,
        without changing it. Numba compiles a kernel on its first use (tens of seconds on a new
        machine, then cached on disk); call this to pay that cost up front, outside a timed loop.
        A no-op on the NumPy backend."""
        if batch_size is not None:
            check_positive(batch_size, "batch_size", numbers.Integral)
        self.plan(batch_size, optimizer).warm_up(self._params)

    # ----- forward, loss, gradients ----------------------------------------------------------------
    def forward(self, X) -> np.ndarray:
        """The output layer's activations H (outputs, m) for X (n, m), as a NumPy array."""
        X = check_X(X, self.architecture)
        check_representable(X, self.dtype, "X")
        m = X.shape[1]
        H = np.empty((self.architecture.n_outputs, m), dtype=self.dtype)
        for start in range(0, m, EVALUATION_CHUNK):
            chunk = self.backend.asarray(X[:, start : start + EVALUATION_CHUNK], self.dtype)
            H[:, start : start + chunk.shape[1]] = self.backend.to_numpy(self.plan(None).forward(self._params, chunk))
        return H

    def predict_proba(self, X) -> np.ndarray:
        """The output layer's activations (outputs, m); same as ``forward``."""
        return self.forward(X)

    def predict(self, X) -> np.ndarray:
        """Class labels as a (1, m) row for sigmoid (0 or 1) and softmax (class index) outputs;
        the (outputs, m) values for an identity output."""
        H = self.forward(X)
        if self.output == "sigmoid":
            return (H >= 0.5).astype(np.int64)
        if self.output == "softmax":
            return np.argmax(H, axis=0).reshape(1, -1)
        return H

    def loss(self, X, Y=None) -> float:
        """The mean loss over the m columns of X (n, m) and Y (outputs, m), or of any data ``fit``
        streams (read chunk by chunk)."""
        source = as_source(X, Y)
        if source is not None:
            check_source(source, self.architecture)
            return training.streamed_mean_loss(self, source)
        X = check_X(X, self.architecture)
        Y = check_Y(Y, self.architecture, X.shape[1])
        return self.mean_loss_on_backend(self.backend.asarray(X, self.dtype), self.backend.asarray(Y, self.dtype))

    def mean_loss_on_backend(self, X, Y) -> float:
        """Mean loss of backend arrays X (n, m), Y (outputs, m), evaluated in column chunks."""
        m = X.shape[1]
        total = 0.0
        for start in range(0, m, EVALUATION_CHUNK):
            stop = min(start + EVALUATION_CHUNK, m)
            X_chunk, Y_chunk = X[:, start:stop], Y[:, start:stop]
            if stop - start != m:
                X_chunk, Y_chunk = self.backend.copy(X_chunk), self.backend.copy(Y_chunk)
            total = total + self.plan(None).loss_sum(self._params, X_chunk, Y_chunk)
        return self.backend.to_float(total) / m

    def gradients(self, X, Y=None) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """(mean loss, [(dW, db)] per layer) for X (n, m) and Y (outputs, m); data loss only.
        X and Y may be any data ``fit`` streams (``.npy`` paths, a data source, ...)."""
        source = as_source(X, Y)
        if source is not None:
            return training.source_gradients(self, source)
        X = check_X(X, self.architecture)
        Y = check_Y(Y, self.architecture, X.shape[1])
        m = X.shape[1]
        backend = self.backend
        grads = self.gradient_buffers()
        loss = backend.loss_and_gradients(
            self.architecture,
            self._params,
            backend.asarray(X, self.dtype),
            backend.asarray(Y, self.dtype),
            self.workspace(m),
            grads,
            1.0 / m,
        )
        return backend.to_float(loss) / m, [(backend.to_numpy(dW), backend.to_numpy(db)) for dW, db in grads]

    # ----- training --------------------------------------------------------------------------------
    def fit(
        self,
        X,
        Y=None,
        *,
        epochs: int,
        lr: float,
        batch_size: int | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        validation=None,
        shuffle: bool = True,
        seed: int = 0,
        progress: bool = False,
        optimizer="sgd",
        lr_schedule=None,
        early_stopping=None,
        start_epoch: int = 0,
        history: dict | None = None,
        state=None,
        on_epoch_end=None,
    ) -> dict:
        """Train on X (n, m), Y (outputs, m); returns {"loss": [...], "val_loss": [...], "lr": [...]}.

        ``batch_size=None`` is full-batch; otherwise each epoch visits the columns in a seeded
        shuffled order. ``optimizer``: ``sgd`` (the lecture's W -= lr (dW + l1 sign(W) + l2 W)),
        ``momentum``, ``nesterov``, ``adam``, ``adamw`` or an object of ``nnaccel.optim`` (each
        update PyTorch's; biases are never regularised). ``lr_schedule``: None (constant), a name
        (``"cosine"``, ``"step:30,0.1"``, ``"plateau"``, ...) or a schedule of ``nnaccel.optim``.
        ``early_stopping=N``: stop after N epochs without a lower validation loss and end with the
        parameters of the best epoch (the history records ``best_epoch`` and ``last_epoch``; a run
        that uses all its epochs keeps the last epoch's parameters).

        ``loss`` holds each epoch's mean data loss (mean over its batches, each taken before its
        update); ``val_loss`` the loss on ``validation=(Xv, Yv)`` after each epoch; ``lr`` each
        epoch's learning rate. Raises ``TrainingDiverged`` (keeping the last finite parameters) if
        the loss becomes NaN or infinite.

        Data larger than memory is read chunk by chunk along m: pass two ``.npy`` (or ``.zarr``)
        paths, arrays from ``np.load(path, mmap_mode="r")``, zarr or Dask arrays, a
        ``nnaccel.data`` source (Y None), or an iterable of (X_chunk, Y_chunk) pairs (Y None; a
        function returning a fresh one for several epochs). ``validation`` takes the same forms.

        Checkpointing: ``on_epoch_end(epoch, history)`` is called after each epoch (``epoch``
        counts from 0); Ctrl-C raises ``TrainingInterrupted`` (its ``epoch`` and ``history``) with
        the network back at that epoch's start. Pass ``state=nnaccel.nn.training.TrainingState()``
        to keep the optimizer's and schedule's numbers where ``on_epoch_end`` can save them;
        ``fit(..., start_epoch=e, history=h, state=s)`` resumes, and since epoch e's batches depend
        only on (seed, e), ends with the parameters of an uninterrupted run.
        """
        # what training.fit would only meet deep inside (or report as divergence), refused here
        check_seed(seed)
        for value, name in ((l1, "l1"), (l2, "l2")):
            check_non_negative(value, name)
            if not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
        for array, name in ((X, "X"), (Y, "Y")):
            check_representable(array, self.dtype, name)
        if isinstance(validation, (tuple, list)) and len(validation) == 2:
            for array, name in zip(validation, ("validation X", "validation Y")):
                check_representable(array, self.dtype, name)
        return training.fit(
            self,
            X,
            Y,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            l1=l1,
            l2=l2,
            validation=validation,
            shuffle=shuffle,
            seed=seed,
            progress=progress,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            early_stopping=early_stopping,
            start_epoch=start_epoch,
            history=history,
            state=state,
            on_epoch_end=on_epoch_end,
        )

    # ----- files -----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "layers": self.layers,
            "activations": self.activations,
            "output": self.output,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike, records: dict | None = None, arrays: dict | None = None) -> None:
        """Write the network to one ``.npz`` file, atomically (an interrupted save leaves the old file).

        ``records`` maps names to JSON-serialisable dicts stored beside the parameters (the CLI
        keeps its preprocessing and training state there); ``read_model_file`` returns them.
        ``arrays`` maps further names to NumPy arrays stored as they are (a checkpoint's optimizer
        state).
        """
        entries = {"config": np.array(json.dumps(self.config()))}
        for index, (W, b) in enumerate(self.get_params()):
            entries[f"W{index}"], entries[f"b{index}"] = W, b
        extra = [(name, np.array(json.dumps(record))) for name, record in (records or {}).items()]
        extra += [(name, np.asarray(array)) for name, array in (arrays or {}).items()]
        for name, value in extra:
            if name in entries:
                raise ValueError(f"entry name {name!r} is reserved for the network itself or given twice")
            if name[:1] in ("W", "b") and name[1:].isdigit():
                raise ValueError(f"entry name {name!r} is reserved for the network itself")
            entries[name] = value
        # mypy matches **entries against savez's allow_pickle: bool too (it cannot tell the keys apart)
        atomic_write(path, lambda handle: np.savez(handle, **entries))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | Backend | None = None) -> Network:
        """Read a network written by ``save``, onto ``backend`` (None: the current backend).

        A file from ``nnaccel train --save`` also carries preprocessing, which the bare network
        does not apply: a ``PreprocessingNotApplied`` warning says so; ``nnaccel.load_model``
        reads the whole model, taking raw rows."""
        config, params, records = read_model_file(path, ("pipeline",))
        if records.get("pipeline"):
            _warn_preprocessing(path, records["pipeline"])
        return from_file_config(cls, os.fspath(path), config, params, backend)

    @classmethod
    def from_config(cls, config: dict, params: list, backend: str | Backend | None = None) -> Network:
        """A network from ``config()`` and ``get_params()``-shaped parameters.

        No initial weights are drawn: the parameters are checked against the config's layer sizes
        first, so a crafted config (layers [100000, 100000, 1]) cannot force a huge allocation."""
        if not isinstance(config, dict):
            raise ValueError(f"a model config is an object; got {type(config).__name__}")
        missing = [key for key in ("layers", "activations", "output", "dtype") if key not in config]
        if missing:
            raise ValueError(f"the model config has no {', '.join(missing)}")
        architecture = Architecture.build(config["layers"], config["activations"] or "tanh", config["output"])
        network = cls.__new__(cls)
        network._setup(architecture, config.get("seed", 0), backend, config["dtype"])
        network.set_params(params)  # checks every shape before converting anything
        return network

    # ----- leaving and joining nnaccel -------------------------------------------------------------
    def summary(self) -> str:
        """The layers, their activations and parameter counts, as lines of text."""
        from .summary import network_lines

        return "\n".join(network_lines(self))

    def to_onnx(self, path: str | os.PathLike) -> None:
        """Write the network as ONNX (needs ``pip install nnaccel[onnx]``), atomically: one float32
        input ``input`` (batch, n), one row per example, and one output ``output`` (batch, outputs),
        the output layer's activations (``predict_proba`` transposed)."""
        from .onnx_export import network_graph, write_onnx

        write_onnx(path, network_graph(self.architecture, self.get_params()))

    @classmethod
    def from_sklearn(cls, estimator, *, backend: str | Backend | None = None, dtype=None) -> Network:
        """A network with the layers, activations and parameters of a fitted scikit-learn
        ``MLPClassifier`` or ``MLPRegressor``; ``dtype`` None keeps the estimator's (float64 unless
        fitted on float32). Its ``predict_proba(X.T)`` is the estimator's output layer (a binary
        classifier's one logistic unit is P(classes_[1])); class numbers index ``classes_``."""
        from .peers import from_sklearn, peer_dtype

        return cls._from_peer(from_sklearn(estimator), backend, dtype or peer_dtype(estimator))

    @classmethod
    def from_torch(cls, module, *, backend: str | Backend | None = None, dtype=None) -> Network:
        """A network from a ``torch.nn.Sequential`` of ``Linear`` layers, each followed by at most one
        of Sigmoid, Tanh, ReLU, LeakyReLU(0.01), ELU(1.0), SELU or Identity (Sigmoid, Softmax(dim=1)
        or nothing after the last); anything else is refused by name. ``dtype`` None keeps the
        module's float32 or float64."""
        from .peers import from_torch, peer_dtype

        return cls._from_peer(from_torch(module), backend, dtype or peer_dtype(module))

    @classmethod
    def _from_peer(cls, converted, backend, dtype) -> Network:
        layers, activations, output, params = converted
        network = cls(layers, activations, output, backend=backend, dtype=dtype)
        network.set_params(params)
        return network


class PreprocessingNotApplied(UserWarning):
    """``Network.load`` read a file whose preprocessing the bare network does not apply."""


def _warn_preprocessing(path, pipeline: dict) -> None:
    import warnings

    done = []
    if pipeline.get("mean") is not None:
        done.append("standardises its inputs")
    if pipeline.get("features"):
        done.append(f"expands its inputs into the Playground features {', '.join(map(str, pipeline['features']))}")
    if pipeline.get("classes") is not None:
        done.append(f"names its classes {', '.join(map(str, pipeline['classes']))}")
    if pipeline.get("target_mean") is not None:
        done.append("standardises its target")
    warnings.warn(
        f"{os.fspath(path)!r} carries preprocessing that Network.load does not apply (the model "
        f"{', '.join(done) or 'records its input columns'}); the network takes preprocessed inputs. "
        "Use nnaccel.load_model(path) to predict from raw rows, as nnaccel predict does",
        PreprocessingNotApplied,
        stacklevel=3,
    )


def from_file_config(cls, path: str, config: dict, params: list, backend) -> Network:
    """``cls.from_config`` for a file's config and arrays, with any problem a ValueError naming the file."""
    try:
        return cls.from_config(config, params, backend)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path!r} is not a readable nnaccel model file ({error})") from None


def read_model_file(path: str | os.PathLike, record_names=()) -> tuple[dict, list, dict]:
    """(config, params, records) from an nnaccel ``.npz`` model file, or a ValueError naming the
    file. ``records`` holds each of ``record_names`` that the file has (see ``Network.save``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"model file {path!r} is a folder; give the .npz file")
    if not os.path.isfile(path):
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(folder) and not os.access(folder, os.X_OK):
            raise PermissionError(f"model file {path!r} cannot be read: no permission to search {folder!r}")
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if not zipfile.is_zipfile(path):  # np.load would read a .npy, or refuse a pickle with advice to unpickle
        raise ValueError(f"{path!r} is not an nnaccel model file (not a .npz archive, or truncated)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "config" not in archive.files:
                raise ValueError(f"{path!r} is not an nnaccel model file (no config entry)")
            config = json.loads(str(archive["config"]))
            if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
                raise ValueError(f"{path!r} is not an nnaccel model file")
            if config.get("version", 0) > MODEL_FORMAT_VERSION:
                raise ValueError(f"{path!r} was written by a newer nnaccel (format {config['version']}); upgrade nnaccel")
            if not isinstance(config.get("layers"), list) or len(config["layers"]) < 2:
                raise ValueError(f"{path!r} is not a readable nnaccel model file (its config has no list of layers)")
            depth = len(config["layers"]) - 1
            params = [(archive[f"W{index}"], archive[f"b{index}"]) for index in range(depth)]
            records = {name: json.loads(str(archive[name])) for name in record_names if name in archive.files}
    # zipfile and np.load raise many types for a damaged archive (a flipped flag bit gives
    # NotImplementedError or RuntimeError, a damaged stream zlib.error or struct.error)
    except (
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        OSError,
        TypeError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
        struct.error,
        json.JSONDecodeError,
    ) as error:
        raise ValueError(f"{path!r} is not a readable nnaccel model file (truncated or corrupt: {error})") from error
    except ValueError as error:
        if str(error).startswith(repr(path)):
            raise
        raise ValueError(f"{path!r} is not a readable nnaccel model file ({error})") from error
    return config, params, records
