"""A private redis-server on a free loopback port, for tests that stop it (the shared one on
6379 is never touched)."""
from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager

import redis

from support.net import free_port


class PrivateRedis:
    """One redis-server process of our own; ``stop()`` kills it as a crash would."""

    def __init__(self, directory) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start within 10 s"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def private_redis(directory):
    """A running private Redis (``.url``), killed at the end if still running."""
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed")
    server = PrivateRedis(directory)
    try:
        yield server
    finally:
        server.stop()
