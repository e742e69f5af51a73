"""The customer's money pages as services: a transfer from its form to its posting, with the
confirmation and the step-up it may need; a change of the customer's daily limit.

``routes`` parses the form, calls one of these with the customer and what the form says, and
renders what comes back. They never read the request, flash or touch a form: a transfer
answers with a ``TransferOutcome`` (the page to show, the errors to put on it, or the
posting), a limit change with the change or a domain error.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from bankapp import audit, ledger
from bankapp.audit import Action, TargetType
from bankapp.extensions import db
from bankapp.identity import factors, passkeys, stepup
from bankapp.models import Account, AccountStatus, User
from bankapp.identity.lookups import LOOKUPS_SPENT, may_reveal
from bankapp.payments.payees import payee_of
from bankapp.platform.database import objects_kept_after_commit
from bankapp.platform.formatting import day_start_utc

LOCKED_STEP_UP = _l("Too many wrong codes: payments that need a code cannot be approved for "
                    "%(minutes)s minutes. Transfers between your own accounts still work.")
CHANGED_DETAILS = _l("The transfer details are not the ones this page showed (or the page "
                     "expired): check them and enter a new code.")
PASSKEY_REFUSED = _l("Your passkey did not approve this transfer (the request may have "
                     "expired, been used already or been made for other details): nothing was "
                     "sent. Try again, or enter a code.")

# The pages a transfer goes through.
FORM, CONFIRM, POSTED = "form", "confirm", "posted"

# An error for the page: the form field it belongs to (None: the whole form), and the message.
FieldError = tuple[str | None, str]


# ---------------------------------------------------------------- the dashboard


@dataclass(frozen=True)
class Dashboard:
    """What the customer's first page shows: each account with what can be spent from it
    (``available``, by account id), their ``total``, and the latest legs with the other
    party's name (``names``, by leg id: ``ledger.counterparties``)."""

    accounts: list[Account]
    available: dict[int, Decimal]
    total: Decimal
    activity: list
    names: dict[int, str]


def dashboard(user: User) -> Dashboard:
    """The customer's accounts with their available balances, and their latest activity."""
    accounts = list(user.accounts)
    available = ledger.available_balances(accounts) if accounts else {}
    activity = ledger.latest_activity(user)
    return Dashboard(accounts, available, sum(available.values(), start=Decimal("0.00")),
                     activity, ledger.counterparties(activity))


# ---------------------------------------------------------------- an account's history


@dataclass(frozen=True)
class HistoryPage:
    """One page of an account's (searched) history, with the other party of each line."""

    page: object  # flask_sqlalchemy's Pagination
    names: dict[int, str]


def history_page(account: Account, wanted: ledger.HistoryFilter, number: int,
                 per_page: int) -> HistoryPage:
    """Page ``number`` of ``account``'s history narrowed by ``wanted``, newest first."""
    page = db.paginate(ledger.filtered_history(account, wanted), page=number,
                       per_page=per_page, error_out=False)
    return HistoryPage(page, ledger.counterparties(page.items))


def history_filter(text: str | None, first_day: date | None, last_day: date | None,
                   least: Decimal | None, most: Decimal | None, kind: str | None
                   ) -> ledger.HistoryFilter:
    """What a history search asks for, its days (the bank's calendar) as UTC bounds."""
    return ledger.HistoryFilter(
        text=" ".join((text or "").split()),
        start=day_start_utc(first_day) if first_day else None,
        end=day_start_utc(last_day + timedelta(days=1)) if last_day else None,
        least=least, most=most, types=(kind,) if kind else ())


# ---------------------------------------------------------------- transfers


@dataclass(frozen=True)
class NamedAccounts:
    """The accounts a transfer form names, read in one query with what the pages need to name
    them (``known``: the holders' masked names, the customer's payee nicknames): ``source``
    is the named source only when the form may offer it (the customer's own and active),
    else None."""

    source: Account | None
    known: ledger.KnownAccounts

    @property
    def by_number(self) -> dict[str, Account]:
        return self.known.by_number


def named_accounts(user: User, from_number: str | None, typed_number: str | None
                   ) -> NamedAccounts:
    """The source and the typed destination of a transfer form, both in one query."""
    known = ledger.find_accounts_known_to(user, from_number, typed_number)
    source = known.by_number.get(from_number)
    offered = source is not None and source.owner_id == user.id and source.is_active
    return NamedAccounts(source if offered else None, known)


@dataclass(frozen=True)
class TransferRequest:
    """What a valid transfer form asks for: the fields as sent, ``edit`` when the customer
    went back from the confirmation page, ``confirmed`` when they confirmed on it (with the
    page's signed ``approval`` and a ``code`` or ``passkey_assertion`` when it asked)."""

    from_account: str
    to_account: str | None  # the number typed
    payee: str | None  # a saved payee's id, or nothing
    amount: Decimal
    description: str | None
    idempotency_key: str
    edit: bool = False
    confirmed: bool = False
    approval: str | None = None
    code: str | None = None
    passkey_assertion: str | None = None


@dataclass(frozen=True)
class TransferOutcome:
    """What the transfer page shows next: the form again (``FORM``), the confirmation page
    (``CONFIRM``), or the posted transfer (``POSTED``, with its ``posting``).

    ``to_account`` is the number of the saved payee the form chose: the pages show it in
    place of the choice. On the confirmation page ``step_up`` says whether (and why) a code
    is asked for, ``approval`` is the signed details a code approves, ``holder`` the payee's
    masked name; ``too_many_codes`` when wrong codes have just locked the approval.
    """

    page: str
    errors: tuple[FieldError, ...] = ()
    to_account: str | None = None
    source: Account | None = None
    destination: Account | None = None
    step_up: stepup.StepUp | None = None
    approval: str | None = None
    has_passkey: bool = False
    holder: str = ""
    too_many_codes: bool = False
    posting: ledger.Posting | None = None


def transfer(user: User, asked: TransferRequest, named: NamedAccounts) -> TransferOutcome:
    """Take a transfer form one step further: check the destination (a saved payee's account
    or the number typed), ask for confirmation, and once confirmed (with a code or passkey
    when step-up applies: ``bankapp.identity.stepup``) post it.

    ``named`` is what ``named_accounts`` read for the form; its ``source`` is the one the form
    offered. A confirmed form sent again (same one-time key) replays its posting: no new code.
    """
    source, to_number, chosen = named.source, asked.to_account, None
    if asked.payee:
        to_number = chosen = _chosen_destination(user, asked.payee)
        if chosen is None:
            return TransferOutcome(FORM, (("payee", gettext(
                "Choose one of your accounts or saved payees.")),))
    if not (to_number or "").strip():
        return TransferOutcome(FORM, (("to_account", gettext(
            "Enter the destination account number, or choose a saved payee.")),))
    if to_number == asked.to_account:
        typed = ledger.account_number_as_typed(to_number)
        destination = named.by_number.get(typed)
        if not may_reveal(user, typed, destination, via="transfer"):
            return TransferOutcome(FORM, (("to_account", gettext(LOOKUPS_SPENT)),), chosen)
    else:  # one of the customer's accounts, or a saved payee's
        destination = ledger.find_customer_account(to_number)
    problem = _transfer_problem(source, destination)
    if problem:
        return TransferOutcome(FORM, (("payee" if chosen else "to_account", problem),), chosen)
    if asked.edit:
        return TransferOutcome(FORM, (), chosen)
    if not asked.confirmed:
        try:  # what the posting would refuse is said before the customer confirms
            ledger.check_can_send(source, destination, asked.amount)
        except ledger.LedgerError as error:
            return TransferOutcome(FORM, (("amount", str(error)),), chosen)
    step_up = stepup.step_up_for(user, destination, asked.amount)
    confirmation = _Confirmation(user, asked, source, destination, step_up, chosen,
                                 named.known)
    if not asked.confirmed:
        return confirmation.shown()
    if step_up and ledger.find_posting(user, asked.idempotency_key) is None:
        refused = _refused_without_approval(confirmation)
        if refused is not None:
            return refused
    # Read before: the commit ends the reads (no query when the form's read holds it).
    holder = ledger.party_name(user, destination, named.known)
    try:
        with objects_kept_after_commit():
            posting = ledger.transfer(source, destination, asked.amount, asked.description,
                                      user, idempotency_key=asked.idempotency_key)
    except ledger.LedgerError as error:
        return TransferOutcome(FORM, ((None, str(error)),), chosen)
    return TransferOutcome(POSTED, (), chosen, source, destination, holder=holder,
                           posting=posting)


def _chosen_destination(user: User, choice: str) -> str | None:
    """The account number a choice of the transfer form's destination list stands for: a
    saved payee (by id) or one of the customer's own active accounts (by number)."""
    if choice.isdigit():
        payee = payee_of(user, int(choice))
        return payee.account.account_number if payee is not None else None
    own = {a.account_number for a in user.accounts if a.is_active}
    return choice if choice in own else None


def _transfer_problem(source: Account, destination: Account | None) -> str | None:
    """Why a transfer cannot go ahead, checked before asking the customer to confirm."""
    if destination is None:
        return str(ledger.UnknownAccount())
    if destination.id == source.id:
        return str(ledger.SameAccount())
    if destination.status != AccountStatus.ACTIVE:
        return gettext("That account cannot receive money.")
    return None


def _locked_message() -> str:
    return str(LOCKED_STEP_UP) % {"minutes": current_app.config["MFA_LOCKOUT_MINUTES"]}


@dataclass(frozen=True)
class _Confirmation:
    """The confirmation page of one transfer, shown with whatever errors a step found."""

    user: User
    asked: TransferRequest
    source: Account
    destination: Account
    step_up: stepup.StepUp
    chosen: str | None
    known: ledger.KnownAccounts

    def shown(self, *errors: FieldError, too_many_codes: bool = False) -> TransferOutcome:
        """With the signed details a code approves, when the transfer needs step-up."""
        approval, has_passkey = None, False
        if self.step_up:
            approval = stepup.approval_token(self.user, self.source, self.destination,
                                             self.asked.amount, self.asked.idempotency_key)
            has_passkey = factors.passkey_count(self.user) > 0
            whole_form = [message for field, message in errors if field is None]
            if factors.is_locked(self.user) and not whole_form:
                errors = (*errors, (None, _locked_message()))
        return TransferOutcome(CONFIRM, errors, self.chosen, self.source, self.destination,
                               self.step_up, approval, has_passkey,
                               _holder(self.user, self.destination, self.known),
                               too_many_codes)


def _holder(user: User, destination: Account, known: ledger.KnownAccounts) -> str:
    """Who the confirmation page says the money goes to: a payee by its nickname and the
    holder's masked name, anyone else by the masked name, one's own account as such."""
    named = ledger.party_name(user, destination, known)
    masked = known.masked_name(destination)
    if destination.owner_id == user.id or named == masked:
        return named
    return f"{named} ({masked})"


def _refused_without_approval(confirmation: _Confirmation) -> TransferOutcome | None:
    """The confirmation page again unless the confirming POST carries a good code (or passkey
    assertion) for exactly the details its page showed; None once the transfer is approved."""
    user, asked = confirmation.user, confirmation.asked
    source, destination = confirmation.source, confirmation.destination
    amount, key = asked.amount, asked.idempotency_key
    if not stepup.approval_matches(asked.approval, user, source, destination, amount, key):
        return confirmation.shown((None, CHANGED_DETAILS))  # the code is not even checked
    if not asked.code and asked.passkey_assertion is None:
        return confirmation.shown(("code", gettext("Enter the code.")))
    try:
        stepup.approve_transfer(user, asked.code, source=source, destination=destination,
                                amount=amount, idempotency_key=key, step_up=confirmation.step_up,
                                passkey_assertion=asked.passkey_assertion)
    except (factors.SecondFactorRefused, passkeys.PasskeyRefused) as refusal:
        if ledger.find_posting(user, key) is not None:
            return None  # a double click: its twin used the code and posted; replay that
        if isinstance(refusal, passkeys.PasskeyRefused):
            return confirmation.shown((None, PASSKEY_REFUSED))
        if refusal.locked:
            return confirmation.shown((None, _locked_message()), too_many_codes=True)
        return confirmation.shown(("code", refusal.message))
    return None


# ---------------------------------------------------------------- the daily limit


def change_daily_limit(user: User, typed_limit: str | None, code: str | None
                       ) -> ledger.LimitChange:
    """Set ``user``'s own daily limit from what they typed: lower at once, higher in 24 h,
    or at once when they typed a right code (the step-up is audited). Raises ``LedgerError``
    or ``SecondFactorRefused``, with nothing of the change written."""
    try:
        return ledger.set_own_limit(user, ledger.parse_limit(typed_limit),
                                    stepped_up=_limit_step_up(user, code))
    except (ledger.LedgerError, factors.SecondFactorRefused):
        db.session.rollback()
        raise


def _limit_step_up(user: User, code: str | None) -> bool:
    """A raise typed with a code is approved at once when the code is right (audited)."""
    if not (code or "").strip() or not user.mfa_enabled:
        return False
    factor = factors.verify_second_factor(user, code, during=factors.PAYMENT)
    audit.record(Action.STEP_UP_SUCCESS, actor=user, target_type=TargetType.USER,
                 target_id=user.id, details={"for": "daily limit", "factor": factor})
    return True
