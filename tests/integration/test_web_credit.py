"""Applying for credit in the borrower's web app over HTTPS, on both databases: what must come first; the form
with its translated choices; the decision at once — the line (the limit the biggest figure, grade, rate,
expiry, a way to draw money), each decline's reasons in plain words with tips and the date to apply again,
or "under review" with what happens next and the outcome later; a human review of an automated decline
(PIPL art. 24); refusals with their codes in the app's words; CSRF; and the start page's next step at each
point of the way."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from miaodai.credit import bureau
from miaodai.credit.features import LoanPurpose
from miaodai.credit.models import CreditApplication, ReviewCase
from miaodai.credit.views import application_view, line_purposes
from miaodai.demo import seed_demo
from miaodai.web.i18n import percent, yuan
from tests.credit_support import install_test_model, quick_parties
from tests.helpers import login, staff_headers
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.integration.test_web_verify import code_of, grant_on_web, verified_on_web
from tests.loan_support import active_loan
from tests.web_support import form_token

PHONE = "13700137301"
FORM = {"income": "20,000", "occupation": "employee", "education": "bachelor", "loan_purpose": "home_furnishing"}


@pytest.fixture(autouse=True)
def _policy(container):
    seed_demo(container)  # the demo product, which applications are for
    install_test_model(container)
    quick_parties(container)


def apply_on_web(web: TestClient, **form: str):
    """Send the form (also where the page no longer shows it: the service has the last word)."""
    web.get("/app/credit")
    return web.post("/app/credit", data={**FORM, **form, "csrf_token": form_token(web)})


def decided(web: TestClient, **form: str) -> tuple[int, str]:
    """Apply; returns the application's id and its decision page."""
    sent = apply_on_web(web, **form)
    assert sent.status_code == 303, sent.text
    application_id = int(re.fullmatch(r"/app/credit/applications/(\d+)", sent.headers["location"]).group(1))
    return application_id, web.get(sent.headers["location"]).text


def stored(container, application_id: int) -> CreditApplication:
    with container.db.transaction() as session:
        return session.get(CreditApplication, application_id)


def journey(web: TestClient) -> dict[str, str]:
    page = web.get("/app").text
    return dict(re.findall(r'data-step="([a-z]+)" data-state="([a-z]+)"', page))


def primary(web: TestClient) -> str:
    return re.search(r'<a class="button primary" href="([^"]+)">', web.get("/app").text).group(1)


def test_what_must_come_first_is_said_before_the_form(web):
    assert web.get("/app/credit").headers["location"] == "/app/login?next=%2Fapp%2Fcredit"
    log_in(web, PHONE)
    page = web.get("/app/credit")
    assert 'data-testid="first"' in page.text and 'href="/app/verify"' in page.text
    assert 'data-testid="apply-form"' not in page.text
    assert journey(web) == {"verify": "current", "consents": "todo", "credit": "todo", "draw": "todo"}
    assert primary(web) == "/app/verify"

    verified_on_web(web, PHONE, bureau.CLEAN_FILE_ID, consents=("privacy_policy", "user_agreement", "carrier_data"),
                    logged_in=True)
    page = web.get("/app/credit")
    assert "征信查询授权书" in page.text and 'href="/app/consents"' in page.text
    assert journey(web)["verify"] == "done" and journey(web)["consents"] == "current"
    assert primary(web) == "/app/consents"
    refused = apply_on_web(web)  # sent anyway: the service names what is missing
    assert refused.status_code == 403 and code_of(refused) == "CONSENT_REQUIRED"
    assert "授权管理页面" in refused.text and "/v1/" not in refused.text

    grant_on_web(web, "credit_bureau_query")
    page = web.get("/app/credit")
    assert 'data-testid="apply-form"' in page.text
    assert journey(web)["consents"] == "done" and primary(web) == "/app/credit"
    options = dict(re.findall(r'<option value="([a-z_]+)">([^<]+)</option>', page.text))
    assert options["civil_servant"] == "公务员 / 事业单位" and options["home_furnishing"] == "家装家电"
    assert options["postgraduate"] == "硕士及以上"
    english = web.get("/app/credit?lang=en")
    assert "Bachelor's degree" in english.text and "Monthly income after tax (yuan)" in english.text


def test_an_approval_shows_the_line_at_once_and_the_way_to_draw(web, client, container):
    verified_on_web(web, PHONE, bureau.CLEAN_FILE_ID)
    application_id, page = decided(web)
    view = application_view(stored(container, application_id))
    assert view.status == "approved" and view.line is not None
    assert 'data-status="approved"' in page and "<h1>申请已通过</h1>" in page
    # The price first and biggest: the all-in APR at the line's default terms (the quote for them), then the limit.
    quoted = client.post("/v1/quotes", json={"product_code": "DEMO-12", "annual_rate": str(view.line.annual_rate),
                                             "principal_fen": 1_000_000, "term_months": 12}).json()["apr"]
    assert re.search(r'<p class="apr" data-testid="line-apr">([^<]+)</p>', page).group(1) == percent(Decimal(quoted))
    assert page.index('data-testid="line-apr"') < page.index('data-testid="limit"') < page.index('data-testid="rate"')
    assert f'data-testid="limit">{yuan(view.line.limit_fen)}<' in page
    assert 'data-testid="fee-rate">0.10%<' in page  # the service fee is named where the price is
    assert f'data-testid="grade">{view.line.grade}<' in page
    assert f'data-testid="rate">{percent(view.line.annual_rate)}<' in page
    assert re.search(r'data-testid="expires">\d{4}年\d+月\d+日<', page)
    assert '<a class="button primary" href="/app/loans/new">借款</a>' in page
    # The credit page shows the line from now on, with what is available; the start page points to drawing.
    line = web.get("/app/credit").text
    assert "<h1>我的额度</h1>" in line and f'data-testid="available">{yuan(view.line.limit_fen)}<' in line
    assert journey(web) == {}  # the setup is done: the start page is the line, not the checklist
    home = web.get("/app").text
    assert 'href="/app/loans/new" data-testid="borrow">借钱<' in home and "暂无账单" in home
    assert f'data-testid="available">{yuan(view.line.limit_fen)}<' in home
    # Sent again, the service refuses a second line before asking anyone (nothing is stored): the line the
    # borrower has is what they see.
    again = apply_on_web(web)
    assert again.status_code == 409 and 'data-code="CREDIT_TOO_MANY_LINES"' in again.text, again.text
    assert "<h1>我的额度</h1>" in web.get("/app/credit").text
    # Only an automated decline can go to a person.
    hr = web.post(f"/app/credit/applications/{application_id}/human-review",
                  data={"csrf_token": form_token(web)})
    assert hr.status_code == 409 and code_of(hr) == "CREDIT_REVIEW_NOT_APPLICABLE"
    assert "只有系统自动拒绝的申请" in hr.text and "该申请状态为" not in hr.text  # the app's words, not a state code


@pytest.mark.parametrize(("id_number", "form", "code"), [
    (bureau.MULTI_BORROWING_ID, {}, "CREDIT_TOO_MANY_INQUIRIES"),
    (bureau.CURRENT_OVERDUE_ID, {}, "CREDIT_BUREAU_CURRENT_OVERDUE"),
    (bureau.WRITTEN_OFF_ID, {}, "CREDIT_BUREAU_WRITTEN_OFF"),
    (bureau.FRAUD_LIST_ID, {}, "CREDIT_POLICY_NOT_MET"),
    (bureau.CLEAN_FILE_ID, {"occupation": "student"}, "CREDIT_STUDENT"),
    (bureau.CLEAN_FILE_ID, {"income": "1200"}, "CREDIT_DEBT_TO_INCOME_HIGH"),
])
def test_a_decline_gives_each_reason_in_plain_words_with_tips_and_the_date(web, container, clock, id_number, form,
                                                                           code):
    verified_on_web(web, PHONE, id_number)
    application_id, page = decided(web, **form)
    view = application_view(stored(container, application_id))
    assert view.status == "declined" and 'data-status="declined"' in page and "<h1>本次申请未通过</h1>" in page
    shown = re.findall(r'class="card reason" data-code="([A-Z_a-z0-9]+)"', page)
    assert shown == [r.code for r in view.reasons] and shown[0] == code
    for reason in view.reasons:
        assert reason.message_zh in page and (reason.tip_zh is None or f"建议：{reason.tip_zh}" in page)
    assert "2026年12月22日 起可再次申请" in page
    assert "CREDIT_" not in re.sub(r'data-code="[A-Z_a-z0-9]+"', "", page)  # words, not codes
    # Until then /app/credit is this decision (not the form), and the start page says when.
    assert 'data-status="declined"' in web.get("/app/credit").text
    assert journey(web)["credit"] == "current" and "2026年12月22日 起可再次申请" in web.get("/app").text
    english = web.get(f"/app/credit/applications/{application_id}?lang=en").text
    assert view.reasons[0].message_en.replace("'", "&#39;") in english
    assert "You may apply again from 22 Dec 2026." in english
    clock.advance(timedelta(days=30))
    log_in(web, PHONE)  # a month on: the session has run out
    assert 'data-testid="apply-form"' in web.get("/app/credit").text


def test_a_person_reviews_a_decline_on_request(web, client, container, clock, fast_staff_hasher):
    verified_on_web(web, PHONE, bureau.MULTI_BORROWING_ID)
    application_id, page = decided(web)
    assert 'data-testid="human-review"' in page and "申请人工复核" in page
    token = csrf(web.get("/app/credit"))  # the decision, with the form to ask
    asked = web.post(f"/app/credit/applications/{application_id}/human-review",
                     data={"note": "  我已还清那些贷款  ", "csrf_token": token})
    assert asked.status_code == 303 and asked.headers["location"] == f"/app/credit/applications/{application_id}"
    page = web.get(asked.headers["location"]).text
    assert 'data-status="in_review"' in page and "您已申请对系统的自动决定进行人工复核" in page
    assert "结果将通过短信通知您" in page and 'data-testid="human-review"' not in page
    with container.db.transaction() as session:
        case = session.execute(select(ReviewCase)).scalar_one()
    assert case.borrower_note == "我已还清那些贷款"
    assert journey(web)["credit"] == "current" and primary(web) == "/app/credit"
    twice = web.post(f"/app/credit/applications/{application_id}/human-review", data={"csrf_token": token})
    assert twice.status_code == 409 and code_of(twice) == "CREDIT_REVIEW_ALREADY_REQUESTED"
    # The reviewer upholds it: the page says a person looked, with the reasons and the date.
    reviewer = staff_headers(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    client.post(f"/v1/staff/credit/review-cases/{case.id}/decision",
                json={"outcome": "decline", "reason": "nine inquiries is nine inquiries"}, headers=reviewer)
    page = web.get(f"/app/credit/applications/{application_id}").text
    assert 'data-status="declined"' in page and "人工审核后，申请未获通过" in page
    assert 'data-testid="human-review"' not in page  # reviewed once already


def test_a_referral_says_what_happens_next_and_later_the_outcome(web, client, container, clock, fast_staff_hasher):
    verified_on_web(web, "13900000026", bureau.CLEAN_FILE_ID)  # a phone in service for two months
    application_id, page = decided(web)
    assert 'data-status="in_review"' in page and "<h1>审核中</h1>" in page
    assert 'data-code="CREDIT_PHONE_TENURE_SHORT"' in page and "接下来" in page and "无需重复申请" in page
    assert 'data-status="in_review"' in web.get("/app/credit").text
    assert "您的申请正在审核中" in web.get("/app").text
    reviewer = staff_headers(client, container, clock, "rita.reviewer", ("risk_reviewer",))
    case_id = client.get("/v1/staff/credit/review-cases", headers=reviewer).json()[0]["id"]
    approved = client.post(f"/v1/staff/credit/review-cases/{case_id}/decision",
                           json={"outcome": "approve", "reason": "tenure checked by phone call"}, headers=reviewer)
    assert approved.status_code == 200, approved.text
    page = web.get(f"/app/credit/applications/{application_id}").text
    assert 'data-status="approved"' in page and 'data-testid="limit"' in page
    assert "<h1>我的额度</h1>" in web.get("/app/credit").text and 'data-testid="line-card"' in web.get("/app").text


@pytest.mark.parametrize(("form", "code", "words"), [
    ({"income": "abc"}, "CREDIT_INCOME_INVALID", "请以元为单位填写税后月收入"),
    ({"income": "0"}, "CREDIT_INCOME_INVALID", "请以元为单位填写税后月收入"),
    ({"occupation": ""}, "VALIDATION_FAILED", "请回答表单中的每一个问题"),
    ({"loan_purpose": "gambling"}, "VALIDATION_FAILED", "请回答表单中的每一个问题"),
])
def test_a_form_that_cannot_be_read_comes_back_with_what_to_fix(web, container, form, code, words):
    verified_on_web(web, PHONE, bureau.CLEAN_FILE_ID)
    page = apply_on_web(web, **form)
    assert page.status_code == 422 and code_of(page) == code and words in page.text
    assert "monthly_income_fen" not in page.text and "/v1/" not in page.text
    typed = {**FORM, **form}
    assert f'value="{typed["income"]}"' in page.text  # kept, to correct
    with container.db.transaction() as session:
        assert session.execute(select(func.count()).select_from(CreditApplication)).scalar_one() == 0


def test_refusals_without_an_identity_and_for_someone_elses_application(web, client):
    log_in(web, PHONE)
    refused = apply_on_web(web)
    assert refused.status_code == 403 and code_of(refused) == "CREDIT_IDENTITY_REQUIRED"
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    verified_on_web(other, "13700137302", bureau.CLEAN_FILE_ID)
    theirs, _page = decided(other)
    missing = web.get(f"/app/credit/applications/{theirs}")
    assert missing.status_code == 404 and code_of(missing) == "CREDIT_APPLICATION_NOT_FOUND"
    assert "/v1/" not in missing.text and 'data-testid="first"' in missing.text  # their own standing instead


def test_forms_without_their_token_are_refused_and_nothing_is_decided(web, container):
    verified_on_web(web, PHONE, bureau.MULTI_BORROWING_ID)
    assert web.post("/app/credit", data=FORM).status_code == 403
    application_id, _page = decided(web)
    assert web.post(f"/app/credit/applications/{application_id}/human-review",
                    data={"csrf_token": "forged"}).status_code == 403
    with container.db.transaction() as session:
        assert session.execute(select(func.count()).select_from(CreditApplication)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(ReviewCase)).scalar_one() == 0


def test_a_loan_reads_by_the_purpose_declared_when_applying(web, client, container, clock):
    """The loans list and the bills name a loan by its day, amount and the purpose the borrower gave on the
    application that granted its line, not by its number."""
    verified_on_web(web, PHONE, bureau.CLEAN_FILE_ID)
    application_id, _page = decided(web, loan_purpose="travel")
    line_id = stored(container, application_id).credit_line_id
    clock.advance(timedelta(seconds=61))  # past the login code's resend cooldown (the app logged in just now)
    borrower = login(client, PHONE)
    assert line_purposes(container, borrower["borrower_id"]) == {line_id: LoanPurpose.TRAVEL}
    loan = active_loan(client, clock, borrower, phone=PHONE, principal_fen=500_000, term_months=6)
    for path in ("/app/loans", "/app/bills", "/app"):
        page = web.get(path).text
        assert f"借款 {yuan(500_000)} · 旅游" in page and loan["loan_no"] not in page, path
    assert f"{yuan(500_000)} borrowed on" in web.get("/app/loans?lang=en").text
    assert "· Travel" in web.get("/app/bills?lang=en").text
