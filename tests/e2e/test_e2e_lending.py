"""A loan from application to payoff in a real browser: a customer applies (seeing the
schedule first), a teller approves, the money arrives, `flask run-loans --as-of` four months
on collects three instalments and finds the fourth overdue (with its late fee), the customer
pays off early, and the statement shows it all. The loan pages are checked at 360 and 1280 px
in English and French (layout, axe)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import (BLOCKING_IMPACTS, BrowserWatch, axe_violations, describe_violations,
                         enrol_authenticator, layout_problems, log_in, money, open_context)

pytestmark = pytest.mark.e2e

EMAIL = "borrower.bea@example.com"
TELLER = "teller.tim@example.com"


def _product(live_server) -> None:
    live_server.flask("create-loan-product", "--name", "Shop loan", "--currency", "USD",
                      "--principal-min", "100", "--principal-max", "5000", "--term-min", "3",
                      "--term-max", "24", "--frequency", "monthly", "--annual-rate", "12",
                      "--amortisation", "equal_instalments", "--grace-days", "5",
                      "--late-fee", "15.00", "--disbursement-fee", "10.00")


def _check_layout(page, snap, name: str) -> None:
    for width in (360, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert layout_problems(page) == [], f"{name} at {width}px"
        snap(page, f"{name}-{width}")
    serious = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not serious, describe_violations(serious)


def _speak(bank, email: str, locale: str) -> None:
    """Set ``email``'s language (the pages follow it)."""
    with bank.app().app_context():
        from bankapp.extensions import db
        from bankapp.models import User

        db.session.scalar(db.select(User).where(User.email == email)).locale = locale
        db.session.commit()


def test_a_loan_is_applied_for_approved_collected_and_paid_off(new_page, live_server, snap):
    bank = live_server.bank
    _product(live_server)
    bank.create_user(EMAIL, first_name="Bea", last_name="Borrower")
    bank.create_user(TELLER, role="teller", first_name="Tim", last_name="Teller")
    account = bank.open_account(EMAIL, "checking", "300.00")

    page = new_page()
    log_in(page, EMAIL)
    page.goto("/loans/apply/")
    page.fill("#principal", "1,200.00")
    page.fill("#term", "12")
    page.fill("#purpose", "Shop stock")
    page.get_by_role("button", name="Show the repayment schedule").click()
    expect(page.locator("#schedule tbody tr")).to_have_count(12)
    expect(page.locator("#schedule")).to_contain_text("$106.62")
    _check_layout(page, snap, "70-loan-apply")
    page.get_by_role("button", name="Apply for this loan").click()
    expect(page.locator(".flash-success")).to_contain_text("Your application for $1,200.00")
    loan_page = page.url
    expect(page.locator("#loan-status")).to_have_text("Submitted")

    staff = new_page()
    log_in(staff, TELLER)
    enrol_authenticator(staff)  # staff must have a second factor before the back office
    staff.goto("/teller/loans/")
    _check_layout(staff, snap, "71-teller-queue")
    staff.locator("#loan-queue a").first.click()
    _check_layout(staff, snap, "72-teller-review")
    staff.get_by_role("button", name="Approve and pay out").click()
    expect(staff.locator(".flash-success")).to_contain_text("approved and paid out")
    assert bank.balance(account) == Decimal("1490.00")  # 300 + 1,200 − 10 fee

    # 1,490.00 less 1,170.14 leaves exactly three instalments of 106.62 (319.86).
    with bank.app().app_context():
        from bankapp import ledger
        from bankapp.extensions import db
        from bankapp.lending import services
        from bankapp.models import Account, Loan

        spend = db.session.scalar(db.select(Account).where(Account.account_number == account))
        ledger.withdraw(spend, Decimal("1170.14"), "Shop stock bought", None,
                        channel="teller")
        loan = db.session.scalar(db.select(Loan).order_by(Loan.id.desc()))
        fourth = services.instalments_of(loan)[3]
        run_to = fourth.due_on + timedelta(days=6)  # past the 5 grace days
    result = live_server.flask("run-loans", "--as-of", run_to.isoformat())
    assert "3 collections" in result.stdout, result.stdout

    page.goto(loan_page)
    expect(page.locator("tr.instalment").nth(2)).to_contain_text("Paid")
    expect(page.locator("tr.instalment.overdue")).to_have_count(1)
    expect(page.locator("tr.instalment.overdue")).to_contain_text("$15.00")
    _check_layout(page, snap, "73-loan-overdue")

    payoff = money(page.locator("#payoff").inner_text())
    # The customer brings the money in at the counter.
    with bank.app().app_context():
        spend = db.session.scalar(db.select(Account).where(Account.account_number == account))
        ledger.deposit(spend, payoff, "Savings brought in", None, channel="teller")
    page.fill("#amount", f"{payoff:,.2f}")
    page.get_by_role("button", name="Repay").click()
    expect(page.locator("#loan-status")).to_have_text("Paid off")
    _check_layout(page, snap, "74-loan-paid-off")
    assert bank.balance(account) == Decimal("0.00")

    # The statement: the schedule with the fee, three collections and the payoff, EN and FR.
    page.locator("#loan-statement").click()
    expect(page.locator("#repayments tr.repayment")).to_have_count(4)
    expect(page.locator("#repayments")).to_contain_text("Payoff")
    expect(page.locator("#schedule tfoot")).to_contain_text("$1,200.00")
    _check_layout(page, snap, "77-loan-statement")
    _speak(bank, EMAIL, "fr")
    page.reload()
    expect(page.locator("h1")).to_have_text("Relevé de prêt")
    expect(page.locator("#repayments")).to_contain_text("Prélevé")
    _check_layout(page, snap, "78-loan-statement-fr")
    _speak(bank, EMAIL, "en")

    # Every posting happened today (the run's dates are the loan's, not the ledger's clock).
    today = datetime.now(timezone.utc).date().isoformat()
    page.goto(f"/reports/statement/{account}/?start={today}&end={today}")
    body = page.locator("main")
    expect(body).to_contain_text("Loan payout")
    expect(body).to_contain_text("Loan repayment")


def test_the_loan_pages_speak_french(browser, live_server, snap):
    bank = live_server.bank
    email = "emprunteuse.eva@example.com"
    bank.create_user(email, first_name="Eva", last_name="Emprunteuse")
    bank.open_account(email, "checking", "50.00")
    watch, page = open_context(browser, live_server, locale="fr-FR")
    try:
        log_in(page, email)
        page.goto("/loans/apply/")
        expect(page.locator("h1")).to_have_text("Demander un prêt")
        page.fill("#principal", "1 200,00")
        page.fill("#term", "12")
        page.locator("#show").click()
        expect(page.locator("#schedule tbody tr")).to_have_count(12)
        expect(page.locator("#schedule-heading")).to_have_text("Votre échéancier")
        _check_layout(page, snap, "75-loan-apply-fr")
        page.goto("/loans/")
        expect(page.locator("h1")).to_have_text("Prêts")
        _check_layout(page, snap, "76-loans-fr")
    finally:
        watch.close()


def test_an_admin_adds_a_loan_product_from_the_page(new_page, live_server, snap):
    bank = live_server.bank
    admin = "admin.lena@example.com"
    bank.create_user(admin, role="admin", first_name="Lena", last_name="Lender")
    page = new_page()
    log_in(page, admin)
    enrol_authenticator(page)
    page.goto("/teller/loans/")
    page.locator("#loan-products").click()  # admins reach it from the loan applications
    page.fill("#name", "Harvest loan")
    for field, value in (("#principal_min", "50"), ("#principal_max", "900"),
                         ("#term_min", "2"), ("#term_max", "10"), ("#annual_rate", "140")):
        page.fill(field, value)
    page.get_by_role("button", name="Add product").click()
    expect(page.locator("#annual_rate-error")).to_have_text(
        "The annual rate is 0 to 100 percent.")
    BrowserWatch.of(page).expect_error_status(page.url)  # the form shown again: a 422
    _check_layout(page, snap, "79-admin-loan-products-error")
    page.fill("#annual_rate", "9.5")
    page.get_by_role("button", name="Add product").click()
    expect(page.locator(".flash-success")).to_contain_text("Harvest loan")
    expect(page.locator("#products")).to_contain_text("9.5%")
    _check_layout(page, snap, "80-admin-loan-products")
    _speak(bank, admin, "fr")
    page.reload()
    expect(page.locator("h1")).to_have_text("Produits de prêt")
    page.set_viewport_size({"width": 360, "height": 900})
    assert layout_problems(page) == []
    snap(page, "81-admin-loan-products-fr-360")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert layout_problems(page) == []
    snap(page, "81-admin-loan-products-fr-1280")
