"""Test tooling shipped with the package: a throw-away PostgreSQL server on loopback."""
