"""The bank report's largest movements, read from the buckets that can hold them, and the
report buckets folded after their quarter hour: the figures stay those of the legs."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp import ledger
from bankapp.extensions import db
from bankapp.ledger.totals import KINDS
from bankapp.models import LedgerTotal, Transaction
from bankapp.reports import service
from bankapp.schedule.housekeeping import fold_ledger_totals
from support.database import POSTGRES
from support.reports import deposit_at, transfer_at, withdraw_at

D = Decimal
UTC = timezone.utc
APRIL = service.Period(date(2026, 4, 1), date(2026, 4, 30))


def from_the_legs(period: service.Period, limit: int = 10) -> list[tuple[int, Decimal]]:
    """(leg id, amount) of the largest movements, sorting every leg of the period."""
    lower, upper = period.utc_bounds()
    legs = db.session.execute(
        sa.select(Transaction.id, Transaction.amount, Transaction.transaction_type,
                  Transaction.side)
        .where(Transaction.timestamp >= lower, Transaction.timestamp < upper)).all()
    movements = [(leg.id, leg.amount) for leg in legs
                 if (leg.transaction_type, leg.side) in KINDS]
    return sorted(movements, key=lambda m: (-m[1], m[0]))[:limit]


def shown(period: service.Period, limit: int = 10) -> list[tuple[int, Decimal]]:
    return [(m.id, m.amount) for m in service.largest_movements(period, limit)]


@pytest.fixture
def accounts(customer, make_user, funded_account):
    """Accounts in several shards (the account id picks a bucket's shard row)."""
    return [funded_account(customer, "100000.00")] + [
        funded_account(make_user(f"holder{n}@example.com"), "100000.00") for n in range(5)]


def random_month(accounts, seed: int, amounts: list[str]) -> None:
    """Movements of every kind through April, many in the same quarter hours, amounts drawn
    from ``amounts`` (few values: ties between buckets)."""
    rng = random.Random(seed)
    # Twenty quarter hours on different days (a customer's daily limit stays far).
    quarters = [datetime(2026, 4, 1 + day, 9, tzinfo=UTC) + timedelta(minutes=15 * (day % 3))
                for day in range(20)]
    for _ in range(60):
        when = rng.choice(quarters) + timedelta(seconds=rng.randint(0, 899))
        account, other = rng.sample(accounts, 2)
        amount, kind = rng.choice(amounts), rng.choice(["deposit", "withdraw", "transfer"])
        if kind == "deposit":
            deposit_at(account, amount, when)
        elif kind == "withdraw":
            withdraw_at(account, amount, when)
        else:
            transfer_at(account, other, amount, when)


@pytest.mark.parametrize("seed", range(4))
def test_the_largest_movements_are_those_of_the_legs(seed, accounts):
    random_month(accounts, seed,
                 [f"{random.Random(seed * 100 + n).randint(1, 900)}.00" for n in range(60)])
    assert shown(APRIL) == from_the_legs(APRIL)
    assert shown(APRIL, limit=3) == from_the_legs(APRIL, limit=3)


@pytest.mark.parametrize("seed", range(3))
def test_movements_of_equal_amounts_in_other_buckets_are_ranked_by_leg(seed, accounts):
    # Few distinct amounts: the tenth largest ties with movements in buckets beyond the ten
    # with the largest maxima; the report still lists the oldest legs first.
    random_month(accounts, seed, ["900.00", "900.00", "500.00", "20.00"])
    assert shown(APRIL) == from_the_legs(APRIL)


def test_a_bucket_whose_largest_is_not_known_is_read_from_its_legs(accounts):
    random_month(accounts, 7, ["10.00", "250.00", "3000.00", "42.50"])
    expected = from_the_legs(APRIL)
    # As rows written before migration 0023 (not backfilled) or by the previous release.
    db.session.execute(sa.update(LedgerTotal).values(max_amount=None))
    db.session.commit()
    assert shown(APRIL) == expected
    assert ledger.reconcile().problems == []


def test_a_month_without_movements_has_no_largest(accounts):
    assert shown(APRIL) == []


def test_each_bucket_row_keeps_its_largest_movement(customer, funded_account):
    account = funded_account(customer, "1000.00")
    when = datetime(2026, 4, 2, 9, 1, tzinfo=UTC)
    for amount in ("20.00", "75.50", "3.00"):
        deposit_at(account, amount, when)
    withdraw_at(account, "40.00", when)
    rows = db.session.execute(
        sa.select(LedgerTotal.kind, LedgerTotal.max_amount)
        .where(LedgerTotal.bucket == datetime(2026, 4, 2, 9, 0, tzinfo=UTC))
        .order_by(LedgerTotal.kind)).all()
    assert rows == [("deposit", D("75.50")), ("withdrawal", D("40.00"))]


def test_reconcile_reports_a_bucket_whose_largest_differs_from_the_legs(customer,
                                                                       funded_account):
    funded_account(customer, "25.00")
    db.session.execute(sa.update(LedgerTotal).values(max_amount=D("24.00")))
    db.session.commit()
    problems = ledger.reconcile().problems
    assert len(problems) == 1 and "largest movement 24.00" in problems[0]
    assert "25.00" in problems[0]


# ---------------------------------------------------------------- folding the shards


def report_figures(period: service.Period):
    report = service.bank_report(period)
    return ([(d.day, d.deposits, d.deposit_count, d.withdrawals, d.withdrawal_count,
              d.transfers, d.transfer_count) for d in report.days],
            [(m.id, m.amount) for m in report.largest])


def test_folding_the_shards_leaves_one_row_per_bucket_and_every_figure_as_it_was(
        accounts):
    random_month(accounts, 3, ["10.00", "250.00", "3000.00", "42.50", "250.00"])
    before = report_figures(APRIL)
    rows_before = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTotal))
    removed = fold_ledger_totals(datetime(2026, 5, 1, tzinfo=UTC))
    april = (LedgerTotal.bucket >= datetime(2026, 4, 1, tzinfo=UTC),
             LedgerTotal.bucket < datetime(2026, 5, 1, tzinfo=UTC))
    per_bucket = db.session.execute(
        sa.select(LedgerTotal.bucket, LedgerTotal.kind, sa.func.count())
        .where(*april).group_by(LedgerTotal.bucket, LedgerTotal.kind)).all()
    assert removed > 0 and {count for _, _, count in per_bucket} == {1}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTotal)
                             .where(*april, LedgerTotal.shard != 0)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTotal)) \
        < rows_before
    assert report_figures(APRIL) == before
    assert ledger.reconcile().problems == []


def test_folding_leaves_the_quarter_hours_after_its_cutoff_alone(accounts):
    first, second = accounts[0], accounts[1]
    deposit_at(first, "5.00", datetime(2026, 4, 3, 10, 0, tzinfo=UTC))
    deposit_at(second, "7.00", datetime(2026, 4, 3, 10, 0, tzinfo=UTC))
    deposit_at(first, "9.00", datetime(2026, 4, 3, 11, 0, tzinfo=UTC))
    deposit_at(second, "1.00", datetime(2026, 4, 3, 11, 0, tzinfo=UTC))
    fold_ledger_totals(datetime(2026, 4, 3, 11, 0, tzinfo=UTC))
    shards = dict(db.session.execute(
        sa.select(LedgerTotal.bucket, sa.func.count())
        .where(LedgerTotal.bucket < datetime(2026, 5, 1, tzinfo=UTC))
        .group_by(LedgerTotal.bucket)).all())
    assert shards == {datetime(2026, 4, 3, 10, 0, tzinfo=UTC): 1,
                      datetime(2026, 4, 3, 11, 0, tzinfo=UTC): 2}


def test_a_posting_in_a_folded_quarter_hour_is_still_counted(accounts):
    when = datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
    deposit_at(accounts[1], "5.00", when)
    fold_ledger_totals(datetime(2026, 5, 1, tzinfo=UTC))
    deposit_at(accounts[2], "8.00", when)
    deposit_at(accounts[0], "2.00", when)
    days, largest = report_figures(APRIL)
    assert [(day[1], day[2]) for day in days if day[2]] == [(D("15.00"), 3)]
    assert [amount for _, amount in largest] == [D("8.00"), D("5.00"), D("2.00")]
    assert ledger.reconcile().problems == []


# ---------------------------------------------------------------- the upgrade's backfill


def migration_0023():
    """Migration 0023's module (its backfill runs once, in the upgrade, on PostgreSQL)."""
    import importlib.util
    from pathlib import Path

    path = (Path(__file__).resolve().parents[2] / "migrations" / "versions"
            / "0023_bucket_largest_movement.py")
    spec = importlib.util.spec_from_file_location("_migration_0023", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not POSTGRES, reason="the backfill is PostgreSQL's (SQLite keeps NULL)")
def test_the_upgrade_sets_the_largest_movement_of_settled_buckets_and_leaves_live_ones_unknown(
        customer, funded_account):
    account = funded_account(customer, "1000.00")  # this one lands in a live bucket: now
    settled = datetime(2026, 4, 2, 9, 1, tzinfo=UTC)
    for amount in ("20.00", "75.50", "3.00"):
        deposit_at(account, amount, settled)
    # The bucket rows as the previous release left them: no maximum known.
    db.session.execute(sa.update(LedgerTotal).values(max_amount=None))
    migration_0023().backfill(db.session.connection())
    db.session.commit()
    known = dict(db.session.execute(sa.select(LedgerTotal.bucket, LedgerTotal.max_amount)
                                    .where(LedgerTotal.kind == "deposit")).all())
    assert known.pop(datetime(2026, 4, 2, 9, 0, tzinfo=UTC)) == D("75.50")
    assert list(known.values()) == [None]  # the opening deposit's quarter hour: still live
    assert ledger.reconcile().clean
