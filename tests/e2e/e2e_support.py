"""Helpers of the real-browser tests: the served app, operator set-up, the browser watch,
and small page actions (the SMTP sink is tests/support/mail_sink.py). Fixtures and hooks that
use them are in conftest.py."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from support.mail_sink import MailSink
from support.net import free_port  # noqa: F401 (the e2e modules import it from here)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Each browser action waits at most this long: a hung page fails fast instead of eating CI time.
ACTION_TIMEOUT_MS = 15_000
# Passes the sign-up password policy (length and zxcvbn strength).
PASSWORD = "Quartz-lantern-meadow-42"


@dataclass
@dataclass
class LiveServer:
    url: str
    env: dict
    process: subprocess.Popen
    log_path: Path
    bank: "Bank" = field(init=False)
    running: ClassVar["LiveServer | None"] = None  # for the failure report's server log

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a ``flask`` command against the server's database, as an operator would."""
        result = subprocess.run([sys.executable, "-m", "flask", *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


def server_env(database: Path, sink: MailSink) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TEST_", "FLASK_", "BANKAPP_", "DATABASE_", "MAIL_"))}
    env.update({
        "BANKAPP_ENV": "development",
        "FLASK_APP": "wsgi",
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "e2e-" + secrets.token_hex(16),
        "MAIL_SERVER": sink.host,
        "MAIL_PORT": str(sink.port),
        "MAIL_USE_TLS": "0",
        "MAIL_USE_SSL": "0",
        "MAIL_DEFAULT_SENDER": "bankapp <no-reply@bank.test>",
        # The tests log in several users from one address within a minute.
        "LOGIN_RATE_LIMIT": "100 per minute",
        "REDIS_URL": "",
        "BANK_TIMEZONE": "UTC",  # the statement period the walk asks for is a UTC date
        # The walks type the next 30-second step's code (the enrolment used the current one,
        # which is never accepted twice) rather than wait up to 30 s: one step of drift.
        "TOTP_DRIFT_STEPS": "1",
        "BANK_PHONE_REGION": "KE",  # teller search reads 0722 000 111 as +254722000111
        "PYTHONUNBUFFERED": "1",
    })
    return env


def wait_until_answers(url: str, process: subprocess.Popen, log_path: Path,
                        timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode} before answering:\n"
                               + log_path.read_text(errors="replace")[-4000:])
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer on {url} within {timeout:.0f} s:\n"
                       + log_path.read_text(errors="replace")[-4000:])


class Bank:
    """Data the walk needs but does not create itself, made the way an operator would."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self._app = None

    def app(self):
        """The application bound to the server's database, for set-up the CLI cannot do."""
        if self._app is None:
            from bankapp import create_app
            from config import DevelopmentConfig

            class E2EConfig(DevelopmentConfig):
                SQLALCHEMY_DATABASE_URI = self.server.env["DATABASE_URL"]
                MAIL_SERVER = ""

            self._app = create_app(E2EConfig)
        return self._app

    def create_user(self, email: str, role: str = "customer", password: str = PASSWORD,
                    first_name: str = "Test", last_name: str = "User") -> None:
        """A verified, active user, made with `flask create-user` as an operator would."""
        self.server.flask("create-user", "--email", email, "--role", role,
                          "--password", password, "--first-name", first_name,
                          "--last-name", last_name, "--phone", "+442071838750")

    def open_account(self, owner_email: str, account_type: str = "checking",
                     opening_deposit: str = "0.00") -> str:
        """Open an account for a customer through the ledger; its number."""
        from bankapp import ledger
        from bankapp.extensions import db
        from bankapp.models import AccountType, User

        with self.app().app_context():
            owner = db.session.scalar(db.select(User).where(User.email == owner_email.lower()))
            kind = getattr(AccountType, account_type.upper())
            account = ledger.open_account(owner, kind)
            if Decimal(opening_deposit) > 0:
                ledger.deposit(account, Decimal(opening_deposit), "Opening deposit", owner)
            db.session.commit()
            return account.account_number

    def balance(self, account_number: str) -> Decimal:
        from bankapp.extensions import db
        from bankapp.models import Account

        with self.app().app_context():
            return db.session.scalar(
                db.select(Account.balance).where(Account.account_number == account_number))


# Reported to the test process through an exposed binding; Chromium also logs these as
# console errors, but the event carries the directive and the blocked resource.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__e2eCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`
    + ` at ${e.sourceFile || document.location.href}:${e.lineNumber}`);
});
"""


class BrowserWatch:
    """What went wrong inside one browser context: console errors, page errors, CSP, 5xx."""

    active: list["BrowserWatch"] = []

    def __init__(self, context) -> None:
        self.context = context
        self.problems: list[str] = []
        self.reported = 0
        context.expose_binding("__e2eCspViolation", lambda source, text: self.problems.append(
            f"CSP violation on {source['frame'].url}: {text}"))
        context.add_init_script(_CSP_LISTENER)
        context.on("page", self.watch)
        BrowserWatch.active.append(self)

    def watch(self, page) -> None:
        page.on("console", lambda message: message.type == "error" and self.problems.append(
            f"console error on {page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(
            f"page error on {page.url}: {error}"))
        page.on("response", lambda response: response.status >= 500 and self.problems.append(
            f"HTTP {response.status} for {response.request.method} {response.url}"))

    @classmethod
    def of(cls, page) -> "BrowserWatch":
        return next(watch for watch in cls.active if watch.context == page.context)

    def expect_error_status(self, url: str) -> None:
        """The page at ``url`` answered 4xx on purpose (a 404 page): not a problem to report."""
        self.problems[self.reported:] = [
            problem for problem in self.problems[self.reported:]
            if not (problem.startswith(f"console error on {url}:")
                    and "Failed to load resource: the server responded with a status of 4"
                    in problem)]

    def new_problems(self) -> list[str]:
        fresh = self.problems[self.reported:]
        self.reported = len(self.problems)
        return fresh

    def close(self) -> None:
        BrowserWatch.active.remove(self)
        self.context.close()


def open_context(browser, live_server, base_url: str | None = None,
                 locale: str = "en-GB") -> tuple[BrowserWatch, object]:
    """A fresh browser profile (no cookies) watched for problems, and its first page.

    ``base_url`` replaces the server's own (passkeys: ``http://localhost:<port>``, as WebAuthn
    refuses an IP address as its relying party).
    """
    context = browser.new_context(base_url=base_url or live_server.url, accept_downloads=True,
                                  viewport={"width": 1280, "height": 900}, locale=locale,
                                  timezone_id="UTC")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    watch = BrowserWatch(context)
    return watch, context.new_page()



def open_own_page(page, name: str) -> None:
    """Follow one of the user's own links (Profile, Change password, Security): they sit in
    the menu under the user's name, opened first as a person would."""
    menu = page.locator("header details.nav-account")
    if not menu.evaluate("details => details.open"):
        menu.locator("summary").click()
    menu.get_by_role("link", name=name).click()


def submit_form(page, within: str = "main form") -> None:
    """Press the submit button of the page's main form (its label is the view's business)."""
    page.locator(within).locator("button[type=submit], input[type=submit]").first.click()


_MONEY = re.compile(r"^[+\-−]?\d{1,3}(,?\d{3})*(\.\d{2})$")


def money(text: str) -> Decimal | None:
    """``"-$1,250.00"`` → ``Decimal("-1250.00")`` (an English page, the default USD);
    None when ``text`` is not an amount."""
    text = text.strip().replace("$", "", 1)
    if not _MONEY.match(text):
        return None
    return Decimal(text.replace(",", "").replace("−", "-"))


def log_in(page, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form and wait until it has let the user in."""
    page.goto("/accounts/login/")
    page.fill("#email", email)
    page.fill("#password", password)
    submit_form(page)
    page.wait_for_url(re.compile(r"^(?!.*/accounts/login/)"))


def enrol_authenticator(page) -> str:
    """On the set-up page: type the shown key into "the app" (pyotp), confirm with its code.

    Returns the key, from which the caller computes later codes.
    """
    import pyotp

    page.wait_for_url(re.compile(r"/accounts/2fa/totp/setup/"))
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    submit_form(page)
    page.locator(".recovery-code").first.wait_for()
    return secret


# ---------------------------------------------------------------- layout and accessibility

# The two window sizes every page is checked at: a small phone and a desktop.
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}

# Sideways overflow, and what must stay in view on any width: every amount, every balance and
# the page's primary actions. An element counts as cut off when it reaches past the window or
# past an ancestor that clips or scrolls (a table scrolled inside its card hides its right side).
_LAYOUT_PROBLEMS = """
() => {
  const width = window.innerWidth;
  const problems = [];
  const pageWidth = document.documentElement.scrollWidth;
  if (pageWidth > width) {
    problems.push(`the page scrolls sideways: ${pageWidth}px wide in a ${width}px window`);
  }
  const describe = (el) => {
    const text = (el.innerText || el.value || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    return `<${el.tagName.toLowerCase()} class="${el.className}"> "${text}"`;
  };
  const keyItems = document.querySelectorAll(
    'main .num, main .balance, main .figure, main button[type=submit], main .button');
  for (const el of keyItems) {
    if (!el.checkVisibility() || !el.innerText.trim()) continue;
    const box = el.getBoundingClientRect();
    let left = 0, right = width;
    for (let up = el.parentElement; up; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') {
        const clip = up.getBoundingClientRect();
        left = Math.max(left, clip.left);
        right = Math.min(right, clip.right);
      }
    }
    if (right - left <= 1) continue;  // inside a visually hidden block (for screen readers)
    if (box.left < left - 1 || box.right > right + 1) {
      problems.push(`${describe(el)} is out of view: ${Math.round(box.left)}–`
        + `${Math.round(box.right)}px, visible ${Math.round(left)}–${Math.round(right)}px`);
    }
  }
  return problems;
}
"""


def layout_problems(page) -> list[str]:
    """What a reader at this window size cannot see without scrolling sideways.

    Measured once the page has loaded its stylesheets: after a click, the new page's text
    can be there before its CSS, and an unstyled table is wider than any phone."""
    page.wait_for_load_state("load")
    return page.evaluate(_LAYOUT_PROBLEMS)


# axe-core's impacts that fail a page; "moderate" and "minor" are reported, not failed.
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now (rules of WCAG 2.x A/AA and best practice)."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page).response["violations"]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            detail = node.get("failureSummary", "").replace("\n", " ")
            lines.append(f"    {', '.join(map(str, node['target']))}: {detail}")
    return "\n".join(lines)
