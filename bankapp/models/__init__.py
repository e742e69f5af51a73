"""The SQLAlchemy models, a module per domain, all importable from here
(``from bankapp.models import User``).

Money columns are NUMERIC and every rule that matters is also a database constraint, so a
bug in Python cannot write a negative customer balance, a NaN or a zero-amount ledger row.
"""
from bankapp.models.base import now_utc, UTCDateTime
from bankapp.models.identity import (
    Role,
    new_session_token,
    User,
    TotpDevice,
    RecoveryCode,
    WebAuthnCredential,
    UserSession,
    KnownBrowser,
    EmailChangeStatus,
    EmailChange,
    FactorResetStatus,
    FactorResetRequest,
)
from bankapp.models.ledger import (
    AccountType,
    AccountStatus,
    Account,
    EntryType,
    Channel,
    JournalEntry,
    TransactionType,
    Transaction,
    PendingPostingKind,
    PendingStatus,
    PendingPosting,
    LedgerTotal,
    ClosingBalance,
)
from bankapp.models.limits import Hold, TransferLimit, DailyOutgoing
from bankapp.models.counters import RateLimitCounter
from bankapp.models.interest import InterestRate, InterestPosting
from bankapp.models.audit import AuditEvent, AUDIT_APPEND_ONLY_DDL
from bankapp.models.api import ApiIdempotencyKey
from bankapp.models.reports import StatementIssue
from bankapp.models.notifications import MailStatus, OutboxMessage, AlertSettings
from bankapp.models.jobs import JobOutcome, JobRun
from bankapp.models.lending import (
    RepaymentFrequency,
    Amortisation,
    LateFeeKind,
    LoanProduct,
    LoanStatus,
    Loan,
    LoanInstalment,
    RepaymentKind,
    LoanRepayment,
    LoanRun,
)
from bankapp.models.payments import (
    Payee,
    Frequency,
    OrderStatus,
    ScheduledOrder,
    OccurrenceStatus,
    ScheduledOccurrence,
)

__all__ = [
    "RateLimitCounter",
    "JobOutcome",
    "JobRun",
    "now_utc",
    "UTCDateTime",
    "Role",
    "new_session_token",
    "User",
    "TotpDevice",
    "RecoveryCode",
    "WebAuthnCredential",
    "UserSession",
    "KnownBrowser",
    "EmailChangeStatus",
    "EmailChange",
    "FactorResetStatus",
    "FactorResetRequest",
    "AccountType",
    "AccountStatus",
    "Account",
    "EntryType",
    "Channel",
    "JournalEntry",
    "TransactionType",
    "Transaction",
    "PendingPostingKind",
    "PendingStatus",
    "PendingPosting",
    "LedgerTotal",
    "ClosingBalance",
    "Hold",
    "TransferLimit",
    "DailyOutgoing",
    "InterestRate",
    "InterestPosting",
    "AuditEvent",
    "AUDIT_APPEND_ONLY_DDL",
    "ApiIdempotencyKey",
    "StatementIssue",
    "MailStatus",
    "OutboxMessage",
    "AlertSettings",
    "Payee",
    "Frequency",
    "OrderStatus",
    "ScheduledOrder",
    "OccurrenceStatus",
    "ScheduledOccurrence",
    "RepaymentFrequency",
    "Amortisation",
    "LateFeeKind",
    "LoanProduct",
    "LoanStatus",
    "Loan",
    "LoanInstalment",
    "RepaymentKind",
    "LoanRepayment",
    "LoanRun",
]
