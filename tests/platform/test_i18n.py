"""Languages and money: catalogues complete, pages in French and English, the locale each
request is served in, amounts and times written the locale's way with the bank's currency."""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations
from flask import render_template_string
from flask_babel import get_translations

from bankapp import create_app
from bankapp.platform.formatting import (day_start_utc, format_amount, format_last_day,
                                         format_money, format_timestamp)
from bankapp.platform.i18n import LANGUAGES
from bankapp import ledger
from bankapp.notifications.outbox import queue_email
from bankapp.ledger import InvalidAmount, parse_amount
from bankapp.extensions import db
from bankapp.models import Frequency, Payee, Transaction, User, now_utc
from config import TestingConfig
from support.users import log_in_as
from support.web import post_form

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "bankapp" / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "N_": None}
MISSING = "⟦untranslated⟧"


def marked_strings() -> set[str]:
    """Every msgid marked in the code and templates, extracted as `make translations` does."""
    method_map = [("bankapp/**.py", "python"), ("bankapp/templates/**.html", "jinja2")]
    options = {"bankapp/templates/**.html": {"trimmed": "true"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po)


# ------------------------------------------------------------------ the catalogues


def test_every_marked_string_is_translated_in_french():
    """A string marked without its French translation fails here (run `make translations`,
    then translate what it added to bankapp/translations/fr/LC_MESSAGES/messages.po)."""
    french = catalogue("fr")
    untranslated = sorted(text for text in marked_strings()
                          if text not in french or not french[text].string)
    assert untranslated == []


def test_the_french_catalogue_has_no_fuzzy_or_obsolete_entries():
    french = catalogue("fr")
    assert [m.id for m in french if m.id and m.fuzzy] == []
    assert list(french.obsolete) == []


def test_french_translations_keep_every_placeholder():
    for message in catalogue("fr"):
        if message.id and message.python_format:
            assert message.check() == [], message.id


def test_french_translations_use_the_typographic_apostrophe():
    """French writes l’échéance with ’, as the rest of the catalogue does, not a typewriter '."""
    straight = []
    for message in catalogue("fr"):
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and any("'" in form for form in forms if form):
            straight.append(message.id)
    assert straight == []


def test_the_committed_mo_file_is_the_compiled_po_file():
    """Hosts serve the committed .mo (no compile step at build or start): it must be current."""
    compiled = io.BytesIO()
    write_mo(compiled, catalogue("fr"))
    compiled.seek(0)
    with open(TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.mo", "rb") as committed:
        shipped = read_mo(committed)
    expected = read_mo(compiled)
    def entries(catalog):  # plural entries are lists: made hashable
        return {tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id:
                tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string
                for m in catalog if m.id}

    assert entries(shipped) == entries(expected)


# ------------------------------------------------------------------ pages in both languages


class MarkMissing(NullTranslations):
    """The catalogue's fallback in these tests: a marked string it lacks shows a marker."""

    def gettext(self, message):
        return MISSING + message

    def ngettext(self, singular, plural, n):
        return MISSING + (singular if n == 1 else plural)


@pytest.fixture
def french_marks_missing(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        translations = get_translations()
        translations.add_fallback(MarkMissing())
    yield
    translations._fallback = None


def _pages(app, account_number: str, payee_id: int, order_id: int) -> dict[str, list[str]]:
    return {
        "anonymous": ["/accounts/login/", "/accounts/signup/", "/accounts/password_reset/", "/accounts/password_reset/done/",
                      "/accounts/verify/resend/", "/accounts/reset/done/"],
        "customer": ["/dashboard/", f"/accounts/{account_number}/",
                     f"/accounts/{account_number}/deposit/", f"/accounts/{account_number}/withdraw/",
                     "/accounts/transfer/", "/accounts/open/", "/accounts/profile/",
                     "/accounts/profile/email/", "/accounts/password/", "/accounts/security/",
                     "/accounts/2fa/totp/setup/", "/accounts/reauthenticate/",
                     "/reports/", f"/reports/statement/{account_number}/",
                     f"/reports/statement/{account_number}/?preset=this-month",
                     "/reports/summary/", f"/reports/summary/?account={account_number}",
                     "/reports/verify/", "/reports/verify/?code=AAAA-BBBB-CCCC-DDDD-EEEE",
                     "/accounts/payees/", f"/accounts/payees/{payee_id}/rename/",
                     f"/accounts/payees/{payee_id}/remove/", "/accounts/scheduled/",
                     "/accounts/scheduled/new/", f"/accounts/scheduled/{order_id}/",
                     "/accounts/notifications/", "/accounts/limits/"],
    }


def _a_payee_and_a_paid_order(make_user, funded_account, customer, account):
    """A saved payee and a weekly order to it whose first payment is made (rows to show)."""
    other = funded_account(make_user(email="payee@example.com"), "1.00")
    payee = Payee(user_id=customer.id, account_id=other.id, nickname="Sam")
    db.session.add(payee)
    first = ledger.bank_today() + timedelta(days=1)
    order = ledger.create_order(customer, account, other, D("50.00"), frequency=Frequency.WEEKLY,
                                start_on=first, today=ledger.bank_today())
    db.session.commit()
    ledger.run_due(first)
    return payee, order


@pytest.mark.parametrize("language, expected", [("fr", "Vos comptes"), ("en", "Your accounts")])
def test_customer_pages_render_in_both_languages_without_a_missing_translation(
        app, client, make_user, customer, funded_account, french_marks_missing, language,
        expected):
    account = funded_account(customer, "1234.50")
    payee, order = _a_payee_and_a_paid_order(make_user, funded_account, customer, account)
    pages = _pages(app, account.account_number, payee.id, order.id)
    headers = {"Accept-Language": language}
    for url in pages["anonymous"]:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, url
        assert MISSING not in response.get_data(as_text=True), url
    log_in_as(client, customer)
    for url in pages["customer"]:
        response = client.get(url, headers=headers, follow_redirects=True)
        assert response.status_code == 200, url
        assert MISSING not in response.get_data(as_text=True), url
    dashboard = client.get("/dashboard/", headers=headers).get_data(as_text=True)
    assert expected in dashboard and f'<html lang="{language}">' in dashboard


def test_an_error_page_is_in_the_page_language(client, french_marks_missing):
    page = client.get("/no-such-page/", headers={"Accept-Language": "fr"})
    body = page.get_data(as_text=True)
    assert page.status_code == 404 and MISSING not in body
    assert "404 · Page introuvable" in body and "Nous n’avons pas trouvé cette page." in body


def test_sign_up_labels_and_refusals_are_in_the_page_language(client):
    french = {"Accept-Language": "fr"}
    response = post_form(client, "/accounts/signup/", {
        "email": "new@example.com", "password1": "123456789012", "password2": "x",
        "phone_number": "0712345678", "date_of_birth": "2099-01-01"}, headers=french)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Numéro de téléphone mobile" in page and "Date de naissance" in page
    assert "Un mot de passe ne peut pas être composé uniquement de chiffres." in page
    assert "Saisissez le numéro au format international" in page
    assert "Une date de naissance doit être dans le passé." in page


def test_a_failed_french_login_is_refused_in_french(client, customer):
    response = post_form(client, "/accounts/login/", {"email": customer.email,
                                                      "password": "not the password"},
                         headers={"Accept-Language": "fr"})
    assert ("Cette adresse e-mail et ce mot de passe ne correspondent à aucun compte actif."
            in response.get_data(as_text=True))


def test_a_payee_look_up_and_a_schedule_are_refused_in_french(client, customer,
                                                               funded_account):
    account = funded_account(customer, "100.00")
    log_in_as(client, customer)
    french = {"Accept-Language": "fr"}
    page = post_form(client, "/accounts/payees/", {"account_number": "ACC-000000000",
                                                   "nickname": "Sam"},
                     headers=french).get_data(as_text=True)
    assert "Aucun compte ne porte ce numéro\xa0: vérifiez-le et réessayez." in page
    page = post_form(client, "/accounts/scheduled/new/", {
        "from_account": account.account_number, "to_account": account.account_number,
        "amount": "10,00", "frequency": "weekly",
        "start_on": (ledger.bank_today() + timedelta(days=1)).isoformat()},
        headers=french).get_data(as_text=True)
    assert "Un paiement ne peut pas aller vers le compte qui le paie" in page


TELLER_PAGES = ["/teller/", "/teller/customers/", "/teller/customers/?q=nobody-matches",
                "/teller/customers/{customer}/", "/teller/accounts/{account}/deposit/",
                "/teller/accounts/{account}/withdraw/", "/teller/accounts/{account}/freeze/",
                "/teller/accounts/{account}/unfreeze/", "/teller/entries/{entry}/",
                "/teller/approvals/", "/teller/till/close/",
                "/reports/bank/", "/reports/bank/?preset=last-12-months",
                "/teller/accounts/{account}/holds/"]
STAFF_PAGES = {
    "teller": TELLER_PAGES,
    "admin": TELLER_PAGES + ["/teller/tills/", "/teller/tills/{staff}/allocate/",
                             "/teller/tills/{staff}/settle/", "/admin/users/",
                             "/admin/users/?q=nobody-matches", "/admin/users/{customer}/",
                             "/admin/users/{staff}/", "/admin/audit/",
                             "/admin/audit/?date_from=2026-02-01&date_to=2026-01-01",
                             "/admin/audit/?actor=nobody@example.com", "/admin/interest/",
                             "/admin/mail/"],
}


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("role", ["teller", "admin"])
def test_staff_pages_render_in_both_languages_without_a_missing_translation(
        app, client, make_user, customer, funded_account, french_marks_missing, role, language):
    account = funded_account(customer, "1234.50")
    staff = make_user(email=f"{role}@example.com", role=role)
    entry = db.session.scalars(sa.select(Transaction)
                               .where(Transaction.account_id == account.id)).first().reference
    ledger.place_hold(account, D("10.00"), "Check", now_utc() + timedelta(days=2), staff)
    ledger.set_rate("SAVINGS", D("2.5"), ledger.bank_today(), staff)
    queue_email("someone@example.com", "Subject", "Body")
    db.session.commit()
    log_in_as(client, staff)
    for url in STAFF_PAGES[role]:
        url = url.format(account=account.account_number, customer=customer.id, staff=staff.id,
                         entry=entry)
        response = client.get(url, headers={"Accept-Language": language})
        assert response.status_code == 200, url
        assert MISSING not in response.get_data(as_text=True), url
    desk = client.get("/teller/", headers={"Accept-Language": language}).get_data(as_text=True)
    assert ("Ma caisse" if language == "fr" else "My till") in desk


def test_a_french_summary_names_months_and_charts_in_french(client, customer, funded_account):
    account = funded_account(customer, "1234.50")
    log_in_as(client, customer)
    page = client.get(f"/reports/summary/?account={account.account_number}",
                      headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Synthèse mensuelle" in page and "Solde de fin de mois" in page
    assert "Entrées et sorties par mois, de " in page
    assert "Month" not in page and "Money in" not in page


def test_a_report_refuses_a_bad_date_in_french(client, customer, funded_account,
                                               french_marks_missing):
    account = funded_account(customer, "10.00")
    log_in_as(client, customer)
    response = client.get(f"/reports/statement/{account.account_number}/"
                          "?start=2026-02-30&end=2026-03-01", headers={"Accept-Language": "fr"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and MISSING not in page
    assert "La date de début 2026-02-30 n’existe pas." in page


# ------------------------------------------------------------------ emails


def _reset_email(client, customer, accept: str | None):
    from bankapp.extensions import mail

    headers = {"Accept-Language": accept} if accept else {}
    with mail.record_messages() as outbox:
        post_form(client, "/accounts/password_reset/", {"email": customer.email},
                  headers=headers)
    assert len(outbox) == 1
    return outbox[0]


def test_an_email_goes_out_in_the_recipient_chosen_language(client, customer):
    customer.locale = "fr"
    db.session.commit()
    message = _reset_email(client, customer, "en-GB,en;q=0.9")  # the browser asks English
    assert message.subject == "Réinitialisez votre mot de passe bankapp"
    assert "Choisissez un nouveau mot de passe ici" in message.body
    assert "/accounts/reset/" in message.body


def test_an_email_to_a_user_who_chose_english_is_in_english(client, customer):
    customer.locale = "en"
    db.session.commit()
    message = _reset_email(client, customer, "fr")
    assert message.subject == "Reset your bankapp password"


def test_without_a_chosen_language_an_email_follows_the_page_that_caused_it(client, customer):
    customer.locale = None
    db.session.commit()
    assert _reset_email(client, customer, "fr").subject == "Réinitialisez votre mot de passe bankapp"
    assert _reset_email(client, customer, None).subject == "Reset your bankapp password"


def test_a_new_browser_alert_is_written_in_french_dates_and_all(app, customer):
    from bankapp.identity.devices import queue_new_browser_alert
    from bankapp.notifications.outbox import deliver_committed
    from bankapp.extensions import mail

    customer.locale = "fr"
    db.session.commit()
    with app.test_request_context("/", headers={"Accept-Language": "en"}), \
            mail.record_messages() as outbox:
        queue_new_browser_alert(customer, None, "192.0.2.1",
                                datetime(2026, 12, 1, 18, 5, tzinfo=timezone.utc))
        db.session.commit()
        deliver_committed()
    body = outbox[0].body
    assert outbox[0].subject == "Nouvelle connexion à votre compte bankapp"
    assert "Navigateur\xa0: inconnu" in body and "1 déc. 2026" in body


def test_a_french_page_shows_amounts_the_french_way_with_the_currency(client, customer,
                                                                      funded_account):
    funded_account(customer, "1234.50")
    log_in_as(client, customer)
    page = client.get("/dashboard/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "1\u202f234,50\xa0$US" in page


# ------------------------------------------------------------------ which locale


def _dashboard_language(client) -> str:
    page = client.get("/dashboard/", headers=client.language_header).get_data(as_text=True)
    return page.split('<html lang="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("profile, accept, expected", [
    ("fr", "en-GB,en;q=0.9", "fr"),  # the profile wins over the browser
    ("en", "fr-FR,fr;q=0.9", "en"),
    (None, "fr-CA,fr;q=0.9,en;q=0.5", "fr"),  # no choice: the browser's best match
    (None, "de-DE,sw;q=0.5", "en"),  # nothing shipped matches: English
    (None, None, "en"),
])
def test_locale_is_the_profile_choice_else_accept_language_else_english(
        app, client, customer, profile, accept, expected):
    from bankapp.extensions import db

    customer.locale = profile
    db.session.commit()
    log_in_as(client, customer)
    client.language_header = {"Accept-Language": accept} if accept else {}
    assert _dashboard_language(client) == expected


def test_choosing_french_on_the_profile_page_switches_the_pages(client, customer):
    log_in_as(client, customer)
    response = post_form(client, "/accounts/profile/", {
        "first_name": customer.first_name or "", "last_name": customer.last_name or "",
        "phone_number": customer.phone_number, "locale": "fr"})
    assert response.status_code == 302
    page = client.get("/accounts/profile/", follow_redirects=True).get_data(as_text=True)
    assert '<option selected value="fr">' in page or 'value="fr" selected' in page
    assert "Votre profil" in page


def test_a_language_that_is_not_shipped_is_refused_on_the_profile_page(client, customer):
    log_in_as(client, customer)
    response = post_form(client, "/accounts/profile/", {
        "first_name": "", "last_name": "", "phone_number": customer.phone_number,
        "locale": "xx"})
    assert response.status_code == 200
    assert "Choose one of the languages in the list." in response.get_data(as_text=True)


def test_the_api_answers_in_english_whatever_the_browser_asks(client):
    response = client.get("/api/v1/accounts", headers={"Accept-Language": "fr"})
    assert response.status_code == 401
    assert response.is_json and "Vous" not in response.get_data(as_text=True)


# ------------------------------------------------------------------ money and times


@pytest.mark.parametrize("locale, value, expected", [
    ("en", D("0"), "$0.00"),
    ("en", D("-1234.5"), "−$1,234.50"),
    ("en", D("9999999999.99"), "$9,999,999,999.99"),
    ("fr", D("0"), "0,00\xa0$US"),
    ("fr", D("-1234.5"), "−1\u202f234,50\xa0$US"),
    ("fr", D("9999999999.99"), "9\u202f999\u202f999\u202f999,99\xa0$US"),
    ("de_DE", D("9999999999.99"), "9.999.999.999,99\xa0$"),
    ("hi_IN", D("9999999999.99"), "$9,99,99,99,999.99"),  # Indian grouping: lakh, crore
    ("en_IN", D("-1234567.8"), "−$12,34,567.80"),
])
def test_money_is_written_the_locale_way_with_the_currency(app, locale, value, expected):
    with app.app_context():
        assert format_money(value, locale=locale) == expected


@pytest.mark.parametrize("language, expected", [
    ("en", "Page 2 of 1,234 (12,340 in all)"),
    ("fr", "Page 2 sur 1\u202f234 (12\u202f340 en tout)"),
])
def test_the_pager_writes_its_counts_the_locale_way(app, language, expected):
    page = SimpleNamespace(page=2, pages=1234, total=12340, has_prev=True, prev_num=1,
                           has_next=True, next_num=3)
    with app.test_request_context(headers={"Accept-Language": language}):
        html = render_template_string(
            "{% from '_pagination.html' import pager %}{{ pager(page, 'admin.users') }}",
            page=page)
    assert expected in html


def test_signed_amounts_carry_plus_and_a_real_minus(app):
    with app.app_context():
        assert format_money(D("100"), signed=True, locale="en") == "+$100.00"
        assert format_money(D("-25"), signed=True, locale="en") == "−$25.00"
        assert format_money(D("0"), signed=True, locale="en") == "$0.00"


# Amounts around every thousands mark, cents, zero and very large values, both signs.
WRITTEN_AMOUNTS = [D(text) * sign for sign in (1, -1) for text in (
    "0", "0.004", "0.005", "0.01", "0.5", "1", "9.99", "10", "99.99", "999.995", "1000",
    "1000.01", "1234.5", "9999.99", "10000", "65432.1", "100000", "999999.99", "1000000",
    "1234567.89", "12345678.9", "999999999.99", "1000000000", "98765432109.87",
    "1000000000000.01", "123456789012345.67")]


def babel_money(value, locale, currency, signed=False, number_only=False):
    """How Babel writes an amount (CLDR), with the real minus and the ``signed`` plus."""
    from babel.numbers import format_currency, format_decimal

    value = D(value).quantize(D("0.01"))
    text = (format_decimal(abs(value), format="#,##0.00", locale=locale,
                           decimal_quantization=True) if number_only
            else format_currency(abs(value), currency, locale=locale))
    if value < 0:
        return "−" + text
    return "+" + text if signed and value > 0 else text


@pytest.mark.parametrize("locale", ["en", "fr", "fr_CH", "de_DE", "de_CH", "en_IN", "hi_IN",
                                    "es", "ja", "ar"])
@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "KES"])
def test_every_amount_is_written_as_babel_writes_it(app, locale, currency):
    """The quick writer of figures (a statement has thousands) writes what Babel writes."""
    with app.app_context():
        for value in WRITTEN_AMOUNTS:
            for signed in (False, True):
                assert format_money(value, signed=signed, currency=currency, locale=locale) \
                    == babel_money(value, locale, currency, signed), (value, signed)
            assert format_amount(value, locale=locale) \
                == babel_money(value, locale, currency, number_only=True), value


@pytest.mark.parametrize("value, english, french", [
    (D("0"), "$0.00", "0,00\xa0$US"),
    (D("0.05"), "$0.05", "0,05\xa0$US"),
    (D("-0.05"), "−$0.05", "−0,05\xa0$US"),
    (D("999.99"), "$999.99", "999,99\xa0$US"),
    (D("1000"), "$1,000.00", "1\u202f000,00\xa0$US"),
    (D("-1000000"), "−$1,000,000.00", "−1\u202f000\u202f000,00\xa0$US"),
    (D("123456789012.3"), "$123,456,789,012.30", "123\u202f456\u202f789\u202f012,30\xa0$US"),
])
def test_thousands_are_marked_with_a_comma_in_english_and_a_narrow_space_in_french(
        app, value, english, french):
    with app.app_context():
        assert format_money(value, locale="en") == english
        assert format_money(value, locale="fr") == french
        assert format_amount(value, locale="fr") == french.replace("\xa0$US", "")


@pytest.mark.parametrize("locale", ["en", "fr", "de_CH", "es", "ja", "en_IN"])
def test_every_time_is_written_as_babel_writes_it(app, locale):
    """The quick writer of times (one per statement line) writes what Babel writes."""
    from babel import Locale
    from babel.dates import format_date, format_skeleton

    app.config["BANK_TIMEZONE"] = "Europe/Paris"
    moments = [datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
               datetime(2026, 3, 29, 0, 59, 59, tzinfo=timezone.utc),  # the clocks go forward
               datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc),
               datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc),  # and back
               datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc),
               datetime(2026, 12, 31, 22, 59, 9, tzinfo=timezone.utc),
               datetime(2027, 5, 9, 7, 4, 5, tzinfo=timezone.utc)]
    parsed = Locale.parse(locale)
    with app.app_context():
        for moment in moments:
            local = moment.astimezone(ZoneInfo("Europe/Paris"))
            clock = format_skeleton("Hm", local.time(), locale=parsed)
            day = format_date(local.date(), "medium", locale=parsed)
            assert format_timestamp(moment, locale=locale) \
                == parsed.datetime_formats["medium"].format(clock, day)
            assert format_timestamp(moment, "seconds", locale=locale) \
                == parsed.datetime_formats["medium"].format(
                    format_skeleton("Hms", local.time(), locale=parsed), day)
            assert format_timestamp(moment, "time", locale=locale) == clock
            assert format_timestamp(moment, "date", locale=locale) == day


def test_the_bank_currency_is_configurable(app):
    app.config["BANK_CURRENCY"] = "KES"
    with app.app_context():
        assert format_money(D("1500"), locale="en") == "KES1,500.00"
        assert format_amount(D("1500"), locale="fr") == "1\u202f500,00"


@pytest.mark.parametrize("code", ["usd ", "US", "DOLLARS", "XYZ", "€"])
def test_an_unknown_bank_currency_stops_the_app(monkeypatch, code):
    class Misconfigured(TestingConfig):
        BANK_CURRENCY = code

    with pytest.raises(SystemExit) as stopped:
        create_app(Misconfigured)
    assert "BANK_CURRENCY" in str(stopped.value)


def test_times_are_written_the_locale_way_in_the_bank_time_zone(app):
    moment = datetime(2026, 12, 1, 18, 5, tzinfo=timezone.utc)
    app.config["BANK_TIMEZONE"] = "Europe/Paris"
    with app.app_context():
        assert format_timestamp(moment, locale="en") == "Dec 1, 2026, 19:05"
        assert format_timestamp(moment, locale="fr") == "1 déc. 2026, 19:05"
        assert format_timestamp(moment, "date", locale="fr") == "1 déc. 2026"
        assert format_timestamp(moment, "%Y-%m-%d %H:%M") == "2026-12-01 19:05"


@pytest.mark.parametrize("locale, shown", [("en", "Dec 31, 2026"), ("fr", "31 déc. 2026")])
def test_a_period_ending_at_midnight_is_written_as_its_last_day(app, locale, shown):
    app.config["BANK_TIMEZONE"] = "Europe/Paris"
    with app.app_context():
        assert format_last_day(day_start_utc(date(2027, 1, 1)), locale=locale) == shown
        # An end within a day is that day.
        moment = datetime(2026, 12, 31, 15, 0, tzinfo=timezone.utc)
        assert format_last_day(moment, locale=locale) == shown


# ------------------------------------------------------------------ amounts typed in French


@pytest.mark.parametrize("text, expected", [
    ("12,50", D("12.50")), ("12,5", D("12.50")), ("12", D("12.00")),
    ("1 234,56", D("1234.56")), ("1\u202f234,56", D("1234.56")), ("1\xa0234,56", D("1234.56")),
    (" 7,25 ", D("7.25")), (",50", D("0.50")),
])
def test_french_amounts_use_the_decimal_comma(app, text, expected):
    assert parse_amount(text, "fr") == expected


@pytest.mark.parametrize("locale, text, expected", [
    ("en", "12,50", D("12.50")), ("en", "12,5", D("12.50")), ("en", ",5", D("0.50")),
    ("fr", "12.50", D("12.50")), ("fr", "0.5", D("0.50")),
])
def test_the_other_decimal_mark_is_taken_where_it_cannot_be_a_thousands_mark(
        app, locale, text, expected):
    assert parse_amount(text, locale) == expected


@pytest.mark.parametrize("locale, text, message", [
    ("en", "1.234,5", "“1.234,5” is ambiguous"),
    ("en", "1.234,50", "ambiguous"),
    ("fr", "1,234.50", "ambiguous"),
    ("fr", "10,005", "two decimal places"),
    ("fr", "1 23,5", "such as 12,50"),
    ("fr", "1e3", "such as 12,50"),
    ("fr", "١٢", "such as 12,50"),
    ("fr", "-5", "greater than zero"),
])
def test_ambiguous_or_malformed_amounts_are_refused_with_a_reason(app, locale, text, message):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text, locale)
    assert message in str(refused.value)


def test_the_ambiguity_reason_names_how_to_write_the_amount(app):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount("1.234,5", "en")
    assert "“.” before the decimals" in str(refused.value) and "1,234.50" in str(refused.value)


def test_a_french_deposit_form_takes_a_decimal_comma(client, customer, funded_account):
    account = funded_account(customer, "0.00")
    log_in_as(client, customer)
    customer.locale = "fr"
    url = f"/accounts/{account.account_number}/deposit/"
    response = post_form(client, url, {"amount": "1 234,50", "description": "Salaire"})
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Dépôt de 1\u202f234,50\xa0$US enregistré." in page


def test_an_english_form_explains_why_a_european_amount_is_refused(client, customer,
                                                                   funded_account):
    account = funded_account(customer, "0.00")
    log_in_as(client, customer)
    response = post_form(client, f"/accounts/{account.account_number}/deposit/",
                         {"amount": "1.234,5"})
    assert response.status_code == 200
    assert "is ambiguous here" in response.get_data(as_text=True)
    assert account.balance == D("0.00")
