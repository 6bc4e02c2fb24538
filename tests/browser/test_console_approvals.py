"""Four eyes in a real Chromium at a desk (1280×800): customer service proposes freezing a line from the customer
page after reading its figures and cannot approve it; a risk manager approves it from the inbox. An administrator
proposes a new staff account; another approves it and is shown the one-time password once. Both languages.
Screenshots in ``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.console_support import desk, sign_in, snap
from tests.console_support import PASSWORD, add_staff
from tests.loan_support import demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def test_a_servicing_action_and_a_staff_account_each_need_a_second_person(browser: Browser, live_server, client,
                                                                        container, clock, backend):
    borrower = demo_borrower(client, container)
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    maker = add_staff(container, "cs.maker", ("customer_service",))
    checker = add_staff(container, "rm.checker", ("risk_manager",))
    admins = [add_staff(container, name, ("admin",)) for name in ("adm.one", "adm.two")]
    context = desk(browser)
    page = context.new_page()
    try:
        sign_in(page, live_server, clock, "cs.maker", PASSWORD, maker.totp_secret)
        page.goto(f"{live_server}/console/customers/{borrower['borrower_id']}#actions")
        page.get_by_role("link", name=f"冻结额度 #{line_id}").click()
        expect(page.get_by_test_id("figures")).to_contain_text("frozen")
        page.get_by_label("理由").fill("客户来电：手机丢失，申请冻结")
        snap(page, f"approvals-01-propose-{backend}")
        page.get_by_test_id("propose").click()
        expect(page.get_by_test_id("notice")).to_contain_text("等待第二人")
        expect(page.get_by_test_id("own-request")).to_be_visible()
        snap(page, f"approvals-02-proposed-{backend}")
        page.get_by_test_id("logout").click()

        clock.advance(timedelta(seconds=31))
        sign_in(page, live_server, clock, "rm.checker", PASSWORD, checker.totp_secret)
        page.get_by_test_id("menu-approvals").click()
        expect(page.get_by_test_id("inbox")).to_contain_text("冻结额度")
        snap(page, f"approvals-03-inbox-{backend}")
        page.get_by_test_id("inbox").get_by_role("link", name="打开").first.click()
        page.get_by_label("备注（可选）").fill("已电话核实")
        page.get_by_test_id("approve").click()
        expect(page.get_by_test_id("state")).to_have_text("已批准并执行")
        snap(page, f"approvals-04-approved-{backend}")
        assert client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["status"] == "frozen"
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_test_id("state")).to_have_text("Approved and done")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Freeze a credit line")
        snap(page, f"approvals-05-approved-en-{backend}")
        page.get_by_test_id("lang-switch").click()
        page.get_by_test_id("logout").click()

        clock.advance(timedelta(seconds=31))
        sign_in(page, live_server, clock, "adm.one", PASSWORD, admins[0].totp_secret)
        page.get_by_test_id("menu-staff").click()
        form = page.get_by_test_id("new-account")
        form.get_by_label("用户名").fill("zhao.li")
        form.get_by_label("姓名").fill("赵莉")
        form.get_by_role("checkbox", name="催收员").check()
        form.get_by_label("理由", exact=True).fill("新入职 HR-2026-118")
        snap(page, f"staff-01-propose-{backend}")
        form.get_by_role("button", name="提交审批").click()
        expect(page.get_by_test_id("notice")).to_contain_text("另一位管理员")
        page.get_by_test_id("logout").click()

        clock.advance(timedelta(seconds=31))
        sign_in(page, live_server, clock, "adm.two", PASSWORD, admins[1].totp_secret)
        page.get_by_test_id("menu-approvals").click()
        page.get_by_test_id("inbox").get_by_role("link", name="打开").first.click()
        expect(page.get_by_test_id("figures")).to_contain_text("zhao.li")
        page.get_by_test_id("approve").click()
        expect(page.get_by_test_id("shown-once")).to_contain_text("zhao.li")
        password = page.get_by_test_id("one-time-password").inner_text()
        assert len(password) >= 20
        snap(page, f"staff-02-one-time-password-{backend}")
        page.reload()
        expect(page.get_by_test_id("shown-once")).to_have_count(0)
        page.get_by_test_id("menu-staff").click()
        expect(page.get_by_test_id("staff-directory")).to_contain_text("待首次登录")
        snap(page, f"staff-03-directory-{backend}")
    finally:
        context.close()


def test_the_maker_withdraws_their_own_request_and_it_leaves_the_inbox(browser: Browser, live_server, client,
                                                                      container, clock, backend):
    borrower = demo_borrower(client, container)
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    maker = add_staff(container, "cs.maker", ("customer_service",))
    context = desk(browser)
    page = context.new_page()
    try:
        sign_in(page, live_server, clock, "cs.maker", PASSWORD, maker.totp_secret)
        page.goto(f"{live_server}/console/servicing?kind=line_freeze&line_id={line_id}")
        page.get_by_label("理由").fill("客户来电：手机丢失，申请冻结")
        page.get_by_test_id("propose").click()
        expect(page.get_by_test_id("withdraw-form")).to_be_visible()
        page.get_by_label("撤回原因").fill("客户已找回手机")
        page.get_by_test_id("withdraw").click()
        expect(page.get_by_test_id("notice")).to_contain_text("已撤回")
        expect(page.get_by_test_id("state")).to_have_text("已由提出人撤回")
        expect(page.get_by_test_id("withdrawn")).to_contain_text("客户已找回手机")
        expect(page.get_by_test_id("withdraw-form")).to_have_count(0)
        snap(page, f"approvals-06-withdrawn-{backend}")
        page.get_by_test_id("menu-approvals").click()
        page.get_by_test_id("tab-mine").click()
        expect(page.get_by_test_id("inbox-empty")).to_be_visible()
        assert client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["status"] == "active"
    finally:
        context.close()
