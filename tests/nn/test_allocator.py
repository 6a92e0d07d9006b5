"""The glibc allocator tuning applied at import."""

from __future__ import annotations

import platform

import pytest

from tradenn.nn import allocator

on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not on_glibc, reason="mallopt tuning only applies to glibc")
def test_tuning_is_applied_on_glibc():
    assert allocator.tune_malloc() is True


def test_environment_variable_turns_tuning_off(monkeypatch):
    monkeypatch.setenv("TRADENN_NN_MALLOPT", "0")
    assert allocator.tune_malloc() is False
