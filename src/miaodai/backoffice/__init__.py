"""The back office: what staff work on across domains — the customer 360 view, the maker-checker inbox and the
servicing actions that go through it.

It sits above the domains whose read models and services it composes (identity, loans, credit, payments) and
below the entry points (the API app, the staff console in ``miaodai.web.console``, the CLI).
"""
