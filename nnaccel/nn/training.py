"""Gradient-descent training: full batch or seeded mini-batches, L1/L2, validation, divergence guard.

The loop reads one number from the backend per epoch (the epoch's loss), so on a GPU nothing
synchronises inside a step. Data given as a source (files, zarr or Dask arrays, chunk iterables;
see ``nnaccel.data.sources``) is read chunk by chunk along m, so memory is bounded by the chunk.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..core import background
from ..core.validation import check_non_negative, check_positive, check_X, check_Y
from ..data.orders import permutation
from ..data.sources import (
    DataSource,
    as_source,
    batch_blocks,
    check_source,
    chunk_order,
    default_chunk_columns,
    device_chunks,
    host_chunks,
    prefetch,
)
from ..errors import TrainingDiverged, TrainingInterrupted
from ..optim import (
    EarlyStopping,
    Hyperparameters,
    OptimizerState,
    Schedule,
    ScheduleState,
    StoppingState,
    resolve_early_stopping,
    resolve_optimizer,
    resolve_schedule,
)

if TYPE_CHECKING:
    from ..backends.plans import Plan


@dataclass
class TrainingState:
    """What a run carries from epoch to epoch besides the parameters and the history: the
    optimizer's state, the schedule's and early stopping's (each None when unused). A caller that
    checkpoints passes one to ``fit`` and saves it from ``on_epoch_end``; passing a saved one back
    (with ``start_epoch`` and ``history``) resumes exactly.

    ``optimizer`` is a host copy, read from the plan by ``capture_optimizer`` (and, when given to
    ``fit``, loaded into the plan at the start).
    """

    optimizer: OptimizerState | None = None
    schedule: ScheduleState | None = None
    stopping: StoppingState | None = None
    _read_optimizer: Callable[[], OptimizerState] | None = field(default=None, repr=False, compare=False)

    def schedule_state(self) -> ScheduleState:
        """``schedule``, which a run with a schedule starts at its first epoch."""
        if self.schedule is None:
            raise RuntimeError("the run has a learning-rate schedule but no schedule state")
        return self.schedule

    def stopping_state(self) -> StoppingState:
        """``stopping``, which a run with early stopping starts at its first epoch."""
        if self.stopping is None:
            raise RuntimeError("the run stops early but has no early-stopping state")
        return self.stopping

    def capture_optimizer(self) -> OptimizerState | None:
        """The optimizer's state now, as NumPy arrays (also kept in ``optimizer``)."""
        if self._read_optimizer is not None:
            self.optimizer = self._read_optimizer()
        return self.optimizer


@dataclass(frozen=True)
class RunSettings:
    """How ``run_epochs`` moves from epoch to epoch: the base hyperparameters, the optimizer's
    plan, the schedule (None: constant rate), early stopping (None: run every epoch) and the
    training examples per epoch (0 when not known before the first epoch)."""

    hyper: Hyperparameters
    plan: Plan
    schedule: Schedule | None = None
    stopping: EarlyStopping | None = None
    examples: int = 0


def epoch_order(seed: int, epoch: int, m: int) -> np.ndarray:
    """The shuffled column order (m,) of one epoch: a function of (seed, epoch) alone, so a resumed
    run draws exactly the batches an uninterrupted one would. ``Generator.permutation(m)``'s order,
    held as int32 where m allows: half the memory of int64, 40 MB of an epoch's peak at m = 1e7."""
    return permutation([seed, epoch], m, np.int32 if m <= np.iinfo(np.int32).max else np.int64)


class EpochOrders:
    """``epoch_order(seed, epoch, m)`` for the epochs of one run, each next epoch's drawn on a
    background thread while this one trains (a permutation of m indices is a sizeable part of a
    small network's epoch). Up to ``PREFETCH_LIMIT`` examples only: beyond, the second order of m
    indices would cost more memory than its time is worth."""

    PREFETCH_LIMIT = 1 << 22

    def __init__(self, seed: int, m: int, epochs: int):
        self.seed, self.m, self.epochs = seed, m, epochs
        self.lookahead = background.Lookahead(epoch_order)

    def __call__(self, epoch: int) -> np.ndarray:
        """The order (m,) of ``epoch``."""
        ahead = self.m <= self.PREFETCH_LIMIT and epoch + 1 < self.epochs
        return self.lookahead((self.seed, epoch, self.m), (self.seed, epoch + 1, self.m) if ahead else None)


def check_hyperparameters(epochs, lr, batch_size, l1, l2) -> None:
    check_positive(epochs, "epochs", numbers.Integral)
    check_positive(lr, "lr (the learning rate)")
    if not math.isfinite(lr):
        raise ValueError(f"lr (the learning rate) must be finite; got {lr!r}")
    if batch_size is not None:
        check_positive(batch_size, "batch_size", numbers.Integral)
    check_non_negative(l1, "l1")
    check_non_negative(l2, "l2")


def check_run(optimizer, lr_schedule, early_stopping, validation) -> tuple:
    """(optimizer, schedule or None, early stopping or None) from ``fit``'s arguments, each checked
    before any work; early stopping on the validation loss needs ``validation``."""
    optimizer = resolve_optimizer(optimizer)
    schedule = resolve_schedule(lr_schedule)
    stopping = resolve_early_stopping(early_stopping)
    if stopping is not None and stopping.needs_validation and validation is None:
        raise ValueError("early_stopping watches the validation loss: pass validation=(X_validation, Y_validation) too")
    return optimizer, schedule, stopping


def fit(
    network,
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
    state: TrainingState | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``network`` in place; see ``Network.fit``. Returns the history dict.

    ``start_epoch``, ``history``, ``state`` and ``on_epoch_end(epoch, history)`` let a caller
    checkpoint and resume: epoch e's batches depend only on (seed, e), and ``state`` carries the
    optimizer's, the schedule's and early stopping's numbers.
    """
    check_hyperparameters(epochs, lr, batch_size, l1, l2)
    optimizer, schedule, stopping = check_run(optimizer, lr_schedule, early_stopping, validation)
    architecture = network.architecture
    passes = max(epochs - start_epoch, 1)
    source = as_source(X, Y)  # None for in-memory arrays; else read chunk by chunk along m
    if source is None:
        X = check_X(X, architecture)
        Y = check_Y(Y, architecture, X.shape[1])
    else:
        check_source(source, architecture, passes)
    if validation is not None:
        validation = _checked_validation(validation, architecture, passes)

    if source is None:
        plan, run_epoch = _in_memory_epochs(network, optimizer, X, Y, batch_size, shuffle, seed, epochs)
        examples = X.shape[1]
    else:
        plan, run_epoch = _streamed_epochs(network, optimizer, source, batch_size, shuffle, seed)
        examples = source.m or 0
    measure_validation = _validation_measure(network, validation) if validation is not None else None
    settings = RunSettings(Hyperparameters(lr, l1, l2), plan, schedule, stopping, examples)
    return run_epochs(
        network,
        run_epoch,
        measure_validation,
        settings,
        epochs=epochs,
        progress=progress,
        start_epoch=start_epoch,
        history=history,
        state=state,
        on_epoch_end=on_epoch_end,
    )


def prepare_with_notice(network, batch_size: int | None, delay: float = 0.5, stream=None, optimizer=None) -> float:
    """``network.prepare(batch_size, optimizer)``, saying on stderr what is compiling when it takes
    longer than ``delay`` seconds (a first run on the Numba backend); returns the seconds it took."""
    stream = stream if stream is not None else sys.stderr
    names = "/".join(dict.fromkeys(network.activations + [network.output]))
    notice = threading.Timer(
        delay,
        lambda: print(f"nnaccel: compiling {network.backend.name} kernels for {names} (first run only)", file=stream, flush=True),
    )
    notice.daemon = True
    started = time.perf_counter()
    notice.start()
    try:
        network.prepare(batch_size, optimizer)
    finally:
        notice.cancel()
    return time.perf_counter() - started


def run_epochs(
    network,
    run_epoch: Callable[[int, Hyperparameters], tuple],
    measure_validation: Callable[[], float] | None,
    settings: RunSettings,
    *,
    epochs: int,
    progress: bool = False,
    start_epoch: int = 0,
    history: dict | None = None,
    state: TrainingState | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """The epoch loop every data path shares (in memory, streamed, Dask): the schedule's rate,
    snapshot, divergence guard, clean interruption, history, early stopping, progress, callback.

    ``run_epoch(epoch, hyper) -> (summed loss as a backend scalar, m)`` trains one epoch in place
    with the epoch's hyperparameters; ``measure_validation() -> float`` is the validation loss
    after it (None: no validation). ``state`` (see ``TrainingState``) is continued when it holds a
    saved run's numbers, else filled in. The history gains ``lr`` (each epoch's rate) and, with
    early stopping, ``best_epoch`` and ``last_epoch`` (counted from 1).
    """
    backend, plan, schedule, stopping = network.backend, settings.plan, settings.schedule, settings.stopping
    history = history if history is not None else {"loss": []}
    if measure_validation is not None:
        history.setdefault("val_loss", [])
    history.setdefault("lr", [])
    state = state if state is not None else TrainingState()
    _start_state(network, state, settings, epochs)

    started = time.perf_counter()
    stop = False
    for epoch in range(start_epoch, epochs):
        hyper = (
            settings.hyper
            if schedule is None
            else Hyperparameters(state.schedule_state().lr, settings.hyper.l1, settings.hyper.l2)
        )
        loss, validation_loss, m = _train_epoch(network, plan, run_epoch, measure_validation, epoch, hyper, history)
        history["loss"].append(loss)
        if validation_loss is not None:
            history["val_loss"].append(validation_loss)
        history["lr"].append(hyper.lr)
        stop = _after_epoch(network, state, settings, epoch, m, history)
        try:
            if progress:
                _print_progress(epoch, epochs, history, time.perf_counter() - started)
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
        except KeyboardInterrupt:
            raise TrainingInterrupted(epoch + 1, history) from None  # the epoch is complete and recorded
        if stop:
            break
    if stop and stopping is not None and stopping.restore_best and state.stopping_state().best_params:
        # only when stopped early: a run that used all its epochs keeps the last one's parameters,
        # so continuing it (more epochs, a resume) equals one longer run
        network.parameters = [(backend.copy(W), backend.copy(b)) for W, b in state.stopping_state().best_params]
    if progress:
        print(file=sys.stderr)
    return history


def _train_epoch(network, plan, run_epoch, measure_validation, epoch: int, hyper: Hyperparameters, history: dict) -> tuple:
    """(mean training loss, validation loss or None, m) of one epoch, trained in place. Whatever
    stops it (Ctrl-C, bad data, a lost cluster, divergence) leaves the parameters and the
    optimizer's state at the epoch's start: a clean point to resume from."""
    backend = network.backend
    snapshot = [(backend.copy(W), backend.copy(b)) for W, b in network.parameters]
    optimizer_snapshot = plan.snapshot_state()
    try:
        total, m = run_epoch(epoch, hyper)
        loss = backend.to_float(total) / m
        if not math.isfinite(loss) or not all(backend.all_finite(W) and backend.all_finite(b) for W, b in network.parameters):
            raise TrainingDiverged(
                epoch,
                f"training diverged at epoch {epoch + 1}: "
                + (f"the loss became {loss}; " if not math.isfinite(loss) else "the parameters became NaN or infinite; ")
                + "the network keeps its parameters from before that epoch. Try a smaller learning rate "
                f"than lr={hyper.lr:g}",
            )
        validation_loss = measure_validation() if measure_validation is not None else None
    except KeyboardInterrupt:
        _restore(network, plan, snapshot, optimizer_snapshot)
        raise TrainingInterrupted(epoch, history) from None
    except BaseException:
        _restore(network, plan, snapshot, optimizer_snapshot)
        raise
    return loss, validation_loss, m


def _start_state(network, state: TrainingState, settings: RunSettings, epochs: int) -> None:
    """Load a saved state into the plan, or start fresh ones; bind the state to the plan."""
    plan, params = settings.plan, network.parameters
    if state.optimizer is not None:
        plan.load_state(params, state.optimizer)
    else:
        plan.reset_state(params)
    state._read_optimizer = lambda: plan.state_to_host(network.parameters)
    if settings.schedule is not None and state.schedule is None:
        state.schedule = settings.schedule.start(settings.hyper.lr, epochs, settings.examples)
    if settings.stopping is not None and state.stopping is None:
        state.stopping = StoppingState()


def _after_epoch(network, state: TrainingState, settings: RunSettings, epoch: int, m: int, history: dict) -> bool:
    """The schedule's next rate and early stopping's verdict after ``epoch``; True: stop here."""
    stop = False
    if settings.schedule is not None:
        schedule = state.schedule_state()
        schedule.examples = schedule.examples or m
        monitored = history["val_loss"][-1] if history.get("val_loss") else history["loss"][-1]
        settings.schedule.after_epoch(schedule, epoch, monitored)
        stop = schedule.finished
    if settings.stopping is not None:
        backend = network.backend
        value = settings.stopping.value(network, history)
        copies = lambda: [(backend.copy(W), backend.copy(b)) for W, b in network.parameters]  # noqa: E731
        stopping = state.stopping_state()
        stop = settings.stopping.after_epoch(stopping, epoch + 1, value, copies) or stop
        history["best_epoch"] = stopping.best_epoch
        history["last_epoch"] = epoch + 1
    return stop


def _restore(network, plan, params: list, optimizer_state) -> None:
    network.parameters = params
    plan.restore_state(optimizer_state)


def full_batch_step(network, X, Y, lr: float, l1: float = 0.0, l2: float = 0.0):
    """One step of gradient descent on backend arrays X (n, m), Y (outputs, m): forward, backward,
    update, through the network's full-batch plan. Returns the summed loss as a backend scalar
    (nothing is read back to the host). Plain gradient descent: no optimizer state."""
    return network.plan(None).step(network.parameters, X, Y, Hyperparameters(lr, l1, l2))


def _in_memory_epochs(network, optimizer, X, Y, batch_size, shuffle, seed, epochs) -> tuple:
    """(plan, ``run_epoch(epoch, hyper) -> (summed loss, m)``) on checked host arrays X (n, m),
    Y (outputs, m), moved to the backend once, in the layout the network's plan reads batches from."""
    m = X.shape[1]
    plan = network.plan(None if batch_size is None or batch_size >= m else int(batch_size), optimizer)
    data = plan.load(X, Y)
    orders = EpochOrders(seed, m, epochs)

    def run_epoch(epoch: int, hyper: Hyperparameters) -> tuple:
        order = orders(epoch) if shuffle and plan.gathers_batches(m) else None
        return plan.epoch(network.parameters, data, order, hyper), m

    return plan, run_epoch


def _streamed_epochs(network, optimizer, source: DataSource, batch_size, shuffle, seed) -> tuple:
    """(plan, ``run_epoch(epoch, hyper) -> (summed loss, m)``) reading ``source`` chunk by chunk.

    Full batch: each chunk's gradient, scaled by 1/m, is added up over the chunks, then one update;
    this equals the in-memory step. Mini-batch: chunks in a seeded order, columns shuffled within
    each chunk, consecutive batches of that order (see ``nnaccel.data.sources.epoch_column_order``).
    """
    columns = default_chunk_columns(network.architecture, network.dtype)
    full_batch = batch_size is None or (source.m is not None and batch_size >= source.m)
    plan = network.plan(None if full_batch else int(batch_size), optimizer)
    chunk_grads = network.gradient_buffers() if full_batch else []  # each chunk's part (full batch only)

    def run_epoch(epoch: int, hyper: Hyperparameters) -> tuple:
        if full_batch:
            grads = plan.gradient_buffers(network.parameters)
            total, seen = accumulate_gradients(network, source, grads, chunk_grads, columns)
            plan.update(network.parameters, grads, hyper)
            return total, seen
        order = upcoming = None
        if shuffle and source.random_access:
            boundaries = source.boundaries(columns)
            order = chunk_order(seed, epoch, len(boundaries) - 1)
            upcoming = [(int(index), boundaries[index + 1] - boundaries[index]) for index in order]
        chunks = host_chunks(source, network.architecture, network.dtype, columns=columns, order=order)
        blocks = batch_blocks(chunks, int(batch_size), seed=seed, epoch=epoch, shuffle=shuffle, upcoming=upcoming)
        return _streamed_mini_batch_epoch(network, plan, blocks, hyper)

    return plan, run_epoch


def accumulate_gradients(network, source: DataSource, grads: list, chunk_grads: list, columns: int | None = None) -> tuple:
    """The mean-loss gradients over every column of ``source``, read chunk by chunk, into ``grads``
    (backend arrays shaped like the parameters; ``chunk_grads`` the same, for each chunk's part).
    Returns (summed loss as a backend scalar, m). Equals the in-memory gradients up to rounding."""
    backend, architecture = network.backend, network.architecture
    columns = columns or default_chunk_columns(architecture, network.dtype)
    m = source.m
    scale = 1.0 / m if m else 1.0  # m unknown (a chunk iterable's first pass): rescaled at the end
    total, seen = 0.0, 0
    with contextlib.closing(prefetch(host_chunks(source, architecture, network.dtype, columns=columns))) as chunks:
        for X, Y in device_chunks(backend, ((X, Y) for _, X, Y in chunks), network.dtype):
            width = X.shape[1]
            target = grads if seen == 0 else chunk_grads
            workspace = network.workspace(width)
            total = total + backend.loss_and_gradients(architecture, network.parameters, X, Y, workspace, target, scale)
            if seen:
                for (dW, db), (dW_chunk, db_chunk) in zip(grads, chunk_grads):
                    dW += dW_chunk  # dW = (1/m) sum over chunks of dA H_prev^T
                    db += db_chunk
            seen += width
    if not m:
        for dW, db in grads:
            dW *= 1.0 / seen
            db *= 1.0 / seen
    return total, seen


def _streamed_mini_batch_epoch(network, plan, blocks, hyper: Hyperparameters) -> tuple:
    """Blocks (X (n, count batch), Y (outputs, count batch)) of whole batches side by side (see
    ``batch_blocks``), each run by the plan: one update per batch."""
    backend = network.backend
    total, seen = 0.0, 0
    with contextlib.closing(prefetch(blocks)) as host_blocks:
        for X, Y in device_chunks(backend, host_blocks, network.dtype):
            total = total + plan.run_batches(network.parameters, X, Y, hyper)
            seen += X.shape[1]
    return total, seen


def source_gradients(network, source: DataSource) -> tuple:
    """(mean loss, [(dW, db)] as NumPy arrays) over a source, read chunk by chunk."""
    check_source(source, network.architecture)
    backend = network.backend
    grads = network.gradient_buffers()
    total, m = accumulate_gradients(network, source, grads, network.gradient_buffers())
    return backend.to_float(total) / m, [(backend.to_numpy(dW), backend.to_numpy(db)) for dW, db in grads]


def streamed_mean_loss(network, source: DataSource) -> float:
    """The mean loss of ``network`` over a source, read chunk by chunk."""
    backend, architecture = network.backend, network.architecture
    columns = default_chunk_columns(architecture, network.dtype)
    total, seen = 0.0, 0
    with contextlib.closing(prefetch(host_chunks(source, architecture, network.dtype, columns=columns))) as chunks:
        for X, Y in device_chunks(backend, ((X, Y) for _, X, Y in chunks), network.dtype):
            total = total + backend.loss_sum(architecture, network.parameters, X, Y, network.workspace(X.shape[1]))
            seen += X.shape[1]
    return backend.to_float(total) / seen


def _checked_validation(validation, architecture, passes: int):
    """``validation`` as checked host arrays (X (n, m), Y (outputs, m)) or a checked source."""
    source: DataSource | None
    if isinstance(validation, DataSource):
        source = validation
    else:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError("validation must be a pair (X_validation, Y_validation) or a data source")
        source = as_source(validation[0], validation[1])
    if source is not None:
        check_source(source, architecture, passes, "validation")
        return source
    X_validation = check_X(validation[0], architecture, "validation X")
    Y_validation = check_Y(validation[1], architecture, X_validation.shape[1], "validation Y")
    return X_validation, Y_validation


def _validation_measure(network, validation) -> Callable[[], float]:
    if isinstance(validation, DataSource):
        return lambda: streamed_mean_loss(network, validation)
    backend = network.backend
    X_validation = backend.asarray(validation[0], network.dtype)
    Y_validation = backend.asarray(validation[1], network.dtype)
    return lambda: network.mean_loss_on_backend(X_validation, Y_validation)


def _print_progress(epoch: int, epochs: int, history: dict, elapsed: float) -> None:
    width = 24
    done = int(width * (epoch + 1) / epochs)
    line = f"\repoch {epoch + 1}/{epochs} [{'#' * done}{'.' * (width - done)}] loss {history['loss'][-1]:.5f}"
    if history.get("val_loss"):
        line += f"  val_loss {history['val_loss'][-1]:.5f}"
    line += f"  {elapsed:.1f}s"
    print(line, end="", file=sys.stderr, flush=True)
