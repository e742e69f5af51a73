"""lending: loan products, loans, their instalments and repayments, the collection runs;
the LOAN (a disbursed loan) and INCOME (loan interest and fees) account types

Revision ID: 0020_lending
Revises: 0019_factor_reset_requests
Create Date: 2026-12-06 07:40:50

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_lending'
down_revision = '0019_factor_reset_requests'
# The accounts' CHECK constraints are replaced by looser ones (two more internal account
# types): every row and write of the previous release still passes them, so this is an
# expand step (tests/support/releases.py).
WIDENS_CONSTRAINTS = True
branch_labels = None
depends_on = None

OLD_INTERNAL = "('VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE')"
NEW_INTERNAL = "('VAULT', 'TILL', 'OVER_SHORT', 'EXPENSE', 'INCOME', 'LOAN')"


def _account_checks(internal: str, loan: bool) -> None:
    types = internal.replace("(", "('SAVINGS', 'CHECKING', ", 1)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name in ("account_type_known", "customer_balance_non_negative",
                     "owner_iff_customer"):
            batch_op.drop_constraint(op.f(f"ck_accounts_{name}"), type_="check")
        if not loan:
            batch_op.drop_constraint(op.f("ck_accounts_loan_not_positive"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_account_type_known"),
                                         f"account_type IN {types}")
        batch_op.create_check_constraint(op.f("ck_accounts_customer_balance_non_negative"),
                                         f"account_type IN {internal} OR balance >= 0")
        batch_op.create_check_constraint(op.f("ck_accounts_owner_iff_customer"),
                                         f"(owner_id IS NULL) = (account_type IN {internal})")
        if loan:
            batch_op.create_check_constraint(op.f("ck_accounts_loan_not_positive"),
                                             "account_type <> 'LOAN' OR balance <= 0")


def upgrade():
    _account_checks(NEW_INTERNAL, loan=True)
    op.create_table('loan_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('trigger', sa.String(length=8), nullable=False),
    sa.Column('collected', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_runs'))
    )
    with op.batch_alter_table('loan_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_runs_as_of'), ['as_of'], unique=False)

    op.create_table('loan_products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('principal_min', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('principal_max', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('term_min', sa.Integer(), nullable=False),
    sa.Column('term_max', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.String(length=8), nullable=False),
    sa.Column('annual_rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('amortisation', sa.String(length=20), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('late_fee_kind', sa.String(length=8), nullable=False),
    sa.Column('late_fee', sa.Numeric(precision=12, scale=4), nullable=False),
    sa.Column('disbursement_fee', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("amortisation IN ('equal_instalments', 'equal_principal')", name=op.f('ck_loan_products_amortisation_known')),
    sa.CheckConstraint("annual_rate >= 0 AND annual_rate <= 100 AND annual_rate <> 'NaN'", name=op.f('ck_loan_products_annual_rate_in_range')),
    sa.CheckConstraint("frequency IN ('weekly', 'monthly')", name=op.f('ck_loan_products_frequency_known')),
    sa.CheckConstraint("late_fee >= 0 AND late_fee <> 'NaN'", name=op.f('ck_loan_products_late_fee_not_negative')),
    sa.CheckConstraint("late_fee_kind IN ('flat', 'percent')", name=op.f('ck_loan_products_late_fee_kind_known')),
    sa.CheckConstraint("principal_min > 0 AND principal_min <= principal_max AND principal_max <> 'NaN'", name=op.f('ck_loan_products_principal_bounds')),
    sa.CheckConstraint('disbursement_fee >= 0 AND disbursement_fee < principal_min', name=op.f('ck_loan_products_disbursement_fee_below_principal')),
    sa.CheckConstraint('grace_days >= 0 AND grace_days <= 365', name=op.f('ck_loan_products_grace_days_in_range')),
    sa.CheckConstraint('term_min >= 1 AND term_min <= term_max AND term_max <= 520', name=op.f('ck_loan_products_term_bounds')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_loan_products_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_products')),
    sa.UniqueConstraint('name', name=op.f('uq_loan_products_name'))
    )
    op.create_table('loans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('borrower_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('loan_account_id', sa.Integer(), nullable=True),
    sa.Column('principal', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=255), nullable=False),
    sa.Column('frequency', sa.String(length=8), nullable=False),
    sa.Column('annual_rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('amortisation', sa.String(length=20), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('late_fee_kind', sa.String(length=8), nullable=False),
    sa.Column('late_fee', sa.Numeric(precision=12, scale=4), nullable=False),
    sa.Column('disbursement_fee', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('needs_admin', sa.Boolean(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.String(length=255), nullable=True),
    sa.Column('disbursed_on', sa.Date(), nullable=True),
    sa.Column('disbursement_entry_id', sa.Integer(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("principal > 0 AND principal <> 'NaN'", name=op.f('ck_loans_principal_positive')),
    sa.CheckConstraint("status IN ('submitted', 'approved', 'rejected', 'active', 'paid_off', 'written_off')", name=op.f('ck_loans_status_known')),
    sa.CheckConstraint("status NOT IN ('active', 'paid_off', 'written_off') OR loan_account_id IS NOT NULL", name=op.f('ck_loans_disbursed_has_account')),
    sa.CheckConstraint('annual_rate >= 0 AND annual_rate <= 100', name=op.f('ck_loans_annual_rate_in_range')),
    sa.CheckConstraint('decided_by_id IS NULL OR decided_by_id <> borrower_id', name=op.f('ck_loans_decider_not_borrower')),
    sa.CheckConstraint('term >= 1', name=op.f('ck_loans_term_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_loans_account_id_accounts')),
    sa.ForeignKeyConstraint(['borrower_id'], ['users.id'], name=op.f('fk_loans_borrower_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_loans_decided_by_id_users')),
    sa.ForeignKeyConstraint(['disbursement_entry_id'], ['journal_entries.id'], name=op.f('fk_loans_disbursement_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['loan_account_id'], ['accounts.id'], name=op.f('fk_loans_loan_account_id_accounts')),
    sa.ForeignKeyConstraint(['product_id'], ['loan_products.id'], name=op.f('fk_loans_product_id_loan_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
    sa.UniqueConstraint('borrower_id', 'idempotency_key', name='uq_loans_borrower_key'),
    sa.UniqueConstraint('loan_account_id', name=op.f('uq_loans_loan_account_id'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index('ix_loans_status', ['status'], unique=False)

    op.create_table('loan_instalments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('principal_due', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('interest_due', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('fee_due', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('principal_paid', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('interest_paid', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('fee_paid', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('late_fee_on', sa.Date(), nullable=True),
    sa.Column('reminded_on', sa.Date(), nullable=True),
    sa.Column('overdue_notice_on', sa.Date(), nullable=True),
    sa.CheckConstraint('fee_paid >= 0 AND fee_paid <= fee_due', name=op.f('ck_loan_instalments_fee_paid_within_due')),
    sa.CheckConstraint('interest_paid >= 0 AND interest_paid <= interest_due', name=op.f('ck_loan_instalments_interest_paid_within_due')),
    sa.CheckConstraint('principal_due >= 0 AND interest_due >= 0 AND fee_due >= 0', name=op.f('ck_loan_instalments_due_not_negative')),
    sa.CheckConstraint('principal_paid >= 0 AND principal_paid <= principal_due', name=op.f('ck_loan_instalments_principal_paid_within_due')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_instalments_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_instalments')),
    sa.UniqueConstraint('loan_id', 'number', name='uq_loan_instalments_loan_number')
    )
    with op.batch_alter_table('loan_instalments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_instalments_due_on', ['due_on'], unique=False)

    op.create_table('loan_repayments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('principal', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('interest', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('fees', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('collection', 'repayment', 'payoff')", name=op.f('ck_loan_repayments_kind_known')),
    sa.CheckConstraint("amount > 0 AND abs(amount - (principal + interest + fees)) < 0.005", name=op.f('ck_loan_repayments_amount_allocated')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_loan_repayments_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_repayments_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_repayments')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_loan_repayments_entry_id'))
    )
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_repayments_loan_id'), ['loan_id'], unique=False)



def downgrade():
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_repayments_loan_id'))

    op.drop_table('loan_repayments')
    with op.batch_alter_table('loan_instalments', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_instalments_due_on')

    op.drop_table('loan_instalments')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status')
        batch_op.drop_index(batch_op.f('ix_loans_borrower_id'))

    op.drop_table('loans')
    op.drop_table('loan_products')
    with op.batch_alter_table('loan_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_runs_as_of'))

    op.drop_table('loan_runs')
    _account_checks(OLD_INTERNAL, loan=False)
