"""Languages and the bank's currency: which locale a request is served in, and the checks
made at start.

The locale is, in order: the signed-in user's choice on the profile page (``users.locale``),
else the best match of the browser's ``Accept-Language``, else English. The JSON API always
answers in English: its messages are read by programs and by whoever debugs them, and one
language keeps them stable (the amounts it returns are plain decimal strings anyway).

Catalogues live in ``bankapp/translations/<locale>/LC_MESSAGES/messages.po`` and are compiled
to ``.mo`` files that are committed beside them (``make translations`` rebuilds both), so every
host, Vercel's build included, serves them without a compile step.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from babel import Locale
from babel.numbers import UnknownCurrencyError, get_currency_name
from flask import Flask, current_app, has_request_context, request
from flask_babel import force_locale, get_locale, get_translations, gettext, lazy_gettext
from flask_login import current_user
# Jinja's own wrappers for new-style gettext (what install_gettext_callables installs), so
# that escaping and %-formatting in templates stay exactly Jinja's.
from jinja2.ext import _make_new_gettext, _make_new_ngettext

from bankapp.extensions import babel

DEFAULT_LOCALE = "en"
# Shipped languages, each named in itself (what the profile page's select shows).
LANGUAGES = {"en": "English", "fr": "Français"}


def N_(text: str) -> str:
    """Marks ``text`` for the catalogue without translating it here: stored labels stay
    English and are translated where they are shown (``_(label)`` in a template)."""
    return text


# Names shown for the codes stored in the database.
STATUS_LABELS = {"active": N_("active"), "frozen": N_("frozen"), "closed": N_("closed"),
                 "pending": N_("pending"), "approved": N_("approved"),
                 "rejected": N_("rejected"),
                 # scheduled orders and their payments, queued email
                 "paused": N_("paused"), "cancelled": N_("cancelled"),
                 "completed": N_("completed"), "posted": N_("posted"), "failed": N_("failed"),
                 "sent": N_("sent"), "dead": N_("dead")}
ROLE_LABELS = {"customer": N_("customer"), "teller": N_("teller"), "admin": N_("admin")}


def status_label(code: str) -> str:
    return gettext(STATUS_LABELS[code]) if code in STATUS_LABELS else code


def stored_message(text: str | None) -> str:
    """A message stored in English (a scheduled payment's failure, an order's note) in the
    page's language when the catalogue has it, as written otherwise. Plain text: the page
    escapes it (``_()`` in a template would mark it safe)."""
    return gettext(text) if text else ""


def lazy_status_label(code: str):
    """``status_label`` read when shown: for a message made before its page's language is
    known, or shown in another (a refusal raised in one place, rendered in another)."""
    return lazy_gettext(STATUS_LABELS[code]) if code in STATUS_LABELS else code


def role_label(code: str) -> str:
    return gettext(ROLE_LABELS[code]) if code in ROLE_LABELS else code


def select_locale() -> str:
    """The locale of the current request: profile, else Accept-Language, else English."""
    if not has_request_context() or request.path.startswith("/api/"):
        return DEFAULT_LOCALE

    chosen = getattr(current_user, "locale", None) if current_user else None
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LOCALE


def current_locale() -> Locale:
    """The request's Babel locale (English outside a request)."""
    if has_request_context():
        return get_locale() or Locale.parse(DEFAULT_LOCALE)
    return Locale.parse(DEFAULT_LOCALE)


@contextmanager
def recipient_locale(user) -> Iterator[None]:
    """Write an email in its recipient's language: their profile choice (``users.locale``),
    else the language of the request that causes it (English outside a request)."""
    chosen = getattr(user, "locale", None)
    with force_locale(chosen if chosen in LANGUAGES else str(current_locale())):
        yield


def bank_currency() -> str:
    return current_app.config["BANK_CURRENCY"]


def check_currency(code: str) -> str:
    """``BANK_CURRENCY`` checked: three upper-case letters that CLDR knows as a currency."""
    if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isupper()):
        raise ValueError(f"BANK_CURRENCY must be an ISO 4217 code such as USD, not {code!r}")
    try:
        name = get_currency_name(code, locale="en")
    except UnknownCurrencyError:
        name = code
    if name == code:
        raise ValueError(f"BANK_CURRENCY {code!r} is not an ISO 4217 currency code")
    return code


def page_catalogue() -> dict:
    """The page's ``_``, ``gettext`` and ``ngettext``, bound to its catalogue once per render.

    Flask-Babel's template functions look the catalogue up again on every call (the request,
    its locale, the cache: about 4 µs) and a page calls them about a hundred times. Bound
    when the page is rendered, they give the same text in the same language: a mail written
    in its recipient's language (``recipient_locale``) is rendered inside it. Macros imported
    without the page's context use Flask-Babel's own, as before."""
    translations = get_translations()
    return {"gettext": _make_new_gettext(translations.ugettext),
            "ngettext": _make_new_ngettext(translations.ungettext)}


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    app.context_processor(page_catalogue)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["bank_currency"] = bank_currency
    app.jinja_env.globals["status_label"] = status_label
    app.jinja_env.globals["role_label"] = role_label
    app.jinja_env.filters["stored_message"] = stored_message
    # {% trans %} blocks: line breaks and indentation inside them are not part of the msgid.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
