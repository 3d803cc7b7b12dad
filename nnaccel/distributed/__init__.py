"""Data-parallel training on a Dask cluster (the ``dask`` extra): ``fit``, and Dask arrays that
workers can rebuild from their source (``from_npy``, ``playground_arrays``).

    import nnaccel as nna
    from nnaccel import distributed
    X, Y = distributed.playground_arrays("circle", 10**7)
    net = nna.Network([2, 6, 6, 1])
    distributed.fit(net, X, Y, epochs=100, lr=0.3)                # embedded LocalCluster
    distributed.fit(net, X, Y, epochs=100, lr=0.3, scheduler="tcp://10.0.0.5:8786")

Dask itself is imported only when one of these runs.
"""

from .arrays import from_npy, playground_arrays
from .cluster import SCHEDULER_VARIABLE, connect
from .training import fit, gradients

__all__ = ["SCHEDULER_VARIABLE", "connect", "fit", "from_npy", "gradients", "playground_arrays"]
