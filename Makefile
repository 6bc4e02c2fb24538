# The two commands of the README. Everything else is `uv run miaodai --help`.
.PHONY: run test bench soak

run:  ## set up and start the service on SQLite with demo data and sandbox providers
	./scripts/run

test:  ## set up and run the whole test suite (SQLite + a PostgreSQL server it starts itself)
	./scripts/test

bench:  ## benchmarks (JSON lines on stdout; starts its own PostgreSQL)
	./scripts/bench

soak:  ## crash-safety soak: payouts and collections killed at named points, 1,000 seeds per database and scenario
	./scripts/soak
