"""ReplayBuffer: a fixed-size ring buffer of transitions for off-policy agents (DQN).

Transitions ``(obs, action, reward, next_obs, terminated)`` live in preallocated numpy
arrays of ``capacity`` rows. Row ``i`` of every array belongs to the same transition; once the
buffer is full each new transition overwrites the oldest one. ``terminated`` is the
environment's true end of an episode (no bootstrapping from ``next_obs``); a time-limit
truncation is stored as ``terminated=False``, because the value of ``next_obs`` still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tradenn import checks

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Uniform-sampling ring buffer of transitions.

    Parameters
    ----------
    capacity : int
        Transitions kept; the oldest is overwritten when a new one arrives in a full buffer.
    obs_shape : sequence of int
        Shape of one observation, e.g. ``(4,)`` for CartPole.
    obs_dtype : numpy dtype
        Storage dtype of observations (float32 by default, the dtype of ``tradenn.nn``).
    action_shape : sequence of int
        Shape of one action: ``()`` for a discrete action, ``(k,)`` for a continuous one.
    action_dtype : numpy dtype
        Storage dtype of actions (int64 for discrete actions).

    Attributes
    ----------
    obs, next_obs : ndarray, shape (capacity, *obs_shape)
    action : ndarray, shape (capacity, *action_shape)
    reward : ndarray, shape (capacity,), float32
    terminated : ndarray, shape (capacity,), bool
        The storage arrays; only the first ``len(buffer)`` rows (in ring order) are filled.
    """

    _FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(
        self,
        capacity: int,
        obs_shape: Sequence[int],
        obs_dtype: Any = np.float32,
        action_shape: Sequence[int] = (),
        action_dtype: Any = np.int64,
    ) -> None:
        self.capacity = checks.positive_int(capacity, "capacity", "ReplayBuffer")
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.action_shape = tuple(int(d) for d in action_shape)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.action = np.zeros((self.capacity, *self.action_shape), dtype=action_dtype)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self._position = 0  # row the next transition is written to
        self._size = 0

    def __len__(self) -> int:
        """Number of stored transitions (at most ``capacity``)."""
        return self._size

    @property
    def full(self) -> bool:
        """Whether the buffer holds ``capacity`` transitions (the next add overwrites)."""
        return self._size == self.capacity

    def add(self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool) -> None:
        """Store one transition, overwriting the oldest if the buffer is full."""
        row = self._position
        self.obs[row] = self._check_obs(obs, "obs", single=True)
        self.next_obs[row] = self._check_obs(next_obs, "next_obs", single=True)
        self.action[row] = action
        self.reward[row] = reward
        self.terminated[row] = terminated
        self._position = (row + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def add_batch(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any) -> None:
        """Store ``B`` transitions at once (arrays with a leading axis of length ``B``).

        Equivalent to ``B`` calls of :meth:`add` in order: when ``B`` exceeds the free space
        the ring wraps, and when ``B > capacity`` only the last ``capacity`` are kept.
        """
        obs = self._check_obs(obs, "obs", single=False)
        next_obs = self._check_obs(next_obs, "next_obs", single=False)
        action, reward = np.asarray(action), np.asarray(reward)
        terminated = np.asarray(terminated)
        count = len(obs)
        for name, array in (("action", action), ("reward", reward), ("terminated", terminated)):
            if array.ndim == 0 or len(array) != count:
                raise ValueError(
                    f"ReplayBuffer.add_batch: {name} must have {count} rows (as obs), "
                    f"got shape {array.shape}"
                )
        if len(next_obs) != count:
            raise ValueError(
                f"ReplayBuffer.add_batch: next_obs must have {count} rows (as obs), "
                f"got {len(next_obs)}"
            )
        if count == 0:
            return
        keep = slice(max(count - self.capacity, 0), count)  # older rows would be overwritten
        rows = (self._position + np.arange(count)[keep]) % self.capacity
        self.obs[rows] = obs[keep]
        self.next_obs[rows] = next_obs[keep]
        self.action[rows] = action[keep]
        self.reward[rows] = reward[keep]
        self.terminated[rows] = terminated[keep]
        self._position = (self._position + count) % self.capacity
        self._size = min(self._size + count, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` stored transitions uniformly, **with replacement**.

        With replacement keeps a draw O(batch_size) and independent of the fill level; for
        a buffer much larger than the batch, repeats are rare.

        Returns
        -------
        dict
            ``obs`` ``(B, *obs_shape)``, ``action`` ``(B, *action_shape)``, ``reward`` ``(B,)``
            float32, ``next_obs`` ``(B, *obs_shape)``, ``terminated`` ``(B,)`` bool, and
            ``index`` ``(B,)``, the buffer rows drawn. The arrays are copies.
        """
        batch_size = checks.positive_int(batch_size, "batch_size", "ReplayBuffer.sample")
        if self._size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        # the filled rows are always 0 .. size-1 (the ring only wraps once full)
        index = rng.integers(0, self._size, size=batch_size)
        batch = {name: getattr(self, name)[index] for name in self._FIELDS}
        batch["index"] = index
        return batch

    def clear(self) -> None:
        """Forget every transition (the storage is kept)."""
        self._position = 0
        self._size = 0

    def _check_obs(self, obs: Any, name: str, single: bool) -> np.ndarray:
        obs = np.asarray(obs)
        expected = self.obs_shape if single else (None, *self.obs_shape)
        shape = obs.shape if single else (None, *obs.shape[1:])
        if obs.ndim != len(expected) or shape != expected:
            shown = "(" + ", ".join("B" if d is None else str(d) for d in expected) + ")"
            raise ValueError(
                f"ReplayBuffer: {name} must have shape {shown}, got {tuple(obs.shape)}"
            )
        return obs

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(capacity={self.capacity}, obs_shape={self.obs_shape}, size={self._size})"
        )
