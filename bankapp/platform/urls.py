"""Links that leave the request (emails, footnotes) and the same-site check for ``next``."""
from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from flask import current_app, has_request_context, request, url_for

DEVELOPMENT_URL = "http://127.0.0.1:5000"


def public_url_for(endpoint: str, **values) -> str:
    """The absolute URL of ``endpoint`` for links that leave the request: emails, footnotes.

    Built on ``PUBLIC_URL`` whenever it is set, never on the request's Host header, which a
    client (or a proxy passing it along) controls; it also works outside a request (CLI,
    workers). Without ``PUBLIC_URL`` (development) the request's own address is used.
    """
    base = current_app.config.get("PUBLIC_URL")
    if not base and has_request_context():
        return url_for(endpoint, _external=True, **values)
    # Outside a request (CLI) in development: the address `make run` serves.
    parts = urlsplit(base or DEVELOPMENT_URL)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/",
                                       url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def public_base_url() -> str:
    """``PUBLIC_URL``, or in development the root of the current request, without a final /."""
    return current_app.config.get("PUBLIC_URL") or request.url_root.rstrip("/")


def is_safe_next(target: str | None) -> bool:
    """True for a same-site path (never another host, scheme-relative URL or backslash trick)."""
    if not target or "\\" in target or not target.startswith("/") or target.startswith("//"):
        return False
    base = urlsplit(request.host_url)
    joined = urlsplit(urljoin(request.host_url, target))
    return joined.scheme in ("http", "https") and joined.netloc == base.netloc


# The query a page is asked with to type a recovery code (letters: the full keyboard) in its
# second-factor box instead of the app's 6-digit code (the numeric keypad).
RECOVERY_QUERY = ("with", "recovery")


def code_switch() -> tuple[bool, str, str]:
    """For the page being drawn: whether its code box takes a recovery code
    (``?with=recovery``), and the addresses of this page with and without it."""
    key, value = RECOVERY_QUERY
    args = {**(request.view_args or {}),
            **{name: item for name, item in request.args.items() if name != key}}
    return (request.args.get(key) == value, url_for(request.endpoint, **args, **{key: value}),
            url_for(request.endpoint, **args))
