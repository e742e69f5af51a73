"""``/.well-known/security.txt`` (RFC 9116): where to report a vulnerability in this deployment.

The contact is the deployment's own (``SECURITY_CONTACT``): the bank running the app answers
for its installation; the project's maintainers are named in SECURITY.md.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, abort, current_app

from bankapp.platform.urls import public_url_for

log = logging.getLogger("bankapp.wellknown")

# Files under ``/.well-known/`` (RFC 8615).
bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

# RFC 9116 §2.5.5 recommends an Expires less than a year ahead; computed per request, so the
# file never goes stale while the deployment runs.
EXPIRES_AFTER = timedelta(days=364)
_URI_SCHEMES = ("mailto:", "https:", "tel:")


def contact_uris(setting: str | None) -> list[str]:
    """The Contact URIs in ``SECURITY_CONTACT`` (comma-separated); a bare email gets mailto:.

    A value that is not a mailto:, https: or tel: URI (or a bare email) is left out: RFC 9116
    forbids plain http, and a line break must never reach the file.
    """
    uris = []
    for item in (setting or "").split(","):
        item = item.strip()
        if not item or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in item):
            continue
        if item.lower().startswith(_URI_SCHEMES):
            uris.append(item)
        elif "@" in item and ":" not in item and "/" not in item:
            uris.append("mailto:" + item)
        else:
            log.warning("SECURITY_CONTACT entry %r is not a mailto:, https: or tel: URI; "
                        "left out of security.txt", item)
    return uris


@bp.route("/security.txt")
def security_txt():
    """RFC 9116 security.txt; 404 when the deployment has not set SECURITY_CONTACT."""
    contacts = contact_uris(current_app.config.get("SECURITY_CONTACT"))
    if not contacts:
        abort(404)
    expires = (datetime.now(timezone.utc) + EXPIRES_AFTER).replace(microsecond=0)
    lines = [f"Contact: {uri}" for uri in contacts]
    lines.append(f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    lines.append("Preferred-Languages: en")
    if current_app.config.get("PUBLIC_URL"):
        # From PUBLIC_URL only, never from the request: the Host header is the client's.
        lines.append(f"Canonical: {public_url_for('wellknown.security_txt')}")
    return Response("\n".join(lines) + "\n", mimetype="text/plain",
                    content_type="text/plain; charset=utf-8")
