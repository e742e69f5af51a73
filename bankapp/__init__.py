"""bankapp: a self-hostable banking suite. ``create_app`` builds the Flask application."""
from __future__ import annotations

import hashlib
import sys
import weakref
from datetime import datetime, timezone
from inspect import iscoroutinefunction
from pathlib import Path

from flask import Flask, abort, render_template, request
from flask.globals import request_ctx
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from bankapp import pooling
from bankapp.extensions import csrf, db, limiter, login_manager, mail, migrate, talisman
from bankapp.i18n import N_
from bankapp.logs import configure_logging, log_format

CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


# Stylesheet and icon live in ``public/static``: on Vercel the CDN serves ``public/`` ahead of the
# function (with a year-long cache header from vercel.json); every other host serves them through
# Flask's own ``/static`` route from the same folder.
STATIC_FOLDER = Path(__file__).resolve().parent.parent / "public" / "static"


def create_app(config=None) -> Flask:
    """Build the application; ``config`` is a config class or a dict of overrides."""
    from config import (
        ProductionConfig,
        config_from_environment,
        parse_daily_limit,
        parse_public_url,
        parse_timezone,
    )

    app = BankApp(__name__, instance_relative_config=True, static_folder=str(STATIC_FOLDER))
    config_class = config if isinstance(config, type) else config_from_environment()
    if config_class is ProductionConfig or issubclass(config_class, ProductionConfig):
        missing = ProductionConfig.missing_settings()
        if missing:
            sys.exit(
                "bankapp: refusing to start in production without "
                + " and ".join(missing)
                + ". Set them in the environment (see README, 'Configuration')."
            )
    app.config.from_object(config_class)
    try:
        if issubclass(config_class, ProductionConfig):
            app.config.update(config_class.environment_settings())
        if isinstance(config, dict):
            app.config.update(config)
        if app.config.get("PUBLIC_URL"):
            app.config["PUBLIC_URL"] = parse_public_url(app.config["PUBLIC_URL"])
        app.config["LOG_FORMAT"] = log_format(app.config)
        app.config["BANK_TIMEZONE"] = parse_timezone(app.config.get("BANK_TIMEZONE"))
        app.config["DAILY_TRANSFER_LIMIT"] = parse_daily_limit(app.config["DAILY_TRANSFER_LIMIT"])
        if app.config["CUSTOMER_2FA"] not in ("optional", "required"):
            raise ValueError(f"CUSTOMER_2FA must be optional or required, not "
                             f"{app.config['CUSTOMER_2FA']!r}")
        from bankapp.i18n import check_currency

        check_currency(app.config["BANK_CURRENCY"])
    except ValueError as invalid:
        sys.exit(f"bankapp: refusing to start: {invalid} (see README, 'Configuration').")
    if app.config.get("ENV_NAME") == "production":
        # Flask turns debug on from FLASK_DEBUG whatever the config class says; never here.
        app.config["DEBUG"] = False
    app.session_interface = Sha256SessionInterface()

    configure_logging(app)
    configure_database(app)
    if app.config["TRUST_PROXY_HOPS"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=app.config["TRUST_PROXY_HOPS"],
            x_proto=app.config["TRUST_PROXY_HOPS"],
            x_host=app.config["TRUST_PROXY_HOPS"],
        )
    register_extensions(app)
    register_database_teardown(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_session_rules(app)
    register_commands(app)
    register_template_helpers(app)
    register_operations(app)
    return app


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

    def ensure_sync(self, func):
        try:
            coroutine = self._coroutine_functions[func]
        except KeyError:
            coroutine = self._coroutine_functions[func] = iscoroutinefunction(func)
        except TypeError:  # no weak reference to it possible: ask each time
            coroutine = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func


# The token API (``bankapp.api``, version 1): programs with bearer tokens, never a session.
TOKEN_API_PATH = "/api/v1/"


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


def configure_database(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        if ":memory:" not in uri and "mode=memory" not in uri:
            _ensure_sqlite_dir(uri)
        options.setdefault("connect_args", {}).setdefault("timeout", 15)
    elif app.config.get("DATABASE_NULLPOOL"):
        # A connection per use and nothing kept: the pooler in front of PostgreSQL pools.
        # Queue-pool settings (pool_size, …) have no meaning then and NullPool refuses them.
        for name in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                     "pool_pre_ping"):
            options.pop(name, None)
        options["poolclass"] = NullPool
    else:
        # Not a ping before every use: only a connection idle for a while is checked
        # (``bankapp.pooling``). A deployment may still set pool_pre_ping itself.
        options.setdefault("pool_pre_ping", False)
        options.setdefault("pool_recycle", 600)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _ensure_sqlite_dir(uri: str) -> None:
    from pathlib import Path

    path = uri.split("sqlite:///", 1)[-1].split("?", 1)[0]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, wait for the writer lock, let readers run beside it (WAL)."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def register_extensions(app: Flask) -> None:
    from bankapp import replica

    db.init_app(app)
    if pooling.wants_idle_ping(app.config["SQLALCHEMY_ENGINE_OPTIONS"]):
        with app.app_context():
            pooling.ping_idle_connections(db.engine)
    replica.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    csrf.init_app(app)
    mail.init_app(app)
    from bankapp import i18n

    i18n.init_app(app)

    from bankapp import email

    email.init_app(app)  # each request's queued email is delivered before it answers
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = N_("Please log in to see that page.")
    login_manager.localize_callback = gettext  # flashed in the request's language
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
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
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_plain_http_api)


def refuse_plain_http_api() -> None:
    from flask import current_app

    if (current_app.config["FORCE_HTTPS"] and not request.is_secure
            and request.path.startswith("/api/")):
        abort(403, "Use HTTPS: the API does not redirect plain HTTP requests.")


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


class AccountNumberConverter(BaseConverter):
    """``ACC-`` and nine digits (any case): keeps ``/accounts/login/`` and friends apart."""

    regex = r"[Aa][Cc][Cc]-[0-9]{9}"

    def to_python(self, value: str) -> str:
        return value.upper()


def register_blueprints(app: Flask) -> None:
    from bankapp.accounts import bp as accounts_bp
    from bankapp.admin import bp as admin_bp
    from bankapp.api import bp as api_bp  # CSRF-exempt: token-authenticated, no cookies
    from bankapp.auth import bp as auth_bp
    from bankapp.cron import bp as cron_bp  # CSRF-exempt: CRON_SECRET bearer, no cookies
    from bankapp.payments import bp as payments_bp
    from bankapp.reports import bp as reports_bp
    from bankapp.teller import bp as teller_bp
    from bankapp.wellknown import bp as wellknown_bp

    app.url_map.converters["account_number"] = AccountNumberConverter
    for blueprint in (auth_bp, accounts_bp, payments_bp, reports_bp, teller_bp, admin_bp, api_bp,
                      wellknown_bp, cron_bp):
        app.register_blueprint(blueprint)


def wants_json() -> bool:
    # A JSON request (the passkey script's fetch calls) gets its errors as JSON too.
    return request.path.startswith("/api/") or request.is_json


def register_database_teardown(app: Flask) -> None:
    # Registered after Flask-SQLAlchemy's, so it runs first (teardowns run in reverse order).
    @app.teardown_appcontext
    def end_transaction_quietly(error):
        """Roll back what the request left open, tolerating a connection that died.

        The answer is already built by then; if PostgreSQL restarted since the last query,
        the rollback fails (the server has dropped the transaction anyway) and the pool
        discards the connection. Raising here would turn a served answer into a 500.
        """
        try:
            db.session.rollback()
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as lost:
            # The request context is already gone here: no path to name.
            app.logger.warning("database connection lost at the end of a request: %s",
                               lost.orig)


def register_errorhandlers(app: Flask) -> None:
    def render_error(error: HTTPException):
        code = error.code or 500
        if request_ctx.url_adapter is None:
            # The Host is not one of TRUSTED_HOSTS: no URL can be built for it, so no page
            # (and no link) is rendered; just the status.
            return (f"{code} {error.name}\n", code,
                    {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        if code >= 500:
            db.session.rollback()
        # Keep the exception's own headers (Allow on 405, Retry-After on 429 and 503).
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        if wants_json():
            from bankapp.api.problems import problem_response

            body = {"type": "about:blank", "title": error.name, "status": code,
                    "detail": error.description}
            return problem_response(code, body, headers)
        return render_template("errors/error.html", error=error, code=code), code, headers

    for code in (400, 401, 403, 404, 405, 413, 429, 500, 503):
        app.register_error_handler(code, render_error)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        if isinstance(error, HTTPException):
            return render_error(error)
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            # The database is unreachable or restarting: nothing was written (the transaction
            # rolled back), so the honest answer is "try again shortly", not a server bug.
            app.logger.warning("database unavailable on %s %s: %s", request.method,
                               request.path, error.orig)
            unavailable = ServiceUnavailable("The service is briefly unavailable; nothing was "
                                             "changed. Please try again in a moment.",
                                             retry_after=5)
            return render_error(unavailable)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError())


def register_session_rules(app: Flask) -> None:
    from bankapp.auth.factors import enforce_enrolment
    from bankapp.replica import mark_write
    from bankapp.security import enforce_session_timeouts

    app.before_request(enforce_session_timeouts)
    app.before_request(enforce_enrolment)
    app.after_request(mark_write)  # read-your-writes with a replica

    @app.after_request
    def no_store_when_logged_in(response):
        # Pages with account data must not be kept by the browser or any shared cache.
        # (The token API has no login to load: its blueprint says no-store on every answer.)
        if (request.endpoint != "static" and not is_token_api_request()
                and current_user.is_authenticated):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def clear_site_data_on_logout(response):
        # After logout the browser drops what it kept of this site's pages and storage
        # (the session cookie itself is already emptied by the logout).
        if request.endpoint == "auth.logout" and request.method == "POST":
            response.headers["Clear-Site-Data"] = '"cache", "storage"'
        return response


def register_operations(app: Flask) -> None:
    """Request ids and the request log line, request metrics; /healthz, /readyz, /metrics."""
    from bankapp import health, logs

    logs.init_app(app)
    health.init_app(app)


def register_commands(app: Flask) -> None:
    from bankapp import cli

    cli.register(app)


def register_template_helpers(app: Flask) -> None:
    from bankapp.formatting import format_amount, format_day, format_money, format_timestamp
    from bankapp.security import public_url_for

    app.jinja_env.filters["money"] = format_money  # with the currency: every shown amount
    app.jinja_env.filters["amount"] = format_amount  # the number alone (form values, hints)
    app.jinja_env.filters["localtime"] = format_timestamp
    app.jinja_env.filters["localdate"] = format_day
    app.jinja_env.globals["public_url_for"] = public_url_for

    def nav_links(user) -> list[tuple[str, str]]:
        """The navigation entries this user's role may open, for blueprints that exist."""
        return [(endpoint, label) for endpoint, label, roles in NAVIGATION
                if user.role in roles and endpoint in app.view_functions]

    @app.context_processor
    def inject_helpers():
        return {"now_utc": datetime.now(timezone.utc), "nav_links": nav_links}


# Labels are translated where base.html shows them.
NAVIGATION = [
    ("accounts.dashboard", N_("Dashboard"), ("customer",)),
    ("accounts.transfer", N_("Transfer"), ("customer",)),
    ("payments.payee_list", N_("Payees"), ("customer",)),
    ("payments.scheduled_list", N_("Scheduled"), ("customer",)),
    ("payments.notifications", N_("Alerts"), ("customer",)),
    ("accounts.limits", N_("Limits"), ("customer",)),
    ("reports.index", N_("Reports"), ("customer", "teller", "admin")),
    ("teller.desk", N_("Teller desk"), ("teller", "admin")),
    ("admin.users", N_("Users"), ("admin",)),
    ("admin.audit", N_("Audit trail"), ("admin",)),
    ("admin.mail", N_("Mail"), ("admin",)),
    ("admin.interest_rates", N_("Interest rates"), ("admin",)),
    ("auth.profile_page", N_("Profile"), ("customer", "teller", "admin")),
    ("auth.change_password", N_("Change password"), ("customer", "teller", "admin")),
    ("auth.security", N_("Security"), ("customer", "teller", "admin")),
]
