"""Data: the Playground datasets, users' files, and sources that training reads chunk by chunk.

from nnaccel.data import NpySource, write_playground_npy
"""

from .large import write_playground_npy
from .sources import ArraySource, ChunkSource, DaskSource, DataSource, NpySource, as_source

__all__ = ["ArraySource", "ChunkSource", "DaskSource", "DataSource", "NpySource", "as_source", "write_playground_npy"]
