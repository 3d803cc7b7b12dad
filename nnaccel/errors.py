"""The exceptions nnaccel raises on purpose."""


class BackendUnavailable(RuntimeError):
    """A known backend cannot run on this machine; the message says why and how to fix it."""


class TrainingDiverged(FloatingPointError):
    """The loss or the parameters became NaN or infinite during training.

    The network keeps the parameters it had at the start of the failing epoch.
    """

    def __init__(self, epoch: int, message: str):
        super().__init__(message)
        self.epoch = epoch


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C, or a signal the caller turned into KeyboardInterrupt).

    The network holds the parameters from the start of epoch ``epoch`` (0-based), so a caller can
    checkpoint them and resume with ``fit(..., start_epoch=epoch, history=history)`` to end with the
    same parameters as an uninterrupted run.
    """

    def __init__(self, epoch: int, history: dict):
        super().__init__(f"training interrupted during epoch {epoch + 1}")
        self.epoch = epoch
        self.history = history


class WorkersLost(RuntimeError):
    """Dask training lost its workers: the cluster stayed without any for longer than the wait
    allowed, or workers kept dying while running the same task (``distributed.KilledWorker``).

    ``problem`` says what happened. Raised by ``nnaccel.distributed.fit``, ``epoch`` (0-based) is
    the epoch that failed, the network holds the parameters from its start and ``history`` the
    epochs before it, so a caller can restart the workers and resume with
    ``fit(..., start_epoch=epoch, history=history)`` to end as an uninterrupted run would.
    """

    def __init__(self, problem: str, epoch: int | None = None, history: dict | None = None):
        if epoch is None:
            message = f"{problem}; restart the cluster's workers and run again"
        else:
            message = (
                f"{problem} during epoch {epoch + 1}; the network keeps its parameters from the start of that "
                f"epoch. Restart the cluster's workers and resume with "
                f"fit(..., start_epoch={epoch}, history=error.history)"
            )
        super().__init__(message)
        self.problem, self.epoch, self.history = problem, epoch, history
