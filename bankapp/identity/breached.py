"""The optional online check of a new password against Have I Been Pwned's Pwned Passwords.

k-anonymity (the range API): only the first 5 hex characters of the password's SHA-1 leave
the host; the service answers every hash suffix it knows under that prefix, padded with
decoys (``Add-Padding``), and the match is made here. Off unless ``PWNED_PASSWORDS_CHECK`` is
on (the host must be allowed to reach ``PWNED_PASSWORDS_URL`` over HTTPS). It fails open:
when the service is slow (``PWNED_PASSWORDS_TIMEOUT`` seconds), unreachable or answers
nonsense, the password is judged by the offline checks alone and a WARNING says so, so an
outage never stops a sign-up, a reset or a password change. Redirects are not followed.
"""
from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request

from flask import current_app

log = logging.getLogger(__name__)
# A range answer is about 800 to 1,000 lines of 40 bytes; more than this is not an answer.
MAX_ANSWER_BYTES = 512 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx then raises HTTPError: counted as unavailable


_opener = urllib.request.build_opener(_NoRedirect)


def times_breached(password: str) -> int | None:
    """How often the breach corpus has seen ``password``: 0 for never, None when the check is
    off or could not be made (the caller then relies on the offline checks)."""
    config = current_app.config
    if not config.get("PWNED_PASSWORDS_CHECK"):
        return None
    digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    prefix, suffix = digest[:5], digest[5:]
    request = urllib.request.Request(config["PWNED_PASSWORDS_URL"] + prefix, headers={
        "Add-Padding": "true", "User-Agent": "bankapp-password-check"})
    try:
        with _opener.open(request, timeout=config["PWNED_PASSWORDS_TIMEOUT"]) as answer:
            body = answer.read(MAX_ANSWER_BYTES + 1)
        if len(body) > MAX_ANSWER_BYTES:
            raise ValueError("answer too long")
        return _count(body.decode("ascii"), suffix)
    except (OSError, ValueError, UnicodeDecodeError) as error:  # URLError, timeouts included
        log.warning("breached-password check unavailable (%s): the password was judged by "
                    "the offline checks only", error)
        return None


def _count(body: str, suffix: str) -> int:
    for line in body.splitlines():
        found, _, times = line.strip().partition(":")
        if found.upper() == suffix:
            return int(times)  # padding lines carry 0
    return 0
