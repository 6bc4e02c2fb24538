"""Shared kernel: settings, database, money and time, errors, crypto, audit chain.

Nothing in ``core`` imports a domain package.
"""
