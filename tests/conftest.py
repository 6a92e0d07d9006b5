"""Shared fixtures. Tests never touch the network: yfinance is replaced where it is used."""

from __future__ import annotations

import socket

import pytest

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that opens a network connection (the cache and fakes must serve it).

    Loopback connections stay allowed: a local Dask cluster's processes talk over them, and
    they never leave the machine.
    """

    def guard(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else None
        if self.family == socket.AF_UNIX or host in _LOOPBACK:
            return _connect(self, address, *args, **kwargs)
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
