"""Payment methods 银行卡与钱包 in the app: the list with default and unbind, binding a debit card (its bank
named as the number is typed, then the bank's code) and binding Alipay / WeChat Pay.

The same services as ``/v1/payment-methods…`` (``payments.methods``, ``payments.wallets``) with the same
guards: binding and unbinding take :data:`WebStepUp` where the API takes ``RecentStepUp``, and a method is
shown exactly as the API's method view masks it (a card's BIN and last 4, a wallet login's last 4).

While the number is typed, ``app.js`` asks :func:`card_bank` about its first 6 (then 10) digits — the BIN,
never the whole number — and shows the bank; without JavaScript the server's check on submit says the same
and more (unsupported bank with the banks we support and the e-wallet alternative, credit card, typo).

An e-wallet is bound by a withholding agreement signed in the wallet, which sends the borrower back to
``/app/methods/wallet/{binding}/return?auth_code=…``; the code is exchanged with the wallet server to server.
With the sandbox wallet, ``/app/sandbox/wallets/{ref}`` is its signing page as a web page (the sandbox's own
``/sandbox/wallets/{ref}`` speaks JSON to API clients) and sends the borrower back the same way.

Every flow takes an optional ``next`` (a page of the app) to return to once bound: a failed payout's page
sends the borrower here to bind another card and brings them back to retry.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import RowId
from miaodai.identity.login_service import parse_phone
from miaodai.identity.sessions import AuthContext
from miaodai.payments import bins, methods, wallets
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.models import CardBinding, PaymentMethodKind
from miaodai.payments.views import BindingView, MethodView, binding_view, method_view
from miaodai.payments.wallet_provider import WALLET_KINDS
from miaodai.sandbox.wallet import Decision, SandboxWallet, UnknownRequest
from miaodai.sandbox.wallet_views import signing_page_view
from miaodai.web import page_words
from miaodai.web.core import (
    PREFIX,
    WebBorrower,
    WebContainer,
    csrf_protect,
    finish,
    gettext,
    locale_of,
    redirect,
    render,
    safe_next,
)
from miaodai.web.stepup import WebStepUp

router = APIRouter(prefix=PREFIX, dependencies=[Depends(csrf_protect)], include_in_schema=False)

METHODS = f"{PREFIX}/methods"
# What the list page says after a change (``?done=``): anything else is ignored.
DONE = ("card", "wallet", "default", "unbound")
# Errors of a card the borrower cannot bind at all: the page lists our banks and offers an e-wallet.
ANOTHER_CARD = {PaymentErrors.CARD_BANK_UNKNOWN.code, PaymentErrors.CARD_BANK_UNSUPPORTED.code,
                PaymentErrors.CARD_CREDIT_NOT_ALLOWED.code}

Next = Annotated[str, Form(max_length=300)]


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# The app's words on these pages where the catalog's speak to API clients (more for any page: web/page_words.py).
PAGE_WORDS = page_words.register(__name__, {
    Errors.VALIDATION_FAILED.code: (None, _("Choose Alipay or WeChat Pay.")),
    PaymentErrors.METHOD_NOT_FOUND.code: (None, _("Your cards and wallets are listed below.")),
    PaymentErrors.WALLET_TIMEOUT.code: (None, _("Tap “Try again” in a moment: it does not count as an attempt.")),
})


def with_query(path: str, **params: str) -> str:
    """``path`` with ``params`` added to whatever query it has (empty values left out)."""
    kept = {k: v for k, v in params.items() if v}
    if not kept:
        return path
    return f"{path}{'&' if urlsplit(path).query else '?'}{urlencode(kept)}"


def _next_or_list(next_path: str | None, done: str) -> str:
    return safe_next(next_path) if next_path else f"{METHODS}?done={done}"


def _next_field(next_path: str | None) -> str:
    """The ``next`` a form carries on: a page of the app, or nothing."""
    return safe_next(next_path) if next_path else ""


def my_methods(container: WebContainer, auth: AuthContext) -> list[MethodView]:
    """The borrower's methods as the API lists them (the default first, masked)."""
    return [method_view(m) for m in methods.borrower_methods(container, auth.borrower_id)]


def default_method(views: list[MethodView]) -> MethodView | None:
    return next((m for m in views if m.is_default), views[0] if views else None)


# -- the list, default, unbind ----------------------------------------------------------------------


def _list(request: Request, container: WebContainer, auth: AuthContext, *, done: str | None = None,
          error: DomainError | None = None) -> HTMLResponse:
    return render(request, "methods.html", signed_in=auth, error=error, methods=my_methods(container, auth),
                  done=done if done in DONE else None)


@router.get("/methods", response_class=HTMLResponse)
def methods_page(request: Request, container: WebContainer, auth: WebBorrower, done: str | None = None) -> HTMLResponse:
    return _list(request, container, auth, done=done)


@router.post("/methods/{method_id}/default")
def make_default(request: Request, method_id: RowId, container: WebContainer, auth: WebBorrower,
                 next: Next = "") -> Response:  # noqa: A002
    try:
        methods.set_default(container, auth, method_id)
    except DomainError as error:
        return _list(request, container, auth, error=error)
    return redirect(request, _next_or_list(next, "default"))


def _own_view(container: WebContainer, auth: AuthContext, method_id: int) -> MethodView:
    found = next((m for m in my_methods(container, auth) if m.id == method_id), None)
    if found is None:
        raise DomainError(PaymentErrors.METHOD_NOT_FOUND)
    return found


@router.get("/methods/{method_id}/unbind", response_class=HTMLResponse)
def unbind_page(request: Request, method_id: RowId, container: WebContainer, auth: WebStepUp) -> HTMLResponse:
    """Unbinding is asked for on its own page (after a fresh code, as the API demands), then confirmed."""
    try:
        method = _own_view(container, auth, method_id)
    except DomainError as error:
        return _list(request, container, auth, error=error)
    return render(request, "methods_unbind.html", signed_in=auth, method=method)


@router.post("/methods/{method_id}/unbind", response_class=HTMLResponse)
def unbind(request: Request, method_id: RowId, container: WebContainer, auth: WebStepUp) -> Response:
    try:
        method = _own_view(container, auth, method_id)
    except DomainError as error:
        return _list(request, container, auth, error=error)
    try:
        methods.unbind(container, auth, method_id)
    except DomainError as error:
        return render(request, "methods_unbind.html", signed_in=auth, method=method, error=error)
    return redirect(request, f"{METHODS}?done=unbound")


# -- binding a card ------------------------------------------------------------------------------------


def _card_form(request: Request, auth: AuthContext, *, next_path: str | None, error: DomainError | None = None,
               card_number: str = "", reserved_phone: str = "") -> HTMLResponse:
    zh = locale_of(request) == "zh_CN"
    banks = [(b.name_zh if zh else b.name_en, b.auto_debit) for b in bins.supported_banks()]
    return render(request, "methods_card.html", signed_in=auth, error=error, next=_next_field(next_path),
                  card_number=card_number, reserved_phone=reserved_phone, banks=banks,
                  another_card=error is not None and error.code in ANOTHER_CARD)


@router.get("/methods/card", response_class=HTMLResponse)
def card_page(request: Request, auth: WebStepUp, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return _card_form(request, auth, next_path=next)


@router.get("/methods/card/bank")
def card_bank(request: Request, prefix: str = "") -> JSONResponse:
    """The bank of a card's first 6 to 10 digits (its BIN), in the page's language, for the form to show
    as the number is typed. Never more than a BIN is accepted, and nothing of it is logged."""
    if not (prefix.isascii() and prefix.isdigit() and len(prefix) in bins.PREFIX_DIGITS):
        return finish(request, JSONResponse({"found": False}, status_code=422))
    info = bins.lookup(prefix)
    if info is None:
        return finish(request, JSONResponse({"found": False}))
    debit = info.card_type is bins.CardType.DEBIT
    name = info.bank_name_zh if locale_of(request) == "zh_CN" else info.bank_name_en
    if not info.payout:
        note = gettext(request, "This bank is not supported yet: see the banks below, or bind an e-wallet.")
    elif not debit:
        note = gettext(request, "Loans are paid out only to debit cards.")
    elif not info.auto_debit:
        note = gettext(request, "This bank does not support automatic repayment: you would repay by hand.")
    else:
        note = None
    kind = gettext(request, "Debit card") if debit else gettext(request, "Credit card")
    return finish(request, JSONResponse({"found": True, "text": f"{name} {kind}", "note": note,
                                         "supported": info.payout and debit}))


@router.post("/methods/card", response_class=HTMLResponse)
def start_card(request: Request, container: WebContainer, auth: WebStepUp,
               card_number: Annotated[str, Form(max_length=64)],
               reserved_phone: Annotated[str, Form(max_length=20)] = "", next: Next = "") -> HTMLResponse:  # noqa: A002
    """The bank checks the card and texts its code; the next step asks for that code."""
    try:
        binding = methods.start_card_binding(container, auth, card_number, reserved_phone.strip() or None)
    except DomainError as error:
        # What was typed goes back only to correct a typo: a real card's number is not sent back out.
        typo = error.code == PaymentErrors.CARD_NUMBER_INVALID.code or error.code.startswith("PHONE_")
        return _card_form(request, auth, next_path=next, error=error, card_number=card_number if typo else "",
                          reserved_phone=reserved_phone if typo else "")
    return render(request, "methods_card_code.html", signed_in=auth, binding=binding_view(container, binding),
                  next=_next_field(next))


def _binding(container: WebContainer, auth: AuthContext, token: str) -> BindingView | None:
    with container.db.autocommit() as session:
        binding = session.execute(select(CardBinding).where(
            CardBinding.token == token, CardBinding.borrower_id == auth.borrower_id)).scalar_one_or_none()
    return binding_view(container, binding) if binding is not None else None


@router.post("/methods/card/{binding_id}/confirm", response_class=HTMLResponse)
def confirm_card(request: Request, binding_id: str, container: WebContainer, auth: WebBorrower,
                 code: Annotated[str, Form(max_length=12)], next: Next = "") -> Response:  # noqa: A002
    # As in the API: the binding was started under step-up; the bank's code proves the card's phone is at hand.
    try:
        methods.confirm_card_binding(container, auth, binding_id[:64], code.strip())
    except DomainError as error:
        return render(request, "methods_card_code.html", signed_in=auth, error=error, next=_next_field(next),
                      binding=_binding(container, auth, binding_id[:64]))
    return redirect(request, _next_or_list(next, "card"))


# -- binding an e-wallet -----------------------------------------------------------------------------


@router.get("/methods/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, auth: WebStepUp, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return render(request, "methods_wallet.html", signed_in=auth, next=_next_field(next))


def _wallet_kind(kind: str) -> PaymentMethodKind:
    chosen = next((k for k in WALLET_KINDS if k.value == kind), None)
    if chosen is None:
        raise DomainError(Errors.VALIDATION_FAILED, params={"fields": "kind"})
    return chosen


def _return_url(binding_token: str, next_path: str) -> str:
    return with_query(f"{METHODS}/wallet/{binding_token}/return", next=next_path)


@router.post("/methods/wallet")
def start_wallet(request: Request, container: WebContainer, auth: WebStepUp, kind: Annotated[str, Form(max_length=16)],
                 next: Next = "") -> Response:  # noqa: A002
    """Ask the wallet for a signing request and send the borrower to the wallet to sign it."""
    try:
        started = wallets.start_wallet_binding(container, auth, _wallet_kind(kind))
    except DomainError as error:
        return render(request, "methods_wallet.html", signed_in=auth, error=error, next=_next_field(next))
    back = _return_url(started.binding.token, _next_field(next))
    if isinstance(container.wallets, SandboxWallet):
        return redirect(request, with_query(f"{PREFIX}/sandbox/wallets/{started.binding.provider_ref}", back=back))
    return redirect(request, started.authorize_url)


@router.get("/methods/wallet/{binding_id}/return", response_class=HTMLResponse)
def wallet_returned(request: Request, binding_id: str, container: WebContainer, auth: WebBorrower,
                    auth_code: str = "", next: str | None = None) -> Response:  # noqa: A002
    """Back from the wallet with its authorization code: checked with the wallet, then the wallet is bound."""
    try:
        wallets.confirm_wallet_binding(container, auth, binding_id[:64], auth_code[:128])
    except DomainError as error:
        retry = request.url.path + "?" + request.url.query if error.code == PaymentErrors.WALLET_TIMEOUT.code else None
        return render(request, "methods_wallet.html", signed_in=auth, error=error, next=_next_field(next),
                      retry=retry)
    return redirect(request, _next_or_list(next, "wallet"))


# -- the sandbox wallet's signing page -------------------------------------------------------------------


def _sandbox_page(container: WebContainer, provider_ref: str) -> tuple[SandboxWallet, dict[str, object]]:
    """The sandbox wallet and what its JSON signing page says (the wallet, the agreement, the test logins)."""
    wallet = container.wallets
    if not container.settings.sandbox or not isinstance(wallet, SandboxWallet):
        raise DomainError(Errors.NOT_FOUND)
    return wallet, signing_page_view(container, provider_ref).model_dump()


def _back(back: str) -> str:
    """Only our own return page: the sandbox wallet hands its code to nothing else."""
    target = safe_next(back)
    return target if target.startswith(f"{METHODS}/wallet/") else METHODS


@router.get("/sandbox/wallets/{provider_ref}", response_class=HTMLResponse)
def sandbox_wallet_page(request: Request, provider_ref: str, container: WebContainer, back: str = "") -> HTMLResponse:
    try:
        _wallet, page = _sandbox_page(container, provider_ref)
    except DomainError as error:
        return render(request, "methods_wallet_sandbox.html", error=error, page=None, back=METHODS, login="")
    return render(request, "methods_wallet_sandbox.html", page=page, back=_back(back), login="")


@router.post("/sandbox/wallets/{provider_ref}", response_class=HTMLResponse)
def sandbox_wallet_decide(request: Request, provider_ref: str, container: WebContainer,
                          login: Annotated[str, Form(max_length=20)], decision: Annotated[str, Form(max_length=10)],
                          back: Next = METHODS) -> Response:
    """The borrower logs in to the sandbox wallet and approves or declines; the wallet hands the app its code."""
    try:
        wallet, page = _sandbox_page(container, provider_ref)
    except DomainError as error:
        return render(request, "methods_wallet_sandbox.html", error=error, page=None, back=METHODS, login="")
    try:
        code = wallet.authorize(provider_ref[:64], parse_phone(login),
                                Decision.APPROVE if decision == Decision.APPROVE.value else Decision.DECLINE)
    except UnknownRequest:
        return render(request, "methods_wallet_sandbox.html", error=DomainError(Errors.NOT_FOUND), page=None,
                      back=METHODS, login="")
    except DomainError as error:
        return render(request, "methods_wallet_sandbox.html", error=error, page=page, back=_back(back), login=login)
    return redirect(request, with_query(_back(back), auth_code=code))
