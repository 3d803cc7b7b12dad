"""nnaccel: fully connected neural networks on NumPy, Numba and CuPy from one definition.

    import nnaccel as nna
    net = nna.Network([2, 6, 6, 1], activation="tanh", output="sigmoid")
    history = net.fit(X, Y, epochs=500, lr=0.3)      # X (n, m), Y (1, m): one column per example

The backend comes from ``NNACCEL_BACKEND`` (numpy | numba | cupy | auto), ``set_backend``,
``use_backend`` or a network's ``backend=`` argument.
"""

# First, before anything imports NumPy: OpenBLAS reads its thread settings when it loads (when NumPy
# is loaded already, its workers are restarted to read them; see nnaccel.threads).
from .threads import set_openblas_thread_timeout

OPENBLAS_THREAD_TIMEOUT_SET_HERE = set_openblas_thread_timeout()

from . import optim as optim  # noqa: E402  (nnaccel.optim: optimizers, schedules, early stopping)
from .backends import available_backends, get_backend, set_backend, use_backend  # noqa: E402
from .errors import BackendUnavailable, TrainingDiverged, TrainingInterrupted, WorkersLost  # noqa: E402
from .nn.model import Model, load_model  # noqa: E402
from .nn.network import Network, PreprocessingNotApplied  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Model",
    "Network",
    "PreprocessingNotApplied",
    "TrainingDiverged",
    "TrainingInterrupted",
    "WorkersLost",
    "__version__",
    "available_backends",
    "get_backend",
    "load_model",
    "set_backend",
    "use_backend",
]
