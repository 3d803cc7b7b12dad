"""``nnaccel train``: the TensorFlow Playground's controls from a terminal, on its six datasets or
on the user's own ``.csv``/``.npy`` data, with checkpoints that resume exactly.

The run is described by one ``settings`` dict (every flag that shapes the result, plus where the
outputs go). A checkpoint stores it with the parameters, the epochs completed, the history and the
training state (the optimizer's step and arrays, the schedule's and early stopping's numbers; see
``nnaccel.nn.checkpoint``), so ``--resume FILE`` rebuilds the same data split and continues with
the batches the uninterrupted run would have drawn (epoch e's order depends only on (seed, e)) and
the same optimizer state: it ends with the same parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.activations import HIDDEN_ACTIVATIONS
from ..data.pipeline import Pipeline, build_pipeline, class_indices
from ..data.playground import CLASSIFICATION, DATASETS, FEATURES, check_features, make_dataset, train_test_split
from ..errors import TrainingInterrupted, WorkersLost
from ..io import atomic_write, check_writable
from ..nn import training

# The Playground's own defaults where it has one (lr 0.03, tanh, hidden 4,2, batch 10, ratio 50 %,
# noise 0, features x1,x2); user data trains on 80 % and is standardised.
DEFAULTS = {
    "dataset": "circle",
    "data": None,
    "label": None,
    "task": "auto",
    "scale": None,  # none for the Playground's datasets, standard for --data
    "samples": 500,
    "noise": 0.0,
    "ratio": None,  # 50 for the Playground's datasets, 80 for --data
    "features": None,  # x1,x2 for the Playground's datasets, every input column for --data
    "hidden": "4,2",
    "activation": "tanh",
    "lr": 0.03,
    "epochs": 500,
    "batch_size": 10,
    "regularization": "none",
    "reg_rate": 0.0,
    "seed": 0,
    "optimizer": "sgd",
    "momentum": None,  # 0.9 for momentum and nesterov; None for the others
    "beta1": None,  # 0.9, 0.999 and 1e-8 for adam and adamw
    "beta2": None,
    "eps": None,
    "weight_decay": None,  # 0.01 for adamw
    "lr_schedule": None,  # a constant rate
    "early_stopping": None,
}
# The optimizers' own hyperparameters: the optimizers each applies to. A flag given for another
# optimizer is refused, so a typo cannot silently train something else.
OPTIMIZER_FLAGS = {
    "momentum": ("momentum", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "eps": ("adam", "adamw"),
    "weight_decay": ("adamw",),
}
# Settings a checkpoint of format 1 (before optimizers) lacks: DEFAULTS' values are what it ran.
ADDED_SETTINGS = ("optimizer", *OPTIMIZER_FLAGS, "lr_schedule", "early_stopping")
# What --resume lets a command line change: the rest would give a different run.
CHANGEABLE_ON_RESUME = ("epochs", "backend", "save", "plot", "json", "checkpoint", "checkpoint_every")
DEFAULT_CHECKPOINT = "nnaccel-checkpoint.npz"
PLOT_FORMATS = ("png", "pdf", "svg")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a network on a Playground dataset or your own data",
        description=(
            "Train a fully connected network with the TensorFlow Playground's controls, on one of its "
            "datasets or on your own .csv/.npy data. Ctrl-C (or SIGTERM) saves a checkpoint you can "
            "continue with --resume."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, help="a Playground dataset (default circle)")
    data.add_argument("--data", metavar="FILE", help=".csv with a header row (last column the label) or .npy (rows are examples)")
    data.add_argument(
        "--label", help="the label column of --data: a header name (or an index such as -1); default the last column"
    )
    data.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        help="for --data: auto (default) treats 0/1 labels, text and a few integer classes as classes, "
        "anything else as regression",
    )
    data.add_argument(
        "--scale",
        choices=("standard", "none"),
        help="standardise inputs (and a regression target) with the training part's mean and std; "
        "default standard for --data, none for datasets",
    )
    data.add_argument("--samples", type=int, help="number of points of a Playground dataset (default 500)")
    data.add_argument("--noise", type=float, help="noise in percent, 0-50 as in the Playground (default 0)")
    data.add_argument(
        "--ratio", type=float, help="training share in percent, the rest is the test set (default 50; 80 for --data)"
    )
    data.add_argument(
        "--features", help=f"comma list of {','.join(FEATURES)} (default x1,x2); with --data, needs two input columns"
    )
    model = parser.add_argument_group("network and training")
    model.add_argument("--hidden", help="hidden layer sizes, e.g. 6,6; 0 for none (default 4,2)")
    model.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, help="hidden activation (default tanh)")
    model.add_argument("--lr", type=float, help="learning rate (default 0.03)")
    model.add_argument("--epochs", type=int, help="passes over the training data (default 500); with --resume, the new total")
    model.add_argument("--batch-size", type=int, help="examples per step; 0 for the full batch (default 10)")
    model.add_argument("--regularization", choices=("none", "l1", "l2"), help="default none")
    model.add_argument("--reg-rate", type=float, help="regularization rate (default 0)")
    model.add_argument("--seed", type=int, help="seed for the data, the split, the weights and the shuffling (default 0)")
    add_optimizer_arguments(parser)
    model.add_argument("--backend", help="numpy, numba, cupy or auto (default: NNACCEL_BACKEND, else auto)")
    model.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="train data-parallel on a Dask cluster: tcp://host:8786, or 'local' for an embedded "
        "LocalCluster (full batch: with --batch-size 0; default: in this process)",
    )
    outputs = parser.add_argument_group("outputs and checkpoints")
    outputs.add_argument("--save", metavar="FILE.npz", help="write the trained model here (for nnaccel predict)")
    outputs.add_argument(
        "--plot", metavar="FILE.png", help="draw the output panel: prediction over the input plane beside the loss curves"
    )
    outputs.add_argument("--json", metavar="FILE", help="write the final metrics and per-epoch history here")
    outputs.add_argument(
        "--checkpoint", metavar="FILE", help="write the training state here every --checkpoint-every epochs and at the end"
    )
    outputs.add_argument("--checkpoint-every", type=int, metavar="N", help="epochs between checkpoints (default 5%% of --epochs)")
    outputs.add_argument("--resume", metavar="FILE", help="continue the run saved in this checkpoint, with its settings")
    outputs.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


SCHEDULE_HELP = (
    "learning-rate schedule, stepped once per epoch from --lr: constant (default); step:S[,G] (times G, "
    "default 0.1, every S epochs); exponential:G (times G each epoch); cosine[:T[,MIN]] (cosine annealing "
    "to MIN, default 0, over T epochs, default --epochs; --resume --epochs N keeps the first run's T); "
    "plateau[:F,P,...] (times F, default 0.1, once the monitored loss has not improved for more than P "
    "epochs, default 10); invscaling[:P] (lr / (t+1)^P, t the examples seen, P 0.5); adaptive (divided "
    "by 5 after 10 epochs without improvement; ends training below 1e-6), both as scikit-learn's. "
    "Arguments go in that order or as name=value, e.g. step:30,0.1 or plateau:factor=0.5,patience=5. "
    "plateau and adaptive monitor the test loss (the held-out part --ratio leaves), else the training loss"
)


def add_optimizer_arguments(parser) -> None:
    """The optimizer, its hyperparameters, the schedule and early stopping."""
    from ..optim import OPTIMIZERS

    group = parser.add_argument_group("optimizer")
    group.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        help="sgd (default: W -= lr dW), momentum or nesterov (SGD with momentum), adam, adamw; "
        "each update is PyTorch's torch.optim class with the same arguments",
    )
    group.add_argument("--momentum", type=float, metavar="F", help="momentum of --optimizer momentum or nesterov (default 0.9)")
    group.add_argument("--beta1", type=float, metavar="F", help="adam/adamw: decay of the first moment (default 0.9)")
    group.add_argument("--beta2", type=float, metavar="F", help="adam/adamw: decay of the second moment (default 0.999)")
    group.add_argument("--eps", type=float, metavar="F", help="adam/adamw: added to the root of the second moment (default 1e-8)")
    group.add_argument(
        "--weight-decay",
        type=float,
        metavar="F",
        help="adamw: decoupled decay, W *= 1 - lr F each step, weights only (default 0.01)",
    )
    group.add_argument("--lr-schedule", metavar="SPEC", help=SCHEDULE_HELP)
    group.add_argument(
        "--early-stopping",
        type=int,
        metavar="N",
        help="stop after N epochs without a lower test loss (the loss on the held-out part "
        "that --ratio leaves, shown as 'test loss') and keep the best epoch's parameters; "
        "that part then chooses the epoch, so its loss is no longer an untouched test score",
    )


# ----- settings -----------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    """'6,6' -> [6, 6]; '' or '0' -> [] (no hidden layer)."""
    text = str(text).strip()
    if text in ("", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated positive integers like 6,6; got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise ValueError(f"--hidden sizes must be positive; got {text!r}")
    return sizes


def parse_features(text: str) -> list[str]:
    names = check_features([name.strip() for name in text.split(",") if name.strip()], " in --features")
    if len(set(names)) != len(names):
        raise ValueError(f"--features lists a feature twice: {text!r}")
    return names


def _given(args, name: str) -> bool:
    return getattr(args, name, None) is not None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_from_arguments(args) -> dict:
    """Every flag with its default filled in and checked: the whole description of a new run."""
    if _given(args, "data") and _given(args, "dataset"):
        raise ValueError("give either --dataset or --data, not both")
    # the run's settings record: each flag's own type (a path, a number, a list), saved as JSON
    settings: dict[str, Any] = {
        name: (getattr(args, name) if _given(args, name) else default) for name, default in DEFAULTS.items()
    }
    if settings["data"] is not None:
        settings["dataset"] = None
        for name in ("samples", "noise"):
            if _given(args, name):
                raise ValueError(f"{_flag(name)} applies to the Playground datasets, not to --data")
        settings["data"] = os.path.abspath(settings["data"])
        settings["ratio"] = 80.0 if settings["ratio"] is None else settings["ratio"]
        settings["scale"] = settings["scale"] or "standard"
    else:
        for name in ("label", "task"):
            if _given(args, name):
                raise ValueError(f"{_flag(name)} applies to --data, not to the Playground datasets")
        settings["ratio"] = 50.0 if settings["ratio"] is None else settings["ratio"]
        settings["scale"] = settings["scale"] or "none"
        settings["features"] = settings["features"] or "x1,x2"
    settings["features"] = parse_features(settings["features"]) if settings["features"] else None
    settings["hidden"] = parse_sizes(settings["hidden"])
    fill_optimizer_settings(args, settings)
    settings["backend"] = args.backend
    settings["checkpoint_every"] = args.checkpoint_every
    for name in ("save", "plot", "json", "checkpoint"):
        settings[name] = os.path.abspath(getattr(args, name)) if _given(args, name) else None
    check_settings(settings)
    return settings


def fill_optimizer_settings(args, settings: dict) -> None:
    """The chosen optimizer's hyperparameters, given or its defaults (those of ``nnaccel.optim``);
    None for the others, whose flags are refused. A constant --lr-schedule is stored as None."""
    from ..optim import resolve_optimizer, resolve_schedule

    name = settings["optimizer"]
    defaults = resolve_optimizer(name)
    for flag, optimizers in OPTIMIZER_FLAGS.items():
        if name in optimizers:
            settings[flag] = getattr(args, flag) if _given(args, flag) else getattr(defaults, flag)
        elif _given(args, flag):
            raise ValueError(f"{_flag(flag)} applies to --optimizer {' or '.join(optimizers)}, not to {name}")
    text = settings["lr_schedule"]
    if text is not None:
        try:
            settings["lr_schedule"] = text.strip() if resolve_schedule(text) is not None else None
        except ValueError as error:
            raise ValueError(f"--lr-schedule {text!r}: {error}") from None


def check_optimizer_settings(settings: dict) -> None:
    """Refuse an optimizer, schedule or early stopping that cannot work, naming the flag."""
    from ..optim import OPTIMIZERS, resolve_schedule

    name = settings["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    for flag, optimizers in OPTIMIZER_FLAGS.items():
        value = settings[flag]
        if name not in optimizers:
            if value is not None:
                raise ValueError(f"{_flag(flag)} applies to --optimizer {' or '.join(optimizers)}, not to {name}")
            continue
        if not _finite_number(value):
            raise ValueError(f"{_flag(flag)} must be a finite number; got {value!r}")
    if name in ("momentum", "nesterov") and not settings["momentum"] > 0:
        raise ValueError(f"--momentum must be > 0 such as 0.9 (--optimizer sgd has none); got {settings['momentum']:g}")
    for flag in ("beta1", "beta2"):
        if settings[flag] is not None and not 0 <= settings[flag] < 1:
            raise ValueError(f"{_flag(flag)} must be in [0, 1) such as 0.9; got {settings[flag]:g}")
    if settings["eps"] is not None and not settings["eps"] > 0:
        raise ValueError(f"--eps must be > 0 such as 1e-8; got {settings['eps']:g}")
    if settings["weight_decay"] is not None and not settings["weight_decay"] >= 0:
        raise ValueError(f"--weight-decay must be >= 0 such as 0.01; got {settings['weight_decay']:g}")
    if settings["lr_schedule"] is not None:
        try:
            resolve_schedule(settings["lr_schedule"])
        except (ValueError, AttributeError) as error:
            raise ValueError(f"--lr-schedule {settings['lr_schedule']!r}: {error}") from None
    patience = settings["early_stopping"]
    if patience is not None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"--early-stopping is a number of epochs >= 1 such as 20; got {patience!r}")
        if settings["ratio"] >= 100:
            raise ValueError(
                "--early-stopping watches the test loss, on the held-out part --ratio leaves; "
                "--ratio 100 leaves none: give a --ratio below 100"
            )


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def build_optimizer(settings: dict):
    """The ``nnaccel.optim`` object of the settings' optimizer and hyperparameters."""
    from ..optim import SGD, Adam, AdamW

    name = settings["optimizer"]
    if name in ("momentum", "nesterov"):
        return SGD(momentum=settings["momentum"], nesterov=name == "nesterov")
    if name == "adam":
        return Adam(settings["beta1"], settings["beta2"], settings["eps"])
    if name == "adamw":
        return AdamW(settings["beta1"], settings["beta2"], settings["eps"], settings["weight_decay"])
    return SGD()


def check_settings(settings: dict) -> None:
    """Refuse values that cannot work, before any data is made or read."""
    if not 0.0 <= settings["noise"] <= 50.0:
        raise ValueError(f"--noise is a percent in [0, 50]; got {settings['noise']:g}")
    if not 0.0 < settings["ratio"] <= 100.0:
        raise ValueError(f"--ratio is the training percent in (0, 100]; got {settings['ratio']:g}")
    if settings["samples"] < 2:
        raise ValueError(f"--samples must be at least 2; got {settings['samples']}")
    if settings["epochs"] < 1:
        raise ValueError(f"--epochs must be at least 1; got {settings['epochs']}")
    if settings["batch_size"] < 0:
        raise ValueError(f"--batch-size must be >= 0 (0 means the full batch); got {settings['batch_size']}")
    if not (settings["lr"] > 0 and math.isfinite(settings["lr"])):
        raise ValueError(f"--lr must be a positive number; got {settings['lr']:g}")
    if not (settings["reg_rate"] >= 0 and math.isfinite(settings["reg_rate"])):
        raise ValueError(f"--reg-rate must be >= 0; got {settings['reg_rate']:g}")
    if settings["regularization"] == "none" and settings["reg_rate"] > 0:
        raise ValueError(
            f"--reg-rate {settings['reg_rate']:g} has no effect with --regularization none; add --regularization l1 or l2"
        )
    check_optimizer_settings(settings)
    if settings["checkpoint_every"] is not None and settings["checkpoint_every"] < 1:
        raise ValueError(f"--checkpoint-every must be at least 1; got {settings['checkpoint_every']}")
    if settings["backend"] is not None:
        from ..backends import check_name

        check_name(settings["backend"])


def check_outputs(settings: dict) -> None:
    """Every output can be written (its folder exists, it overwrites no input), before training."""
    inputs = {settings.get("data"), settings.get("resume")} - {None}
    named = [settings.get(name) for name in ("save", "plot", "json", "checkpoint") if settings.get(name)]
    if len(set(named)) != len(named):
        raise ValueError("--save, --plot, --json and --checkpoint must name different files")
    for name in ("save", "plot", "json", "checkpoint"):
        path = settings.get(name)
        if path is None:
            continue
        check_writable(path, f"--{name}")
        if path == settings.get("data"):
            raise ValueError(f"--{name} {path!r} would overwrite the input data")
        if path in inputs and name != "checkpoint":
            raise ValueError(f"--{name} {path!r} would overwrite the checkpoint being resumed")
    if settings.get("plot"):
        extension = os.path.splitext(settings["plot"])[1].lower().lstrip(".")
        if extension not in PLOT_FORMATS:
            raise ValueError(f"--plot {settings['plot']!r}: name a .png (or .pdf/.svg) file")
        from .. import plot

        plot.check_available()


def settings_for_resume(args, checkpoint_settings: dict, path: str) -> dict:
    """The checkpoint's settings, with the few changes a resumed run may make."""
    changed = [
        _flag(name)
        for name in list(DEFAULTS) + ["features", "label", "scale"]
        if name not in CHANGEABLE_ON_RESUME and _given(args, name)
    ]
    if changed:
        raise ValueError(
            f"{', '.join(sorted(set(changed)))} cannot change when resuming: the checkpoint fixes the data and "
            f"the hyperparameters; only {', '.join(_flag(name) for name in CHANGEABLE_ON_RESUME)} may be given with --resume"
        )
    settings = dict(checkpoint_settings)
    for name in ADDED_SETTINGS:
        settings.setdefault(name, DEFAULTS[name])
    for name in CHANGEABLE_ON_RESUME:
        if _given(args, name):
            value = getattr(args, name)
            settings[name] = os.path.abspath(value) if name in ("save", "plot", "json", "checkpoint") else value
    if not _given(args, "checkpoint"):
        # keep checkpointing into the file being resumed, not the path stored inside it (which
        # may be another copy, or a folder that is gone)
        settings["checkpoint"] = path
    settings["resume"] = path
    try:
        check_settings(settings)
    except (KeyError, TypeError) as error:  # a setting missing or of the wrong type: not from nnaccel
        raise ValueError(f"{path!r} is a damaged checkpoint: its settings are incomplete or invalid ({error!r})") from None
    return settings


def fingerprint(path: str) -> str:
    """sha256 of a data file, so a resumed run can tell the file changed under it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----- data ---------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """The data of a run: raw inputs (k, m) and labels (m,) of each part, and the network's X, Y."""

    name: str
    pipeline: Pipeline
    raw_train: np.ndarray
    labels_train: np.ndarray
    raw_test: np.ndarray
    labels_test: np.ndarray
    domain: tuple[float, float] | None

    def __post_init__(self):
        self.X_train = self.pipeline.inputs_of(self.raw_train)
        self.Y_train = self.pipeline.targets_of(self.labels_train)
        self.X_test = self.pipeline.inputs_of(self.raw_test)
        self.Y_test = self.pipeline.targets_of(self.labels_test)

    @property
    def has_test(self) -> bool:
        return self.raw_test.shape[1] > 0


def prepare_data(settings: dict) -> Prepared:
    """Make or read the data, split it with the seed, and fit the preprocessing to the training part."""
    from ..data.files import read_table

    standardize = settings["scale"] == "standard"
    if settings["data"] is not None:
        table = read_table(settings["data"])
        label = table.names[table.column_index(settings["label"])] if settings["label"] is not None else table.names[-1]
        inputs = [name for name in table.names if name != label]
        if not inputs:
            raise ValueError(f"{settings['data']!r} has only the label column {label!r}; it needs input columns too")
        raw, labels = table.numbers(inputs).T, table.labels(label)
        check_columns_fit(settings["data"], inputs, raw)
        if raw.shape[1] < 2:
            raise ValueError(f"{settings['data']!r} has {raw.shape[1]} example; training needs at least 2")
        name, task, domain = os.path.basename(settings["data"]), settings["task"], None
    else:
        raw, Y = make_dataset(settings["dataset"], settings["samples"], settings["noise"] / 100.0, settings["seed"])
        labels, inputs, label, domain = Y[0], ["x1", "x2"], "label", (-6.0, 6.0)
        name = settings["dataset"]
        task = "classification" if settings["dataset"] in CLASSIFICATION else "regression"
    raw_train, labels_train, raw_test, labels_test = train_test_split(
        raw, labels.reshape(1, -1), settings["ratio"] / 100.0, settings["seed"]
    )
    pipeline = build_pipeline(
        raw_train,
        labels_train[0],
        all_labels=labels,
        inputs=inputs,
        task=task,
        standardize=standardize,
        features=settings["features"],
        label=label,
    )
    return Prepared(name, pipeline, raw_train, labels_train[0], raw_test, labels_test[0], domain)


def check_columns_fit(path: str, names: list[str], raw: np.ndarray) -> None:
    """Refuse a column with values float32 (the network's dtype) cannot hold, such as 1e300:
    its scale would overflow to infinity and the column would train as zeros."""
    limit = float(np.finfo(np.float32).max)
    for name, column in zip(names, raw):
        largest = float(np.max(np.abs(column))) if column.size else 0.0
        if largest > limit:
            raise ValueError(
                f"{path!r}: column {name!r} holds {largest:g}, beyond what float32 can hold "
                f"(about {limit:.3g}); rescale the column"
            )


# ----- progress -----------------------------------------------------------------------------------
class Progress:
    """A progress bar on stderr: redrawn in place on a terminal (at most 10 times a second),
    one line per tenth of the run otherwise (logs, pipes)."""

    def __init__(self, epochs: int, first_epoch: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.epochs, self.enabled = epochs, enabled
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.shown = 0.0
        self.step = max(1, (epochs - first_epoch) // 10)
        self.first_epoch = first_epoch

    def update(self, epoch: int, history: dict) -> None:
        if not self.enabled:
            return
        done = epoch + 1
        now = time.perf_counter()
        last = done == self.epochs
        if self.interactive:
            if not last and now - self.shown < 0.1:
                return
            self.shown = now
            print("\r" + self.line(done, history, now), end="\n" if last else "", file=self.stream, flush=True)
        elif last or (done - self.first_epoch) % self.step == 0:
            print(self.line(done, history, now), file=self.stream, flush=True)

    def line(self, done: int, history: dict, now: float) -> str:
        width = 20
        filled = int(width * done / self.epochs)
        text = f"epoch {done}/{self.epochs} [{'#' * filled}{'.' * (width - filled)}] training loss {history['loss'][-1]:.5f}"
        if history.get("val_loss"):
            text += f"  test loss {history['val_loss'][-1]:.5f}"
        return text + f"  {now - self.started:.1f}s"


# ----- signals ------------------------------------------------------------------------------------
class InterruptSignals:
    """While active, SIGINT and SIGTERM raise KeyboardInterrupt (training turns it into
    TrainingInterrupted at a clean epoch boundary); ``received`` says which arrived."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.received: int | None = None
        self.previous: dict = {}

    def _handle(self, number, frame):
        self.received = number
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exception):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous.clear()
        return False

    def ignored(self):
        """A context in which both signals are ignored (writing the final checkpoint)."""
        return _Ignored(self.SIGNALS)


class _Ignored:
    def __init__(self, names):
        self.names, self.previous = names, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.names:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, signal.SIG_IGN)

    def __exit__(self, *exception):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return False


def free_checkpoint_path() -> str:
    """Where an interrupted run without --checkpoint saves itself: a new file in the current folder."""
    path, count = os.path.abspath(DEFAULT_CHECKPOINT), 1
    while os.path.exists(path):
        count += 1
        path = os.path.abspath(f"nnaccel-checkpoint-{count}.npz")
    return path


# ----- the run ------------------------------------------------------------------------------------
def run(args) -> int:
    settings, saved = run_settings(args)
    data = prepare_data(settings)
    if settings["early_stopping"] is not None and not data.has_test:
        raise ValueError(
            f"--early-stopping watches the test loss, but --ratio {settings['ratio']:g} leaves none of "
            f"the {data.X_train.shape[1]} examples for testing (no test examples): give a lower --ratio"
        )
    if saved is not None:
        network, history, completed, state, remaining = resumed_run(saved, settings)
    else:
        network, history, completed, state = new_network(data, settings), {"loss": []}, 0, training.TrainingState()
        remaining = settings["epochs"]
    if settings["checkpoint"] is not None and settings["checkpoint_every"] is None:
        settings["checkpoint_every"] = max(1, settings["epochs"] // 20)
    write_checkpoint = checkpoint_writer(settings, network, data, state)
    optimizer = build_optimizer(settings)
    if remaining and not getattr(args, "scheduler", None):
        # compile (or load from Numba's cache) before the clock starts: examples/s is training alone
        batch = settings["batch_size"] or None
        batch = batch if batch and batch < data.X_train.shape[1] else None
        training.prepare_with_notice(network, batch, optimizer=optimizer)
    progress = Progress(settings["epochs"], completed, enabled=not args.quiet)
    signals = InterruptSignals()
    started = time.perf_counter()
    try:
        if remaining:
            with signals:
                on_epoch_end = epoch_callback(settings, progress, write_checkpoint)
                history = fit_run(args, network, data, settings, optimizer, completed, history, state, on_epoch_end)
    except TrainingInterrupted as stop:
        return save_interrupted(stop, settings, signals, write_checkpoint)
    except WorkersLost as lost:
        return save_after_lost_workers(lost, args, settings, signals, progress, write_checkpoint)
    except KeyboardInterrupt:
        return interrupted_between_epochs(settings, signals)
    seconds = time.perf_counter() - started
    trained = len(history["loss"]) - completed
    metrics = evaluate(network, data, settings, trained, seconds, history)
    print_summary(metrics, data)
    write_outputs(settings, network, data, history, metrics, write_checkpoint)
    return 0


def run_settings(args) -> tuple:
    """(settings, the checkpoint being resumed or None), checked, with every output path checked
    and the data file's fingerprint taken, before any work."""
    from ..nn import checkpoint

    saved = None
    if args.resume:
        saved = checkpoint.load(args.resume, backend="numpy", checkpoint=True)
        if saved.training is None:  # never: load(checkpoint=True) refuses a file without one
            raise ValueError(f"{args.resume!r} holds no training record to resume from")
        settings = settings_for_resume(args, saved.training["settings"], os.path.abspath(args.resume))
    else:
        settings = settings_from_arguments(args)
    check_outputs(settings)
    if getattr(args, "scheduler", None) and settings["batch_size"]:
        raise ValueError("--scheduler trains by full-batch gradient descent on the Dask cluster; add --batch-size 0")
    if settings["data"] is not None:
        from ..data.files import check_readable

        digest = fingerprint(check_readable(settings["data"]))
        if saved is not None and digest != settings.get("data_sha256"):
            raise ValueError(f"{settings['data']!r} changed since the checkpoint was written; resume needs the same data")
        settings["data_sha256"] = digest
    return settings, saved


def checkpoint_writer(settings: dict, network, data: Prepared, state):
    """``write_checkpoint(path, epochs_completed, history)``: the run's state, as --resume reads it."""
    from ..nn import checkpoint

    def write_checkpoint(path: str, epochs_completed: int, history: dict) -> None:
        record = {
            "epochs_completed": epochs_completed,
            "history": history,
            "settings": {key: value for key, value in settings.items() if key != "resume"},
        }
        if run_ends(state, settings):
            record["stopped"] = True  # training ended here: a resumed run trains no further
        checkpoint.save(path, network, pipeline=data.pipeline.to_dict(), training=record, state=state)

    return write_checkpoint


def epoch_callback(settings: dict, progress, write_checkpoint):
    """``on_epoch_end``: the progress line, and a checkpoint every --checkpoint-every epochs."""

    def on_epoch_end(epoch: int, history: dict) -> None:
        progress.update(epoch, history)
        every = settings["checkpoint_every"]
        if settings["checkpoint"] is not None and (epoch + 1) % every == 0 and epoch + 1 < settings["epochs"]:
            write_checkpoint(settings["checkpoint"], epoch + 1, history)

    return on_epoch_end


def fit_run(args, network, data: Prepared, settings: dict, optimizer, completed: int, history: dict, state, on_epoch_end) -> dict:
    """Train the remaining epochs, in this process or data-parallel on a Dask cluster; the history."""
    fit = network.fit
    if getattr(args, "scheduler", None):  # the same run, data-parallel on a Dask cluster
        from ..distributed import fit as distributed_fit

        fit = functools.partial(distributed_fit, network, scheduler=args.scheduler, worker_backend=settings["backend"] or "auto")
    l1 = settings["reg_rate"] if settings["regularization"] == "l1" else 0.0
    l2 = settings["reg_rate"] if settings["regularization"] == "l2" else 0.0
    return fit(
        data.X_train,
        data.Y_train,
        epochs=settings["epochs"],
        lr=settings["lr"],
        batch_size=settings["batch_size"] or None,
        l1=l1,
        l2=l2,
        validation=(data.X_test, data.Y_test) if data.has_test else None,
        seed=settings["seed"],
        optimizer=optimizer,
        lr_schedule=settings["lr_schedule"],
        early_stopping=settings["early_stopping"],
        start_epoch=completed,
        history=history,
        state=state,
        on_epoch_end=on_epoch_end,
    )


def save_interrupted(stop: TrainingInterrupted, settings: dict, signals, write_checkpoint) -> int:
    """Ctrl-C or SIGTERM at an epoch boundary: save the state there and say how to resume."""
    with signals.ignored():
        path = settings["checkpoint"] or free_checkpoint_path()
        write_checkpoint(path, stop.epoch, stop.history)
    number = signals.received or signal.SIGINT
    print(
        f"\nnnaccel: interrupted by {signal.Signals(number).name} in epoch {stop.epoch + 1} of {settings['epochs']}; "
        f"the state after {stop.epoch} epochs is saved in {path}. Resume with: nnaccel train --resume {path}",
        file=sys.stderr,
    )
    return 128 + number


def save_after_lost_workers(lost: WorkersLost, args, settings: dict, signals, progress, write_checkpoint) -> int:
    """The Dask cluster failed, not the input (exit 1): save the run so far and say how to resume."""
    epoch = lost.epoch
    if epoch is None:  # never from fit, which names the epoch to resume from; nothing to save
        raise lost
    with signals.ignored():
        path = settings["checkpoint"] or free_checkpoint_path()
        write_checkpoint(path, epoch, lost.history)
    lead = "\n" if progress.enabled and progress.interactive else ""  # end a progress bar redrawn in place
    print(
        f"{lead}nnaccel: error: {lost.problem} during epoch {epoch + 1} of "
        f"{settings['epochs']}; the state after {epoch} epochs is saved in {path}. Restart the cluster's "
        f"workers and resume with: nnaccel train --resume {path} --scheduler {args.scheduler}",
        file=sys.stderr,
    )
    return 1


def interrupted_between_epochs(settings: dict, signals) -> int:
    """The signal landed between fit's clean epoch boundaries (a few bookkeeping instructions
    between epochs), where the parameters and the history may disagree: save nothing new."""
    number = signals.received or signal.SIGINT
    path = settings["checkpoint"] if settings["checkpoint"] and os.path.exists(settings["checkpoint"]) else None
    print(
        f"\nnnaccel: interrupted by {signal.Signals(number).name} between epochs; "
        + (
            f"the last checkpoint is {path}. Resume with: nnaccel train --resume {path}"
            if path
            else "no checkpoint was written (use --checkpoint FILE)"
        ),
        file=sys.stderr,
    )
    return 128 + number


def new_network(data: Prepared, settings: dict):
    """The network of a new run, with the seed's initial weights."""
    import nnaccel as nna

    return nna.Network(
        [data.pipeline.n_inputs, *settings["hidden"], data.pipeline.n_outputs],
        activation=settings["activation"],
        output=data.pipeline.output,
        seed=settings["seed"],
        backend=settings["backend"],
    )


def resumed_run(saved, settings: dict) -> tuple:
    """(network, history, epochs completed, training state, epochs left to train) of a checkpoint,
    on the run's backend. A run that training itself ended (early stopping, the adaptive
    schedule) has no epochs left; it holds the best epoch's parameters, as the finished run does."""
    import nnaccel as nna

    from ..nn import checkpoint

    network = nna.Network(
        saved.network.layers,
        saved.network.activations or "tanh",
        saved.network.output,
        seed=saved.network.seed,
        backend=settings["backend"],
        dtype=saved.network.dtype,
    )
    network.set_params(saved.network.get_params())
    history = saved.training["history"]
    completed = int(saved.training["epochs_completed"])
    # a format-1 checkpoint ran plain gradient descent at a constant rate and recorded no rates
    history.setdefault("lr", [settings["lr"]] * completed)
    state = saved.state
    if settings["epochs"] < completed:
        raise ValueError(f"--epochs {settings['epochs']} is less than the {completed} epochs the checkpoint has completed")
    stopped = bool(saved.training.get("stopped"))
    extended = settings["epochs"] > completed
    if stopped and settings["epochs"] != saved.training["settings"]["epochs"]:
        raise ValueError(
            f"{settings['resume']!r} holds a run that ended itself after {completed} epochs "
            "(early stopping or the adaptive schedule); it cannot train further: start a new run"
        )
    if not stopped and extended and completed == saved.training["settings"]["epochs"] and restored_best(state, completed):
        raise ValueError(
            f"{settings['resume']!r} holds a finished run that ended with the parameters of its best "
            f"epoch ({state.stopping.best_epoch}), not of its last ({completed}), so it cannot continue "
            "exactly: start a new run with more --epochs"
        )
    if stopped and restored_best(state, completed):
        network.set_params(state.stopping.best_params)  # where the uninterrupted run ended
    return network, history, completed, checkpoint.state_on(network, state), 0 if stopped else settings["epochs"] - completed


def restored_best(state, completed: int) -> bool:
    """True when early stopping keeps another epoch's parameters than the last of ``completed``."""
    stopping = state.stopping
    return stopping is not None and bool(stopping.best_params) and stopping.best_epoch != completed


def run_ends(state, settings: dict) -> bool:
    """True once training has ended itself: early stopping's patience is spent, or the adaptive
    schedule has finished (the conditions on which ``fit`` stops)."""
    stopping, schedule = state.stopping, state.schedule
    if stopping is not None and settings["early_stopping"] is not None and stopping.bad_epochs >= settings["early_stopping"]:
        return True
    return schedule is not None and schedule.finished


def evaluate(network, data: Prepared, settings: dict, trained: int, seconds: float, history: dict) -> dict:
    """The final numbers: losses, accuracy (or R^2), time, examples per second, backend, and the
    epochs run (``last_epoch``) and, with early stopping, the one whose parameters are kept."""
    metrics = {
        "data": data.name,
        "task": data.pipeline.task,
        "backend": network.backend.name,
        "dtype": network.dtype.name,
        "layers": network.layers,
        "activation": settings["activation"],
        "output": network.output,
        "optimizer": settings["optimizer"],
        "epochs": settings["epochs"],
        "epochs_this_run": trained,
        "last_epoch": len(history["loss"]),
        "best_epoch": history.get("best_epoch"),
        "train_examples": int(data.X_train.shape[1]),
        "test_examples": int(data.X_test.shape[1]),
        "train_loss": network.loss(data.X_train, data.Y_train),
        "test_loss": network.loss(data.X_test, data.Y_test) if data.has_test else None,
        "seconds": seconds,
        "examples_per_second": trained * data.X_train.shape[1] / seconds if trained and seconds > 0 else None,
    }
    parts = [("train", data.raw_train, data.labels_train)] + (
        [("test", data.raw_test, data.labels_test)] if data.has_test else []
    )
    for part, raw, labels in parts:
        predicted = data.pipeline.predictions(network.forward(data.pipeline.inputs_of(raw)))
        if data.pipeline.task == "classification":
            classes = data.pipeline.class_list
            truth = np.asarray(classes, dtype=object)[class_indices(labels, classes)]
            metrics[f"{part}_accuracy"] = float(np.mean(np.asarray(predicted, dtype=object) == truth))
        else:
            truth = np.asarray(labels, dtype=np.float64)
            spread = np.sum((truth - truth.mean()) ** 2)
            metrics[f"{part}_r2"] = float(1.0 - np.sum((truth - predicted) ** 2) / spread) if spread > 0 else None
    return metrics


def print_summary(metrics: dict, data: Prepared) -> None:
    layers = "-".join(map(str, metrics["layers"]))
    print(
        f"{metrics['data']}: {metrics['task']}, network {layers} ({metrics['activation']} hidden, "
        f"{metrics['output']} output) on {metrics['backend']} ({metrics['dtype']})"
    )
    speed = f", {metrics['examples_per_second']:,.0f} examples/s" if metrics["examples_per_second"] else ""
    print(
        f"{metrics['epochs_this_run']} epochs in {metrics['seconds']:.2f} s{speed} "
        f"({metrics['train_examples']} training, {metrics['test_examples']} test examples)"
    )
    if metrics["last_epoch"] < metrics["epochs"]:
        print(f"training ended itself after epoch {metrics['last_epoch']} of {metrics['epochs']}")
    if metrics["best_epoch"] is not None:
        print(f"early stopping: kept the parameters of epoch {metrics['best_epoch']}, the lowest test loss")
    from ..plot import final_loss_text  # cheap: plot.py imports matplotlib only to draw

    print(final_loss_text(metrics["train_loss"], metrics["test_loss"]))
    score = "accuracy" if metrics["task"] == "classification" else "r2"
    shown = "accuracy" if score == "accuracy" else "R^2"
    values = [(part, metrics.get(f"{part}_{score}")) for part in ("train", "test")]
    print(
        "   ".join(
            f"{'training' if part == 'train' else 'test'} {shown} {value:.4f}" for part, value in values if value is not None
        )
    )


def json_history(history: dict) -> dict:
    """The per-epoch history of ``--json``: epoch numbers, losses and learning rates, and with
    early stopping the best and the last epoch (counted from 1)."""
    report = {
        "epoch": list(range(1, len(history["loss"]) + 1)),
        "train_loss": list(history["loss"]),
        "test_loss": list(history.get("val_loss", [])),
        "lr": list(history.get("lr", [])),
    }
    for key in ("best_epoch", "last_epoch"):
        if key in history:
            report[key] = history[key]
    return report


def write_outputs(settings, network, data: Prepared, history, metrics, write_checkpoint) -> None:
    from ..nn import checkpoint

    if settings["checkpoint"] is not None:
        write_checkpoint(settings["checkpoint"], len(history["loss"]), history)
    if settings["save"]:
        checkpoint.save(
            settings["save"],
            network,
            pipeline=data.pipeline.to_dict(),
            trained=checkpoint.trained_record(settings, network, history),
        )
    if settings["json"]:
        public = {key: value for key, value in settings.items() if key not in ("resume",)}
        payload = json.dumps({"metrics": metrics, "history": json_history(history), "settings": public}, indent=2).encode()
        atomic_write(settings["json"], lambda handle: handle.write(payload))
    if settings["plot"]:
        from .. import plot

        task = "classifier" if data.pipeline.task == "classification" else "regression"
        score = (
            f"test accuracy {metrics['test_accuracy']:.3f}"
            if "test_accuracy" in metrics
            else f"test R² {metrics['test_r2']:.3f}"
            if metrics.get("test_r2") is not None
            else ""
        )
        optimizer = "" if settings["optimizer"] == "sgd" else f"{settings['optimizer']}, "
        title = (
            f"{data.name}: {'-'.join(map(str, network.layers))} {task}, {settings['activation']}, "
            f"{optimizer}lr {settings['lr']:g}, {settings['epochs']} epochs" + (f"; {score}" if score else "")
        )
        plot.save_training_plot(
            settings["plot"],
            network,
            data.pipeline,
            train=(data.raw_train, data.labels_train),
            test=(data.raw_test, data.labels_test) if data.has_test else None,
            history=json_history(history),
            final_loss=(metrics["train_loss"], metrics["test_loss"]),
            title=title,
            domain=data.domain,
        )
