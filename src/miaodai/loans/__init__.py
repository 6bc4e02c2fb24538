"""Loan products, schedules, drawdowns, repayments (issue 3 fills this in)."""
