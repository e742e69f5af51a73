"""The teller desk: customers at the counter, cash, holds, approvals (maker-checker)."""
