"""The test suite's network guard: outside connections fail, loopback ones are allowed."""

from __future__ import annotations

import socket

import pytest


def test_outside_connections_are_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(OSError, match="network access is disabled in tests"):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routable


def test_loopback_connections_are_allowed():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())
            connection, _ = server.accept()
            connection.close()
