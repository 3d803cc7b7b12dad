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
