"""The rate a borrower is shown, on both databases: every page and API field that shows a loan's APR prints the
contract's figure (the quote API, the drawdown and loan API, the drawing page, the signing page, the loan's page,
the contract); and a line's all-in APR (interest and the service fee, for the line's default terms) comes first
on the credit pages and the drawing page, equal to what the quote API says for those terms."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from miaodai.loans.disclosure import default_offer
from miaodai.loans.product_service import product_spec
from miaodai.web.i18n import percent
from tests.helpers import sign_body
from tests.integration.test_web_draw import contract_hash, draw_form
from tests.integration.test_web_login import web as web  # noqa: PLC0414 (the fixture, by its name)
from tests.integration.test_web_methods import signed_in_demo
from tests.loan_support import PHONE, demo_borrower
from tests.payment_support import channel_time_passes

PRODUCT = "DEMO-12"
# Terms whose APR has four places of percentage: a page that rounded to two would show less than the contract.
AMOUNT_YUAN, TERM_MONTHS, METHOD = "7777", 6, "equal_principal"


def shown(page: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}">([^<]+)<', page).group(1).strip()


def as_rate(figure: str) -> Decimal:
    """A shown percentage back to the rate it prints (``"19.2547%"`` → ``0.192547``)."""
    return Decimal(figure.removesuffix("%")) / 100


def test_every_page_and_api_field_shows_the_contracts_apr(web, client, container, clock):
    signed_in_demo(web, container)
    clock.advance(timedelta(seconds=61))  # past the web login's resend cooldown
    who = demo_borrower(client, container)
    [line] = client.get("/v1/credit-lines", headers=who["headers"]).json()
    principal = int(AMOUNT_YUAN) * 100
    quoted = client.post("/v1/quotes", json={
        "product_code": PRODUCT, "annual_rate": line["annual_rate"], "principal_fen": principal, "method": METHOD,
        "term_months": TERM_MONTHS}).json()["apr"]
    form, _fields = draw_form(web, amount=AMOUNT_YUAN, term=f"m{TERM_MONTHS}", method=METHOD)
    drawn = client.post("/v1/loans", json={"line_id": line["id"], "principal_fen": principal, "method": METHOD,
                                           "term_months": TERM_MONTHS},
                        headers={**who["headers"], "Idempotency-Key": "tie-1"})
    assert drawn.status_code == 201, drawn.text
    loan_id = drawn.json()["id"]
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=who["headers"])
    contract = re.search(r'<div class="figure">([^<]+)</div>', document.text).group(1)
    sha = contract_hash(web, loan_id)
    sign_page = web.get(f"/app/loans/{loan_id}/sign", params={"sha256": sha}).text
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=sign_body(client, clock, who, PHONE, loan_id, sha),
                         headers={**who["headers"], "Idempotency-Key": "tie-sign"})
    assert signed.status_code == 200, signed.text
    channel_time_passes(web, container, clock)
    loan_page = web.get(f"/app/loans/{loan_id}").text
    loan = client.get(f"/v1/loans/{loan_id}", headers=who["headers"]).json()

    # The contract prints every digit the APR is computed at: more than two places here, so rounding to two
    # (the old 27.62% for 27.625%) would show less than it is.
    assert len(contract.removesuffix("%").split(".")[1]) > 2
    api_fields = {"quote": quoted, "drawdown": drawn.json()["apr"], "signed": signed.json()["apr"],
                  "loan": loan["apr"]}
    assert {name: as_rate(contract) == Decimal(value) for name, value in api_fields.items()} == \
        dict.fromkeys(api_fields, True)
    pages = {"draw": shown(form.text, "apr"), "sign": shown(sign_page, "apr"), "loan": shown(loan_page, "apr")}
    assert pages == dict.fromkeys(pages, contract)
    assert percent(Decimal(loan["apr"])) == contract


def test_a_lines_all_in_apr_comes_first_and_is_the_quote_for_its_default_terms(web, client, container, clock):
    signed_in_demo(web, container)
    clock.advance(timedelta(seconds=61))  # past the web login's resend cooldown
    who = demo_borrower(client, container)
    [line] = client.get("/v1/credit-lines", headers=who["headers"]).json()
    example = line["apr_example"]
    spec = product_spec(container, PRODUCT)
    offer = default_offer(spec)
    assert example == {"principal_fen": offer.principal_fen, "method": offer.method.value,
                       "term_months": offer.term_months, "term_days": offer.term_days}
    quoted = client.post("/v1/quotes", json={"product_code": PRODUCT, "annual_rate": line["annual_rate"],
                                             **example}).json()["apr"]
    assert Decimal(line["apr"]) == Decimal(quoted) > Decimal(line["annual_rate"])  # the fee is in it

    credit = web.get("/app/credit").text
    figure = shown(credit, "line-apr")
    assert figure == percent(Decimal(quoted))
    # First and above the nominal rate, the limit and the fee (which are shown, as what the APR is made of).
    assert credit.index('data-testid="line-apr"') < credit.index('data-testid="limit"') \
        < credit.index('data-testid="rate"') < credit.index('data-testid="fee-rate"')
    assert shown(credit, "fee-rate") == percent(spec.monthly_fee_rate)
    assert "10,000.00" in shown(credit, "apr-example") and "12" in shown(credit, "apr-example")
    # The drawing page opens on those terms: its APR, before any form field, is the line's.
    draw = web.get("/app/loans/new").text
    assert shown(draw, "apr") == figure
    assert draw.index('data-testid="apr"') < draw.index('data-testid="nominal"') < draw.index('name="amount"')
    english = web.get("/app/credit", params={"lang": "en"}).text
    assert "Annual percentage rate (APR), all costs included" in english and shown(english, "line-apr") == figure
