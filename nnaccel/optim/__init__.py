"""How training moves the parameters: optimizers, learning-rate schedules and early stopping.

    import nnaccel as nna
    net.fit(X, Y, epochs=50, lr=1e-3, batch_size=32, optimizer=nna.optim.Adam(),
            lr_schedule=nna.optim.CosineAnnealingLR(), validation=(Xv, Yv), early_stopping=5)

Names work too: ``optimizer="nesterov"``, ``lr_schedule="step:30,0.1"``.
"""

from .optimizers import OPTIMIZERS, SGD, Adam, AdamW, Hyperparameters, Optimizer, OptimizerState, resolve_optimizer
from .schedules import (
    SCHEDULES,
    Adaptive,
    CosineAnnealingLR,
    ExponentialLR,
    InverseScaling,
    ReduceLROnPlateau,
    Schedule,
    ScheduleState,
    StepLR,
    resolve_schedule,
)
from .stopping import EarlyStopping, StoppingState, resolve_early_stopping

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "Adaptive",
    "CosineAnnealingLR",
    "EarlyStopping",
    "ExponentialLR",
    "Hyperparameters",
    "InverseScaling",
    "Optimizer",
    "OptimizerState",
    "ReduceLROnPlateau",
    "Schedule",
    "ScheduleState",
    "StepLR",
    "StoppingState",
    "resolve_early_stopping",
    "resolve_optimizer",
    "resolve_schedule",
]
