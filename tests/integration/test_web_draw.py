"""Drawing money in the borrower's web app over HTTPS, on both databases: the form's quote is the one the
drawdown freezes (APR first, totals, every installment), refusals shown with their codes; the contract is the
document the API serves with its hash carried to the signing form; signing needs a code sent for that
contract (however recent the login); and a form
sent twice — the drawdown or the signature — makes one loan and one payout order."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from miaodai.demo import DEMO_BORROWERS
from miaodai.payments.models import PaymentOrder
from miaodai.web.draw import CONTRACT_POLICY
from miaodai.web.i18n import percent
from tests.helpers import latest_code
from tests.integration.test_web_login import csrf, log_in
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.integration.test_web_methods import code_of, signed_in_demo
from tests.loan_support import PHONE, demo_borrower
from tests.payment_support import channel_time_passes


def hidden(page, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page.text).group(1)


def draw_form(web: TestClient, amount: str = "10000", term: str = "m12", method: str = "equal_installment"):
    """The drawdown form (with its quote for these terms) and the fields it posts."""
    page = web.get("/app/loans/new", params={"amount": amount, "term": term, "method": method})
    fields = {"line_id": hidden(page, "line_id"), "amount": amount, "term": term, "method": method,
              "request_key": hidden(page, "request_key"), "csrf_token": csrf(page)}
    return page, fields


def draw_on_web(web: TestClient, **terms: str) -> int:
    """Draw money on the form; returns the loan's id (from the contract page it leads to)."""
    _page, fields = draw_form(web, **terms)
    drawn = web.post("/app/loans/new", data=fields)
    assert drawn.status_code == 303, drawn.text
    return int(re.fullmatch(r"/app/loans/(\d+)/contract", drawn.headers["location"]).group(1))


def contract_hash(web: TestClient, loan_id: int) -> str:
    """The hash the contract page's signing link carries (the page itself shows none)."""
    page = web.get(f"/app/loans/{loan_id}/contract").text
    return re.search(rf'href="/app/loans/{loan_id}/sign\?sha256=([0-9a-f]{{64}})"', page).group(1)


def signing_form(web: TestClient, loan_id: int, sha256: str | None = None):
    """Open the signing page (after the contract) and ask for the code that signs this text: the page with the
    code field. Moves the test clock past the resend cooldown first."""
    web.app.state.container.clock.advance(timedelta(seconds=61))
    page = web.get(f"/app/loans/{loan_id}/sign", params={"sha256": sha256 or contract_hash(web, loan_id)})
    assert page.status_code == 200, page.headers.get("location")
    sent = web.post(f"/app/loans/{loan_id}/sign/code", data={
        "contract_sha256": hidden(page, "contract_sha256"), "csrf_token": csrf(page)})
    assert sent.status_code == 200 and 'data-testid="sign-form"' in sent.text, sent.text
    return sent


def sign_on_web(web: TestClient, loan_id: int):
    """Open the signing form, get the code sent for this contract, sign; returns the answer (a 303 to the
    payout page)."""
    form = signing_form(web, loan_id)
    return web.post(f"/app/loans/{loan_id}/sign", data={
        "contract_sha256": hidden(form, "contract_sha256"), "request_key": hidden(form, "request_key"),
        "code": latest_code(web, PHONE), "csrf_token": csrf(form)})


def payout_orders(container, loan_id: int) -> int:
    with container.db.transaction() as session:
        return session.execute(select(func.count()).where(PaymentOrder.loan_id == loan_id)).scalar_one()


def test_the_form_quotes_what_the_drawdown_freezes(web, client, container, clock):
    signed_in_demo(web, container)
    page, fields = draw_form(web, amount="10000", term="m12", method="equal_installment")
    assert page.status_code == 200 and "可借额度" in page.text and "¥20,000.00" in page.text
    apr = re.search(r'data-testid="apr">([^<]+)<', page.text).group(1)
    assert page.text.index('data-testid="apr"') < page.text.index('data-testid="total-interest"') \
        < page.text.index('data-testid="total-cost"') < page.text.index('data-testid="schedule"')
    assert page.text.count('<tbody class="installment">') == 12 and "本金 ¥" in page.text
    assert "工商银行" in re.search(r'data-testid="payout-to">(.*?)</div>', page.text, re.S).group(1)

    loan_id = int(re.search(r"/app/loans/(\d+)/", web.post("/app/loans/new", data=fields).headers["location"])[1])
    clock.advance(timedelta(seconds=61))
    loan = client.get(f"/v1/loans/{loan_id}", headers=demo_borrower(client, container)["headers"]).json()
    assert apr == percent(Decimal(loan["apr"])) and loan["principal_fen"] == 1_000_000
    assert f"¥{loan['total_interest_fen'] / 100:,.2f}" in page.text and len(loan["installments"]) == 12
    assert (loan["method"], loan["term_months"], loan["status"]) == ("equal_installment", 12, "requested")

    bullet = web.get("/app/loans/new", params={"amount": "2000", "term": "d30", "method": "bullet"})
    assert bullet.text.count('<tbody class="installment">') == 1
    english = web.get("/app/loans/new", params={"amount": "5000", "term": "m6", "method": "equal_principal",
                                                  "lang": "en"})
    assert "Annual percentage rate" in english.text and english.text.count('<tbody class="installment">') == 6


def test_terms_the_product_or_the_line_refuse_are_explained(web, container):
    signed_in_demo(web, container)
    for params, status, code in (
        ({"amount": "ten", "term": "m12", "method": "equal_installment"}, 422, "LOAN_TERMS_INVALID"),
        ({"amount": "100", "term": "m12", "method": "equal_installment"}, 422, "LOAN_AMOUNT_OUT_OF_RANGE"),
        ({"amount": "5000", "term": "m12", "method": "bullet"}, 422, "LOAN_TERMS_INVALID"),  # bullet runs in days
        ({"amount": "5000", "term": "d60", "method": "bullet"}, 422, "LOAN_TERM_NOT_OFFERED"),
        ({"amount": "5000", "term": "m9", "method": "equal_installment"}, 422, "LOAN_TERM_NOT_OFFERED"),
        ({"amount": "5000", "term": "y1", "method": "equal_installment"}, 422, "LOAN_TERMS_INVALID"),
        ({"amount": "5000", "term": "m12", "method": "weekly"}, 422, "LOAN_TERMS_INVALID"),
    ):
        page = web.get("/app/loans/new", params=params)
        assert (page.status_code, code_of(page)) == (status, code), params
        assert 'data-testid="apr"' not in page.text and 'data-testid="schedule"' not in page.text  # no figures
    _page, fields = draw_form(web, amount="30000")  # the product lends it, the line has 20,000
    refused = web.post("/app/loans/new", data=fields)
    assert refused.status_code == 409 and code_of(refused) == "LOAN_LINE_INSUFFICIENT" and "20000.00" in refused.text
    assert 'value="30000"' in refused.text  # the form keeps what was typed


def test_a_drawdown_form_sent_twice_makes_one_loan(web, client, container, clock):
    signed_in_demo(web, container)
    _page, fields = draw_form(web)
    first = web.post("/app/loans/new", data=fields)
    again = web.post("/app/loans/new", data=fields)  # a double tap, or a resubmission after a lost answer
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    assert len(client.get("/v1/loans", headers=who["headers"]).json()) == 1
    assert client.get("/v1/credit-lines", headers=who["headers"]).json()[0]["available_fen"] == 1_000_000
    fresh = draw_form(web)[1]
    assert fresh["request_key"] != fields["request_key"]  # each rendering of the form is a new drawdown
    web.post("/app/loans/new", data=fresh)
    assert len(client.get("/v1/loans", headers=who["headers"]).json()) == 2


def test_the_contract_page_shows_the_apis_document_and_carries_its_hash(web, client, container, clock):
    signed_in_demo(web, container)
    loan_id = draw_on_web(web)
    page = web.get(f"/app/loans/{loan_id}/contract")
    clock.advance(timedelta(seconds=61))
    api = client.get(f"/v1/loans/{loan_id}/contract", headers=demo_borrower(client, container)["headers"])
    sha = api.headers["X-Content-SHA256"]
    assert page.status_code == 200
    assert f'href="/app/loans/{loan_id}/sign?sha256={sha}"' in page.text  # the hash goes to the signing form
    assert sha not in page.text.replace(f"sign?sha256={sha}", "") and "SHA-256 " + sha[:8] not in page.text
    assert "<iframe" not in page.text  # the text is in the page, the document's body as the API serves it
    body = re.search(r"<body>\n(.*)</body>", api.text, re.DOTALL).group(1)
    shown = re.search(r'<article class="contract-text"[^>]*>\n(.*)\n</article>', page.text, re.DOTALL).group(1)
    assert shown == body.replace("<h2", "<h3").replace("</h2", "</h3").replace("<h1", "<h2").replace("</h1", "</h2")
    assert shown.index("重要条款摘要") < shown.index("第一条") and "<h1" not in shown
    document = web.get(f"/app/loans/{loan_id}/contract/document")
    assert document.content == api.content and document.headers["x-content-sha256"] == sha
    assert document.headers["content-security-policy"] == CONTRACT_POLICY  # its own styles, framed only by us
    download = web.get(f"/app/loans/{loan_id}/contract/document?download=1")
    assert download.content == api.content and download.headers["content-disposition"].startswith("attachment;")
    assert web.get("/app/loans/999/contract").status_code == 404
    assert code_of(web.get("/app/loans/999/contract/document")) == "LOAN_NOT_FOUND"


def test_signing_needs_a_code_for_this_contract_and_a_form_sent_twice_orders_one_payout(web, client, container,
                                                                                        clock):
    signed_in_demo(web, container)  # logged in moments ago: that is no signature
    loan_id = draw_on_web(web)
    sha = contract_hash(web, loan_id)
    page = web.get(f"/app/loans/{loan_id}/sign", params={"sha256": sha})
    assert page.status_code == 200 and "获取签署验证码" in page.text and 'name="code"' not in page.text
    # The form without a code (an old page, a forged post) is refused with the problem's code, not signed.
    bare = web.post(f"/app/loans/{loan_id}/sign", data={"contract_sha256": sha, "request_key": "web-sign-12345678",
                                                        "csrf_token": csrf(page)})
    assert bare.status_code == 403 and code_of(bare) == "CONTRACT_SIGN_CODE_REQUIRED"
    assert payout_orders(container, loan_id) == 0

    form = signing_form(web, loan_id, sha)
    assert "同意并签署" in form.text and "工商银行" in form.text and sha in form.text and "138****8001" in form.text
    code = latest_code(web, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    fields = {"contract_sha256": sha, "request_key": hidden(form, "request_key"), "csrf_token": csrf(form)}
    refused = web.post(f"/app/loans/{loan_id}/sign", data={**fields, "code": wrong})
    assert refused.status_code == 400 and code_of(refused) == "OTP_WRONG_CODE" and 'name="code"' in refused.text
    first = web.post(f"/app/loans/{loan_id}/sign", data={**fields, "code": code})
    again = web.post(f"/app/loans/{loan_id}/sign", data={**fields, "code": code})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"] == f"/app/loans/{loan_id}/payout"
    assert payout_orders(container, loan_id) == 1
    assert channel_time_passes(web, container, clock) == 1
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    loan = client.get(f"/v1/loans/{loan_id}", headers=who["headers"]).json()
    assert loan["status"] == "active" and loan["contract"]["signed_with"].startswith("sms_code sent to 138****8001")
    signed = web.get(f"/app/loans/{loan_id}/sign", params={"sha256": sha})
    assert "该合同已签署" in signed.text and 'name="contract_sha256"' not in signed.text


def test_signing_another_text_than_the_one_read_is_refused(web, container):
    signed_in_demo(web, container)
    loan_id = draw_on_web(web)
    page = web.get(f"/app/loans/{loan_id}/sign", params={"sha256": "0" * 64})
    no_code = web.post(f"/app/loans/{loan_id}/sign/code", data={"contract_sha256": "0" * 64, "csrf_token": csrf(page)})
    assert no_code.status_code == 409 and code_of(no_code) == "CONTRACT_CHANGED"  # no code for a text not read
    refused = web.post(f"/app/loans/{loan_id}/sign", data={
        "contract_sha256": "0" * 64, "request_key": "web-sign-12345678", "code": "123456", "csrf_token": csrf(page)})
    assert refused.status_code == 409 and code_of(refused) == "CONTRACT_CHANGED"
    assert f'href="/app/loans/{loan_id}/contract"' in refused.text and payout_orders(container, loan_id) == 0
    unread = web.get(f"/app/loans/{loan_id}/sign")  # no hash: read the contract first
    assert unread.status_code == 303 and unread.headers["location"] == f"/app/loans/{loan_id}/contract"


def test_next_without_a_card_asks_for_one_before_drafting_or_holding_anything(web, client, container, clock):
    signed_in_demo(web, container)
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    card = client.get("/v1/payment-methods", headers=who["headers"]).json()[0]
    assert client.delete(f"/v1/payment-methods/{card['id']}", headers=who["headers"]).status_code == 200
    available = client.get("/v1/credit-lines", headers=who["headers"]).json()[0]["available_fen"]
    page, fields = draw_form(web)
    assert "/app/methods/card?next=/app/loans/new" in page.text  # asked for before "Next"
    refused = web.post("/app/loans/new", data=fields)
    assert refused.status_code == 409 and code_of(refused) == "PAYMENT_PAYOUT_METHOD_REQUIRED"
    assert "/app/methods/card?next=/app/loans/new" in refused.text  # the way on, on the same page
    assert client.get("/v1/loans", headers=who["headers"]).json() == []
    assert client.get("/v1/credit-lines", headers=who["headers"]).json()[0]["available_fen"] == available


def test_without_a_card_the_signing_form_says_to_bind_one_first(web, client, container, clock):
    signed_in_demo(web, container)
    loan_id = draw_on_web(web)
    clock.advance(timedelta(seconds=61))
    who = demo_borrower(client, container)
    card = client.get("/v1/payment-methods", headers=who["headers"]).json()[0]
    assert client.delete(f"/v1/payment-methods/{card['id']}", headers=who["headers"]).status_code == 200
    page = signing_form(web, loan_id)
    assert "/app/methods/card?next=" in page.text
    refused = web.post(f"/app/loans/{loan_id}/sign", data={
        "contract_sha256": hidden(page, "contract_sha256"), "request_key": hidden(page, "request_key"),
        "code": latest_code(web, PHONE), "csrf_token": csrf(page)})
    assert refused.status_code == 409 and code_of(refused) == "PAYMENT_PAYOUT_METHOD_REQUIRED"
    assert payout_orders(container, loan_id) == 0


def test_a_borrower_without_a_line_and_forms_without_their_token(web, client, container):
    signed_in_demo(web, container)
    _page, fields = draw_form(web)
    assert web.post("/app/loans/new", data={**fields, "csrf_token": "forged"}).status_code == 403
    assert web.post("/app/loans/1/sign", data={"contract_sha256": "0" * 64, "request_key": "web-x-12345678"}
                    ).status_code == 403
    web.post("/app/logout", data={"csrf_token": fields["csrf_token"]})
    log_in(web, DEMO_BORROWERS[2].phone)  # verified, no line
    page = web.get("/app/loans/new")
    assert page.status_code == 200 and "还没有可用的借款额度" in page.text and "data-live" not in page.text
    assert web.get("/app/loans/new").status_code == 200
    anonymous = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    assert anonymous.get("/app/loans/new").headers["location"] == "/app/login?next=%2Fapp%2Floans%2Fnew"
