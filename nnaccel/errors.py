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
