"""The app's own words for refusals whose catalog text speaks to API clients.

The error catalogs (``*errors.py``) are written for whoever calls the API: many name an endpoint ("see
``GET /v1/loans``"), a field in fen, a header or a state's code (``paid_off``). A borrower in the app can do
none of that, so every page shows such a refusal in the app's words instead — same code, same status, same
parameters, a message and/or what-to-do from the gettext catalogs (``problems.po`` and the features' own).

Words are looked up for the page showing the refusal — the module of the route that answered the request —
then in :data:`ANY_PAGE_WORDS`, field by field; what neither gives stays the catalog's. A feature module
registers the words that only make sense on its pages ("choose one of your loans *below*") next to them::

    PAGE_WORDS = page_words.register(__name__, {LoanErrors.LOAN_NOT_FOUND.code: (None, _("Choose … below."))})

:func:`miaodai.web.core.problem` applies them for every page, so no page can forget to. The words may use the
placeholders of the refusal's own catalog texts (``{current_version}``): those parameters are always there.
tests/unit/test_web_page_words.py renders every registered word in both languages and fails when a refusal a
page can show would still read like the API (an endpoint, ``*_fen``, a header, a state's code).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from miaodai.contracts.errors import ContractErrors
from miaodai.core.clock import BUSINESS_TZ, as_utc
from miaodai.core.errors import DomainError, Errors
from miaodai.credit.errors import CreditErrors
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.kyc_errors import KycErrors
from miaodai.identity.login_errors import LoginErrors
from miaodai.loans.errors import LoanErrors
from miaodai.payments.errors import PaymentErrors
from miaodai.web import i18n

ANY_PAGE = "*"


class Words(NamedTuple):
    """Message ids of the app's catalogs (English text); ``None`` leaves that part to the next in line."""

    message: str | None
    action: str | None


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


_REGISTRY: dict[str, dict[str, Words]] = {}


def register(page: str, words: Mapping[str, tuple[str | None, str | None]]) -> dict[str, Words]:
    """Words for the refusals shown by the pages of module ``page`` (its ``__name__``), or by any page."""
    table = {code: Words(*chosen) for code, chosen in words.items()}
    if _REGISTRY.get(page, table) != table:
        raise ValueError(f"page words of {page} registered twice, differently")
    _REGISTRY[page] = table
    return table


def registered() -> dict[str, dict[str, Words]]:
    """Every page's words (and :data:`ANY_PAGE`'s), for the tests."""
    return {page: dict(table) for page, table in _REGISTRY.items()}


def words_for(page: str | None, code: str) -> Words:
    """The words a page shows for ``code``: its own, else any page's, part by part (``None``: the catalog's)."""
    own = _REGISTRY.get(page or "", {}).get(code)
    shared = _REGISTRY.get(ANY_PAGE, {}).get(code)
    return Words(message=(own and own.message) or (shared and shared.message) or None,
                 action=(own and own.action) or (shared and shared.action) or None)


def wait_words(params: Mapping[str, object], locale: str) -> str | None:
    """When a refusal that says "try again later" (``retry_after_seconds`` and ``retry_at``, from
    :func:`miaodai.identity.login_errors.retry_later`) lets the borrower come back, as a phone says it: "16秒后",
    "5分钟后", "今天21:15之后" — not a full timestamp. ``None`` for any other refusal."""
    seconds, retry_at = params.get("retry_after_seconds"), params.get("retry_at")
    if not isinstance(seconds, int) or not isinstance(retry_at, str):
        return None
    zh = locale == "zh_CN"
    if seconds < 60:
        return f"{seconds}秒后" if zh else f"in {seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 3600:
        minutes = -(-seconds // 60)  # never sooner than it is
        return f"{minutes}分钟后" if zh else f"in {minutes} minute{'s' if minutes != 1 else ''}"
    at = as_utc(datetime.fromisoformat(retry_at)).astimezone(BUSINESS_TZ)
    days = (at.date() - (at - timedelta(seconds=seconds)).date()).days
    clock = at.strftime("%H:%M")
    if days == 0:
        return f"今天{clock}之后" if zh else f"after {clock} today"
    if days == 1:
        return f"明天{clock}之后" if zh else f"after {clock} tomorrow"
    return f"{at.month}月{at.day}日{clock}之后" if zh else f"after {clock} on {at.day} {at:%B}"


def shown(error: DomainError, page: str | None, locale: str) -> tuple[str, str | None]:
    """The refusal's message and what to do as ``page`` shows them in ``locale``."""
    words = words_for(page, error.code)
    body = error.problem()
    zh = locale == "zh_CN"
    translate = i18n.translations(locale).gettext
    wait = wait_words(error.params, locale)
    params = {**error.params, "wait": wait} if wait else error.params
    message = translate(words.message).format(**params) if words.message else (
        error.message_zh if zh else error.message_en)
    if words.action:
        action = translate(words.action).format(**params)
    else:
        action = (body.get("action") or {}).get("zh" if zh else "en") or None
    return message, action


# -- any page ------------------------------------------------------------------------------------------------
# The app's words wherever a refusal is shown; pages add their own where their context says more.

ANY_PAGE_WORDS = register(ANY_PAGE, {
    Errors.VALIDATION_FAILED.code: (
        _("Something on the form was not filled in as expected."),
        _("Check the form and choose one of the options offered.")),
    Errors.NOT_FOUND.code: (_("We could not find what you asked for."),
                            _("Check the address, or start again from the home page.")),
    Errors.METHOD_NOT_ALLOWED.code: (_("This page cannot take that request."),
                                     _("Go back and use the buttons on the page.")),
    # the device id is the md_device cookie of web.core: only a damaged or blocked cookie gets here
    LoginErrors.DEVICE_ID_MISSING.code: (
        _("This browser did not identify itself."),
        _("Allow cookies for this site, reload the page and try again.")),
    LoginErrors.DEVICE_ID_INVALID.code: (
        _("This browser did not identify itself."),
        _("Allow cookies for this site, reload the page and try again.")),
    # "try again later" as a phone says it ({wait}: "16秒后", "after 21:15 today"), not a Beijing timestamp
    LoginErrors.OTP_RESEND_COOLDOWN.code: (
        _("A code was sent moments ago; you can ask for another {wait}."),
        _("Check your messages; the code usually arrives within a minute.")),
    LoginErrors.OTP_PHONE_HOURLY_LIMIT.code: (
        _("This number has had the most codes allowed in one hour ({limit}); try again {wait}."),
        _("If the codes do not arrive, check that the phone has signal and can receive SMS.")),
    LoginErrors.OTP_PHONE_DAILY_LIMIT.code: (
        _("This number has had the most codes allowed today ({limit}); try again {wait}."),
        _("If the codes do not arrive, check that the phone has signal and can receive SMS.")),
    LoginErrors.OTP_DEVICE_HOURLY_LIMIT.code: (
        _("This phone has asked for too many codes in one hour; try again {wait}."), _("Please wait until then.")),
    LoginErrors.OTP_IP_HOURLY_LIMIT.code: (
        _("Too many codes were asked for from this network in one hour; try again {wait}."),
        _("Or switch networks (for example to mobile data) and try again now.")),
    LoginErrors.OTP_WRONG_CODES_FROM_NETWORK.code: (
        _("Too many wrong codes were entered from this network ({limit}); try again {wait}."),
        _("Or switch networks (for example to mobile data) and try again now.")),
    LoginErrors.OTP_WRONG_CODES_FROM_DEVICE.code: (
        _("Too many wrong codes were entered on this phone ({limit}); try again {wait}."),
        _("Please wait until then. If this was not you, contact support.")),
    LoginErrors.LOGIN_LOCKED.code: (
        _("This number is locked after too many wrong codes; you can try again {wait}."),
        _("On a phone you have logged in from before, you can log in as usual now. If this was not you, "
          "contact support.")),
    PaymentErrors.BINDING_CODES_DAILY_LIMIT.code: (
        None, _("Try again {wait}.")),
    PaymentErrors.BINDING_PHONE_DAILY_LIMIT.code: (
        None, _("Try again {wait}. If this was not you, contact support.")),
    # the app offers the voice call only once a code is on its way, not on the page this refusal is shown on
    LoginErrors.SMS_DELIVERY_FAILED.code: (
        None, _("Send the code again in a moment. If the SMS still does not arrive, contact support.")),
    LoginErrors.STEP_UP_REQUIRED.code: (
        None, _("Confirm it is you with a code sent to your phone, then try again.")),
    CreditErrors.TOO_MANY_LINES.code: (None, _("See and use it on the My credit line page.")),
    ContractErrors.SIGN_CODE_REQUIRED.code: (
        None, _("Ask for a signing code on the contract's page and enter it with your signature.")),
    KycErrors.ALREADY_VERIFIED.code: (None, _("Your next step is on the start page.")),
    KycErrors.FACE_BEFORE_IDENTITY.code: (None, _("Enter your name and ID number on the verification page first.")),
    ConsentErrors.UNKNOWN_KIND.code: (
        _("There is no such consent document."), _("The documents are listed on the consents page.")),
    ConsentErrors.DOCUMENT_NOT_FOUND.code: (
        _("This document has no such version."), _("The version in effect is {current_version}.")),
    ConsentErrors.VERSION_UNKNOWN.code: (_("This document has no version {version} to agree to."), None),
    ConsentErrors.VERSION_NOT_CURRENT.code: (
        _("Version {version} of this document is no longer in effect (the current one is {current_version})."),
        None),
    ConsentErrors.NOT_GRANTED.code: (
        _("You have not agreed to this document, so there is nothing to withdraw."),
        _("The consents page shows which of your consents are in force.")),
    ConsentErrors.REQUIRED.code: (None, _("Read and agree to them on the consents page, then try again.")),
    LoanErrors.TERMS_INVALID.code: (
        _("The loan terms are not valid: check the amount, the term and the repayment method."),
        _("Enter the amount in yuan (more than 0, at most two decimals) and choose a term and a repayment method "
          "from those offered.")),
    LoanErrors.APR_ABOVE_CAP.code: (None, _("Choose another term or repayment method.")),
    LoanErrors.PRODUCT_NOT_FOUND.code: (_("This loan product is not on offer right now."),
                                        _("Please try again later.")),
    LoanErrors.TERM_NOT_OFFERED.code: (_("This term is not offered."), _("Choose one of the terms offered.")),
    LoanErrors.METHOD_NOT_OFFERED.code: (_("This repayment method is not offered."),
                                         _("Choose one of the repayment methods offered.")),
    LoanErrors.ILLEGAL_TRANSITION.code: (_("This is not possible in the loan's current state."), None),
    LoanErrors.LINE_NOT_FOUND.code: (None, _("Your credit line is on the credit page.")),
    LoanErrors.LINE_NOT_USABLE.code: (
        _("This credit line cannot be drawn on now: it is frozen, closed or has expired."), None),
    LoanErrors.BORROWER_OVERDUE.code: (None, _(
        "Repay what is overdue from the start page or under “Loans”; once you are current your credit line comes "
        "back and you can draw again.")),
    LoanErrors.LOAN_NOT_FOUND.code: (None, _("Your loans are listed under “Loans”.")),
    LoanErrors.REQUEST_KEY_REUSED.code: (
        _("This form was already sent with other figures."),
        _("Open the form again, enter the figures and send it once.")),
    LoanErrors.NOT_REPAYABLE.code: (
        _("There is nothing to repay on this loan now."), _("Its state is shown under “Loans”.")),
    LoanErrors.REPAYMENT_KEY_REUSED.code: (
        _("This repayment form was already sent with other figures."),
        _("Start the repayment again from the loan's page.")),
    CreditErrors.INCOME_INVALID.code: (_("Enter your monthly income after tax, in yuan."),
                                       _("For example 8000 or 8,000.50.")),
    CreditErrors.APPLICATION_NOT_FOUND.code: (
        None, _("Your credit line or latest application is on the credit page.")),
    CreditErrors.REVIEW_NOT_APPLICABLE.code: (
        _("Only an automated decline can be sent to a person for review."),
        _("The application's state is on the credit page.")),
    PaymentErrors.CARD_ALREADY_BOUND.code: (
        None, _("It is under “Cards and wallets”, where you can make it the default.")),
    PaymentErrors.WALLET_ALREADY_BOUND.code: (
        None, _("It is under “Cards and wallets”, where you can make it the default.")),
    PaymentErrors.BINDING_DONE.code: (
        _("This card binding is already finished."), _("Your cards and wallets are under “Cards and wallets”.")),
    PaymentErrors.WALLET_BINDING_DONE.code: (
        _("This e-wallet binding is already finished."), _("Your cards and wallets are under “Cards and wallets”.")),
    PaymentErrors.WALLET_AUTH_CODE_INVALID.code: (
        None, _("Start the binding again and approve the agreement in the wallet.")),
    PaymentErrors.WALLET_TIMEOUT.code: (None, _("Try again in a moment: it does not count as an attempt.")),
    PaymentErrors.METHOD_NOT_FOUND.code: (None, _("Your cards and wallets are under “Cards and wallets”.")),
    PaymentErrors.PAYOUT_METHOD_REQUIRED.code: (
        None, _("Bind a debit card under “Cards and wallets”, then try again.")),
    PaymentErrors.REPAYMENT_IN_PROGRESS.code: (
        None, _("Wait for its result; it usually takes seconds. If it fails, nothing was taken and you can "
                "repay again.")),
    PaymentErrors.REPAYMENT_AMOUNT_REQUIRED.code: (
        _("Enter how much to repay, in yuan."),
        _("To repay the whole loan, choose to pay it off today: the amount is filled in for you.")),
    PaymentErrors.REPAYMENT_MORE_THAN_OWED.code: (
        None, _("Pay off the whole loan today instead: we never take more than is owed.")),
    PaymentErrors.PAYOFF_AMOUNT_CHANGED.code: (None, _("Review the new amount and confirm it.")),
    PaymentErrors.METHOD_CANNOT_COLLECT.code: (
        None, _("Choose another card, or Alipay or WeChat Pay; or bind one that allows repayments.")),
})
