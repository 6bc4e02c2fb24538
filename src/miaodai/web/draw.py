"""Drawing money 借款 in the app: amount, term and repayment method with a live quote on the borrower's own
line, then the contract to read, then signing it with a code sent for that contract and bound to its
SHA-256 (every signing asks for one, however recently the borrower logged in), which orders the payout.

The same services as ``POST /v1/loans``, ``GET …/contract`` and ``POST …/sign``: ``loan_service.request_drawdown``,
``open_contract`` and ``sign``, and the payout is sent after the signing commits exactly as the API sends it.
The quote is the one the drawdown freezes (the line's rate under the product's rules and cost cap), so the
figures on the form are the figures of the contract.

Both money-moving forms carry an idempotency key made when the form page is rendered (a hidden field): the
services keep it with what it made, so a form sent twice — a double tap, a resubmission after a lost
answer — finds the loan (or the payout) the first one made instead of making another.

The contract is read in the page itself, no frame (a phone scrolls one page, not a box inside it): the body
of the very document the API serves, its headings a level down (:func:`miaodai.contracts.document.readable_body`),
styled by the app's sheet. Its SHA-256 goes with the signing link and form, never on the page, so the
borrower signs the text they read. :func:`contract_document` serves the whole document under its own strict
policy (no scripts, nothing loaded, only its inline styles); ``?download=1`` is the same bytes as a file.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from miaodai.contracts.document import readable_body
from miaodai.contracts.errors import ContractErrors
from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.fields import RowId, RowIdForm, RowIdQuery
from miaodai.core.http import client_ip
from miaodai.identity.login_service import CodeSent
from miaodai.identity.models import OtpChannel
from miaodai.identity.sessions import AuthContext
from miaodai.loans import contract_service, line_service, loan_service
from miaodai.loans.disclosure import default_offer, line_apr
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import CreditLine, Loan, LoanProduct
from miaodai.loans.product_service import quote_under_product
from miaodai.loans.products import ProductSpec
from miaodai.loans.quotes import terms_or_error
from miaodai.loans.schedule import RepaymentMethod, Schedule
from miaodai.loans.states import LineStatus, LoanStatus
from miaodai.loans.views import loan_view
from miaodai.web import page_words
from miaodai.web.core import PREFIX, WebBorrower, WebContainer, csrf_protect, finish, redirect, render
from miaodai.web.i18n import yuan_plain
from miaodai.web.methods import default_method, my_methods
from miaodai.web.public import parse_yuan

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

BULLET_DAYS = (7, 14, 30)  # the bullet terms offered on the form, within the product's longest
SHA256 = re.compile(r"[0-9a-f]{64}")
# The contract is a document of its own: its inline styles, nothing else, framed only by our pages.
CONTRACT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; "
                   "form-action 'none'; base-uri 'none'; sandbox")

Key = Annotated[str, Form(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The app's words on these pages where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    LoanErrors.LINE_NOT_FOUND.code: (None, _("Choose your credit line below.")),
    # the form comes back with a new key: sending it again is a new request
    LoanErrors.REQUEST_KEY_REUSED.code: (None, _("Check the figures below and send the form again.")),
})


def new_key(purpose: str) -> str:
    """An idempotency key for one rendering of a money-moving form."""
    return f"web-{purpose}-{secrets.token_urlsafe(18)}"


# -- the form and its live quote -------------------------------------------------------------------------


def _lines(container: WebContainer, auth: AuthContext) -> list[tuple[CreditLine, ProductSpec]]:
    """The borrower's active lines with their products (the drawdown itself checks the line again)."""
    lines = [line for line in line_service.borrower_lines(container, auth.borrower_id)
             if line.status is LineStatus.ACTIVE]
    if not lines:
        return []
    with container.db.autocommit() as session:
        products = {p.id: p.spec() for p in session.execute(
            select(LoanProduct).where(LoanProduct.id.in_({line.product_id for line in lines}))).scalars()}
    return [(line, products[line.product_id]) for line in lines]


def term_choices(spec: ProductSpec) -> list[tuple[str, str, int]]:
    """The form's terms: ``("m12", "months", 12)`` for monthly methods, ``("d30", "days", 30)`` for bullet."""
    months = [(f"m{n}", "months", n) for n in spec.terms_months]
    longest = spec.bullet_max_days or 0
    days = sorted({d for d in (*BULLET_DAYS, longest) if 0 < d <= longest})
    return months + [(f"d{n}", "days", n) for n in days]


def parse_term(term: str) -> tuple[int | None, int | None]:
    """``m12`` → (12 months, None); ``d30`` → (None, 30 days); anything else is a clear error."""
    if len(term) >= 2 and term[0] in "md" and term[1:].isascii() and term[1:].isdigit() and len(term) <= 4:
        n = int(term[1:])
        return (n, None) if term[0] == "m" else (None, n)
    raise DomainError(LoanErrors.TERMS_INVALID, params={
        "field": "term", "_reason_en": "is not a term on offer", "_reason_zh": "不是可选的期限"})


def parse_method(method: str) -> RepaymentMethod:
    if method not in RepaymentMethod.__members__.values():
        raise DomainError(LoanErrors.TERMS_INVALID, params={
            "field": "method", "_reason_en": "is not a repayment method", "_reason_zh": "不是可选的还款方式"})
    return RepaymentMethod(method)


def quote_on_line(container: WebContainer, line: CreditLine, spec: ProductSpec, *, principal_fen: int,
                  method: RepaymentMethod, term_months: int | None, term_days: int | None) -> Schedule:
    """What the drawdown would freeze today: the line's rate under the product's rules and cost cap — the
    engine call ``loan_service.request_drawdown`` makes, with nothing reserved or stored."""
    terms = terms_or_error(principal_fen=principal_fen, annual_rate=line.annual_rate, method=method,
                           start_date=business_date(container.clock.now()), term_months=term_months,
                           term_days=term_days)
    return quote_under_product(spec, terms)


def _form_values(line: CreditLine, spec: ProductSpec, amount: str | None, term: str | None,
                 method: str | None) -> dict[str, str]:
    """The form opens on the line's default terms — the ones its all-in APR is disclosed for
    (:func:`miaodai.loans.disclosure.default_offer`), within what is available."""
    first = default_offer(spec, line.available_fen)
    first_term = f"m{first.term_months}" if first.term_months else f"d{first.term_days}"
    return {"amount": amount if amount is not None else yuan_plain(first.principal_fen), "term": term or first_term,
            "method": method or first.method.value}


def _draw_page(request: Request, container: WebContainer, auth: AuthContext, *, line_id: int | None = None,
               amount: str | None = None, term: str | None = None, method: str | None = None,
               error: DomainError | None = None) -> HTMLResponse:
    lines = _lines(container, auth)
    views = my_methods(container, auth)
    context = {"signed_in": auth, "lines": lines, "payout_to": default_method(views), "request_key": new_key("draw")}
    chosen = next(((line, spec) for line, spec in lines if line.id == line_id), lines[0] if lines else None)
    if chosen is None:
        return render(request, "draw.html", line=None, **context)
    line, spec = chosen
    form = _form_values(line, spec, amount, term, method)
    context |= {"line": line, "spec": spec, "form": form, "terms": term_choices(spec),
                # every line's all-in APR at its default terms, for the line chooser (cached: no query)
                "line_aprs": {each.id: line_apr(each_spec, each.annual_rate).apr for each, each_spec in lines}}
    if error is not None:
        return render(request, "draw.html", error=error, **context)
    try:
        months, days = parse_term(form["term"])
        schedule = quote_on_line(container, line, spec, principal_fen=parse_yuan(form["amount"], "amount"),
                                 method=parse_method(form["method"]), term_months=months, term_days=days)
    except DomainError as refused:
        return render(request, "draw.html", error=refused, **context)
    return render(request, "draw.html", schedule=schedule, **context)


@router.get("/loans/new", response_class=HTMLResponse)
def draw_page(request: Request, container: WebContainer, auth: WebBorrower, line_id: RowIdQuery = None,
              amount: str | None = None, term: str | None = None, method: str | None = None) -> HTMLResponse:
    """The form with its quote; the live quote (``form[data-live]`` in app.js) asks this page again as the
    borrower types and swaps in the new figures."""
    return _draw_page(request, container, auth, line_id=line_id, amount=amount, term=term, method=method)


@router.post("/loans/new", response_class=HTMLResponse)
def draw(request: Request, container: WebContainer, auth: WebBorrower, line_id: RowIdForm,
         amount: Annotated[str, Form(max_length=32)], term: Annotated[str, Form(max_length=8)],
         method: Annotated[str, Form(max_length=32)], request_key: Key) -> Response:
    """Quote, reserve and draft the contract (one loan per form, however often it is sent), then read it."""
    try:
        months, days = parse_term(term)
        loan, _created = loan_service.request_drawdown(container, auth, loan_service.DrawdownRequest(
            line_id=line_id, principal_fen=parse_yuan(amount, "amount"), method=parse_method(method),
            term_months=months, term_days=days, request_key=request_key))
    except DomainError as error:
        return _draw_page(request, container, auth, line_id=line_id, amount=amount, term=term, method=method,
                          error=error)
    return redirect(request, f"{PREFIX}/loans/{loan.id}/contract")


# -- reading, downloading and signing the contract ---------------------------------------------------------


def _loan(container: WebContainer, auth: AuthContext, loan_id: int) -> Loan:
    with container.db.transaction() as session:
        return loan_service.owned_loan(session, auth.borrower_id, loan_id)


def _not_found(request: Request, auth: AuthContext, error: DomainError) -> HTMLResponse:
    return render(request, "draw_missing.html", signed_in=auth, error=error)


@router.get("/loans/{loan_id}/contract", response_class=HTMLResponse)
def contract_page(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower) -> HTMLResponse:
    try:
        # Redrawn first if it was drafted on another day: the text signed is today's.
        contract, html = loan_service.open_contract(container, auth, loan_id)
        loan = loan_view(container, _loan(container, auth, loan_id))
    except DomainError as error:
        return _not_found(request, auth, error)
    return render(request, "draw_contract.html", signed_in=auth, loan=loan, sha256=contract.sha256,
                  contract_no=contract.contract_no, text=Markup(readable_body(html)),  # noqa: S704 - ours, escaped
                  can_sign=loan.status == LoanStatus.REQUESTED.value)


@router.get("/loans/{loan_id}/contract/document")
def contract_document(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower,
                      download: bool = False) -> Response:
    """The contract exactly as ``GET /v1/loans/{id}/contract`` serves it, its hash in ``X-Content-SHA256``."""
    try:
        contract, html = loan_service.open_contract(container, auth, loan_id)
    except DomainError as error:
        return _not_found(request, auth, error)
    disposition = "attachment" if download else "inline"
    response = finish(request, HTMLResponse(html, headers={
        "Content-Disposition": f'{disposition}; filename="{contract.contract_no}.html"',
        "X-Content-SHA256": contract.sha256}))
    response.headers["Content-Security-Policy"] = CONTRACT_POLICY
    return response


def _sign_page(request: Request, container: WebContainer, auth: AuthContext, loan_id: int, sha256: str, *,
               error: DomainError | None = None, sent: CodeSent | bool | None = None,
               request_key: str | None = None) -> HTMLResponse:
    try:
        loan = loan_view(container, _loan(container, auth, loan_id))
    except DomainError as missing:
        return _not_found(request, auth, missing)
    wait = max(0, int((sent.resend_after - container.clock.now()).total_seconds())) \
        if isinstance(sent, CodeSent) else 0
    return render(request, "draw_sign.html", signed_in=auth, error=error, loan=loan, sha256=sha256,
                  payout_to=default_method(my_methods(container, auth)), sent=sent, resend_in=wait,
                  request_key=request_key or new_key("sign"))


@router.get("/loans/{loan_id}/sign", response_class=HTMLResponse)
def sign_page(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower,
              sha256: str = "") -> Response:
    """The last look before signing: the figures, where the money goes, the hash read, and a code to ask for."""
    if not SHA256.fullmatch(sha256):
        return redirect(request, f"{PREFIX}/loans/{loan_id}/contract")  # read it first
    return _sign_page(request, container, auth, loan_id, sha256)


@router.post("/loans/{loan_id}/sign/code", response_class=HTMLResponse)
def send_sign_code(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower,
                   contract_sha256: Annotated[str, Form(max_length=64)],
                   channel: Annotated[str, Form(max_length=8)] = "sms") -> Response:
    """A code for this contract as read (``POST /v1/loans/{id}/sign-code``): it signs this text and nothing else."""
    try:
        contract, sent = contract_service.request_sign_code(
            container, auth, _loan(container, auth, loan_id), read_sha256=contract_sha256,
            channel=OtpChannel.VOICE if channel == "voice" else OtpChannel.SMS, ip=client_ip(request))
    except DomainError as error:
        return _sign_page(request, container, auth, loan_id, contract_sha256, error=error)
    return _sign_page(request, container, auth, loan_id, contract.sha256, sent=sent)


@router.post("/loans/{loan_id}/sign", response_class=HTMLResponse)
def sign(request: Request, loan_id: RowId, container: WebContainer, auth: WebBorrower,
         contract_sha256: Annotated[str, Form(max_length=64)], request_key: Key,
         code: Annotated[str, Form(max_length=12)] = "") -> Response:
    """Sign the text read with the code sent for it; the payout is ordered with the signature and sent at once,
    as by the API."""
    try:
        loan_service.sign(container, auth, loan_id, read_sha256=contract_sha256, code=code.strip() or None,
                          request_key=request_key)
    except DomainError as error:
        # The code field stays while a code may still be tried (a wrong guess); the form keeps its key.
        return _sign_page(request, container, auth, loan_id, contract_sha256, error=error,
                          sent=error.code != ContractErrors.SIGN_CODE_REQUIRED.code, request_key=request_key)
    loan_service.send_payout(container, loan_id)
    return redirect(request, f"{PREFIX}/loans/{loan_id}/payout")
