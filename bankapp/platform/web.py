"""The Flask application class, its cookie session, security headers and template helpers.

Nothing here knows a domain: ``create_app`` hands in what the domain modules provide (the
navigation entries, for one).
"""
from __future__ import annotations

import hashlib
import weakref
from datetime import datetime, timezone
from inspect import iscoroutinefunction

from flask import Flask, abort, current_app, redirect, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from bankapp.extensions import talisman
from bankapp.platform.formatting import (
    format_amount,
    format_count,
    format_day,
    format_last_day,
    format_money,
    format_rate,
    format_timestamp,
)
from bankapp.platform.urls import code_switch, public_base_url, public_url_for

CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}

# The token API (``bankapp.api``, version 1): programs with bearer tokens, never a session.
TOKEN_API_PATH = "/api/v1/"


class BankApp(Flask):
    """Flask, remembering which functions are coroutine functions.

    Flask asks ``ensure_sync`` of every hook and view on every request (over twenty per API
    request here), and ``inspect.iscoroutinefunction`` is a slow question whose answer never
    changes for a function; the answer is kept as long as the function lives (weakly: one
    made for a single request, ``after_this_request``, is not kept). What Flask does with
    either answer is unchanged.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutine_functions = weakref.WeakKeyDictionary()
        self.session_interface = Sha256SessionInterface()

    def ensure_sync(self, func):
        try:
            coroutine = self._coroutine_functions[func]
        except KeyError:
            coroutine = self._coroutine_functions[func] = iscoroutinefunction(func)
        except TypeError:  # no weak reference to it possible: ask each time
            coroutine = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func


def is_token_api_request() -> bool:
    """Whether this request is for the token API (its pages, ``/api/docs``, are not)."""
    return request.path.startswith(TOKEN_API_PATH)


class Sha256SessionInterface(SecureCookieSessionInterface):
    """The session cookie signed with HMAC-SHA-256 (Flask's default is HMAC-SHA-1, which
    ASVS 5.0 appendix C lists as legacy, not approved).

    The token API neither reads nor writes the cookie: its requests get an empty session
    that is never saved, so a browser's cookie sent along is ignored (not refreshed, not
    timed out, no Set-Cookie) and no request pays for unsigning or signing one.
    """

    digest_method = staticmethod(hashlib.sha256)

    def open_session(self, app, request):
        if request.path.startswith(TOKEN_API_PATH):
            return CookielessSession()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if isinstance(session, CookielessSession):
            return
        super().save_session(app, session, response)


class CookielessSession(SecureCookieSession):
    """A token API request's session: starts empty, dropped at the end of the request."""


class AccountNumberConverter(BaseConverter):
    """``ACC-`` and nine digits (any case): keeps ``/accounts/login/`` and friends apart."""

    regex = r"[Aa][Cc][Cc]-[0-9]{9}"

    def to_python(self, value: str) -> str:
        return value.upper()


def trust_proxy(app: Flask) -> None:
    """Believe ``X-Forwarded-For/Proto/Host`` from ``TRUST_PROXY_HOPS`` proxies in front."""
    hops = app.config["TRUST_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def secure_headers(app: Flask) -> None:
    """HTTPS, HSTS in production, the Content-Security-Policy and the other headers
    (Flask-Talisman); the API refuses plain HTTP rather than being redirected."""
    production = app.config.get("ENV_NAME") == "production"
    talisman.init_app(
        app,
        force_https=app.config["FORCE_HTTPS"],
        strict_transport_security=production,
        strict_transport_security_max_age=31536000,
        strict_transport_security_include_subdomains=True,
        content_security_policy=CSP,
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        frame_options="DENY",
    )
    # Runs before Talisman's redirect to HTTPS, which is for people with browsers: a program
    # calling the API over plain HTTP must fail loudly, not be redirected after it has already
    # sent its credentials in the clear (ASVS 5.0 V4.1.2).
    # Then ours, before Talisman's: that one keeps whatever host and port ``Host`` names.
    app.before_request_funcs.setdefault(None, []).insert(0, redirect_plain_http_to_public_url)
    app.before_request_funcs[None].insert(0, refuse_plain_http_api)


def refuse_plain_http_api() -> None:
    if (current_app.config["FORCE_HTTPS"] and not request.is_secure
            and request.path.startswith("/api/")):
        abort(403, "Use HTTPS: the API does not redirect plain HTTP requests.")


def redirect_plain_http_to_public_url():
    """Send a browser on plain HTTP to the same path on ``PUBLIC_URL`` (HTTPS), never to the
    host or port the request's ``Host`` header names. Talisman's redirect handles the rest
    (no ``PUBLIC_URL``: development), with the same conditions."""
    base = current_app.config.get("PUBLIC_URL")
    if (not current_app.config["FORCE_HTTPS"] or not base or request.is_secure
            or current_app.debug or current_app.testing
            or request.headers.get("X-Forwarded-Proto", "http") == "https"):
        return None
    request.host  # Flask's TRUSTED_HOSTS check: a host it does not serve gets 400, no redirect
    query = request.query_string.decode("latin-1")
    return redirect(public_base_url() + request.path + ("?" + query if query else ""), 302)


def register_template_helpers(app: Flask, navigation: list[tuple[str, str, tuple]]) -> None:
    """Filters for money and time, ``public_url_for``, and ``nav_links(user)``: the entries of
    ``navigation`` (endpoint, label, roles) this user's role may open."""
    app.jinja_env.filters["money"] = format_money  # with the currency: every shown amount
    app.jinja_env.filters["amount"] = format_amount  # the number alone (form values, hints)
    app.jinja_env.filters["localtime"] = format_timestamp
    app.jinja_env.filters["localdate"] = format_day
    app.jinja_env.filters["lastday"] = format_last_day  # a period's exclusive end, as its day
    app.jinja_env.filters["percent"] = format_rate  # an annual rate in percent
    app.jinja_env.filters["count"] = format_count  # a number of things (lines, pages)
    app.jinja_env.globals["public_url_for"] = public_url_for
    app.jinja_env.globals["code_switch"] = code_switch

    def nav_links(user) -> list[tuple[str, str]]:
        """The navigation entries this user's role may open, for blueprints that exist."""
        return [(endpoint, label) for endpoint, label, roles in navigation
                if user.role in roles and endpoint in app.view_functions]

    @app.context_processor
    def inject_helpers():
        return {"now_utc": datetime.now(timezone.utc), "nav_links": nav_links}
