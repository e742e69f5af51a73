"""Fixtures of the mail tests."""
from __future__ import annotations

import socket
import threading

import pytest


@pytest.fixture
def hung_smtp_server():
    """A server that accepts connections and never says a word (it hangs up after 8 s, so a
    client without a timeout makes the test fail instead of hanging the suite)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(connection)
            threading.Timer(8, connection.close).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()
