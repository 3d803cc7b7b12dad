"""Early stopping: end training once the monitored loss stops improving, keeping the best epoch.

``EarlyStopping(patience)`` is what ``fit(..., early_stopping=N)`` builds: it watches the validation
loss, stops after N epochs without a lower one and restores the parameters of the best epoch.
A run that uses all its epochs keeps its last parameters, so continuing it equals a longer run.
Its numbers between epochs are a ``StoppingState``, which a checkpoint saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class StoppingState:
    """``best`` is the lowest monitored value so far, reached after ``best_epoch`` epochs (counted
    from 1; 0 before any); ``bad_epochs`` counts the epochs since it last improved by more than
    ``min_delta``; ``best_params`` [(W, b)] the parameters of the best epoch (backend copies;
    empty when they are not restored)."""

    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_params: list = field(default_factory=list)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after ``patience`` epochs whose monitored value is not below the best so far by more
    than ``min_delta``.

    ``monitor``: ``"val_loss"`` (needs validation data), ``"loss"`` (the training loss), or a
    function of the network returning a value to minimise (the scikit-learn estimators pass minus
    their validation score). ``restore_best``: when it stops, end with the parameters of the best
    epoch (a run that uses all its epochs keeps the last epoch's).
    """

    patience: int
    min_delta: float = 0.0
    monitor: str | Callable = "val_loss"
    restore_best: bool = True

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"early_stopping (the patience) must be a whole number >= 1 such as 10; got {self.patience!r}")
        if (
            isinstance(self.min_delta, bool)
            or not isinstance(self.min_delta, (int, float))
            or not (math.isfinite(self.min_delta) and self.min_delta >= 0)
        ):
            raise ValueError(f"min_delta must be a finite number >= 0; got {self.min_delta!r}")
        if not callable(self.monitor) and self.monitor not in ("val_loss", "loss"):
            raise ValueError(f"monitor must be 'val_loss', 'loss' or a function of the network; got {self.monitor!r}")

    @property
    def needs_validation(self) -> bool:
        return self.monitor == "val_loss"

    def value(self, network, history: dict) -> float:
        """The monitored value after the epoch just recorded in ``history``."""
        if callable(self.monitor):
            return float(self.monitor(network))
        return history[self.monitor][-1]

    def after_epoch(self, state: StoppingState, epochs_done: int, value: float, copy_params: Callable[[], list]) -> bool:
        """Record the value of epoch ``epochs_done`` (counted from 1); True when training should stop.
        ``copy_params()`` returns a copy of the current parameters (taken only on a new best)."""
        improved = value < state.best - self.min_delta
        if value < state.best:
            state.best, state.best_epoch = value, epochs_done
            if self.restore_best:
                state.best_params = copy_params()
        state.bad_epochs = 0 if improved else state.bad_epochs + 1
        return state.bad_epochs >= self.patience


def resolve_early_stopping(early_stopping) -> EarlyStopping | None:
    """``fit``'s ``early_stopping``: None, a patience N (watch the validation loss, restore the best
    epoch) or an ``EarlyStopping``."""
    if early_stopping is None or isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if isinstance(early_stopping, bool) or not isinstance(early_stopping, int):
        raise ValueError(f"early_stopping must be a whole number of epochs >= 1 such as 10, or None; got {early_stopping!r}")
    return EarlyStopping(early_stopping)
