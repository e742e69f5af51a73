"""``flask`` commands for lending: loan products and the collections run."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from bankapp.cli.jobs import run_and_report
from bankapp.lending import products
from bankapp.lending.errors import LendingError
from bankapp.models import Amortisation, LateFeeKind, RepaymentFrequency
from bankapp.notifications.outbox import deliver_committed


@click.command("create-loan-product")
@with_appcontext
@click.option("--name", required=True)
@click.option("--currency", required=True, help="Three letters, such as EUR.")
@click.option("--principal-min", required=True)
@click.option("--principal-max", required=True)
@click.option("--term-min", required=True, help="Fewest repayments.")
@click.option("--term-max", required=True, help="Most repayments.")
@click.option("--frequency", type=click.Choice(RepaymentFrequency.ALL), required=True)
@click.option("--annual-rate", required=True, help="Nominal annual rate in percent, 0 to 100.")
@click.option("--amortisation", type=click.Choice(Amortisation.ALL), required=True)
@click.option("--grace-days", default="0", show_default=True)
@click.option("--late-fee-kind", type=click.Choice(LateFeeKind.ALL), default=LateFeeKind.FLAT,
              show_default=True)
@click.option("--late-fee", default="0", show_default=True)
@click.option("--disbursement-fee", default="0", show_default=True)
def create_loan_product(**options):
    """Add a loan product customers may apply for."""
    try:
        product = products.create_product(products.parse_product(options), None)
    except LendingError as error:
        where = f"--{error.field.replace('_', '-')}: " if error.field else ""
        raise click.ClickException(f"{where}{error}") from None
    click.echo(f"Loan product {product.id} “{product.name}” created.")


@click.command("run-loans")
@with_appcontext
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Collect what is due up to this date (YYYY-MM-DD) [default: today in "
                   "BANK_TIMEZONE]; not before the last run's date.")
def run_loans(as_of):
    """Collect due loan instalments, charge late fees, send notices; safe to repeat."""
    try:
        run_and_report("run-loans", as_of=as_of.date() if as_of else None)
    finally:
        deliver_committed()  # the notices, now; the mail worker retries what fails
