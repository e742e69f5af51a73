"""``whole_number``: an amount with no fraction left, as an exact integer on both servers."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bankapp.extensions import db
from bankapp.platform.database import whole_number


# Times 100 in binary floating point (SQLite's REAL), all but the largest NUMERIC(12, 2) land a
# hair off the integer: 1.15 × 100 = 114.99999999999999, which a bare cast would cut to 114.
@pytest.mark.parametrize("amount", ["1.15", "0.29", "0.57", "1234567.89", "9999999999.99",
                                    "-2.55"])
def test_an_amount_in_cents_times_a_hundred_is_its_whole_number_of_cents(app, amount):
    cents = db.session.scalar(sa.select(
        whole_number(sa.literal(Decimal(amount), sa.Numeric(12, 2)) * 100)))
    assert cents == int(Decimal(amount) * 100)
