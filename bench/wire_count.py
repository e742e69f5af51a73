"""Counts SQL round trips on the wire: a loopback TCP proxy in front of PostgreSQL.

Every query psycopg2 sends (statements, BEGIN, COMMIT, ROLLBACK, the pool's pre-ping
``SELECT 1``, anything a connection reset sends) is one simple-protocol ``Q`` message that
waits for the server's answer, so the number of ``Q`` messages from client to server is the
number of round trips, whatever SQLAlchemy's events would report. Bench only: the load
benchmark points an in-process app at ``proxy.url`` and counts one request's messages.
"""
from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from urllib.parse import urlsplit, urlunsplit


class WireCounter:
    """``with WireCounter(database_url) as proxy:`` — connect to ``proxy.url`` instead."""

    def __init__(self, database_url: str):
        parts = urlsplit(database_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        port = self.listener.getsockname()[1]
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        query = "sslmode=disable" + (f"&{parts.query}" if parts.query else "")
        self.url = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
        self.messages: Counter = Counter()
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "WireCounter":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed = True
        self.listener.close()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.queries.clear()

    @property
    def round_trips(self) -> int:
        """Client messages that wait for an answer: simple queries, and extended-protocol
        syncs (psycopg2 uses none, but a driver that does would be counted right)."""
        return self.messages["Q"] + self.messages["S"]

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._client_to_server, args=(client, server),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer, started = b"", False
        try:
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                if not started:  # the startup message has a length but no type byte
                    if len(buffer) < 4:
                        continue
                    (length,) = struct.unpack("!i", buffer[:4])
                    if len(buffer) < length:
                        continue
                    buffer, started = buffer[length:], True
                while len(buffer) >= 5:
                    kind = chr(buffer[0])
                    (length,) = struct.unpack("!i", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    with self._lock:
                        self.messages[kind] += 1
                        if kind == "Q":
                            text = buffer[5:1 + length].rstrip(b"\0").decode(errors="replace")
                            self.queries.append(" ".join(text.split())[:110])
                    buffer = buffer[1 + length:]
        except OSError:
            pass
        finally:
            for sock in (client, server):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
