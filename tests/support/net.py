"""A loopback port nothing listens on (yet): for a server a test starts, or one that is down."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
