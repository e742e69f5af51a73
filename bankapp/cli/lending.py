"""``flask`` commands for lending: loan products and the collections run."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from bankapp.lending import products
from bankapp.lending.errors import LendingError
from bankapp.models import Amortisation, LateFeeKind, RepaymentFrequency


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
