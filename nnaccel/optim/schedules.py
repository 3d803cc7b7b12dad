"""Learning-rate schedules: the learning rate of each epoch.

A schedule object is a frozen description; the numbers it carries across epochs (the current
rate, the best loss seen, the epochs without improvement) are a ``ScheduleState``, which a
checkpoint saves so that a resumed run continues with the same rates. After each epoch the
training loop calls ``after_epoch`` with the epoch's monitored loss (the validation loss when
there is one, else the training loss). The rates are PyTorch's (``torch.optim.lr_scheduler``
stepped once per epoch) and scikit-learn's (``MLPClassifier(learning_rate=...)``).

On the command line a schedule is ``NAME`` or ``NAME:VALUE,...`` with the arguments in the order
of the class's fields: ``step:30,0.1``, ``exponential:0.95``, ``cosine:100``, ``plateau:0.5,5``,
``invscaling:0.5``, ``adaptive``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass
class ScheduleState:
    """A schedule's numbers between epochs: ``lr`` is the rate of the next epoch; ``best`` the
    lowest monitored loss so far, ``bad_epochs`` the epochs since it improved, ``cooldown`` the
    epochs left before a plateau schedule watches again; ``finished`` is set by a schedule that ends
    training (scikit-learn's adaptive rate, once it would fall below its floor)."""

    base_lr: float
    lr: float
    epochs: int
    examples: int
    best: float = math.inf
    bad_epochs: int = 0
    cooldown: int = 0
    finished: bool = False


def _positive_integer(value, name: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1 such as {example}; got {value!r}")


def _non_negative(value, name: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 such as {example}; got {value!r}")


def _factor(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1] such as 0.5; got {value!r}")


class Schedule:
    """The interface: ``start`` the state of the first epoch, ``after_epoch`` the next rate."""

    def start(self, lr: float, epochs: int, examples: int) -> ScheduleState:
        """The state before the first epoch: the rate is the base rate ``lr``. ``epochs`` is the
        run's total and ``examples`` the training examples per epoch."""
        return ScheduleState(base_lr=lr, lr=lr, epochs=epochs, examples=examples)

    def after_epoch(self, state: ScheduleState, epoch: int, loss: float) -> None:
        """Set ``state.lr`` for the epoch after ``epoch`` (counted from 0), whose monitored loss
        was ``loss``."""
        state.lr = self.rate(state, epoch + 1)

    def rate(self, state: ScheduleState, epoch: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class StepLR(Schedule):
    """lr * gamma^(epoch // step_size), as ``torch.optim.lr_scheduler.StepLR``."""

    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _positive_integer(self.step_size, "step_size", "30")
        _non_negative(self.gamma, "gamma", "0.1")

    def rate(self, state, epoch):
        return state.base_lr * self.gamma ** (epoch // self.step_size)


@dataclass(frozen=True)
class ExponentialLR(Schedule):
    """lr * gamma^epoch, as ``torch.optim.lr_scheduler.ExponentialLR``."""

    gamma: float

    def __post_init__(self):
        _non_negative(self.gamma, "gamma", "0.95")

    def rate(self, state, epoch):
        return state.base_lr * self.gamma**epoch


@dataclass(frozen=True)
class CosineAnnealingLR(Schedule):
    """eta_min + (lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR``; ``T_max`` None is the run's number of epochs."""

    T_max: int | None = None
    eta_min: float = 0.0

    def __post_init__(self):
        if self.T_max is not None:
            _positive_integer(self.T_max, "T_max", "100")
        _non_negative(self.eta_min, "eta_min", "0")

    def rate(self, state, epoch):
        period = self.T_max or state.epochs
        return self.eta_min + (state.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / period)) / 2


@dataclass(frozen=True)
class ReduceLROnPlateau(Schedule):
    """Multiplies the rate by ``factor`` once the loss has not improved (fallen below
    best (1 - threshold)) for more than ``patience`` epochs, then waits ``cooldown`` epochs; never
    below ``min_lr``. As ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode min, relative
    threshold)."""

    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0

    def __post_init__(self):
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or not 0 < self.factor < 1:
            raise ValueError(f"factor must be a number in (0, 1) such as 0.1; got {self.factor!r}")
        for value, name in ((self.patience, "patience"), (self.cooldown, "cooldown")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0 such as 10; got {value!r}")
        _non_negative(self.threshold, "threshold", "1e-4")
        _non_negative(self.min_lr, "min_lr", "0")

    def after_epoch(self, state, epoch, loss):
        if loss < state.best * (1 - self.threshold):
            state.best, state.bad_epochs = loss, 0
        else:
            state.bad_epochs += 1
        if state.cooldown > 0:
            state.cooldown -= 1
            state.bad_epochs = 0
        if state.bad_epochs > self.patience:
            reduced = max(state.lr * self.factor, self.min_lr)
            if state.lr - reduced > 1e-8:  # PyTorch's eps: smaller changes are ignored
                state.lr = reduced
            state.cooldown, state.bad_epochs = self.cooldown, 0


@dataclass(frozen=True)
class InverseScaling(Schedule):
    """lr / (t + 1)^power_t with t the examples seen so far, as scikit-learn's
    ``learning_rate="invscaling"``."""

    power_t: float = 0.5

    def __post_init__(self):
        _non_negative(self.power_t, "power_t", "0.5")

    def rate(self, state, epoch):
        return state.base_lr / (epoch * state.examples + 1) ** self.power_t


@dataclass(frozen=True)
class Adaptive(Schedule):
    """scikit-learn's ``learning_rate="adaptive"``: the rate stays while the loss keeps falling by
    at least ``tol``; after more than ``patience`` epochs that do not, it is divided by 5; once it
    is at most ``min_lr``, training ends."""

    patience: int = 10
    tol: float = 1e-4
    min_lr: float = 1e-6

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience must be a whole number >= 0 such as 10; got {self.patience!r}")
        _non_negative(self.tol, "tol", "1e-4")
        _non_negative(self.min_lr, "min_lr", "1e-6")

    def after_epoch(self, state, epoch, loss):
        state.bad_epochs = state.bad_epochs + 1 if loss > state.best - self.tol else 0
        state.best = min(state.best, loss)
        if state.bad_epochs > self.patience:
            if state.lr <= self.min_lr:
                state.finished = True
            else:
                state.lr /= 5.0
                state.bad_epochs = 0


SCHEDULES = {
    "step": StepLR,
    "exponential": ExponentialLR,
    "cosine": CosineAnnealingLR,
    "plateau": ReduceLROnPlateau,
    "invscaling": InverseScaling,
    "adaptive": Adaptive,
}


def resolve_schedule(schedule) -> Schedule | None:
    """A schedule object from one of this module's objects, a name with its arguments
    (``"cosine"``, ``"step:30,0.1"``, ``"plateau:factor=0.5,patience=5"``), or None (constant)."""
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    if not isinstance(schedule, str):
        raise ValueError(f"lr_schedule must be a name such as 'cosine' or an object of nnaccel.optim; got {schedule!r}")
    name, _, arguments = schedule.partition(":")
    name = name.strip().lower()
    if name in ("", "constant", "none"):
        if arguments:
            raise ValueError(f"a constant learning rate takes no arguments; got {schedule!r}")
        return None
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {name!r}; expected one of constant, {', '.join(SCHEDULES)}")
    kind = SCHEDULES[name]
    names = [spec.name for spec in fields(kind)]
    positional, keywords = [], {}
    for part in filter(None, (piece.strip() for piece in arguments.split(","))):
        key, equals, text = part.partition("=")
        if equals:
            if key.strip() not in names:
                raise ValueError(f"lr_schedule {name!r} has no argument {key.strip()!r}; its arguments are {', '.join(names)}")
            keywords[key.strip()] = _number(text, schedule)
        else:
            positional.append(_number(part, schedule))
    if len(positional) > len(names):
        raise ValueError(f"lr_schedule {name!r} takes at most {len(names)} arguments ({', '.join(names)}); got {schedule!r}")
    keywords.update(zip(names, positional))
    try:
        return kind(**keywords)
    except TypeError:
        raise ValueError(
            f"lr_schedule {name!r} needs its arguments {', '.join(names)}, such as {name}:{_example(kind)}"
        ) from None


def _number(text: str, schedule: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"lr_schedule arguments are numbers; got {text!r} in {schedule!r}") from None


def _example(kind) -> str:
    return {"StepLR": "30,0.1", "ExponentialLR": "0.95"}.get(kind.__name__, "")
