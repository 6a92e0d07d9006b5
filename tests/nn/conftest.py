"""Fixtures for the tradenn.nn tests."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn


@pytest.fixture(autouse=True)
def _fresh_defaults():
    """Every test starts from float32 and a fixed seed, and leaves them so."""
    nn.set_dtype(np.float32)
    nn.set_seed(1234)
    yield
    nn.set_dtype(np.float32)


@pytest.fixture
def float64():
    """Build layers in float64 (gradient checks compare against finite differences)."""
    nn.set_dtype(np.float64)
    yield np.float64


@pytest.fixture
def rng():
    return np.random.default_rng(0)
