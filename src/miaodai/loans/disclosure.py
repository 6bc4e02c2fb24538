"""The all-in annualized rate of a credit line, for wherever a rate is shown (PBoC announcement [2021] No. 3).

A line has a nominal rate, and its product a monthly service fee; the borrower must meet first the
annualized rate of *all* costs — the IRR of the schedule with the fee (:func:`miaodai.loans.schedule.apr_of`),
the same figure a quote and the contract disclose. A line is not yet a loan, so the figure is for the line's
**default terms**: the terms the drawing page offers first (:func:`default_offer`) — 10,000 yuan (within the
product's range), the longest monthly term, equal installments where offered. Those terms are shown with the
figure, so it is an example the borrower can check, and the drawing page opens on exactly that quote.

The figure depends only on the product's terms and the line's rate, never on the borrower or the day (monthly
interest runs per period, a bullet's by its days), so it is cached per (terms, rate): the credit decision —
a measured hot path — pays a dictionary lookup, and no database round trip (:func:`line_apr_of` keeps the
product's terms per process for a minute).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from pydantic import BaseModel

from miaodai.core.ports import Platform
from miaodai.loans.models import LoanProduct
from miaodai.loans.product_service import product_by_code
from miaodai.loans.products import ProductSpec
from miaodai.loans.schedule import LoanTerms, RepaymentMethod, build_schedule

DEFAULT_AMOUNT_FEN = 10_000_00
# Any date: neither a monthly schedule's APR nor a bullet's depends on the day it starts.
_START = date(2026, 1, 1)
PRODUCT_TERMS_TTL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Offer:
    """Terms of a drawdown: the line's default ones, or what the borrower chose."""

    principal_fen: int
    method: RepaymentMethod
    term_months: int | None
    term_days: int | None


@dataclass(frozen=True, slots=True)
class LineApr:
    """The all-in APR of a line at its default terms, and those terms (shown with the figure)."""

    apr: Decimal
    offer: Offer

    @property
    def example(self) -> AprExample:
        return AprExample(principal_fen=self.offer.principal_fen, method=self.offer.method,
                          term_months=self.offer.term_months, term_days=self.offer.term_days)


class AprExample(BaseModel):
    """The terms a line's all-in APR is computed for (the API's ``apr_example``): what drawing offers first."""

    principal_fen: int
    method: RepaymentMethod
    term_months: int | None
    term_days: int | None


def default_offer(spec: ProductSpec, available_fen: int | None = None) -> Offer:
    """What the drawing page offers first: 10,000 yuan (within the product's range, and within what is
    available when that is given), over the longest monthly term with equal installments where offered,
    else the first method offered (a bullet runs for the product's longest term in days)."""
    amount = min(DEFAULT_AMOUNT_FEN, spec.max_amount_fen)
    if available_fen is not None:
        amount = min(amount, available_fen)
    amount = max(amount, spec.min_amount_fen)
    preferred = RepaymentMethod.EQUAL_INSTALLMENT
    method = preferred if preferred in spec.methods else spec.methods[0]
    if method.is_monthly:
        return Offer(amount, method, max(spec.terms_months), None)
    return Offer(amount, method, None, spec.bullet_max_days)


@lru_cache(maxsize=4096)
def line_apr(spec: ProductSpec, annual_rate: Decimal) -> LineApr:
    """The all-in APR (IRR, every fee) of ``spec`` at ``annual_rate`` for the line's default terms."""
    offer = default_offer(spec)
    schedule = build_schedule(LoanTerms(
        offer.principal_fen, annual_rate, offer.method, _START, term_months=offer.term_months,
        term_days=offer.term_days, monthly_fee_rate=spec.monthly_fee_rate, day_count=spec.day_count))
    return LineApr(schedule.apr, offer)


class ProductTerms:
    """Products' terms by code or id, read at most once a minute per process: a credit decision's answer shows
    its line's APR without a database round trip of its own."""

    def __init__(self, ttl_seconds: float = PRODUCT_TERMS_TTL_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._specs: dict[str | int, tuple[float, ProductSpec]] = {}
        self._lock = threading.Lock()

    def spec(self, platform: Platform, key: str | int) -> ProductSpec:
        """The product with this code (str) or id (int), read through ``platform.db`` when not cached."""
        now = time.monotonic()
        cached = self._specs.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        with platform.db.autocommit() as session:
            product = product_by_code(session, key) if isinstance(key, str) else session.get_one(LoanProduct, key)
            spec = product.spec()
        with self._lock:
            self._specs[key] = (now, spec)
        return spec


class DisclosurePorts(Platform, Protocol):
    """What :func:`line_apr_of` is given: the platform and its products' terms cache. ``LoanPorts`` extends it
    (declared here, beside :class:`ProductTerms`, so that ``loans.ports`` imports this module and not the reverse)."""

    @property
    def product_terms(self) -> ProductTerms: ...


def line_apr_of(ports: DisclosurePorts, product: str | int, annual_rate: Decimal) -> LineApr:
    """:func:`line_apr` for the product with this code or id (its terms from ``ports.product_terms``)."""
    return line_apr(ports.product_terms.spec(ports, product), annual_rate)
