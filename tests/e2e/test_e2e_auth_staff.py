"""Second factor, login lockout and the staff desks in a real browser, at 360 and 1280 px, in
English and French: the numeric keypad and the recovery-code switch, a spent recovery code,
copying and downloading recovery codes, the warning before the login pause and the pause page,
the desks' pending counts, approving from a review page, phone search in the bank's region,
a second-factor reset from the customer page, and the desktop menu on one row.

Each look keeps its screenshots in artifacts/e2e/auth-staff/ and checks that nothing is cut
off sideways and that axe-core finds nothing serious or critical.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import (ARTIFACTS, BLOCKING_IMPACTS, DESKTOP, PASSWORD, PHONE, ROOT,
                         axe_violations, describe_violations, free_port, layout_problems,
                         open_context, server_env, submit_form, wait_until_answers)

pytestmark = pytest.mark.e2e

LOOKS = [("phone", PHONE, "en-GB"), ("phone", PHONE, "fr-FR"),
         ("desktop", DESKTOP, "en-GB"), ("desktop", DESKTOP, "fr-FR")]
LOOK_IDS = [f"{size}-{locale[:2]}" for size, _, locale in LOOKS]
SHOTS = ARTIFACTS / "auth-staff"

ADMIN = "ada.approver@example.com"
TELLER = "theo.till@example.com"
WEALTHY = "kofi.mensah@example.com"  # holds 15,000.00: a reset of his factor needs an admin


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def assert_looks_right(page, name: str) -> None:
    """The screenshot, then nothing cut off sideways and no serious accessibility problem."""
    shot(page, name)
    assert layout_problems(page) == [], name
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{name}:\n{describe_violations(blocking)}"


def _codes_for(bank, email: str, totp: bool = True) -> list[str]:
    """Give ``email`` an authenticator app and ten recovery codes; the codes."""
    from bankapp.extensions import db
    from bankapp.identity import factors
    from bankapp.models import User

    with bank.app().app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        if totp:
            factors.enrol_totp_without_code(user)
        codes = factors._replace_recovery_codes(user)
        db.session.commit()
        return codes


@pytest.fixture(scope="module")
def desk(live_server):
    """Staff with recovery codes to sign in with, Kofi (over the reset policy, phone in Kenya),
    a customer per look to reset, a counter request per look and one reset waiting."""
    from bankapp import ledger
    from bankapp.backoffice.teller import services
    from bankapp.extensions import db
    from bankapp.models import User

    bank = live_server.bank
    bank.create_user(ADMIN, role="admin", first_name="Ada", last_name="Approver")
    bank.create_user(TELLER, role="teller", first_name="Theo", last_name="Till")
    bank.create_user(WEALTHY, first_name="Kofi", last_name="Mensah")
    kofi_account = bank.open_account(WEALTHY, "savings", "15000.00")
    codes = {ADMIN: _codes_for(bank, ADMIN), TELLER: _codes_for(bank, TELLER)}
    _codes_for(bank, WEALTHY)
    resettable = {}
    for look in LOOK_IDS:
        email = f"nia.{look}@example.com"
        bank.create_user(email, first_name="Nia", last_name=f"Njeri {look}")
        bank.open_account(email, "checking", "800.00")
        _codes_for(bank, email)
        resettable[look] = email
    with bank.app().app_context():
        def user(email):
            return db.session.scalar(db.select(User).where(User.email == email))

        kofi, teller = user(WEALTHY), user(TELLER)
        kofi.phone_number = "+254722000111"
        db.session.commit()
        account = ledger.customer_accounts_numbered(kofi_account)
        account = db.session.scalar(account)
        ledger.allocate_cash(ledger.till_for(teller), Decimal("20000.00"), user(ADMIN))
        for n, look in enumerate(LOOK_IDS):
            ledger.request_posting("deposit", account, Decimal("15000.00") + n,
                                   f"Cash from the harvest sale ({look})", teller)
        services.reset_second_factor(kofi, teller, "Lost phone; passport checked")
        ids = {"kofi": kofi.id, **{look: user(email).id for look, email in resettable.items()}}
    return {"codes": codes, "ids": ids}


def sign_in_with_recovery_code(page, email: str, code: str) -> None:
    """Password, then the second step by recovery code (through the page's own link)."""
    page.goto("/accounts/login/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    submit_form(page)
    page.wait_for_url(re.compile(r"/accounts/login/2fa/$"))
    page.locator("main a[href$='?with=recovery']").click()
    page.fill("#code", code)
    submit_form(page)
    page.wait_for_url(re.compile(r"^(?!.*/accounts/login/)"))


def menu_on_one_row(page) -> bool:
    """Whether the menu's visible items share one row (each overlaps every other vertically;
    items of different heights are centred, so their tops differ a little)."""
    return page.evaluate("""() => {
        const boxes = [...document.querySelectorAll('header .nav-links > li')]
            .filter((li) => li.checkVisibility()).map((li) => li.getBoundingClientRect());
        return Math.max(...boxes.map((b) => b.top)) < Math.min(...boxes.map((b) => b.bottom));
    }""")


@pytest.mark.parametrize("size, viewport, locale", LOOKS, ids=LOOK_IDS)
def test_staff_count_review_search_and_reset(browser, live_server, desk, size, viewport,
                                             locale):
    look = f"{size}-{locale[:2]}"
    french = locale.startswith("fr")
    n = LOOK_IDS.index(look)
    watch, page = open_context(browser, live_server, locale=locale)
    try:
        page.set_viewport_size(viewport)
        sign_in_with_recovery_code(page, ADMIN, desk["codes"][ADMIN][n])

        # The desk counts what waits for this admin: the rows the approvals page lists
        # (counter requests, and Kofi's reset).
        page.goto("/teller/approvals/")
        waiting = (page.locator("main a.button[href*='/teller/approvals/']").count()
                   + page.locator("tr.factor-reset").count())
        assert waiting >= 2
        page.goto("/teller/")
        expect(page.locator("#approvals-waiting .balance")).to_have_text(str(waiting))
        expect(page.locator("#approvals-waiting-count")).to_contain_text(str(waiting))
        assert_looks_right(page, f"{look}-01-admin-desk")
        if size == "desktop":
            assert menu_on_one_row(page), "the desktop menu wraps"

        # Approvals name the customer; approving goes through a review page first.
        page.goto("/teller/approvals/")
        expect(page.locator("main")).to_contain_text("Kofi Mensah")
        assert_looks_right(page, f"{look}-02-approvals")
        page.locator("tr", has_text=f"({look})").locator("a.button").click()
        expect(page).to_have_url(re.compile(r"/teller/approvals/\d+/$"))
        expect(page.locator("#review-customer")).to_have_text("Kofi Mensah")
        expect(page.locator("#review-amount")).to_contain_text(
            "Dépôt" if french else "Deposit")
        assert_looks_right(page, f"{look}-03-review")
        submit_form(page)
        expect(page).to_have_url(re.compile(r"/teller/entries/"))
        cash = page.locator(".cash-held").first
        expect(cash).not_to_contain_text("−")
        expect(cash).not_to_contain_text("-")
        assert_looks_right(page, f"{look}-04-entry-till-sign")

        # A local phone number finds Kofi (BANK_PHONE_REGION=KE on the test server).
        page.goto("/teller/customers/?q=0722+000+111")
        expect(page.locator("main")).to_contain_text("Kofi Mensah")
        assert_looks_right(page, f"{look}-05-phone-search")

        # Kofi's reset waits for an admin: his page says so.
        page.goto(f"/teller/customers/{desk['ids']['kofi']}/")
        expect(page.locator("#second-factor .notice")).to_be_visible()
        assert_looks_right(page, f"{look}-06-customer-reset-waiting")

        # Nia (800.00) is reset at once, with a reason.
        page.goto(f"/teller/customers/{desk['ids'][look]}/")
        assert_looks_right(page, f"{look}-07-customer-reset-form")
        page.fill("#reason", "Téléphone perdu, passeport vérifié" if french
                  else "Lost phone, passport checked")
        page.locator("#second-factor [type=submit]").click()
        expect(page.locator(".flash-success")).to_be_visible()
        expect(page.locator("#second-factor")).to_contain_text(
            "rien à réinitialiser" if french else "nothing to reset")
        assert_looks_right(page, f"{look}-08-customer-reset-done")
        assert watch.new_problems() == []
    finally:
        watch.close()


@pytest.mark.parametrize("size, viewport, locale", LOOKS, ids=LOOK_IDS)
def test_second_step_keypad_recovery_codes_and_download(browser, live_server, size, viewport,
                                                        locale, tmp_path):
    look = f"{size}-{locale[:2]}"
    french = locale.startswith("fr")
    email = f"rita.recovery.{look}@example.com"
    bank = live_server.bank
    bank.create_user(email, first_name="Rita", last_name="Recovery")
    bank.open_account(email, "checking", "100.00")
    codes = _codes_for(bank, email)
    watch, page = open_context(browser, live_server, locale=locale)
    try:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.set_viewport_size(viewport)
        page.goto("/accounts/login/")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        submit_form(page)
        page.wait_for_url(re.compile(r"/accounts/login/2fa/$"))
        code_box = page.locator("#code")
        expect(code_box).to_have_attribute("inputmode", "numeric")
        expect(code_box).to_have_attribute("autocomplete", "one-time-code")
        assert_looks_right(page, f"{look}-10-second-step-keypad")

        page.locator("main a[href$='?with=recovery']").click()
        expect(code_box).to_have_attribute("inputmode", "text")
        page.fill("#code", codes[0])
        submit_form(page)
        page.wait_for_url(re.compile(r"/dashboard/$"))

        # The same code again, from a second browser: "already used", not "not right".
        other_watch, other = open_context(browser, live_server, locale=locale)
        try:
            other.set_viewport_size(viewport)
            other.goto("/accounts/login/")
            other.fill("#email", email)
            other.fill("#password", PASSWORD)
            submit_form(other)
            other.wait_for_url(re.compile(r"/accounts/login/2fa/$"))
            other.goto("/accounts/login/2fa/?with=recovery")
            other.fill("#code", codes[0])
            submit_form(other)
            expect(other.locator("#code-error")).to_contain_text(
                "déjà été utilisé" if french else "already been used")
            assert_looks_right(other, f"{look}-11-recovery-code-already-used")
        finally:
            other_watch.close()

        # New recovery codes: copy them, download them as a file, print them.
        page.goto("/accounts/security/")
        expect(page.locator("main input[type=password]")).to_have_count(0)
        assert_looks_right(page, f"{look}-12-security")
        if size == "desktop":
            assert menu_on_one_row(page), "the customer's desktop menu wraps"
        page.locator("form[action$='/accounts/2fa/recovery-codes/'] button[type=submit], "
                     "form[action$='/accounts/2fa/recovery-codes/'] input[type=submit]"
                     ).first.click()
        shown = page.locator(".recovery-code").all_inner_texts()
        assert len(shown) == 10
        bar = page.locator(".recovery-code-actions")
        expect(bar).to_be_visible()
        bar.locator("[data-action=copy]").click()
        expect(page.locator("#recovery-codes-status")).not_to_be_empty()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert all(code in copied for code in shown)
        with page.expect_download() as download:
            bar.locator("[data-action=download]").click()
        saved = tmp_path / "codes.txt"
        download.value.save_as(saved)
        assert download.value.suggested_filename.endswith(".txt")
        assert all(code in saved.read_text() for code in shown)
        assert_looks_right(page, f"{look}-13-recovery-codes")
        assert watch.new_problems() == []
    finally:
        watch.close()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, mail_sink):
    """A server of its own with the production login limit (5 a minute, one worker so one
    count) behind a trusted proxy, so each look comes from its own address."""
    database = tmp_path_factory.mktemp("e2e-lockout") / "bankapp.db"
    env = {**server_env(database, mail_sink), "LOGIN_RATE_LIMIT": "5 per minute",
           "TRUST_PROXY_HOPS": "1"}
    migrated = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = ARTIFACTS / "lockout-server.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "wsgi:app"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_answers(url, process, log_path)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


@pytest.mark.parametrize("size, viewport, locale", LOOKS, ids=LOOK_IDS)
def test_the_login_warns_before_the_pause_and_the_pause_is_a_page(browser, strict_server,
                                                                  size, viewport, locale):
    look = f"{size}-{locale[:2]}"
    french = locale.startswith("fr")
    context = browser.new_context(base_url=strict_server, viewport=viewport, locale=locale,
                                  extra_http_headers={"X-Forwarded-For":
                                                      f"198.51.100.{LOOK_IDS.index(look) + 1}"})
    page = context.new_page()
    try:
        email = f"nobody.{look}@example.com"
        for attempt in range(1, 6):
            page.goto("/accounts/login/")
            page.fill("#email", email)
            page.fill("#password", "not the password at all")
            submit_form(page)
            errors = page.locator(".form-errors")
            if attempt == 3:
                expect(errors).to_contain_text(
                    "2 tentatives restantes" if french else "2 attempts left")
                assert_looks_right(page, f"{look}-20-login-two-attempts-left")
        page.goto("/accounts/login/")
        page.fill("#email", email)
        page.fill("#password", "not the password at all")
        with page.expect_response(re.compile(r"/accounts/login/$")) as answer:
            submit_form(page)
        assert answer.value.status == 429
        expect(page.locator(".form-errors")).to_contain_text(
            "Trop de tentatives de connexion" if french else "Too many sign-in attempts")
        expect(page.locator("h1")).to_have_text("Se connecter" if french else "Log in")
        assert_looks_right(page, f"{look}-21-login-paused")
    finally:
        context.close()
