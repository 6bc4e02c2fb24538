# The two commands of the README. Everything else is `uv run miaodai --help`.
.PHONY: run test bench lint

run:  ## set up and start the service on SQLite with demo data and sandbox providers
	./scripts/run

test:  ## set up and run the whole test suite (SQLite + a PostgreSQL server it starts itself)
	./scripts/test

bench:  ## benchmarks (JSON lines on stdout; starts its own PostgreSQL)
	./scripts/bootstrap && uv run python -m bench

lint:
	./scripts/bootstrap && uv run ruff check src tests bench && uv run ruff format --check src tests bench
