"""Fixtures for the tradenn.nn tests."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn

from .support import fresh_defaults


@pytest.fixture(autouse=True)
def _fresh_defaults():
    """Every test starts from float32 and a fixed seed, and leaves them so."""
    yield from fresh_defaults()


@pytest.fixture
def float64():
    """Build layers in float64 (gradient checks compare against finite differences)."""
    nn.set_dtype(np.float64)
    yield np.float64


@pytest.fixture
def rng():
    return np.random.default_rng(0)
