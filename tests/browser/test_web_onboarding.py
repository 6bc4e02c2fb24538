"""From sign-up to a credit line in a real Chromium at 390×844: a new borrower logs in, is sent to verifying by
the start page, reads and agrees to the carrier check's consents in place, verifies name, ID number, carrier and
face (the sandbox's camera stand-in), agrees to the credit-bureau consent, applies and is approved — the line
the biggest figure — and reads it in English; then a decline with its reasons, tips and date, and a human review
asked for; then ID typos and a name/ID mismatch at the carrier, each explained. Every step is screenshotted
(``snap``: no sideways scrolling, CJK drawn), using the sandbox test values of docs/sandbox.md."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from miaodai.credit import bureau
from miaodai.demo import seed_demo
from tests.browser.journey_support import (
    agree_in_place,
    biggest_text,
    fill_application,
    onboard,
    phone_context,
    sign_up,
    verify,
)
from tests.browser.test_web_login import snap
from tests.credit_support import install_test_model, quick_parties

CARRIER_MISMATCH_PHONE = "13900000021"  # the sandbox carrier: name and ID number do not belong together


def test_a_new_borrower_verifies_agrees_applies_and_is_approved(browser: Browser, live_server, container, client,
                                                                 backend):
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    context = phone_context(browser)
    page = context.new_page()
    try:
        onboard(page, client, live_server, "13700137401", bureau.CLEAN_FILE_ID, shots=f"onboarding-{backend}")
        fill_application(page)
        snap(page, f"onboarding-{backend}-08-apply")
        page.get_by_role("button", name="提交申请，立即出结果").click()
        decision = page.get_by_test_id("decision")
        expect(decision).to_have_attribute("data-status", "approved")
        limit = page.get_by_test_id("limit").inner_text()
        apr = page.get_by_test_id("line-apr").inner_text()
        # The all-in APR is the biggest figure (the price is shown first wherever a rate is), the line after it.
        assert limit.startswith("¥") and apr.endswith("%") and biggest_text(page) == apr
        expect(page.get_by_test_id("rate")).to_contain_text("%")
        expect(page.locator("main").get_by_role("link", name="借款", exact=True)).to_have_attribute(
            "href", "/app/loans/new")
        snap(page, f"onboarding-{backend}-09-approved")

        page.get_by_test_id("lang-switch").click()
        expect(page.locator("h1")).to_have_text("Approved")
        expect(page.get_by_test_id("limit")).to_have_text(limit)
        snap(page, f"onboarding-{backend}-10-approved-en")
        page.goto(f"{live_server}/app?lang=zh")
        expect(page.get_by_test_id("journey")).to_have_count(0)  # the setup is done: home is the line
        line_card = page.get_by_test_id("line-card")
        expect(line_card.get_by_test_id("available")).to_have_text(limit)
        expect(line_card.get_by_role("link", name="借钱", exact=True)).to_have_attribute("href", "/app/loans/new")
        snap(page, f"onboarding-{backend}-11-home-ready-to-draw")
    finally:
        context.close()


def test_a_decline_with_its_reasons_and_a_human_review(browser: Browser, live_server, container, client, backend):
    seed_demo(container)
    install_test_model(container)
    quick_parties(container)
    context = phone_context(browser)
    page = context.new_page()
    try:
        onboard(page, client, live_server, "13700137402", bureau.MULTI_BORROWING_ID)
        fill_application(page)
        page.get_by_role("button", name="提交申请，立即出结果").click()
        expect(page.get_by_test_id("decision")).to_have_attribute("data-status", "declined")
        first = page.locator(".reason").first
        expect(first).to_have_attribute("data-code", "CREDIT_TOO_MANY_INQUIRIES")
        expect(first).to_contain_text("近 3 个月您的贷款审批查询有 9 次")
        expect(first).to_contain_text("建议：减少短期内向多家机构申请贷款。")
        expect(page.get_by_test_id("reapply")).to_have_text("2026年12月22日 起可再次申请。")
        snap(page, f"decline-{backend}-01-reasons")
        page.get_by_label("想告诉审核人员的情况（选填）").fill("那几次查询是同一笔房贷")
        page.get_by_role("button", name="申请人工复核").click()
        expect(page.get_by_test_id("decision")).to_have_attribute("data-status", "in_review")
        expect(page.get_by_test_id("decision")).to_contain_text("您已申请对系统的自动决定进行人工复核")
        snap(page, f"decline-{backend}-02-human-review")
        page.goto(f"{live_server}/app")
        expect(page.get_by_test_id("journey")).to_contain_text("您的申请正在审核中")
        snap(page, f"decline-{backend}-03-home-in-review")
    finally:
        context.close()


def test_id_typos_and_a_name_id_mismatch_are_explained(browser: Browser, live_server, container, client, backend):
    quick_parties(container)
    context = phone_context(browser)
    page = context.new_page()
    try:
        sign_up(page, client, live_server, CARRIER_MISMATCH_PHONE)
        page.goto(f"{live_server}/app/verify")
        agree_in_place(page)
        sent = []
        page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
        verify(page, "110101199003070012")  # one digit off: the check digit says so, as typed, before any send
        typo = page.get_by_test_id("id-typo")
        expect(typo).to_have_text("身份证号码校验位不正确，可能有输入错误。")
        expect(page.get_by_label("身份证号码")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("身份证号码")).to_have_value("110101199003070012")  # kept, to correct
        expect(page.get_by_test_id("attempts")).to_contain_text("今日还可尝试 5 次")
        assert sent == []  # nothing was sent, no attempt used
        verify(page, "110101199002300014")  # 30 February
        expect(typo).to_have_text("身份证号码中的出生日期（第 7–14 位）不是有效日期。")
        snap(page, f"verify-{backend}-01-bad-checksum")
        page.get_by_label("身份证号码").fill("110101199003070011")
        expect(typo).to_be_hidden()  # corrected: the message goes as the typo does
        verify(page, "110101199003070011")
        alert = page.get_by_role("alert")
        expect(alert).to_have_attribute("data-code", "KYC_CARRIER_NAME_ID_MISMATCH")
        expect(alert).to_contain_text("姓名与身份证号码不一致")
        expect(alert).to_contain_text("同音字")
        snap(page, f"verify-{backend}-02-name-id-mismatch")
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_test_id("attempts")).to_have_text("4 of 5 attempts left today.")
        snap(page, f"verify-{backend}-03-en")
    finally:
        context.close()
