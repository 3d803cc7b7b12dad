"""nnaccel: fully connected neural networks on NumPy, Numba and CuPy from one definition.

    import nnaccel as nna
    net = nna.Network([2, 6, 6, 1], activation="tanh", output="sigmoid")
    history = net.fit(X, Y, epochs=500, lr=0.3)      # X (n, m), Y (1, m): one column per example

The backend comes from ``NNACCEL_BACKEND`` (numpy | numba | cupy | auto), ``set_backend``,
``use_backend`` or a network's ``backend=`` argument.
"""

from .backends import available_backends, get_backend, set_backend, use_backend
from .errors import BackendUnavailable, TrainingDiverged, TrainingInterrupted
from .nn.network import Network

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Network",
    "TrainingDiverged",
    "TrainingInterrupted",
    "__version__",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
]
