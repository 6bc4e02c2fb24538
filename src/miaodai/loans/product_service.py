"""Use cases of loan products and quotes: create (staff), list (anyone), quote under a product."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import LoanProduct
from miaodai.loans.products import ProductSpec, check_offer, validate_product
from miaodai.loans.quotes import quote
from miaodai.loans.schedule import LoanTerms, Schedule


def create_product(ports: Platform, spec: ProductSpec, *, actor: str) -> LoanProduct:
    now = ports.clock.now()
    validate_product(spec, today=business_date(now))
    try:
        with ports.db.transaction() as session:
            if session.execute(select(LoanProduct.id).where(LoanProduct.code == spec.code)).first():
                raise DomainError(LoanErrors.PRODUCT_EXISTS, params={"product_code": spec.code})
            product = LoanProduct.from_spec(spec, created_at=now, created_by=actor)
            session.add(product)
            session.flush()
            ports.audit.record(
                session,
                actor=actor,
                action="loan_product.create",
                subject=f"loan_product:{product.id}",
                details={
                    "code": spec.code,
                    "max_annual_rate": str(spec.max_annual_rate),
                    "monthly_fee_rate": str(spec.monthly_fee_rate),
                    "cost_cap": str(spec.cost_cap),
                },
            )
    except IntegrityError:  # a concurrent create of the same code won the race
        raise DomainError(LoanErrors.PRODUCT_EXISTS, params={"product_code": spec.code}) from None
    return product


def list_products(ports: Platform) -> list[LoanProduct]:
    with ports.db.transaction() as session:
        return list(
            session.execute(select(LoanProduct).where(LoanProduct.active.is_(True)).order_by(LoanProduct.id)).scalars()
        )


def product_by_code(session: Session, code: str) -> LoanProduct:
    product = session.execute(
        select(LoanProduct).where(LoanProduct.code == code, LoanProduct.active.is_(True))
    ).scalar_one_or_none()
    if product is None:
        raise DomainError(LoanErrors.PRODUCT_NOT_FOUND, params={"product_code": code})
    return product


def quote_under_product(spec: ProductSpec, terms: LoanTerms) -> Schedule:
    """A quote with the product's fee, day count and cap; refused if the product does not offer it."""
    check_offer(
        spec,
        principal_fen=terms.principal_fen,
        method=terms.method,
        annual_rate=terms.annual_rate,
        term_months=terms.term_months,
        term_days=terms.term_days,
    )
    priced = replace(terms, monthly_fee_rate=spec.monthly_fee_rate, day_count=spec.day_count)
    return quote(priced, cost_cap=spec.cost_cap)


def product_spec(ports: Platform, code: str) -> ProductSpec:
    with ports.db.transaction() as session:
        return product_by_code(session, code).spec()


def default_rate(spec: ProductSpec, annual_rate: Decimal | None) -> Decimal:
    return spec.max_annual_rate if annual_rate is None else annual_rate
