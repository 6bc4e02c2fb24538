"""Cards and wallets in the borrower's web app over HTTPS, on both databases: the list as the API masks it,
default and unbind (refused while it is the only method of a loan), binding a card with its bank named from
the BIN as it is typed and the bank's code — each refusal on the page with its code and what to do instead —
and binding Alipay through the sandbox wallet's signing page and back; step-up and CSRF guard every change."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.sandbox.channel import ACCOUNT_NAME_MISMATCH, ACCOUNT_OK
from miaodai.sandbox.wallet import LOGIN_FROZEN
from tests.helpers import latest_code
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.loan_support import PHONE, active_loan, demo_borrower
from tests.payment_support import bind_card
from tests.web_support import form_token

DEMO_CARD = DEMO_BORROWERS[0].card
UNSUPPORTED_BANK = "6210667770000000001"  # 北京农村商业银行: a real bank we do not pay out to
CREDIT_CARD = "6225757770000009"  # 招商银行 credit
FROZEN_CARD = "6222021000000004001"


def code_of(page) -> str | None:
    found = re.search(r'data-code="([A-Z_]+)"', page.text)
    return found.group(1) if found else None


def signed_in_demo(web: TestClient, container) -> None:
    """The first demo borrower (verified, a 20,000-yuan line and an ICBC card) logged in on the web."""
    seed_demo(container)
    log_in(web, PHONE)


def bind_card_on_web(web: TestClient, number: str, *, next_path: str = "") -> tuple[object, object]:
    """Start binding ``number`` on the form and confirm with the bank's code; returns both answers."""
    form = web.get("/app/methods/card" + (f"?next={next_path}" if next_path else ""))
    assert form.status_code == 200, form.headers.get("location")
    started = web.post("/app/methods/card", data={"card_number": number, "next": next_path, "csrf_token": csrf(form)})
    if started.status_code != 200 or "name=\"code\"" not in started.text:
        return started, None
    action = re.search(r'action="(/app/methods/card/bind_[^"]+/confirm)"', started.text).group(1)
    done = web.post(action, data={"code": latest_code(web, PHONE), "next": next_path, "csrf_token": csrf(started)})
    return started, done


def methods_api(client: TestClient, who) -> list[dict]:
    return client.get("/v1/payment-methods", headers=who["headers"]).json()


def test_the_list_masks_like_the_api_and_a_new_card_binds_with_the_banks_code(web, client, container, clock,
                                                                             captured_logs):
    signed_in_demo(web, container)
    page = web.get("/app/methods")
    assert page.status_code == 200 and "中国工商银行 储蓄卡" in page.text and "默认" in page.text
    assert f"{DEMO_CARD[:6]} **** {DEMO_CARD[-4:]}" in page.text and DEMO_CARD not in page.text

    started, done = bind_card_on_web(web, "6222 0288 0000 0000 005")  # typed with spaces, as on the card
    assert "138****8001" in started.text and "尾号 0005" in started.text  # where the bank's code went
    assert done.status_code == 303 and done.headers["location"] == "/app/methods?done=card"
    listed = web.get(done.headers["location"])
    assert 'data-testid="done"' in listed.text and listed.text.count('class="card method"') == 2
    assert ACCOUNT_OK not in listed.text and captured_logs.getvalue().count(ACCOUNT_OK) == 0  # never in full

    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    new = next(m for m in methods_api(client, who) if m["last4"] == "0005")
    assert new["is_default"] is False  # the first card stays the default
    changed = web.post(f"/app/methods/{new['id']}/default", data={"csrf_token": csrf(listed)})
    assert changed.status_code == 303 and changed.headers["location"] == "/app/methods?done=default"
    assert [m["last4"] for m in methods_api(client, who) if m["is_default"]] == ["0005"]
    first = web.get("/app/methods").text
    assert first.index("0005") < first.index(DEMO_CARD[-4:])  # the default is listed first


def test_the_bank_is_named_from_the_bin_while_typing_and_never_from_more(web, container):
    signed_in_demo(web, container)
    icbc = web.get("/app/methods/card/bank?prefix=622202").json()
    assert icbc == {"found": True, "text": "中国工商银行 储蓄卡", "note": None, "supported": True}
    credit = web.get(f"/app/methods/card/bank?prefix={CREDIT_CARD[:6]}").json()
    assert credit["text"] == "招商银行 信用卡" and credit["supported"] is False and "储蓄卡" in credit["note"]
    unsupported = web.get(f"/app/methods/card/bank?prefix={UNSUPPORTED_BANK[:10]}&lang=en").json()
    assert unsupported["supported"] is False and "not supported" in unsupported["note"]
    assert web.get("/app/methods/card/bank?prefix=999999").json() == {"found": False}
    for refused in ("62220", ACCOUNT_OK, "622202abc", "６２２２０２"):  # too short, a whole number, not digits
        answer = web.get("/app/methods/card/bank", params={"prefix": refused})
        assert answer.status_code == 422 and answer.json() == {"found": False}


def test_each_card_refusal_is_shown_with_its_code_and_what_to_do(web, container):
    signed_in_demo(web, container)
    unsupported, _ = bind_card_on_web(web, UNSUPPORTED_BANK)
    assert unsupported.status_code == 422 and code_of(unsupported) == "PAYMENT_CARD_BANK_UNSUPPORTED"
    assert "北京农村商业银行" in unsupported.text and 'data-testid="alternatives"' in unsupported.text
    assert "中国建设银行、" in unsupported.text and "<li>中国建设银行" in unsupported.text  # message and list
    assert 'href="/app/methods/wallet"' in unsupported.text  # the e-wallet alternative
    assert UNSUPPORTED_BANK not in unsupported.text  # a real card's number is not sent back out

    credit, _ = bind_card_on_web(web, CREDIT_CARD)
    assert code_of(credit) == "PAYMENT_CARD_CREDIT_NOT_ALLOWED" and "信用卡" in credit.text
    assert 'data-testid="alternatives"' in credit.text
    typo, _ = bind_card_on_web(web, "6222021234567890124")
    assert code_of(typo) == "PAYMENT_CARD_NUMBER_INVALID" and 'data-testid="alternatives"' not in typo.text
    assert 'value="6222021234567890124"' in typo.text  # a typo comes back to be corrected
    frozen, _ = bind_card_on_web(web, FROZEN_CARD)
    assert frozen.status_code == 422 and code_of(frozen) == "PAYMENT_CARD_FROZEN"

    form = web.get("/app/methods/card")
    started = web.post("/app/methods/card", data={"card_number": ACCOUNT_OK, "csrf_token": csrf(form)})
    action = re.search(r'action="(/app/methods/card/bind_[^"]+/confirm)"', started.text).group(1)
    wrong = web.post(action, data={"code": "000000", "csrf_token": csrf(started)})
    assert wrong.status_code == 422 and code_of(wrong) == "PAYMENT_BINDING_CODE_INVALID"
    assert "还可尝试 4 次" in wrong.text and 'name="code"' in wrong.text  # try again on the same page
    for _ in range(4):
        wrong = web.post(action, data={"code": "000000", "csrf_token": csrf(started)})
    assert code_of(wrong) == "PAYMENT_BINDING_LOCKED" and 'name="code"' not in wrong.text  # start again instead
    english = web.post("/app/methods/card?lang=en", data={"card_number": CREDIT_CARD, "csrf_token": csrf(started)})
    assert "loans are paid out only to debit cards" in english.text and "Banks we support" in english.text


def test_an_unverified_borrower_is_told_to_verify_first(web):
    log_in(web)  # a new account: identity not verified
    form = web.get("/app/methods/card")
    refused = web.post("/app/methods/card", data={"card_number": ACCOUNT_OK, "csrf_token": csrf(form)})
    assert refused.status_code == 403 and code_of(refused) == "PAYMENT_IDENTITY_REQUIRED"
    assert "还没有绑定" in web.get("/app/methods").text


def test_binding_and_unbinding_need_a_fresh_code(web, container, clock):
    signed_in_demo(web, container)
    token = form_token(web)
    clock.advance(timedelta(minutes=10))  # the login's own step-up has run out
    for page in ("/app/methods/card", "/app/methods/wallet", "/app/methods/1/unbind"):
        sent_away = web.get(page)
        assert sent_away.status_code == 303
        assert parse_qs(urlsplit(sent_away.headers["location"]).query) == {"next": [page]}
    posted = web.post("/app/methods/card", data={"card_number": ACCOUNT_OK, "csrf_token": token},
                      headers={"referer": "https://testserver/app/methods/card"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/app/step-up?")
    step = web.get(posted.headers["location"])
    web.post("/app/step-up/code", data={"next": "/app/methods/card", "csrf_token": csrf(step)})
    back = web.post("/app/step-up", data={"code": latest_code(web, PHONE), "next": "/app/methods/card",
                                          "csrf_token": csrf(step)})
    assert back.headers["location"] == "/app/methods/card" and web.get("/app/methods/card").status_code == 200


def test_the_only_method_of_an_active_loan_cannot_be_unbound(web, client, container, clock):
    who = demo_borrower(client, container)
    active_loan(client, clock, who)
    clock.advance(timedelta(seconds=61))
    log_in(web, PHONE)
    only = methods_api(client, who)[0]
    confirm = web.get(f"/app/methods/{only['id']}/unbind")
    assert confirm.status_code == 200 and "确定解绑吗" in confirm.text
    refused = web.post(f"/app/methods/{only['id']}/unbind", data={"csrf_token": csrf(confirm)})
    assert refused.status_code == 409 and code_of(refused) == "PAYMENT_METHOD_IN_USE"
    assert 'href="/app/methods/card"' in refused.text  # bind another first
    assert [m["id"] for m in methods_api(client, who)] == [only["id"]]

    other = bind_card(client, who, PHONE, ACCOUNT_NAME_MISMATCH)
    done = web.post(f"/app/methods/{only['id']}/unbind", data={"csrf_token": csrf(confirm)})
    assert done.status_code == 303 and done.headers["location"] == "/app/methods?done=unbound"
    left = methods_api(client, who)
    assert [(m["id"], m["is_default"]) for m in left] == [(other["id"], True)]  # the other took over
    missing = web.get(f"/app/methods/{only['id']}/unbind")
    assert missing.status_code == 404 and code_of(missing) == "PAYMENT_METHOD_NOT_FOUND"


def _wallet_signing_page(web: TestClient, kind: str = "alipay"):
    choose = web.get("/app/methods/wallet")
    started = web.post("/app/methods/wallet", data={"kind": kind, "csrf_token": csrf(choose)})
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith("/app/sandbox/wallets/SBX")
    return web.get(location)


def _decide(web: TestClient, page, login: str, decision: str = "approve"):
    action = re.search(r'action="(/app/sandbox/wallets/[^"]+)"', page.text).group(1)
    back = re.search(r'name="back" value="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    return web.post(action, data={"login": login, "decision": decision, "back": back, "csrf_token": csrf(page)})


def test_alipay_is_bound_through_the_wallets_signing_page_and_back(web, client, container):
    signed_in_demo(web, container)
    page = _wallet_signing_page(web)
    assert page.status_code == 200 and "秒贷借款放款及自动还款代扣协议" in page.text and "支付宝" in page.text
    signed = _decide(web, page, "13800138001")
    returned = urlsplit(signed.headers["location"])
    assert signed.status_code == 303 and re.fullmatch(r"/app/methods/wallet/wbind_[\w-]+/return", returned.path)
    assert set(parse_qs(returned.query)) == {"auth_code"}
    bound = web.get(signed.headers["location"])
    assert bound.status_code == 303 and bound.headers["location"] == "/app/methods?done=wallet"
    listed = web.get("/app/methods").text
    assert "支付宝" in listed and "****8001" in listed
    again = web.get(signed.headers["location"])  # the same return visited twice binds nothing more
    assert code_of(again) == "PAYMENT_WALLET_BINDING_DONE"
    assert web.get("/app/methods").text.count('class="card method"') == 2


def test_wallet_refusals_are_shown_with_their_codes(web, container):
    signed_in_demo(web, container)
    declined = web.get(_decide(web, _wallet_signing_page(web), "13800138001", "decline").headers["location"])
    assert declined.status_code == 422 and code_of(declined) == "PAYMENT_WALLET_DECLINED"
    frozen = web.get(_decide(web, _wallet_signing_page(web, "wechat_pay"), LOGIN_FROZEN).headers["location"])
    assert code_of(frozen) == "PAYMENT_WALLET_ACCOUNT_FROZEN" and "微信支付" in frozen.text
    forged = web.get(urlsplit(_decide(web, _wallet_signing_page(web), "13800138001").headers["location"]).path
                     + "?auth_code=made-up-code")
    assert code_of(forged) == "PAYMENT_WALLET_AUTH_CODE_INVALID"
    bad_login = _decide(web, _wallet_signing_page(web), "12345")
    assert bad_login.status_code == 422 and code_of(bad_login) == "PHONE_SHORT_NUMBER"
    assert 'name="login"' in bad_login.text  # log in again on the wallet's page
    unknown = web.get("/app/sandbox/wallets/SBXALInot-a-request")
    assert unknown.status_code == 404 and code_of(unknown) == "NOT_FOUND"
    page = web.get("/app/sandbox/wallets/x?back=https://evil.example/steal")
    assert 'href="/app/methods"' in page.text  # the code is handed to nothing but our own return page


def test_forms_without_their_token_change_nothing(web, client, container):
    signed_in_demo(web, container)
    web.get("/app/methods")
    assert web.post("/app/methods/card", data={"card_number": ACCOUNT_OK}).status_code == 403
    assert web.post("/app/methods/1/default", data={"csrf_token": "forged"}).status_code == 403
    assert web.post("/app/methods/1/unbind", data={}).status_code == 403
    assert web.post("/app/methods/wallet", data={"kind": "alipay"}).status_code == 403
    assert web.get("/app/methods").text.count('class="card method"') == 1


def test_binding_returns_to_the_page_that_asked_for_it(web, container):
    signed_in_demo(web, container)
    _started, done = bind_card_on_web(web, ACCOUNT_OK, next_path="/app/loans/new")
    assert done.status_code == 303 and done.headers["location"] == "/app/loans/new"
    choose = web.get("/app/methods/wallet?next=/app/loans/new")
    started = web.post("/app/methods/wallet", data={"kind": "alipay", "next": hidden_next(choose),
                                                    "csrf_token": csrf(choose)})
    returned = web.get(_decide(web, web.get(started.headers["location"]), "13800138001").headers["location"])
    assert returned.status_code == 303 and returned.headers["location"] == "/app/loans/new"
    elsewhere = web.get("/app/methods/card?next=https://evil.example/")
    assert 'name="next" value="/app"' in elsewhere.text  # never a page outside the app


def hidden_next(page) -> str:
    return re.search(r'name="next" value="([^"]*)"', page.text).group(1)
