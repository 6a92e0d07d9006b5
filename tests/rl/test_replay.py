"""ReplayBuffer: ring order, sampling only filled rows, dtypes and shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn.rl.replay import ReplayBuffer


def _transition(i: int) -> tuple:
    """A transition whose every field encodes ``i``, so rows can be identified."""
    return np.full(3, i, dtype=np.float64), i % 2, float(i), np.full(3, i + 0.5), i % 3 == 0


def test_add_stores_fields_with_buffer_dtypes_and_shapes():
    buffer = ReplayBuffer(4, (3,))
    buffer.add(*_transition(7))
    assert len(buffer) == 1
    assert buffer.obs.shape == (4, 3) and buffer.obs.dtype == np.float32
    assert buffer.next_obs.shape == (4, 3) and buffer.next_obs.dtype == np.float32
    assert buffer.action.shape == (4,) and buffer.action.dtype == np.int64
    assert buffer.reward.dtype == np.float32 and buffer.terminated.dtype == bool
    np.testing.assert_array_equal(buffer.obs[0], [7, 7, 7])
    np.testing.assert_array_equal(buffer.next_obs[0], [7.5, 7.5, 7.5])
    assert (buffer.action[0], buffer.reward[0], buffer.terminated[0]) == (1, 7.0, False)


def test_wraparound_overwrites_the_oldest_first():
    buffer = ReplayBuffer(3, (3,))
    for i in range(5):  # 0..4: rows hold 3, 4, 2 after wrapping twice
        buffer.add(*_transition(i))
    assert len(buffer) == 3 and buffer.full
    np.testing.assert_array_equal(buffer.reward, [3.0, 4.0, 2.0])
    np.testing.assert_array_equal(buffer.obs[:, 0], [3.0, 4.0, 2.0])
    np.testing.assert_array_equal(buffer.terminated, [True, False, False])


def test_add_batch_equals_repeated_add_including_wrap_and_overflow():
    one_by_one, batched = ReplayBuffer(4, (3,)), ReplayBuffer(4, (3,))
    for i in range(2):
        one_by_one.add(*_transition(i))
    batched.add_batch(*(np.array(f) for f in zip(*map(_transition, range(2)), strict=True)))
    # 7 more: more than the capacity, so the ring wraps and the earliest rows are dropped
    for i in range(2, 9):
        one_by_one.add(*_transition(i))
    batched.add_batch(*(np.array(f) for f in zip(*map(_transition, range(2, 9)), strict=True)))
    assert len(batched) == len(one_by_one) == 4
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(one_by_one, name))
    one_by_one.add(*_transition(9))
    batched.add(*_transition(9))  # the write position agrees too
    np.testing.assert_array_equal(batched.reward, one_by_one.reward)


def test_sample_draws_only_filled_rows():
    buffer = ReplayBuffer(100, (3,))
    for i in range(5):
        buffer.add(*_transition(i + 1))  # rewards 1..5; unfilled rows have reward 0
    batch = buffer.sample(500, np.random.default_rng(0))
    assert set(batch["reward"].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert batch["index"].max() < 5


def test_sample_rows_are_consistent_transitions_with_shapes_and_dtypes():
    buffer = ReplayBuffer(10, (3,))
    for i in range(10):
        buffer.add(*_transition(i))
    batch = buffer.sample(6, np.random.default_rng(1))
    assert batch["obs"].shape == (6, 3) and batch["obs"].dtype == np.float32
    assert batch["next_obs"].shape == (6, 3)
    assert batch["action"].shape == (6,) and batch["action"].dtype == np.int64
    assert batch["reward"].shape == (6,) and batch["terminated"].dtype == bool
    ids = batch["reward"].astype(int)
    np.testing.assert_array_equal(batch["obs"][:, 0], ids)
    np.testing.assert_array_equal(batch["next_obs"][:, 0], ids + 0.5)
    np.testing.assert_array_equal(batch["action"], ids % 2)
    np.testing.assert_array_equal(batch["terminated"], ids % 3 == 0)


def test_sample_returns_copies():
    buffer = ReplayBuffer(2, (3,))
    buffer.add(*_transition(1))
    batch = buffer.sample(1, np.random.default_rng(0))
    batch["obs"][:] = -1
    assert buffer.obs[0, 0] == 1.0


def test_sampling_is_reproducible_with_the_same_generator():
    buffer = ReplayBuffer(50, (3,))
    for i in range(50):
        buffer.add(*_transition(i))
    first = buffer.sample(8, np.random.default_rng(3))["index"]
    second = buffer.sample(8, np.random.default_rng(3))["index"]
    np.testing.assert_array_equal(first, second)


def test_multidimensional_observations_and_continuous_actions():
    buffer = ReplayBuffer(3, (2, 4), action_shape=(2,), action_dtype=np.float32)
    buffer.add(np.ones((2, 4)), [0.5, -0.5], 1.0, np.zeros((2, 4)), False)
    batch = buffer.sample(2, np.random.default_rng(0))
    assert batch["obs"].shape == (2, 2, 4) and batch["action"].shape == (2, 2)
    np.testing.assert_array_equal(batch["action"][0], [0.5, -0.5])


def test_clear_empties_the_buffer():
    buffer = ReplayBuffer(3, (3,))
    buffer.add(*_transition(1))
    buffer.clear()
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, np.random.default_rng(0))


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_must_be_positive(capacity):
    with pytest.raises(ValueError, match="ReplayBuffer: capacity must be a positive integer"):
        ReplayBuffer(capacity, (3,))


def test_capacity_must_be_an_integer():
    with pytest.raises(ValueError, match=r"capacity must be a positive integer, got 2\.5"):
        ReplayBuffer(2.5, (3,))


def test_observation_of_the_wrong_shape_is_rejected():
    buffer = ReplayBuffer(3, (3,))
    with pytest.raises(ValueError, match=r"obs must have shape \(3\), got \(4,\)"):
        buffer.add(np.zeros(4), 0, 0.0, np.zeros(3), False)
    with pytest.raises(ValueError, match=r"next_obs must have shape \(B, 3\)"):
        buffer.add_batch(np.zeros((2, 3)), [0, 1], [0, 0], np.zeros((2, 2)), [False, False])


def test_add_batch_rejects_mismatched_lengths():
    buffer = ReplayBuffer(3, (3,))
    with pytest.raises(ValueError, match="reward must have 2 rows"):
        buffer.add_batch(np.zeros((2, 3)), [0, 1], [0.0], np.zeros((2, 3)), [False, False])


@pytest.mark.parametrize("batch_size", [0, -1])
def test_sample_batch_size_must_be_positive(batch_size):
    buffer = ReplayBuffer(3, (3,))
    buffer.add(*_transition(1))
    with pytest.raises(ValueError, match=r"sample: batch_size must be a positive integer"):
        buffer.sample(batch_size, np.random.default_rng(0))
