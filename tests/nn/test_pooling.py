"""Pooling: windowed and global max/average pooling against naive loops, gradients, ties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import pooling
from tradenn.nn.conv import Conv2D
from tradenn.nn.gradient_check import gradcheck
from tradenn.nn.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from tradenn.nn.reference import pooling_forward as naive_pooling

TOLERANCE = 1e-6
# ("max", 2) -> MaxPooling2D, ("average", 3) -> AveragePooling3D, ...
POOLS = {
    (kind, rank): getattr(pooling, f"{kind.title()}Pooling{rank}D")
    for kind in ("max", "average")
    for rank in (1, 2, 3)
}
GLOBAL_POOLS = {key: getattr(pooling, f"Global{cls.__name__}") for key, cls in POOLS.items()}


def distinct_values(rng, shape):
    """A random arrangement of values at least 0.1 apart: no near-ties for a max."""
    return (rng.permutation(math.prod(shape)).reshape(shape) - 20.0) * 0.1


# (rank, spatial, pool_size, strides, padding), odd and even sizes, overlapping windows
CASES = [
    (1, (8,), 2, None, "valid"),
    (1, (9,), 2, None, "valid"),
    (1, (9,), 2, None, "same"),
    (1, (8,), 3, 1, "same"),
    (1, (10,), 3, 2, "same"),
    (1, (10,), 4, 3, "valid"),
    (2, (6, 7), 2, None, "valid"),
    (2, (5, 7), 2, None, "same"),
    (2, (6, 6), 3, 1, "valid"),
    (2, (7, 6), 3, 2, "same"),
    (2, (7, 8), (2, 3), (1, 2), "same"),
    (2, (6, 5), (3, 2), (2, 1), "valid"),
    (3, (4, 5, 4), 2, None, "valid"),
    (3, (5, 4, 5), 2, None, "same"),
    (3, (5, 5, 4), (2, 3, 2), (1, 2, 1), "same"),
]
CASE_IDS = [f"{r}d-{s}-p{p}-s{st}-{pad}" for r, s, p, st, pad in CASES]


def as_tuple(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def case_layer(mode, case):
    rank, _, pool, strides, padding = case
    return POOLS[(mode, rank)](pool, strides=strides, padding=padding)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pooling_matches_a_naive_loop(mode, case, rng, float64):
    rank, spatial, pool, strides, padding = case
    layer = case_layer(mode, case)
    x = rng.standard_normal((2, *spatial, 3))
    pool = as_tuple(pool, rank)
    strides = pool if strides is None else as_tuple(strides, rank)
    expected = naive_pooling(x, mode, pool, strides, padding)
    y = layer.forward(x)
    assert y.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("pool", [1, 2, 3])
def test_output_length_follows_the_padding_formula(padding, stride, pool):
    layer = MaxPooling1D(pool, strides=stride, padding=padding)
    for size in range(pool, pool + 7):
        expected = (size - pool) // stride + 1 if padding == "valid" else math.ceil(size / stride)
        assert layer.compute_output_shape((None, size, 2)) == (None, expected, 2)


def test_strides_default_to_the_pool_size_and_pool_size_to_two(rng):
    layer = MaxPooling2D()
    assert layer.pool_size == (2, 2) and layer.strides == (2, 2)
    assert MaxPooling1D(3).strides == (3,)
    assert layer.compute_output_shape((None, 7, 6, 1)) == (None, 3, 3, 1)


def test_padded_cells_never_win_a_max(rng, float64):
    x = -1.0 - rng.random((1, 5, 5, 2))  # all negative: a zero pad would win
    y = MaxPooling2D(2, padding="same").forward(x)
    assert y.shape == (1, 3, 3, 2)
    assert np.all(y < -1.0)
    np.testing.assert_array_equal(y[0, 2, 2], x[0, 4, 4])  # a corner window of one real cell


def test_padded_cells_are_left_out_of_an_average():
    x = np.ones((1, 5, 5, 1))
    np.testing.assert_array_equal(AveragePooling2D(2, padding="same").forward(x), 1.0)
    x = np.arange(5.0).reshape(1, 5, 1)
    y = AveragePooling1D(2, padding="same").forward(x)
    np.testing.assert_array_equal(y[0, :, 0], [0.5, 2.5, 4.0])  # last window holds x[4] only


def test_unknown_spatial_sizes_stay_unknown():
    layer = AveragePooling2D(2, padding="same")
    assert layer.compute_output_shape((None, 9, None, 4)) == (None, 5, None, 4)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_max_pooling_backward_matches_finite_differences(case, rng, float64):
    spatial = case[1]
    x = distinct_values(rng, (2, *spatial, 2))
    assert gradcheck(case_layer("max", case), x) < TOLERANCE


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_average_pooling_backward_matches_finite_differences(case, rng, float64):
    spatial = case[1]
    assert gradcheck(case_layer("average", case), rng.standard_normal((2, *spatial, 2))) < TOLERANCE


def test_max_pooling_gradient_goes_to_the_first_maximum_in_row_major_window_order():
    x = np.zeros((1, 2, 4, 1))
    x[0, :, :2, 0] = [[1.0, 7.0], [7.0, 7.0]]  # window 0: three-way tie after (0, 0)
    x[0, :, 2:, 0] = [[2.0, 2.0], [2.0, 2.0]]  # window 1: all four tie
    layer = MaxPooling2D(2)
    layer.forward(x)
    dx = layer.backward(np.array([[[[10.0], [20.0]]]]))
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 10.0  # (0, 1) comes before (1, 0) in row-major order
    expected[0, 0, 2, 0] = 20.0
    np.testing.assert_array_equal(dx, expected)


def test_max_pooling_with_overlapping_windows_adds_the_gradients():
    x = np.array([1.0, 3.0, 2.0, 3.0, 0.0]).reshape(1, 5, 1)
    layer = MaxPooling1D(2, strides=1)
    np.testing.assert_array_equal(layer.forward(x)[0, :, 0], [3.0, 3.0, 3.0, 3.0])
    dx = layer.backward(np.array([1.0, 10.0, 100.0, 1000.0]).reshape(1, 4, 1))
    # windows [1,3] [3,2] pick x[1]; [2,3] [3,0] pick x[3]
    np.testing.assert_array_equal(dx[0, :, 0], [0.0, 11.0, 0.0, 1100.0, 0.0])


def test_overlapping_windows_with_ties_pick_the_first_cell_of_each_window():
    x = np.full((1, 4, 1), 5.0)
    layer = MaxPooling1D(3, strides=1)
    layer.forward(x)
    dx = layer.backward(np.ones((1, 2, 1)))
    np.testing.assert_array_equal(dx[0, :, 0], [1.0, 1.0, 0.0, 0.0])


def test_average_pooling_spreads_the_gradient_over_real_cells():
    layer = AveragePooling1D(2, padding="same")
    layer.forward(np.zeros((1, 5, 1)))
    dx = layer.backward(np.array([2.0, 4.0, 6.0]).reshape(1, 3, 1))
    np.testing.assert_array_equal(dx[0, :, 0], [1.0, 1.0, 2.0, 2.0, 6.0])


def test_pooling_in_float32_stays_float32(rng):
    for layer in (MaxPooling2D(), AveragePooling2D(padding="same")):
        x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(y))
        assert y.dtype == dx.dtype == np.float32 and dx.shape == x.shape


# ----------------------------------------------------------------------------- global pooling


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_global_pooling_reduces_every_spatial_axis(mode, rank, rng, float64):
    x = rng.standard_normal((3, *(5, 4, 3)[:rank], 2))
    axes = tuple(range(1, rank + 1))
    expected = x.max(axis=axes) if mode == "max" else x.mean(axis=axes)
    layer = GLOBAL_POOLS[(mode, rank)]()
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    kept = GLOBAL_POOLS[(mode, rank)](keepdims=True)
    y = kept.forward(x)
    assert y.shape == (3, *(1,) * rank, 2) == kept.compute_output_shape(x.shape)
    np.testing.assert_allclose(y.reshape(3, 2), expected, rtol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_global_pooling_backward_matches_finite_differences(mode, rank, keepdims, rng, float64):
    x = distinct_values(rng, (2, *(4, 3, 2)[:rank], 3))
    assert gradcheck(GLOBAL_POOLS[(mode, rank)](keepdims=keepdims), x) < TOLERANCE


def test_global_max_pooling_gradient_goes_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 2, 2, 1))
    x[0, :, :, 0] = [[0.0, 4.0], [4.0, 4.0]]
    layer = GlobalMaxPooling2D()
    layer.forward(x)
    dx = layer.backward(np.array([[3.0]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 3.0], [0.0, 0.0]])


def test_global_average_pooling_gradient_is_contiguous(rng, float64):
    layer = GlobalAveragePooling2D()
    layer.forward(rng.standard_normal((2, 3, 4, 5)))
    dx = layer.backward(np.ones((2, 5)))
    assert dx.flags.c_contiguous and dx.flags.writeable
    np.testing.assert_array_equal(dx, 1.0 / 12.0)


# ----------------------------------------------------------------------------- API and errors


@pytest.mark.parametrize("cls", list(POOLS.values()), ids=lambda c: c.__name__)
def test_get_config_recreates_the_pooling_layer(cls):
    rank = int(cls.__name__[-2])
    layer = cls(3, strides=2, padding="same", name="pool")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.pool_size == (3,) * rank and clone.strides == (2,) * rank


@pytest.mark.parametrize("cls", list(GLOBAL_POOLS.values()), ids=lambda c: c.__name__)
def test_get_config_recreates_the_global_pooling_layer(cls):
    layer = cls(keepdims=True)
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()


def test_model_with_pooling_saves_and_loads(tmp_path, rng):
    model = nn.Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu"),
            MaxPooling2D(2, padding="same"),
            AveragePooling2D((2, 1), strides=1),
            GlobalAveragePooling2D(keepdims=True),
            nn.Flatten(),
            nn.Dense(1),
        ]
    )
    x = rng.standard_normal((8, 7, 6, 2))
    y = rng.standard_normal((8, 1))
    model.fit(x, y, loss="mse", optimizer=nn.Adam(0.01), epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "pool.npz")
    loaded = nn.load(tmp_path / "pool.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool_size": 0}, r"pool_size must be a positive integer or 2"),
        ({"pool_size": (2, 2, 2)}, r"pool_size must be"),
        ({"strides": (1, 0)}, r"strides must be a positive"),
        ({"padding": "causal"}, r"padding must be one of 'valid', 'same'"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=rf"MaxPooling2D 'max_pool': {message}"):
        MaxPooling2D(**kwargs, name="max_pool")


def test_wrong_input_rank_and_too_small_inputs_are_clear_errors(rng):
    with pytest.raises(ValueError, match=r"expected input of shape \(None, None, None, None\)"):
        MaxPooling2D().forward(rng.standard_normal((2, 4, 4)))
    with pytest.raises(ValueError, match=r"input size 2 on spatial axis 0 is smaller than pool"):
        AveragePooling1D(3).forward(rng.standard_normal((2, 2, 4)))
    with pytest.raises(ValueError, match=r"expected input of shape"):
        GlobalAveragePooling1D().forward(rng.standard_normal((2, 4, 4, 1)))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        MaxPooling1D().backward(np.ones((1, 2, 1)))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        GlobalMaxPooling1D().backward(np.ones((1, 1)))
