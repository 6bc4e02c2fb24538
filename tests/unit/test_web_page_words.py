"""Every page words a refusal for a borrower: no endpoint, no field in fen, no header, no state's code.

The app's words (web/page_words.py and the pages' ``PAGE_WORDS``) render in both languages with the refusal's
own parameters; and every refusal of every catalog, as each page of the app would show it, is checked for
API wording — except the few listed below that no borrower page can meet, each with its reason.
"""

from __future__ import annotations

import importlib
import re
import string
from pathlib import Path

import pytest
from starlette.requests import Request

from miaodai.backoffice.customer_errors import CustomerErrors
from miaodai.backoffice.errors import BackofficeErrors
from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.error_catalog import CATALOGS, all_specs, specs_of
from miaodai.identity.staff_errors import StaffErrors
from miaodai.ledger.errors import LedgerErrors
from miaodai.payments.recon_errors import ReconErrors
from miaodai.web import PAGE_MODULES, core, i18n, page_words

PAGES = tuple(f"miaodai.web.{name}" for name in PAGE_MODULES)
for _module in PAGES:  # each page registers its words when imported, as install() imports them
    importlib.import_module(_module)

SPECS = {spec.code: spec for spec in all_specs()}

# What only an API client can act on: an endpoint, a request field or one in fen, a header, a query
# parameter, the API guide, and the placeholders that carry a machine value (a state's or a field's code).
MACHINE_VALUES = ("status", "state", "current", "target", "kind", "method", "field", "fields", "offered",
                  "product_code")
API_WORDING = re.compile(
    r"/v1/|_fen\b|Idempotency|幂等|\b(?:GET|POST|PUT|DELETE|PATCH) |header|请求头|X-Device-Id|docs/|JSON|"
    r"Content-Type|\bAPI\b|接口|\b[a-z]+(?:_[a-z]+)*=\w|[{}]|"
    r"<(?:" + "|".join(MACHINE_VALUES) + r")>")

# Refusals no page of the app can show, though their texts speak to API clients.
NOT_ON_A_PAGE_CATALOGS = {
    StaffErrors: "staff log in and work through the staff API, never through the borrower's app",
    LedgerErrors: "postings are made by the services with amounts and keys they compute; a ledger refusal "
                  "is a bug, answered as a 500 and never shown as a page's refusal",
    ReconErrors: "reconciliation is run by operations through the staff API",
    BackofficeErrors: "maker-checker requests are proposed and decided by staff, in the console or the staff API",
    CustomerErrors: "the customer 360 is searched and revealed by staff, in the console or the staff API",
}
NOT_ON_A_PAGE = {
    "MALFORMED_JSON": "the API's JSON body parser (core/http.py); the app's pages post forms",
    "UNSUPPORTED_MEDIA_TYPE": "the API's JSON body check (core/http.py); the app's pages post forms",
    "IDEMPOTENCY_KEY_REQUIRED": "the API's Idempotency-Key header (core/idempotency.py); the app's forms give "
                                "their key to the services, whose refusals are LOAN_*_KEY_REUSED",
    "IDEMPOTENCY_KEY_INVALID": "the API's Idempotency-Key header (core/idempotency.py)",
    "IDEMPOTENCY_KEY_REUSED": "the API's Idempotency-Key header (core/idempotency.py)",
    "IDEMPOTENCY_REQUEST_IN_FLIGHT": "the API's Idempotency-Key header (core/idempotency.py)",
    "LOAN_PRODUCT_EXISTS": "staff define products (loans/product_service.py through the staff API)",
    "LOAN_PRODUCT_INVALID": "staff define products (loans/products.py through the staff API)",
    "LOAN_PRODUCT_ABOVE_CAP": "staff define products (loans/products.py through the staff API)",
    "LOAN_PROPOSAL_DECIDED": "staff decide credit-line proposals",
    "LOAN_LINE_STATUS_WRONG": "staff freeze and unfreeze lines (loans/servicing.py, through the maker-checker desk)",
    "LOAN_PAYOUT_RESULT_UNEXPECTED": "the payout worker applies the channel's results; operations resolve this",
    "CREDIT_CASE_CLOSED": "the staff review queue",
    "CREDIT_CASE_NOT_AWAITING_SECOND": "the staff review queue",
    "CREDIT_RULESET_INVALID": "staff policy administration",
    "CREDIT_RULESET_NOT_PROPOSED": "staff policy administration",
    "CREDIT_MODEL_TRANSITION": "staff model administration",
}
EXEMPT = set(NOT_ON_A_PAGE) | {spec.code for catalog in NOT_ON_A_PAGE_CATALOGS for spec in specs_of(catalog)}


def placeholders(*texts: str | None) -> set[str]:
    return {name for text in texts if text for _, name, _, _ in string.Formatter().parse(text) if name}


def placeholders_of(spec: ErrorSpec) -> set[str]:
    """What the refusal always carries: every placeholder of its catalog texts (problem() formats them all)."""
    return placeholders(spec.message_zh, spec.message_en, spec.action_zh, spec.action_en)


def comes_back_later(spec: ErrorSpec) -> bool:
    """A "try again later" refusal: made by ``retry_later``, it also carries the seconds and the instant."""
    return bool(placeholders_of(spec) & {"retry_at_local", "locked_until_local"})


def refusal(spec: ErrorSpec) -> DomainError:
    """The refusal with each parameter standing for itself (``<status>``), so a machine value shows."""
    params: dict[str, object] = {name: f"<{name}>" for name in placeholders_of(spec)}
    if comes_back_later(spec):
        params |= {"retry_after_seconds": 16, "retry_at": "2026-12-07T12:00:16+00:00"}
    return DomainError(spec, params=params)


def page_params(spec: ErrorSpec, locale: str) -> dict[str, object]:
    """What the app's words may use: the refusal's parameters, and ``wait`` for one that says when to come back."""
    params = dict(refusal(spec).params)
    if comes_back_later(spec):
        params["wait"] = page_words.wait_words(params, locale)
    return params


def test_every_page_registers_its_words_under_its_own_module():
    registered = page_words.registered()
    assert set(registered) <= {*PAGES, page_words.ANY_PAGE}
    assert {"miaodai.web.loans", "miaodai.web.verify", "miaodai.web.consents", "miaodai.web.credit"} <= set(registered)
    assert all(code in SPECS for table in registered.values() for code in table)  # no stale codes


@pytest.mark.parametrize("page", sorted(page_words.registered()))
def test_each_registered_word_renders_in_both_languages_with_the_refusals_own_parameters(page):
    for code, words in page_words.registered()[page].items():
        spec = SPECS[code]
        assert words.message or words.action, code
        for message_id in filter(None, words):
            assert placeholders(message_id) <= set(page_params(spec, "en")), (page, code, message_id)
            for locale in i18n.LOCALES:
                translated = i18n.translations(locale).gettext(message_id)
                assert translated.strip(), (locale, message_id)
                assert placeholders(translated) == placeholders(message_id), (locale, message_id)
        zh = page_words.shown(refusal(spec), page, "zh_CN")
        en = page_words.shown(refusal(spec), page, "en")
        for text, message_id in ((zh[0], words.message), (zh[1], words.action)):
            if message_id:
                assert re.search(r"[\u4e00-\u9fff]", text), (page, code, text)  # Chinese, not the English id
        for (text, message_id) in ((en[0], words.message), (en[1], words.action)):
            if message_id:
                assert text == message_id.format(**page_params(spec, "en")), (page, code)


@pytest.mark.parametrize("locale", i18n.LOCALES)
@pytest.mark.parametrize("page", PAGES)
def test_no_refusal_a_page_can_show_reads_like_the_api(page, locale):
    """Each refusal of every catalog as this page would show it: a new API-worded refusal fails here until it
    is given the app's words (web/page_words.py, or the page's PAGE_WORDS) or shown to be out of reach."""
    api_worded = {}
    for code, spec in SPECS.items():
        if code in EXEMPT:
            continue
        message, action = page_words.shown(refusal(spec), page, locale)
        found = [m.group(0) for text in (message, action or "") for m in [API_WORDING.search(text)] if m]
        if found:
            api_worded[code] = (found, message, action)
    assert api_worded == {}


def test_the_refusals_left_out_are_out_of_the_pages_reach_and_listed_for_their_api_wording():
    assert set(NOT_ON_A_PAGE) <= set(SPECS)
    for code in NOT_ON_A_PAGE:  # listed only because they read like the API: the list stays short
        spec = refusal(SPECS[code])
        texts = (spec.message_zh, spec.message_en, *(spec.problem().get("action") or {}).values())
        assert any(API_WORDING.search(text) for text in texts), code
    web = Path(core.__file__).parent
    sources = "\n".join(path.read_text(encoding="utf-8") for path in (*web.glob("*.py"), *web.glob("templates/*.html")))
    names = [f"{catalog.__name__}.{name}" for _, catalog in CATALOGS for name, spec in vars(catalog).items()
             if isinstance(spec, ErrorSpec) and spec.code in EXEMPT]
    assert [name for name in [*EXEMPT, *names] if re.search(rf"\b{re.escape(name)}\b", sources)] == []
    assert not any(code in table for table in page_words.registered().values() for code in EXEMPT)


def _request(endpoint: object | None, lang: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/app", "query_string": f"lang={lang}".encode(),
             "headers": []}
    if endpoint is not None:
        scope["endpoint"] = endpoint
    return Request(scope)


def test_the_page_answering_the_request_words_the_refusal_then_any_page_then_the_catalog():
    from miaodai.identity.consent_errors import ConsentErrors
    from miaodai.loans.errors import LoanErrors
    from miaodai.web import loans, verify

    missing = DomainError(LoanErrors.LOAN_NOT_FOUND)
    assert core.problem(_request(loans.my_loans, "en"), missing) == {
        "code": "LOAN_NOT_FOUND", "message": "That loan does not exist.", "action": "Choose one of your loans below."}
    assert core.problem(_request(verify.verify_page, "zh"), missing)["action"] == "可在“借款”中查看您的借款。"
    assert core.problem(_request(None, "en"), missing)["action"] == "Your loans are listed under “Loans”."
    # the page's own what-to-do, any page's message, the catalog's parameters
    consent = DomainError(ConsentErrors.VERSION_NOT_CURRENT,
                          params={"kind": "carrier_data", "version": "v1", "current_version": "v2"})
    shown = core.problem(_request(None, "zh"), consent)
    assert shown["message"] == "该文件的 v1 版本已不再生效（当前为 v2）。" and "carrier_data" not in str(shown)
    assert shown["action"] == "请阅读并同意当前版本 v2。"  # the catalog's own, already in the app's words
    # a refusal no table words stays the catalog's
    short = DomainError(LoanErrors.LINE_INSUFFICIENT, params={"available_yuan": "100.00", "amount_yuan": "500.00"})
    assert core.problem(_request(loans.my_loans, "en"), short)["message"] == short.message_en


def test_a_page_registers_its_words_once():
    with pytest.raises(ValueError, match="registered twice"):
        page_words.register("miaodai.web.loans", {})


@pytest.mark.parametrize(("seconds", "retry_at", "zh", "en"), [
    (1, "2026-12-07T12:00:01+00:00", "1秒后", "in 1 second"),
    (16, "2026-12-07T12:00:16+00:00", "16秒后", "in 16 seconds"),
    (59, "2026-12-07T12:00:59+00:00", "59秒后", "in 59 seconds"),
    (60, "2026-12-07T12:01:00+00:00", "1分钟后", "in 1 minute"),
    (61, "2026-12-07T12:01:01+00:00", "2分钟后", "in 2 minutes"),  # rounded up: never sooner than it is
    (3599, "2026-12-07T12:59:59+00:00", "60分钟后", "in 60 minutes"),
    # an hour or more: the clock time in Beijing (UTC+8), today or tomorrow by Beijing's date
    (3600, "2026-12-07T13:00:00+00:00", "今天21:00之后", "after 21:00 today"),
    (7200, "2026-12-07T16:30:00+00:00", "明天00:30之后", "after 00:30 tomorrow"),  # 22:30 → 00:30 next day
    (86400 * 2, "2026-12-09T01:00:00+00:00", "12月9日09:00之后", "after 09:00 on 9 December"),
])
def test_when_to_come_back_is_said_as_a_phone_says_it(seconds, retry_at, zh, en):
    params = {"retry_after_seconds": seconds, "retry_at": retry_at, "retry_at_local": "2026-12-07 20:00:16"}
    assert page_words.wait_words(params, "zh_CN") == zh
    assert page_words.wait_words(params, "en") == en
    assert page_words.wait_words({"limit": 5}, "en") is None  # any other refusal


def test_a_lockout_on_a_page_says_16_seconds_not_a_timestamp():
    from datetime import UTC, datetime, timedelta

    from miaodai.identity.login_errors import LoginErrors, retry_later

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    cooldown = retry_later(LoginErrors.OTP_RESEND_COOLDOWN, now=now, retry_at=now + timedelta(seconds=16))
    zh = core.problem(_request(None, "zh"), cooldown)
    assert "16秒后" in zh["message"] and "2026-12-07" not in str(zh) and "北京时间" not in str(zh)
    en = core.problem(_request(None, "en"), cooldown)
    assert en["message"] == "A code was sent moments ago; you can ask for another in 16 seconds."
    assert cooldown.message_zh.count("2026-12-07 20:00:16") == 1  # the API keeps its exact instant
