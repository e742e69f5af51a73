"""Configuration by environment.

``BANKAPP_ENV`` (or ``FLASK_ENV``) chooses ``development`` (default), ``testing`` or
``production``. Every setting that differs between hosts comes from an environment variable;
docs/configuration.md lists them all.
"""
from __future__ import annotations

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalize_database_url(url: str) -> str:
    """Map Heroku/Supabase style URLs onto the psycopg2 driver the design card fixes.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not installed,
    so every PostgreSQL form is pinned to ``postgresql+psycopg2://``.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def parse_public_url(value: str, require_https: bool = False) -> str:
    """``PUBLIC_URL`` checked and without its trailing slash: ``scheme://host[:port][/path]``.

    Raises ValueError with the reason when the value cannot be the base of a link.
    """
    url = (value or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"PUBLIC_URL must be an absolute http(s) URL such as "
                         f"https://bank.example, not {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("PUBLIC_URL must carry no query, fragment or credentials")
    if require_https and parts.scheme != "https":
        raise ValueError("PUBLIC_URL must use https in production")
    return url


def parse_timezone(value: str | None) -> str:
    """``BANK_TIMEZONE`` checked: an IANA zone name such as ``Europe/London`` (UTC if unset).

    Raises ValueError naming the value: days, months and interest are counted in this zone.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = (value or "").strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"BANK_TIMEZONE must be an IANA time zone such as Europe/London, "
                         f"not {value!r}") from None
    return name


def parse_daily_limit(value) -> Decimal:
    """``DAILY_TRANSFER_LIMIT`` checked: a positive amount in whole cents."""
    from decimal import InvalidOperation

    try:
        limit = Decimal(str(value).strip())
    except InvalidOperation:
        limit = None
    if limit is None or not limit.is_finite() or limit <= 0 or limit != limit.quantize(
            Decimal("0.01")) or limit > Decimal("9999999999.99"):
        raise ValueError(f"DAILY_TRANSFER_LIMIT must be an amount above zero such as 10000.00, "
                         f"not {value!r}")
    return limit.quantize(Decimal("0.01"))


def trusted_hosts(public_url: str, extra: str = "") -> list[str]:
    """The host names requests may carry: PUBLIC_URL's, plus any listed in ``extra``."""
    hosts = [urlsplit(public_url).hostname]
    hosts += [name.strip().lower() for name in extra.split(",") if name.strip()]
    return list(dict.fromkeys(hosts))


# A production /metrics token shorter than this is refused at start (it is the only guard).
MIN_METRICS_TOKEN_LENGTH = 32

# Development's signing key; `flask check` fails a production app that still uses it.
DEV_SECRET_KEY = "dev-only-not-secret"


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'bankapp.db'}")
    )
    # Serverless hosts behind a transaction-mode pooler (Supabase :6543, PgBouncer) must not
    # keep their own pool: each invocation may be frozen with connections held open.
    DATABASE_NULLPOOL = _bool("DATABASE_NULLPOOL")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # Seconds a PostgreSQL connection may take to open (libpq's connect_timeout; at least 2),
    # unless DATABASE_URL sets connect_timeout itself: a hung server then fails fast.
    DATABASE_CONNECT_TIMEOUT = int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "3"))
    # PostgreSQL: deposits, withdrawals and transfers post through the ledger_post() function
    # in one database call (bankapp/ledger/fast.py); 0 falls back to the generic ORM path.
    LEDGER_FAST_PATH = _bool("LEDGER_FAST_PATH", True)
    # A streaming replica that reports read from (bankapp/platform/replica.py); none by default.
    DATABASE_REPLICA_URL = normalize_database_url(os.environ.get("DATABASE_REPLICA_URL", ""))
    # How long a user's last write position is kept: until the replica has replayed it, their
    # reads go to the primary (their own accounts' postings are checked on every read anyway).
    READ_YOUR_WRITES_SECONDS = int(os.environ.get("READ_YOUR_WRITES_SECONDS", "3600"))
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    REDIS_URL = os.environ.get("REDIS_URL", "")
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "587"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", True)
    MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
    # The mail server's certificate is always verified; a CA file (PEM) for a server whose
    # certificate the system's trust store does not know (a relay with a private CA).
    MAIL_CA_FILE = os.environ.get("MAIL_CA_FILE") or None
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "bankapp <no-reply@localhost>")
    # Seconds any one SMTP step (connect, each reply) may take (bankapp/notifications/outbox.py).
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "10"))
    # Attempts before an outbox message is marked dead and shown to admins for a retry.
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", "8"))
    # Send a request's mail once its answer is written (no page waits for SMTP), with this
    # short timeout; off: the worker or cron alone sends. Production's default is on only on
    # Vercel, where no worker runs (docs/operations.md, "Mail").
    MAIL_AFTER_RESPONSE = _bool("MAIL_AFTER_RESPONSE", True)
    MAIL_AFTER_RESPONSE_TIMEOUT = float(os.environ.get("MAIL_AFTER_RESPONSE_TIMEOUT", "3"))
    # How often the mail job is scheduled (minutes): 5 with a worker, cron or Vercel Pro; 1440
    # on a Vercel Hobby project (daily crons only). The Jobs page marks it late after that.
    MAIL_JOB_MINUTES = int(os.environ.get("MAIL_JOB_MINUTES", "5"))
    # Bearer secret of the routes under /internal/cron/ (Vercel Cron sends it); unset: 404.
    CRON_SECRET = os.environ.get("CRON_SECRET") or None

    # OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST = 19 * 1024
    ARGON2_PARALLELISM = 1

    EMAIL_VERIFICATION_MAX_AGE = int(timedelta(hours=48).total_seconds())
    PASSWORD_RESET_MAX_AGE = int(timedelta(hours=1).total_seconds())
    # How long the "this was not me" link in an email-change notice works (also after the
    # change was confirmed): long enough for an owner who reads mail once a week.
    EMAIL_CHANGE_REVERT_MAX_AGE = int(timedelta(days=7).total_seconds())
    SESSION_IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "30")))
    SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=int(os.environ.get("SESSION_ABSOLUTE_HOURS", "12")))
    PERMANENT_SESSION_LIFETIME = SESSION_ABSOLUTE_TIMEOUT
    # The cookie is signed and sent again only when the session changed, not on every answer:
    # the timeouts are kept inside it (auth_at, and seen_at, moved at most once a minute:
    # bankapp/identity/security.py), so a fresh expiry date on each page adds nothing, and
    # each page paid for signing it again.
    SESSION_REFRESH_EACH_REQUEST = False
    # Ending sessions needs a sign-in (or the password again) this recent.
    REAUTH_SECONDS = int(os.environ.get("REAUTH_MINUTES", "10")) * 60
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_NAME = "session"
    REMEMBER_COOKIE_DURATION = timedelta(0)
    # The long-lived random cookie that tells a known browser from a new one (new-sign-in
    # emails, bankapp/identity/devices.py).
    BROWSER_COOKIE_NAME = "bankapp_browser"
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # bounded by the session lifetime instead

    # The bank's name: no password may contain it (bankapp/identity/validators.py).
    BANK_NAME = os.environ.get("BANK_NAME", "").strip() or None
    BANK_TIMEZONE = os.environ.get("BANK_TIMEZONE", "UTC")
    # ISO 4217 code of the one currency the bank keeps (checked at start, bankapp/platform/i18n.py).
    BANK_CURRENCY = os.environ.get("BANK_CURRENCY", "USD").strip().upper()
    # ISO 3166 region (KE, GB...) of phone numbers typed without their +country code: teller
    # search reads "0722 000 111" as a number of this region (checked at start).
    BANK_PHONE_REGION = os.environ.get("BANK_PHONE_REGION", "").strip().upper()
    MAX_TRANSACTION_AMOUNT = Decimal(os.environ.get("MAX_TRANSACTION_AMOUNT", "1000000.00"))
    MAKER_CHECKER_THRESHOLD = Decimal(os.environ.get("MAKER_CHECKER_THRESHOLD", "10000.00"))
    # Loans with a principal above this need an admin's approval (a teller approves below).
    LOAN_APPROVAL_THRESHOLD = Decimal(os.environ.get("LOAN_APPROVAL_THRESHOLD", "10000.00"))
    # A customer with a second factor approves a transfer above this with a fresh code
    # (bankapp/identity/stepup.py); so too a first payment to a new payee, whatever the amount.
    STEP_UP_THRESHOLD = Decimal(os.environ.get("STEP_UP_THRESHOLD", "1000.00"))
    # Customers deposit into their own accounts by web form and API: the demo's shortcut for
    # "cash at the counter". Production leaves it off (deposits come from tellers, transfers
    # and interest): money no teller received must not appear.
    CUSTOMER_SELF_DEPOSITS = _bool("CUSTOMER_SELF_DEPOSITS", True)
    # Payee look-ups (each shows a holder's masked name) per customer, counted in the
    # rate-limit store: bankapp/payments/payees.py.
    PAYEE_LOOKUP_LIMIT = os.environ.get("PAYEE_LOOKUP_LIMIT", "10 per hour")
    # Calls per API user (all their tokens), counted in the rate-limit store; empty: no limit.
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "600 per minute")
    # Open (not closed) accounts a customer may hold; a bank officer opens more.
    MAX_OPEN_ACCOUNTS = int(os.environ.get("MAX_OPEN_ACCOUNTS", "10"))
    # What one customer may send out in a day (withdrawals and transfers to other people);
    # each customer may set a lower limit (bankapp/ledger/limits.py). Checked in create_app.
    DAILY_TRANSFER_LIMIT = os.environ.get("DAILY_TRANSFER_LIMIT", "10000.00")

    # The one origin every absolute link is built from (emails, statement footnote, OpenAPI
    # servers). Unset in development: links then follow the request's own host.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "").strip().rstrip("/") or None
    # Flask's host check; production sets it to PUBLIC_URL's host (plus TRUSTED_HOSTS).
    TRUSTED_HOSTS = None
    # Emails an anonymous visitor can cause (reset, verification, sign-up notice), per
    # recipient address and kind, counted in the limiter's store across workers.
    MAIL_PER_ADDRESS_LIMIT = os.environ.get("MAIL_PER_ADDRESS_LIMIT", "3 per hour")

    # Second factors (bankapp/identity/factors.py). Staff always need one; customers when
    # CUSTOMER_2FA is "required" (production's default) or when they chose to set one up.
    CUSTOMER_2FA = os.environ.get("CUSTOMER_2FA", "optional").strip().lower()
    MFA_FAILURE_LIMIT = os.environ.get("MFA_FAILURE_LIMIT", "5 per 5 minutes")
    MFA_LOCKOUT_MINUTES = int(os.environ.get("MFA_LOCKOUT_MINUTES", "15"))
    # 30-second steps either side of now whose TOTP code is still accepted. 0 (the default): a
    # code lives only its own 30 seconds (ASVS 5.0 V6.5.5); 1 is the operator's explicit choice
    # for customers whose phone clocks drift (RFC 6238 §5.2). Nothing else starts.
    TOTP_DRIFT_STEPS = int(os.environ.get("TOTP_DRIFT_STEPS", "0"))
    # New passwords also checked against Have I Been Pwned's range API (k-anonymity: 5 hex
    # characters of the SHA-1 leave the host); off unless set, fails open after the timeout
    # (bankapp/identity/breached.py).
    PWNED_PASSWORDS_CHECK = _bool("PWNED_PASSWORDS_CHECK")
    PWNED_PASSWORDS_URL = os.environ.get("PWNED_PASSWORDS_URL",
                                         "https://api.pwnedpasswords.com/range/")
    PWNED_PASSWORDS_TIMEOUT = float(os.environ.get("PWNED_PASSWORDS_TIMEOUT", "2"))
    # Seconds between the password and the second factor before the login starts over.
    MFA_PENDING_SECONDS = 300
    # Seconds a passkey challenge (bankapp/identity/passkeys.py) may be answered in; used once.
    PASSKEY_CHALLENGE_SECONDS = 300
    # Fernet key(s) for secrets stored in the database (bankapp/platform/crypto.py); derived from
    # SECRET_KEY outside production when unset.
    FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY") or None

    FORCE_HTTPS = False
    TRUST_PROXY_HOPS = int(os.environ.get("TRUST_PROXY_HOPS", "0"))
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # text (today's lines) or json (one object per line); unset: json in production, else text.
    LOG_FORMAT = os.environ.get("LOG_FORMAT") or None
    # Bearer token that /metrics asks for; unset, /metrics does not exist (404).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    SECURITY_CONTACT = os.environ.get("SECURITY_CONTACT", "")  # /.well-known/security.txt
    # Audit rows per kind of security event (403, refused object, CSRF failure, rate limit,
    # refused API token) and per caller; past it, only a log line (bankapp/audit/events.py).
    SECURITY_EVENT_AUDIT_LIMIT = os.environ.get("SECURITY_EVENT_AUDIT_LIMIT", "10 per hour")

    # JSON API (bankapp/api): HS256 access tokens signed with JWT_SECRET_KEY (SECRET_KEY when
    # unset), short-lived.
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY") or None
    JWT_ACCESS_TOKEN_MINUTES = int(os.environ.get("JWT_ACCESS_TOKEN_MINUTES", "15"))
    # Days a refused API posting's stored answer is kept for retries (`flask
    # prune-idempotency-keys`); a posting's answer is its journal entry, kept for good.
    API_IDEMPOTENCY_RETENTION_DAYS = int(os.environ.get("API_IDEMPOTENCY_RETENTION_DAYS", "30"))
    # `flask prune-sessions`: days an ended (or abandoned) session row is kept, and days a
    # browser unseen is still "known" (its next sign-in is otherwise announced as new).
    SESSION_RETENTION_DAYS = int(os.environ.get("SESSION_RETENTION_DAYS", "30"))
    KNOWN_BROWSER_RETENTION_DAYS = int(os.environ.get("KNOWN_BROWSER_RETENTION_DAYS", "400"))


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    DEBUG = _bool("FLASK_DEBUG", False)


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret"
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("TEST_DATABASE_URL") or "sqlite:///:memory:"
    )
    RATELIMIT_STORAGE_URI = os.environ.get("TEST_REDIS_URL") or "memory://"
    DATABASE_REPLICA_URL = ""
    MAIL_SERVER = ""
    MAIL_SUPPRESS_SEND = True
    # The cheapest argon2id the library allows: tests hash many passwords.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 8
    SERVER_NAME = None


class ProductionConfig(Config):
    ENV_NAME = "production"
    FORCE_HTTPS = True
    SESSION_COOKIE_SECURE = True
    # __Host- cookies must be Secure, path=/ and carry no Domain: the browser then refuses
    # any subdomain's attempt to overwrite them.
    SESSION_COOKIE_NAME = "__Host-session"
    BROWSER_COOKIE_NAME = "__Host-bankapp_browser"
    TRUST_PROXY_HOPS = int(os.environ.get("TRUST_PROXY_HOPS", "1"))
    # Production needs one database every worker and instance shares: a SQLite file is each
    # host's own (on Vercel, each instance's, gone when it stops). The suite sets this to run
    # production's other rules on a SQLite file; no environment variable turns it on.
    SQLITE_ALLOWED = False

    @classmethod
    def missing_settings(cls) -> list[str]:
        return [name for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_URL",
                                  "FIELD_ENCRYPTION_KEY")
                if not os.environ.get(name)]

    @classmethod
    def environment_settings(cls) -> dict:
        """The deployment's secrets and services, read when the app is built.

        The class attributes above are read once, when ``config.py`` is first imported; a
        production app must use the environment it is started with (and tests set it per test).
        """
        redis_url = os.environ.get("REDIS_URL", "")
        public_url = parse_public_url(os.environ["PUBLIC_URL"], require_https=True)
        from bankapp.platform.crypto import parse_field_keys

        parse_field_keys(os.environ["FIELD_ENCRYPTION_KEY"])  # ValueError names the problem
        database_url = normalize_database_url(os.environ["DATABASE_URL"])
        if database_url.startswith("sqlite") and not cls.SQLITE_ALLOWED:
            raise ValueError("DATABASE_URL names a SQLite database; production needs PostgreSQL, "
                             "one database that every worker and instance shares (a SQLite "
                             "file is one host's own, and on Vercel each instance's, lost "
                             "when it stops)")
        metrics_token = os.environ.get("METRICS_TOKEN") or None
        if metrics_token is not None and len(metrics_token) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} "
                             "characters (python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))')")
        return {
            "PUBLIC_URL": public_url,
            "FIELD_ENCRYPTION_KEY": os.environ["FIELD_ENCRYPTION_KEY"],
            "CUSTOMER_2FA": os.environ.get("CUSTOMER_2FA", "required").strip().lower(),
            "CUSTOMER_SELF_DEPOSITS": _bool("CUSTOMER_SELF_DEPOSITS", False),
            # Any other Host (or X-Forwarded-Host from a trusted proxy) is answered 400.
            "TRUSTED_HOSTS": trusted_hosts(public_url, os.environ.get("TRUSTED_HOSTS", "")),
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": database_url,
            "DATABASE_NULLPOOL": _bool("DATABASE_NULLPOOL"),
            "DATABASE_REPLICA_URL": normalize_database_url(
                os.environ.get("DATABASE_REPLICA_URL", "")),
            "REDIS_URL": redis_url,
            # Without Redis every worker and instance still counts in one place: the database.
            "RATELIMIT_STORAGE_URI": redis_url or "bankapp+database://",
            "TRUST_PROXY_HOPS": int(os.environ.get("TRUST_PROXY_HOPS", "1")),
            "CRON_SECRET": _cron_secret(),
            "MAIL_AFTER_RESPONSE": _bool("MAIL_AFTER_RESPONSE", bool(os.environ.get("VERCEL"))),
            # vercel.json runs the mail job daily (all a Hobby project may): 1440 there.
            "MAIL_JOB_MINUTES": int(os.environ.get("MAIL_JOB_MINUTES")
                                    or (1440 if os.environ.get("VERCEL") else 5)),
            "LOG_FORMAT": os.environ.get("LOG_FORMAT") or None,
            "METRICS_TOKEN": metrics_token,
            "MAIL_CA_FILE": _mail_ca_file(),
        }


def _mail_ca_file() -> str | None:
    path = os.environ.get("MAIL_CA_FILE") or None
    if path is not None:
        import ssl

        try:
            ssl.create_default_context(cafile=path)
        except OSError as error:  # a missing file, or no certificate in it (ssl.SSLError)
            # Found now, not when the first email stays queued with a TLS error.
            raise ValueError(f"MAIL_CA_FILE={path} cannot be read as the mail server's "
                             f"CA certificates (a PEM file): {error}") from None
    return path


def _cron_secret() -> str | None:
    secret = os.environ.get("CRON_SECRET") or None
    if secret is not None and len(secret) < 16:
        # Vercel's advice; a short secret on a public URL that sends mail is guessable.
        raise ValueError("CRON_SECRET must be at least 16 characters (a random string)")
    return secret


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_environment():
    """The config class named by BANKAPP_ENV (or FLASK_ENV); development by default.

    On Vercel (which sets ``VERCEL=1``) the default is production, so a deployment that forgot
    BANKAPP_ENV refuses to start without its secrets instead of running with development's.
    """
    default = "production" if os.environ.get("VERCEL") else "development"
    name = (os.environ.get("BANKAPP_ENV") or os.environ.get("FLASK_ENV") or default).lower()
    if name not in CONFIGS:
        sys.exit(f"bankapp: unknown BANKAPP_ENV {name!r}; use one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
