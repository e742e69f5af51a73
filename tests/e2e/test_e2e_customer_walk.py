"""A new customer's first visit, in a real browser, one step per test, in order.

Sign up → confirm the email from the link that arrived over SMTP → log in → open a savings and
a checking account → deposit → withdraw → transfer between them and to another customer →
history and balances → statement, monthly summary chart, CSV download → log out.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from e2e_support import PASSWORD, money, open_context, submit_form

pytestmark = pytest.mark.e2e

EMAIL = "new.customer@example.com"
PAYEE_EMAIL = "bob.brown@example.com"


@dataclass
class Journey:
    page: object
    accounts: dict[str, str] = field(default_factory=dict)  # "savings"/"checking" → number
    payee_account: str = ""


@pytest.fixture(scope="class")
def journey(browser, live_server):
    watch, page = open_context(browser, live_server)
    yield Journey(page=page)
    watch.close()


def statement_path(number: str) -> str:
    """This month's statement so far; the server's bank time zone is UTC."""
    today = datetime.now(timezone.utc).date().isoformat()
    return f"/reports/statement/{number}/?start={today[:8]}01&end={today}"


@pytest.mark.incremental
class TestNewCustomerWalk:
    def test_a_visitor_signs_up_with_email_password_phone_and_birth_date(self, journey, snap):
        page = journey.page
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/accounts/login/$"))
        page.locator("header").get_by_role("link", name="Sign up").click()
        expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
        page.fill("#email", EMAIL)
        page.fill("#password1", PASSWORD)
        page.fill("#password2", PASSWORD)
        page.fill("#phone_number", "+442071838750")
        page.fill("#date_of_birth", "1990-04-12")
        snap(page, "01-signup")
        submit_form(page)
        expect(page).to_have_url(re.compile(r"/accounts/login/$"))
        expect(page.locator(".flash")).to_contain_text("Check your email")

    def test_the_link_in_the_verification_email_confirms_the_address(
            self, journey, mail_sink, snap):
        message = mail_sink.wait_for(EMAIL, "confirm")
        page = journey.page
        page.goto(mail_sink.link_path(message, "/accounts/verify/"))
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        expect(page.locator(".flash")).to_contain_text("confirmed")
        snap(page, "02-email-confirmed")

    def test_the_customer_logs_in_and_lands_on_an_empty_dashboard(self, journey, snap):
        page = journey.page
        page.goto("/accounts/login/")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        snap(page, "03-login")
        submit_form(page)
        expect(page).to_have_url(re.compile(r"/dashboard/$"))
        expect(page.locator("body")).to_contain_text("You have no accounts yet")
        snap(page, "04-dashboard-empty")

    @pytest.mark.parametrize("kind", ["savings", "checking"])
    def test_the_customer_opens_an_account_from_the_dashboard(self, journey, kind, snap):
        page = journey.page
        page.goto("/dashboard/")
        page.select_option("#account_type", label=kind.capitalize())
        page.get_by_role("button", name="Open account").click()
        expect(page.locator(".flash-success")).to_contain_text(f"Your new {kind} account")
        heading = page.locator("h1").inner_text()
        number = re.search(r"[A-Z]{3}-\d+", heading).group(0)
        expect(page).to_have_url(re.compile(rf"/accounts/{number}/$"))
        expect(page.locator(".balance")).to_have_text("$0.00")
        journey.accounts[kind] = number
        snap(page, f"05-opened-{kind}")

    def test_a_deposit_raises_the_balance_and_shows_in_the_history(self, journey, snap):
        page, checking = journey.page, journey.accounts["checking"]
        page.goto(f"/accounts/{checking}/")
        page.get_by_role("link", name="Deposit", exact=True).click()
        expect(page).to_have_url(re.compile(rf"/accounts/{checking}/deposit/$"))
        page.fill("#amount", "1,250.00")
        page.fill("#description", "Salary November")
        snap(page, "06-deposit-form")
        page.get_by_role("button", name="Deposit").click()
        expect(page).to_have_url(re.compile(rf"/accounts/{checking}/$"))
        expect(page.locator(".flash-success")).to_contain_text("Deposit of $1,250.00 posted")
        expect(page.locator(".balance")).to_have_text("$1,250.00")
        expect(page.locator("table tbody tr").first).to_contain_text("Salary November")
        snap(page, "07-account-after-deposit")

    def test_a_withdrawal_lowers_the_balance(self, journey):
        page, checking = journey.page, journey.accounts["checking"]
        page.goto(f"/accounts/{checking}/")
        page.get_by_role("link", name="Withdraw", exact=True).click()
        page.fill("#amount", "200")
        page.fill("#description", "Cash machine")
        page.get_by_role("button", name="Withdraw").click()
        expect(page.locator(".flash-success")).to_contain_text("Withdrawal of $200.00 posted")
        expect(page.locator(".balance")).to_have_text("$1,050.00")
        expect(page.locator("table tbody tr").first).to_contain_text("Cash machine")

    def test_a_withdrawal_beyond_the_balance_is_refused_with_a_message(self, journey, snap):
        page, savings = journey.page, journey.accounts["savings"]
        page.goto(f"/accounts/{savings}/withdraw/")
        page.fill("#amount", "10.00")
        page.get_by_role("button", name="Withdraw").click()
        expect(page.locator(".form-errors")).to_contain_text("Insufficient funds")
        snap(page, "08-withdraw-refused")
        page.goto(f"/accounts/{savings}/")
        expect(page.locator(".balance")).to_have_text("$0.00")

    def test_a_transfer_between_own_accounts_is_confirmed_then_posted(self, journey, snap):
        page = journey.page
        checking, savings = journey.accounts["checking"], journey.accounts["savings"]
        page.goto("/dashboard/")
        page.locator("header").get_by_role("link", name="Transfer").click()
        expect(page).to_have_url(re.compile(r"/accounts/transfer/"))
        page.check(f"input[name=from_account][value='{checking}']")
        page.fill("#to_account", savings)
        page.fill("#amount", "300.00")
        page.fill("#description", "Rainy day fund")
        snap(page, "09-transfer-form")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("h1")).to_have_text("Confirm the transfer")
        expect(page.locator(".summary")).to_contain_text(savings)
        snap(page, "10-transfer-confirm")
        page.get_by_role("button", name="Send $300.00").click()
        expect(page).to_have_url(re.compile(rf"/accounts/{checking}/$"))
        expect(page.locator(".flash-success")).to_have_text(f"$300.00 sent to Savings {savings}.")
        expect(page.locator(".balance")).to_have_text("$750.00")

    def test_a_transfer_to_another_customer_shows_the_payee_masked(
            self, journey, live_server):
        bank = live_server.bank
        bank.create_user(PAYEE_EMAIL, first_name="Bob", last_name="Brown")
        journey.payee_account = bank.open_account(PAYEE_EMAIL, "checking", "10.00")
        page, checking = journey.page, journey.accounts["checking"]
        page.goto(f"/accounts/transfer/?from={checking}")
        page.fill("#to_account", journey.payee_account)
        page.fill("#amount", "50")
        page.fill("#description", "Concert tickets")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator(".summary")).to_contain_text("B** B****")
        expect(page.locator(".summary")).not_to_contain_text("Brown")
        page.get_by_role("button", name="Send $50.00").click()
        expect(page.locator(".flash-success")).to_have_text("$50.00 sent to B** B****.")
        expect(page.locator(".balance")).to_have_text("$700.00")
        assert bank.balance(journey.payee_account) == Decimal("60.00")

    def test_history_and_dashboard_show_every_movement_and_the_new_balances(
            self, journey, snap):
        page = journey.page
        checking, savings = journey.accounts["checking"], journey.accounts["savings"]
        page.goto(f"/accounts/{checking}/")
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(4)
        for row, (description, amount, after) in zip(rows.all(), [
                ("Concert tickets", "−$50.00", "$700.00"),
                ("Rainy day fund", "−$300.00", "$750.00"),
                ("Cash machine", "−$200.00", "$1,050.00"),
                ("Salary November", "+$1,250.00", "$1,250.00")]):
            expect(row).to_contain_text(description)
            expect(row.locator("td.num").nth(0)).to_have_text(amount)
            expect(row.locator("td.num").nth(1)).to_have_text(after)
        snap(page, "11-account-history")
        page.goto(f"/accounts/{savings}/")
        expect(page.locator(".balance")).to_have_text("$300.00")
        page.get_by_role("link", name="Dashboard").click()
        cards = page.locator(".account-cards .account-card")
        expect(cards.filter(has_text=checking).locator(".account-available")).to_have_text(
            "$700.00")
        expect(cards.filter(has_text=savings).locator(".account-available")).to_have_text(
            "$300.00")
        expect(page.locator("#total-available")).to_have_text("$1,000.00")
        snap(page, "12-dashboard")

    def test_the_statement_lists_the_period_movements_and_the_closing_balance(
            self, journey, snap):
        checking = journey.accounts["checking"]
        page = journey.page
        page.goto(statement_path(checking))
        body = page.locator("main")
        expect(body).to_contain_text(checking)
        for description in ("Salary November", "Cash machine", "Rainy day fund",
                            "Concert tickets"):
            expect(body).to_contain_text(description)
        expect(body).to_contain_text("Opening balance")
        expect(body).to_contain_text("Closing balance")
        expect(body).to_contain_text("700.00")
        snap(page, "13-statement")

    def test_the_monthly_summary_draws_a_chart(self, journey, snap):
        page = journey.page
        page.goto("/reports/summary/")
        chart = page.locator("main svg, main canvas, main img").first
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 100 and box["height"] > 50, f"the chart is too small: {box}"
        snap(page, "14-monthly-summary")

    def test_the_statement_downloads_as_csv(self, journey, tmp_path):
        checking = journey.accounts["checking"]
        page = journey.page
        page.goto(statement_path(checking))
        link = page.locator("a[href*='format=csv']")
        expect(link.first).to_be_visible()
        with page.expect_download() as download_info:
            link.first.click()
        download = download_info.value
        assert download.suggested_filename.endswith(".csv")
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
        text = "\n".join(",".join(row) for row in rows)
        for description in ("Salary November", "Cash machine", "Rainy day fund",
                            "Concert tickets"):
            assert description in text, f"{description!r} missing from the CSV:\n{text}"
        amounts = {money(cell) for row in rows for cell in row if money(cell) is not None}
        assert {Decimal("1250.00"), Decimal("200.00"), Decimal("300.00"),
                Decimal("50.00")} <= {abs(a) for a in amounts}

    def test_logging_out_ends_the_session(self, journey, snap):
        page = journey.page
        page.goto("/dashboard/")
        page.locator("header").get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        expect(page.locator(".flash")).to_contain_text("logged out")
        snap(page, "15-logged-out")
        page.goto("/dashboard/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
