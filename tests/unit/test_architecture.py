"""Rules of the import graph that import-linter's contracts cannot spell (pyproject.toml has the others)."""

from __future__ import annotations

import re

import grimp

# A router: a domain's `api.py` or `api_*.py` (parse a request, call a use case, shape the answer).
ROUTER = re.compile(r"^miaodai\.[a-z_]+\.api(_[a-z_]+)?$")


def test_no_web_page_imports_a_router() -> None:
    """The app's pages call the same services and views as the API, never a router's functions or models:
    a page that called an endpoint would skip its dependencies (authentication, idempotency) unseen."""
    graph = grimp.build_graph("miaodai", cache_dir=None)
    routers = {m for m in graph.modules if ROUTER.match(m)}
    assert {"miaodai.loans.api_loans", "miaodai.payments.api", "miaodai.sandbox.api_wallet"} <= routers
    pages = graph.find_children("miaodai.web") | {"miaodai.web"}
    found = sorted((page, imported) for page in pages
                   for imported in graph.find_modules_directly_imported_by(page) & routers)
    assert found == []
