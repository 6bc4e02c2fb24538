"""Pages anyone can open: the start page and the loan calculator 借款计算器 (the same quote engine the
API's ``POST /v1/quotes`` uses, under the product's own rules and cost cap)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.money import Money
from miaodai.loans import product_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.quotes import terms_or_error
from miaodai.loans.schedule import RepaymentMethod
from miaodai.web import account, journey
from miaodai.web.core import PREFIX, MaybeBorrower, WebContainer, csrf_protect, render

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

DEFAULT_AMOUNT_YUAN = "10000.00"


@router.get("", response_class=HTMLResponse)
def home(request: Request, container: WebContainer, auth: MaybeBorrower) -> HTMLResponse:
    """The start page; signed in, the borrower's way to money with their next step (:mod:`miaodai.web.journey`),
    until the setup is done; then their credit line and what is due this period, anything overdue first."""
    if auth is None:
        return render(request, "home.html")
    progress = journey.progress(container, auth)
    if progress.setup_done:  # the line card and the bills (web/account.py) instead of the checklist
        return render(request, "home.html", signed_in=auth, progress=progress,
                      **account.home_context(container, progress, auth.borrower_id))
    return render(request, "home.html", signed_in=auth, progress=progress, steps=progress.steps(),
                  step_titles=journey.STEP_TITLES)


def parse_yuan(text: str | None, field: str) -> int:
    """An amount the borrower typed (``10000``, ``10,000.5``) as fen; a clear error otherwise."""
    try:
        return Money.from_yuan((text or "").replace(",", "").replace("，", "").strip()).fen
    except (ValueError, ArithmeticError):
        raise DomainError(LoanErrors.TERMS_INVALID, params={
            "field": field, "_reason_en": "is not an amount in yuan", "_reason_zh": "不是以元为单位的金额"}) from None


@router.get("/calculator", response_class=HTMLResponse)
def calculator(request: Request, container: WebContainer, auth: MaybeBorrower, amount: str | None = None,
               term: int | None = None, method: str | None = None) -> HTMLResponse:
    products = product_service.list_products(container)
    spec = products[0].spec() if products else None
    form = {"amount": amount or DEFAULT_AMOUNT_YUAN, "term": term or (spec.terms_months[-1] if spec else 12),
            "method": method or RepaymentMethod.EQUAL_INSTALLMENT.value}
    context = {"spec": spec, "form": form, "methods": list(RepaymentMethod), "signed_in": auth}
    if spec is None:
        return render(request, "calculator.html", **context)
    if form["method"] not in RepaymentMethod.__members__.values():
        return render(request, "calculator.html", error=DomainError(LoanErrors.TERMS_INVALID, params={
            "field": "method", "_reason_en": "is not a repayment method", "_reason_zh": "不是可选的还款方式"}),
            **context)
    try:
        chosen = RepaymentMethod(form["method"])
        bullet = chosen is RepaymentMethod.BULLET
        terms = terms_or_error(
            principal_fen=parse_yuan(form["amount"], "amount"), annual_rate=product_service.default_rate(spec, None),
            method=chosen, start_date=business_date(container.clock.now()),
            term_months=None if bullet else form["term"], term_days=min(form["term"] * 30, spec.bullet_max_days or 30)
            if bullet else None)
        schedule = product_service.quote_under_product(spec, terms)
    except DomainError as error:
        return render(request, "calculator.html", error=error, **context)
    return render(request, "calculator.html", schedule=schedule, rate=Decimal(spec.max_annual_rate), **context)
