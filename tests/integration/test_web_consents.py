"""Consents in the borrower's web app over HTTPS, on both databases: every document with its purpose, version
and standing; its full text readable before logging in; each agreed to on its own (once, however often the
form is sent), withdrawn, and asked for again when a new version takes effect; refusals shown with their
codes in the app's words; CSRF."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from sqlalchemy import select

from miaodai.identity.models import Consent, ConsentDocument, ConsentKind
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.integration.test_web_verify import code_of, grant_on_web

PHONE = "13700137201"
KINDS = ("privacy_policy", "user_agreement", "carrier_data", "credit_bureau_query")


def card(page, kind: str) -> str:
    return re.search(rf'<li class="card consent" id="consent-{kind}".*?</li>', page.text, re.S).group(0)


def grants(container) -> list[tuple[str, str, bool]]:
    with container.db.transaction() as session:
        return [(c.kind.value, c.version, c.revoked_at is None)
                for c in session.execute(select(Consent).order_by(Consent.id)).scalars()]


def test_every_document_is_listed_with_its_purpose_version_and_standing(web):
    assert web.get("/app/consents").headers["location"] == "/app/login?next=%2Fapp%2Fconsents"
    log_in(web, PHONE)
    page = web.get("/app/consents")
    assert page.status_code == 200
    assert re.findall(r'class="card consent" id="consent-([a-z_]+)"', page.text) == list(KINDS)  # the journey's order
    bureau = card(page, "credit_bureau_query")
    assert "征信查询授权书" in bureau and "查询您的征信报告" in bureau and "版本 1.0，2026年1月1日 起生效" in bureau
    assert 'data-state="never_granted"' in bureau and "尚未同意" in bureau and "申请额度需要" in bureau
    assert "实名认证需要" not in bureau and "实名认证需要" in card(page, "carrier_data")
    assert 'href="/app/consents/credit_bureau_query/1.0?next=/app/consents"' in bureau
    assert page.text.count("<button") == 4  # one agree button each, nothing else to press yet
    english = web.get("/app/consents?lang=en")
    assert "Credit-bureau query authorization" in english.text and "Needed to apply for credit" in english.text


def test_each_consent_is_agreed_to_on_its_own_and_once(web, container):
    log_in(web, PHONE)
    grant_on_web(web, "carrier_data")
    page = web.get("/app/consents")
    assert 'data-state="in_force"' in card(page, "carrier_data") and "已同意 · 2026年11月22日 10:00:00" in page.text
    for other in ("privacy_policy", "user_agreement", "credit_bureau_query"):
        assert 'data-state="never_granted"' in card(page, other)  # agreeing to one agrees to nothing else
    grant_on_web(web, "carrier_data")  # the same form again: the grant in force, not a second one
    assert grants(container) == [("carrier_data", "1.0", True)]
    grant_on_web(web, "privacy_policy", "user_agreement", "credit_bureau_query")
    page = web.get("/app/consents")
    assert page.text.count('data-state="in_force"') == 4
    # Everything an application needs is in force: the page points on (to verifying, the first step not done).
    assert re.search(r'href="/app/verify" data-testid="next-step">下一步：实名认证', page.text)


def test_a_document_is_read_in_full_even_before_logging_in_and_agreed_to_there(web, container):
    page = web.get("/app/consents/privacy_policy/1.0")
    assert page.status_code == 200 and "<h1>隐私政策</h1>" in page.text
    with container.db.transaction() as session:
        doc = session.execute(select(ConsentDocument).where(
            ConsentDocument.kind == ConsentKind.PRIVACY_POLICY)).scalar_one()
    assert doc.body_sha256 not in page.text and "秒贷隐私政策 1.0" in page.text  # hashes are for verifiers
    assert 'action="/app/consents/privacy_policy/grant"' not in page.text  # nobody to agree yet
    log_in(web, PHONE)
    page = web.get("/app/consents/privacy_policy/1.0", params={"next": "/app/verify"})
    assert 'name="next" value="/app/verify"' in page.text
    done = web.post("/app/consents/privacy_policy/grant", data={"version": "1.0", "next": "/app/verify",
                                                                 "csrf_token": csrf(page)})
    assert done.status_code == 303 and done.headers["location"] == "/app/verify"
    assert "已同意 · 2026年11月22日" in web.get("/app/consents/privacy_policy/1.0").text
    away = web.post("/app/consents/user_agreement/grant", data={"version": "1.0", "next": "https://evil.example/",
                                                                 "csrf_token": csrf(page)})
    assert away.headers["location"] == "/app"  # never off the app


def test_unknown_documents_and_versions_are_explained_with_the_real_ones(web):
    unknown = web.get("/app/consents/marketing/1.0")
    assert unknown.status_code == 404 and code_of(unknown) == "CONSENT_UNKNOWN_KIND"
    assert "请从下方选择文件" in unknown.text and "/v1/" not in unknown.text
    assert 'href="/app/consents/privacy_policy/1.0"' in unknown.text
    missing = web.get("/app/consents/privacy_policy/9.9?lang=en")
    assert missing.status_code == 404 and code_of(missing) == "CONSENT_DOCUMENT_NOT_FOUND"
    assert "Choose one of the documents below." in missing.text
    log_in(web, PHONE)
    page = web.get("/app/consents")
    wrong = web.post("/app/consents/privacy_policy/grant", data={"version": "9.9", "csrf_token": csrf(page)})
    assert wrong.status_code == 422 and code_of(wrong) == "CONSENT_VERSION_UNKNOWN"
    assert "the current version, 1.0" in wrong.text  # in English: the switch above is remembered


def test_withdrawing_takes_a_consent_out_of_force_until_agreed_again(web, container, clock):
    log_in(web, PHONE)
    page = web.get("/app/consents")
    refused = web.post("/app/consents/credit_bureau_query/withdraw", data={"csrf_token": csrf(page)})
    assert refused.status_code == 404 and code_of(refused) == "CONSENT_NOT_GRANTED"
    assert "见下方" in refused.text and "/v1/" not in refused.text
    assert "撤回授权" not in card(page, "credit_bureau_query")  # nothing to withdraw is offered
    grant_on_web(web, "credit_bureau_query")
    assert "撤回授权" in card(web.get("/app/consents"), "credit_bureau_query")
    clock.advance(timedelta(hours=2))
    done = web.post("/app/consents/credit_bureau_query/withdraw", data={"csrf_token": csrf(page)})
    assert done.status_code == 303 and done.headers["location"] == "/app/consents#consent-credit_bureau_query"
    withdrawn = card(web.get("/app/consents"), "credit_bureau_query")
    assert 'data-state="revoked"' in withdrawn and "已于 2026年11月22日 12:00:00 撤回" in withdrawn
    assert "同意《征信查询授权书》" in withdrawn
    grant_on_web(web, "credit_bureau_query")
    assert grants(container) == [("credit_bureau_query", "1.0", False), ("credit_bureau_query", "1.0", True)]


def test_a_new_version_asks_for_agreement_again(web, container, clock):
    log_in(web, PHONE)
    grant_on_web(web, "user_agreement")
    body = "秒贷用户服务协议 1.1。\nMiaodai user agreement 1.1."
    with container.db.transaction() as session:
        session.add(ConsentDocument(kind=ConsentKind.USER_AGREEMENT, version="1.1", title_zh="用户服务协议",
                                    title_en="User agreement", body=body,
                                    body_sha256=hashlib.sha256(body.encode()).hexdigest(),
                                    effective_at=clock.now() + timedelta(minutes=1)))
    clock.advance(timedelta(minutes=2))
    page = web.get("/app/consents")
    agreement = card(page, "user_agreement")
    assert 'data-state="outdated"' in agreement and "已有新版本生效" in agreement and "版本 1.1" in agreement
    assert "撤回授权" in agreement  # the old grant is still live: it can be withdrawn
    old = web.post("/app/consents/user_agreement/grant", data={"version": "1.0", "csrf_token": csrf(page)})
    assert old.status_code == 409 and code_of(old) == "CONSENT_VERSION_NOT_CURRENT"
    assert "非当前生效版本" in web.get("/app/consents/user_agreement/1.0").text
    web.post("/app/consents/user_agreement/grant", data={"version": "1.1", "csrf_token": csrf(page)})
    assert 'data-state="in_force"' in card(web.get("/app/consents"), "user_agreement")


def test_forms_without_their_token_are_refused(web, container):
    log_in(web, PHONE)
    assert web.post("/app/consents/privacy_policy/grant", data={"version": "1.0"}).status_code == 403
    grant_on_web(web, "privacy_policy")
    refused = web.post("/app/consents/privacy_policy/withdraw", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and grants(container) == [("privacy_policy", "1.0", True)]
