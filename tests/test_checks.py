"""tradenn.checks: the argument checks every part of tradenn shares.

Each check returns the value as a plain Python type or raises one line,
``{owner}: {name} must be {rule}, got {value!r}``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import checks
from tradenn.errors import BacktestError

# ------------------------------------------------------------------------------- integers


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2), 10**20])
def test_positive_int_accepts_python_and_numpy_integers_and_returns_an_int(value):
    result = checks.positive_int(value, "units", "Dense")
    assert result == value
    assert type(result) is int


@pytest.mark.parametrize("value", [0, -1, True, np.bool_(True), 2.0, 2.5, "3", None, np.nan])
def test_positive_int_rejects_with_the_one_message_form(value):
    expected = f"Dense: units must be a positive integer, got {value!r}"
    with pytest.raises(ValueError) as caught:
        checks.positive_int(value, "units", "Dense")
    assert str(caught.value) == expected


def test_without_an_owner_the_message_starts_at_the_argument():
    with pytest.raises(ValueError) as caught:
        checks.positive_int(0, "horizon")
    assert str(caught.value) == "horizon must be a positive integer, got 0"


def test_a_check_raises_the_exception_class_it_is_given():
    with pytest.raises(BacktestError, match=r"^cuts must be a positive integer, got 0$"):
        checks.positive_int(0, "cuts", error=BacktestError)


def test_allow_none_accepts_none_and_says_so_in_the_message():
    assert checks.positive_int(None, "units", "Pool", allow_none=True) is None
    with pytest.raises(
        ValueError, match=r"^Pool: units must be a positive integer or None, got 0$"
    ):
        checks.positive_int(0, "units", "Pool", allow_none=True)


def test_non_negative_int_accepts_zero_and_rejects_minus_one():
    assert checks.non_negative_int(0, "lags") == 0
    with pytest.raises(ValueError, match=r"^lags must be a non-negative integer, got -1$"):
        checks.non_negative_int(-1, "lags")


@pytest.mark.parametrize(
    "bounds, bad, rule",
    [
        ({"low": 2}, 1, "an integer >= 2"),
        ({"high": 5}, 6, "an integer <= 5"),
        ({"low": 0, "high": 2}, 3, "an integer in [0, 2]"),
        ({}, 1.5, "an integer"),
    ],
)
def test_integer_names_its_bounds_in_the_rule(bounds, bad, rule):
    with pytest.raises(ValueError) as caught:
        checks.integer(bad, "n", "f", **bounds)
    assert str(caught.value) == f"f: n must be {rule}, got {bad!r}"


def test_integer_bounds_are_inclusive():
    assert checks.integer(2, "n", low=2, high=2) == 2


def test_seed_is_a_non_negative_integer_or_none():
    assert checks.seed(None) is None
    assert checks.seed(np.int32(0)) == 0
    with pytest.raises(ValueError, match=r"^KNN: seed must be a non-negative integer or None"):
        checks.seed(-1, "KNN")
    with pytest.raises(ValueError, match="got True"):
        checks.seed(True, "KNN")


# -------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", [0.5, 3, np.float32(0.25), np.int64(2), np.float64(1e-300)])
def test_positive_number_accepts_ints_floats_and_numpy_scalars_and_returns_a_float(value):
    result = checks.positive_number(value, "learning_rate", "Adam")
    assert result == pytest.approx(float(value))
    assert type(result) is float


@pytest.mark.parametrize(
    "value", [0, -0.5, math.nan, math.inf, -math.inf, True, "1", None, 1 + 0j, np.float64("nan")]
)
def test_positive_number_rejects_zero_nan_inf_bool_and_non_numbers(value):
    with pytest.raises(ValueError) as caught:
        checks.positive_number(value, "learning_rate", "Adam")
    expected = f"Adam: learning_rate must be a finite number > 0, got {value!r}"
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    "bounds, good, bad, rule",
    [
        ({"low": 0}, 0.0, -1e-9, "a finite number >= 0"),
        ({"high": 1, "high_open": True}, 0.99, 1.0, "a finite number < 1"),
        ({"low": 0, "high": 1, "high_open": True}, 0.0, 1.0, "in [0, 1)"),
        ({"low": 0, "high": 1, "low_open": True}, 1.0, 0.0, "in (0, 1]"),
        (
            {"low": 0, "high": 1e15, "low_open": True, "high_open": True},
            1e14,
            1e15,
            "in (0, 1e+15)",
        ),
        ({}, -1e300, math.inf, "a finite number"),
    ],
)
def test_number_honours_open_and_closed_bounds_and_names_them(bounds, good, bad, rule):
    assert checks.number(good, "x", **bounds) == good
    with pytest.raises(ValueError) as caught:
        checks.number(bad, "x", **bounds)
    assert str(caught.value) == f"x must be {rule}, got {bad!r}"


def test_number_allow_none():
    assert checks.number(None, "clipnorm", low=0, allow_none=True) is None
    with pytest.raises(ValueError, match="clipnorm must be a finite number >= 0 or None"):
        checks.number("a", "clipnorm", low=0, allow_none=True)


# -------------------------------------------------------------------------------- choices


def test_choice_returns_the_value_when_it_is_one_of_the_choices():
    assert checks.choice("same", "padding", ("valid", "same")) == "same"


def test_choice_lists_the_choices_in_the_message():
    with pytest.raises(ValueError) as caught:
        checks.choice("full", "padding", ("valid", "same"), "Conv1D")
    assert str(caught.value) == "Conv1D: padding must be one of 'valid', 'same', got 'full'"


def test_choice_of_an_array_is_a_clear_error_not_an_ambiguous_truth_value():
    with pytest.raises(ValueError, match=r"^mode must be one of 'a', 'b', got array"):
        checks.choice(np.array(["a", "b"]), "mode", ("a", "b"))


# ------------------------------------------------------------------------------ arrays


def test_finite_array_returns_a_finite_array_itself():
    values = np.arange(6.0).reshape(2, 3)
    assert checks.finite_array(values, "X") is values


@pytest.mark.parametrize(
    "shape, where, index",
    [((10,), (7,), "(7,)"), ((4, 5, 3), (3, 2, 1), "(3, 2, 1)"), ((), (), "()")],
)
def test_finite_array_names_the_first_nan_or_inf_by_its_index(shape, where, index):
    values = np.zeros(shape)
    values[where] = np.nan
    with pytest.raises(ValueError) as caught:
        checks.finite_array(values, "X", "LSTMForecaster")
    assert str(caught.value) == f"LSTMForecaster: X contains NaN or inf (first at index {index})"


def test_finite_array_finds_the_first_bad_value_in_a_later_scan_block(monkeypatch):
    monkeypatch.setattr(checks, "_FINITE_SCAN_ELEMENTS", 8)  # 2 rows of 4 per block
    values = np.zeros((9, 4))
    values[8, 3] = -np.inf
    values[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"first at index \(5, 0\)"):
        checks.finite_array(values, "X")


def test_finite_array_lets_integer_arrays_pass():
    values = np.array([1, 2, 3])
    assert checks.finite_array(values, "y") is values
