"""Double-entry, append-only ledger: chart of accounts, journal entries, balances and book checks."""
