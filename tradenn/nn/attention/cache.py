"""The key/value cache of autoregressive decoding with :class:`MultiHeadAttention`."""

from __future__ import annotations

from typing import Any

import numpy as np


class KVCache:
    """Keys and values of the positions a :class:`MultiHeadAttention` layer has seen.

    Used by :meth:`MultiHeadAttention.forward_cached` for autoregressive decoding:
    each call appends the keys and values of its new positions, so a new token attends
    to all earlier ones without recomputing their projections. Storage is preallocated
    for ``max_length`` positions and doubles if more are appended.

    A cache belongs to one set of weights: the layer's stacked projection weights are
    taken on first use and kept with it, so do not train while a cache is in use.

    Attributes
    ----------
    keys : ndarray (N, heads, capacity, key_dim)
    values : ndarray (N, heads, capacity, value_dim)
    length : int
        Positions stored so far; ``keys[:, :, :length]`` are valid.
    """

    def __init__(
        self,
        batch_size: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        max_length: int,
        dtype: Any = np.float32,
    ) -> None:
        capacity = max(int(max_length), 1)
        self.keys = np.zeros((batch_size, num_heads, capacity, key_dim), dtype=dtype)
        self.values = np.zeros((batch_size, num_heads, capacity, value_dim), dtype=dtype)
        self.length = 0
        self.projection: tuple[np.ndarray, np.ndarray | None] | None = None  # set on first use

    @property
    def batch_size(self) -> int:
        """Number of sequences ``N``."""
        return self.keys.shape[0]

    def append(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store ``keys (N, H, t, K)`` and ``values (N, H, t, V)``; return all stored so far."""
        start, stop = self.length, self.length + keys.shape[2]
        capacity = self.keys.shape[2]
        if stop > capacity:
            grow = max(stop, 2 * capacity) - capacity
            pad = [(0, 0), (0, 0), (0, grow), (0, 0)]
            self.keys, self.values = np.pad(self.keys, pad), np.pad(self.values, pad)
        self.keys[:, :, start:stop] = keys
        self.values[:, :, start:stop] = values
        self.length = stop
        return self.keys[:, :, :stop], self.values[:, :, :stop]

    def reset(self) -> None:
        """Forget all positions (the storage is kept)."""
        self.length = 0

    def __repr__(self) -> str:
        n, heads, capacity, key_dim = self.keys.shape
        return (
            f"KVCache(batch_size={n}, num_heads={heads}, key_dim={key_dim}, "
            f"value_dim={self.values.shape[-1]}, length={self.length}, capacity={capacity})"
        )
