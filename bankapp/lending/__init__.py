"""Lending: loan products, applications, approval, disbursement, repayment schedules,
collections and arrears. Money moves only through the ledger's ``post()``.

Design
------
A disbursed loan is an account in the book: ``LN-<loan id>``, of type LOAN, with no owner
(the borrower is on the ``loans`` row, so a loan never shows among a customer's deposit
accounts). Balances being credit-positive, its balance is minus the principal still owed: a
CHECK keeps it at or below zero, and the book still sums to zero.

==========================  ===================================  ===========================
movement                    debit (−)                            credit (+)
==========================  ===================================  ===========================
disbursement                the loan (−principal)                the customer (principal −
                                                                 fee), GL-LOAN-FEES (fee)
repayment / collection      the customer (the amount)            the loan (principal part),
                                                                 GL-LOAN-INTEREST (interest),
                                                                 GL-LOAN-FEES (fees)
write-off                   GL-LOAN-LOSS (a bank expense)        the loan (what is left)
==========================  ===================================  ===========================

Interest and fees are income when they are paid (cash basis, as Fineract's cash
accounting): an instalment's interest and a late fee are *due* on its row, and reach
GL-LOAN-INTEREST and GL-LOAN-FEES with the repayment that pays them. So the loan account's
balance is always minus the principal outstanding.

Allocation
----------
Every repayment pays, instalment by instalment from the oldest due, its fees, then its
interest, then its principal (Fineract's default order: penalties and fees, interest,
principal). A payoff pays all that is due, the interest of the running period to the day
(``schedule.period_interest`` on the principal owed, from the last due date to today) and
all the principal left; the interest of the days not borrowed is never charged.

Concurrency and idempotency
---------------------------
A repayment's allocation is computed from the loan as read, and written in the posting's
own transaction (``post(also=...)``) with ``loans.version`` bumped by a conditional UPDATE
from the version read: a collection and a customer's repayment racing on one instalment
serialise on the customer account's row lock, and the later one finds the version moved,
rolls back whole (money included) and is tried again on the new state, where the
instalment is paid. A collection's idempotency key is ``loan:<id>:<instalment>:<day>``
(the bank's own posting: unique by key alone), so a second run on the same day posts
nothing; the disbursement's is ``loan:<id>:disbursement``.
"""
