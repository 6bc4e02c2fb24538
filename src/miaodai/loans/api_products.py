"""Loan products and quotes: the public product list and loan calculator, and product creation by staff.

Thin: parse, call the product service or the pure quote module, shape the response.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.loans import product_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import LoanProduct
from miaodai.loans.ports import LoanPortsDep
from miaodai.loans.products import DEFAULT_ALLOCATION, DEFAULT_PENALTY_MULTIPLIER, Bucket, ProductSpec
from miaodai.loans.quotes import DEFAULT_COST_CAP, quote, quote_json, terms_or_error
from miaodai.loans.schedule import DayCount, RepaymentMethod
from miaodai.loans.views import Fen, Rate, RateOut

router = APIRouter(tags=["loans"])

class ProductView(BaseModel):
    code: str
    name_zh: str
    name_en: str
    min_amount_fen: int
    max_amount_fen: int
    methods: list[RepaymentMethod]
    terms_months: list[int]
    bullet_max_days: int | None
    min_annual_rate: RateOut
    max_annual_rate: RateOut
    day_count: DayCount
    monthly_fee_rate: RateOut
    penalty_rate_multiplier: RateOut
    late_fee_fen: int
    grace_days: int
    cost_cap: RateOut = Field(description="No offer's APR (IRR, all costs) may exceed this annual rate")
    allocation_order: list[Bucket]


class ProductRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name_zh: str = Field(min_length=1, max_length=120)
    name_en: str = Field(min_length=1, max_length=120)
    min_amount_fen: Fen
    max_amount_fen: Fen
    methods: list[RepaymentMethod] = Field(min_length=1, max_length=4)
    terms_months: list[Annotated[StrictInt, Field(ge=1, le=60)]] = Field(default_factory=list, max_length=60)
    bullet_max_days: StrictInt | None = Field(default=None, ge=1, le=365)
    min_annual_rate: Rate
    max_annual_rate: Rate
    day_count: DayCount = DayCount.ACT_360
    monthly_fee_rate: Rate = Decimal(0)
    penalty_rate_multiplier: Decimal = Field(default=DEFAULT_PENALTY_MULTIPLIER, ge=Decimal("1.3"), le=Decimal("1.5"))
    late_fee_fen: StrictInt = Field(default=0, ge=0, le=10**8)
    grace_days: StrictInt = Field(default=3, ge=0, le=30)
    cost_cap: Rate = DEFAULT_COST_CAP
    allocation_order: list[Bucket] = Field(default_factory=lambda: list(DEFAULT_ALLOCATION))


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal_fen: Fen
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT
    term_months: StrictInt | None = Field(default=None, ge=1, le=60, description="Monthly methods")
    term_days: StrictInt | None = Field(default=None, ge=1, le=365, description="Bullet only")
    annual_rate: Rate | None = Field(default=None, description="Required without product_code; else the product's max")
    monthly_fee_rate: Rate | None = Field(default=None, description="Only without product_code (the product sets it)")
    day_count: DayCount | None = Field(default=None, description="Only without product_code")
    start_date: date | None = Field(default=None, description="Payout date; default today (Beijing)")
    product_code: str | None = Field(default=None, max_length=32, description="Quote under a product's rules")


class InstallmentView(BaseModel):
    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    total_fen: int


class QuoteView(BaseModel):
    installments: list[InstallmentView]
    total_interest_fen: int
    total_fee_fen: int
    total_cost_fen: int = Field(description="Interest plus fees")
    apr: str = Field(description="Annualized rate, IRR method (PBoC Announcement [2021] No. 3), 6 places")


def product_view(product: LoanProduct) -> ProductView:
    spec = product.spec()
    return ProductView(
        code=spec.code,
        name_zh=spec.name_zh,
        name_en=spec.name_en,
        min_amount_fen=spec.min_amount_fen,
        max_amount_fen=spec.max_amount_fen,
        methods=list(spec.methods),
        terms_months=list(spec.terms_months),
        bullet_max_days=spec.bullet_max_days,
        min_annual_rate=spec.min_annual_rate,
        max_annual_rate=spec.max_annual_rate,
        day_count=spec.day_count,
        monthly_fee_rate=spec.monthly_fee_rate,
        penalty_rate_multiplier=spec.penalty_rate_multiplier,
        late_fee_fen=spec.late_fee_fen,
        grace_days=spec.grace_days,
        cost_cap=spec.cost_cap,
        allocation_order=list(spec.allocation_order),
    )


@router.get("/v1/products", summary="Loan products on offer (no login needed)")
def list_products(ports: LoanPortsDep) -> list[ProductView]:
    return [product_view(p) for p in product_service.list_products(ports)]


@router.post("/v1/staff/products", status_code=201, summary="Create a loan product (needs product.manage)")
def create_product(
    body: ProductRequest,
    staff: Annotated[StaffContext, Depends(require_permission("product.manage"))],
    ports: LoanPortsDep,
) -> ProductView:
    spec = ProductSpec(
        code=body.code,
        name_zh=body.name_zh,
        name_en=body.name_en,
        min_amount_fen=body.min_amount_fen,
        max_amount_fen=body.max_amount_fen,
        methods=tuple(body.methods),
        min_annual_rate=body.min_annual_rate,
        max_annual_rate=body.max_annual_rate,
        terms_months=tuple(body.terms_months),
        bullet_max_days=body.bullet_max_days,
        day_count=body.day_count,
        monthly_fee_rate=body.monthly_fee_rate,
        penalty_rate_multiplier=body.penalty_rate_multiplier,
        late_fee_fen=body.late_fee_fen,
        grace_days=body.grace_days,
        cost_cap=body.cost_cap,
        allocation_order=tuple(body.allocation_order),
    )
    return product_view(product_service.create_product(ports, spec, actor=staff.actor))


def _only_without_product(body: QuoteRequest) -> None:
    for name in ("monthly_fee_rate", "day_count"):
        if getattr(body, name) is not None:
            raise DomainError(
                LoanErrors.TERMS_INVALID,
                params={
                    "field": name,
                    "_reason_en": "is set by the product; leave it out when product_code is given",
                    "_reason_zh": "由产品决定，指定产品时请勿填写",
                },
            )


@router.post("/v1/quotes", summary="Loan calculator: the schedule and the annualized rate (no login needed)")
def create_quote(body: QuoteRequest, ports: LoanPortsDep) -> QuoteView:
    start = body.start_date or business_date(ports.clock.now())
    if body.product_code is not None:
        _only_without_product(body)
        spec = product_service.product_spec(ports, body.product_code)
        terms = terms_or_error(
            principal_fen=body.principal_fen,
            annual_rate=product_service.default_rate(spec, body.annual_rate),
            method=body.method,
            start_date=start,
            term_months=body.term_months,
            term_days=body.term_days,
        )
        schedule = product_service.quote_under_product(spec, terms)
    else:
        if body.annual_rate is None:
            raise DomainError(
                LoanErrors.TERMS_INVALID,
                params={
                    "field": "annual_rate",
                    "_reason_en": "is required without product_code",
                    "_reason_zh": "未指定产品时必填",
                },
            )
        terms = terms_or_error(
            principal_fen=body.principal_fen,
            annual_rate=body.annual_rate,
            method=body.method,
            start_date=start,
            term_months=body.term_months,
            term_days=body.term_days,
            monthly_fee_rate=body.monthly_fee_rate or Decimal(0),
            day_count=body.day_count or DayCount.ACT_360,
        )
        schedule = quote(terms)
    return QuoteView.model_validate(quote_json(schedule))
