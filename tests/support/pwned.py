"""A stand-in for Have I Been Pwned's range API on loopback: a real HTTP server that answers
``GET /range/<5 hex>`` the way the service does, and remembers what it was asked."""
from __future__ import annotations

import hashlib
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()


@contextmanager
def running_range_api(breached: dict[str, int], delay: float = 0.0,
                      redirect_to: str | None = None):
    """Serve ``breached`` (password → times seen), padded with a decoy line per prefix, after
    ``delay`` seconds (or answer every request with a 302 to ``redirect_to``); yields (the URL
    to set as PWNED_PASSWORDS_URL, the paths asked)."""
    asked: list[str] = []
    table: dict[str, list[str]] = {}
    for password, times in breached.items():
        digest = sha1_hex(password)
        table.setdefault(digest[:5], []).append(f"{digest[5:]}:{times}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            time.sleep(delay)
            if redirect_to:
                self.send_response(302)
                self.send_header("Location", redirect_to + self.path)
                self.end_headers()
                return
            prefix = self.path.rsplit("/", 1)[-1]
            lines = table.get(prefix, []) + ["0" * 35 + ":0"]  # padding carries 0
            body = "\r\n".join(lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/range/", asked
    finally:
        server.shutdown()
        server.server_close()
