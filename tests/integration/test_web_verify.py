"""Real-name verification in the borrower's web app over HTTPS, on both databases: the carrier check's consents
asked for first, in place; name and ID number, the carrier check with the login phone, the face check (the
sandbox's camera stand-in); every refusal shown with its code, its message and what to do — ID and name
typos, age, one account per person, each carrier outcome, each face outcome, the daily limits — with only
what must be corrected sent back into the form; CSRF; nothing typed in the logs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from miaodai.identity.kyc_providers import FACE_TIMEOUT_TOKEN
from miaodai.identity.models import Borrower, KycAttempt, KycStatus
from miaodai.web.verify import PASS_TOKEN
from tests.credit_support import ALL_CONSENTS, quick_parties
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)

PHONE = "13700137101"
CARRIER_SAYS_MISMATCH = "13900000021"  # the sandbox carrier: name and ID number do not match (docs/sandbox.md)
ID_NUMBER = "110101199003070011"
NAME = "张三"
CARRIER_CONSENTS = ("privacy_policy", "user_agreement", "carrier_data")


@pytest.fixture(autouse=True)
def _quick(container):
    """Sandboxes that answer at once (and time out without waiting)."""
    quick_parties(container)


def code_of(page) -> str | None:
    found = re.search(r'role="alert" data-code="([A-Z0-9_]+)"', page.text)
    return found.group(1) if found else None


def grant_on_web(web: TestClient, *kinds: str, next_path: str = "/app/consents") -> None:
    for kind in kinds:
        page = web.get("/app/consents")
        done = web.post(f"/app/consents/{kind}/grant", data={"version": "1.0", "next": next_path,
                                                               "csrf_token": csrf(page)})
        assert done.status_code == 303 and done.headers["location"] == next_path, done.text


def submit_identity(web: TestClient, name: str = NAME, id_number: str = ID_NUMBER):
    page = web.get("/app/verify")
    return web.post("/app/verify/identity", data={"name": name, "id_number": id_number, "csrf_token": csrf(page)})


def submit_face(web: TestClient, token: str = PASS_TOKEN):
    page = web.get("/app/verify")
    return web.post("/app/verify/face", data={"liveness_token": token, "csrf_token": csrf(page)})


def verified_on_web(web: TestClient, phone: str, id_number: str = ID_NUMBER, *, name: str = "王小明",
                    consents: tuple[str, ...] = ALL_CONSENTS, logged_in: bool = False) -> None:
    """A borrower logged in on the web with ``consents`` granted and identity, carrier and face verified."""
    if not logged_in:
        log_in(web, phone)
    grant_on_web(web, *consents)
    assert submit_identity(web, name, id_number).status_code == 303
    assert submit_face(web).status_code == 303


def attempts(container) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).select_from(KycAttempt)).scalar_one()


def ready(web: TestClient, phone: str = PHONE) -> None:
    log_in(web, phone)
    grant_on_web(web, *CARRIER_CONSENTS, next_path="/app/verify")


def test_signed_out_the_page_asks_to_log_in(web):
    assert web.get("/app/verify").headers["location"] == "/app/login?next=%2Fapp%2Fverify"


def test_the_carrier_checks_consents_come_first_each_on_its_own(web):
    log_in(web, PHONE)
    page = web.get("/app/verify")
    assert page.status_code == 200 and 'data-testid="consents-needed"' in page.text
    assert 'data-testid="identity-form"' not in page.text
    for kind in CARRIER_CONSENTS:
        assert f'data-testid="consent-{kind}"' in page.text
    assert 'data-testid="consent-credit_bureau_query"' not in page.text  # not needed for this step
    assert 'aria-current="step"' in page.text and "运营商校验" in page.text and "138****" not in page.text
    assert "137****7101" in page.text  # the carrier looks up the login phone: shown, masked

    grant_on_web(web, "privacy_policy", next_path="/app/verify")
    page = web.get("/app/verify")
    assert 'data-testid="consent-privacy_policy"' not in page.text and 'data-testid="consent-carrier_data"' in page.text
    grant_on_web(web, "user_agreement", "carrier_data", next_path="/app/verify")
    page = web.get("/app/verify")
    assert 'data-testid="identity-form"' in page.text and 'data-testid="consents-needed"' not in page.text
    assert re.search(r'data-testid="attempts">今日还可尝试 5 次', page.text)


def test_identity_carrier_and_face_verify_the_borrower(web, container):
    ready(web)
    done = submit_identity(web)
    assert done.status_code == 303 and done.headers["location"] == "/app/verify#face"
    page = web.get("/app/verify")
    assert "张*" in page.text and "110101********0011" in page.text and ID_NUMBER not in page.text
    assert 'data-testid="face"' in page.text and "开始人脸识别" in page.text
    # The sandbox's camera stand-in, labelled as the sandbox's, offers its documented test tokens.
    assert re.findall(r'<option value="([^"]+)"', page.text) == [
        "sandbox-pass", "sandbox-liveness-failed", "sandbox-face-mismatch", FACE_TIMEOUT_TOKEN]
    assert "沙箱" in page.text
    assert submit_face(web).status_code == 303
    page = web.get("/app/verify")
    assert 'data-testid="verified"' in page.text and "实名认证已完成" in page.text
    # What is next: the credit-bureau consent an application needs.
    assert re.search(r'href="/app/consents" data-testid="next-step">下一步：阅读并同意授权', page.text)
    with container.db.transaction() as session:
        assert session.execute(select(Borrower.kyc_status)).scalar_one() is KycStatus.VERIFIED
    english = web.get("/app/verify?lang=en")
    assert "You are verified" in english.text and "Next: Agree to the consents" in english.text


@pytest.mark.parametrize(("name", "id_number", "code"), [
    (NAME, "110101199003070012", "KYC_ID_BAD_CHECKSUM"),
    (NAME, "110101199002300014", "KYC_ID_BAD_BIRTH_DATE"),
    (NAME, "999999199003070012", "KYC_ID_UNKNOWN_REGION"),
    (NAME, "110101900307001", "KYC_ID_LEGACY_15_DIGIT"),
    (NAME, "11010119900307001", "KYC_ID_WRONG_LENGTH"),
    (NAME, "11010119900307001Y", "KYC_ID_BAD_CHARACTERS"),
    (NAME, "110101201001010015", "KYC_AGE_TOO_YOUNG"),
    (NAME, "110101195001010017", "KYC_AGE_TOO_OLD"),
    ("Zhang San", ID_NUMBER, "KYC_NAME_BAD_CHARACTERS"),
    ("张", ID_NUMBER, "KYC_NAME_TOO_SHORT"),
    ("·张三", ID_NUMBER, "KYC_NAME_BAD_DOT"),
])
def test_each_typing_refusal_is_explained_and_the_form_kept_to_correct(web, name, id_number, code):
    ready(web)
    page = submit_identity(web, name, id_number)
    assert page.status_code == 422 and code_of(page) == code
    assert re.search(r'class="problem-message">[^<]+<', page.text) and 'class="problem-action">' in page.text
    assert f'value="{name}"' in page.text and f'value="{id_number}"' in page.text  # to correct, not retype
    assert re.search(r'data-testid="attempts">今日还可尝试 5 次', page.text)  # nobody was asked: no attempt used


@pytest.mark.parametrize(("phone", "code", "status", "kept"), [
    ("13900000021", "KYC_CARRIER_NAME_ID_MISMATCH", 422, True),
    ("13900000022", "KYC_CARRIER_PHONE_NOT_OWNER", 422, False),
    ("13900000023", "KYC_CARRIER_NUMBER_REASSIGNED", 422, False),
    ("13900000024", "KYC_CARRIER_NUMBER_SUSPENDED", 422, False),
    ("13900000025", "KYC_CARRIER_TIMEOUT", 504, False),
])
def test_each_carrier_outcome_says_what_to_do(web, phone, code, status, kept):
    ready(web, phone)
    page = submit_identity(web)
    assert page.status_code == status and code_of(page) == code
    assert "problem-action" in page.text
    assert (ID_NUMBER in page.text) is kept  # a mismatch is corrected in the form; otherwise never echoed
    left = 5 if code == "KYC_CARRIER_TIMEOUT" else 4  # the carrier not answering uses up no attempt
    assert re.search(rf'data-testid="attempts">今日还可尝试 {left} 次', page.text)
    english = web.get("/app/verify?lang=en")
    assert "of 5 attempts left today" in english.text


def test_an_id_number_verified_on_another_account_is_refused_and_not_echoed(web, client):
    verified_on_web(web, PHONE)
    other = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    ready(other, "13700137102")
    page = submit_identity(other, "王小明", ID_NUMBER)
    assert page.status_code == 409 and code_of(page) == "KYC_ID_ON_OTHER_ACCOUNT"
    assert ID_NUMBER not in page.text and "400-000-0000" in page.text


@pytest.mark.parametrize(("token", "code", "status"), [
    ("sandbox-liveness-failed", "KYC_FACE_LIVENESS_FAILED", 422),
    ("sandbox-face-mismatch", "KYC_FACE_MISMATCH", 422),
    (FACE_TIMEOUT_TOKEN, "KYC_FACE_TIMEOUT", 504),
])
def test_each_face_outcome_says_what_to_do_and_the_step_stays_open(web, token, code, status):
    ready(web)
    submit_identity(web)
    page = submit_face(web, token)
    assert page.status_code == status and code_of(page) == code and "problem-action" in page.text
    assert 'data-testid="face"' in page.text  # try again from here
    assert submit_face(web).status_code == 303 and "实名认证已完成" in web.get("/app/verify").text


def test_too_many_attempts_say_when_to_come_back(web, clock):
    ready(web, CARRIER_SAYS_MISMATCH)
    for _ in range(5):
        assert code_of(submit_identity(web)) == "KYC_CARRIER_NAME_ID_MISMATCH"
    page = submit_identity(web)
    assert page.status_code == 429 and code_of(page) == "KYC_IDENTITY_ATTEMPTS_EXHAUSTED"
    assert "2026-11-23 00:00" in page.text and "今日还可尝试 0 次" in page.text
    clock.advance(timedelta(days=1))  # a new Beijing day: the carrier is asked again
    assert code_of(submit_identity(web)) == "KYC_CARRIER_NAME_ID_MISMATCH"
    web.cookies.clear()  # another borrower, in a fresh browser, whose carrier check passes: the face limit
    ready(web)
    assert submit_identity(web).status_code == 303
    for _ in range(5):
        assert code_of(submit_face(web, "sandbox-face-mismatch")) == "KYC_FACE_MISMATCH"
    page = submit_face(web)
    assert page.status_code == 429 and code_of(page) == "KYC_FACE_ATTEMPTS_EXHAUSTED"


def test_steps_out_of_order_are_explained_in_the_apps_words(web):
    log_in(web, PHONE)
    refused = submit_identity(web)  # the carrier check's consents are not in force
    assert refused.status_code == 403 and code_of(refused) == "CONSENT_REQUIRED"
    assert "《隐私政策》" in refused.text and "/v1/" not in refused.text
    assert 'data-testid="consent-carrier_data"' in refused.text  # agree right there
    grant_on_web(web, *CARRIER_CONSENTS)
    early = submit_face(web)
    assert early.status_code == 409 and code_of(early) == "KYC_FACE_BEFORE_IDENTITY" and "/v1/" not in early.text
    submit_identity(web)
    again = submit_identity(web)
    assert again.status_code == 409 and code_of(again) == "KYC_ALREADY_VERIFIED"
    assert "下一步见下方" in again.text and "/v1/" not in again.text


def test_forms_without_their_token_are_refused_and_nothing_is_tried(web, container):
    ready(web)
    refused = web.post("/app/verify/identity", data={"name": NAME, "id_number": ID_NUMBER, "csrf_token": "forged"})
    assert refused.status_code == 403 and attempts(container) == 0
    assert web.post("/app/verify/face", data={"liveness_token": "sandbox-pass"}).status_code == 403


def test_what_is_typed_never_reaches_the_logs(web, captured_logs):
    ready(web, "13900000021")
    submit_identity(web, "王小明", ID_NUMBER)
    submit_identity(web, "王小明", "110101199003070012")
    logged = captured_logs.getvalue()
    assert ID_NUMBER not in logged and "王小明" not in logged and "110101199003070012" not in logged
