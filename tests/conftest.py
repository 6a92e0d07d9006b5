"""Shared fixtures. Tests never touch the network: yfinance is replaced where it is used."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that opens a network connection (the cache and fakes must serve it)."""

    def guard(*args, **kwargs):
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.fixture
def write_csv(tmp_path):
    """Write text to a CSV file in a temporary folder and return its path."""

    def write(text: str, name: str = "prices.csv"):
        path = tmp_path / name
        path.write_text(text.lstrip())
        return path

    return write
