"""The credit review and reconciliation desks in a real Chromium at a desk (1280×800), in zh-CN and English: a
reviewer decides a case, a risk manager's override is refused when he approves it himself and approved by a
second manager, and finance resolves a reconciliation exception with a note. Screenshots in
``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from miaodai.core.clock import business_date
from miaodai.credit import bureau
from miaodai.credit.carrier_data import SHORT_TENURE_PHONE
from miaodai.credit.models import ReviewCase
from miaodai.payments import recon
from miaodai.payments.models import PaymentOrder
from tests.browser.console_support import desk, sign_in, snap
from tests.console_support import PASSWORD, add_staff
from tests.credit_support import applicant, apply, install_test_model, quick_parties
from tests.loan_support import active_loan, demo_borrower

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def _case_of(container, application_id: int) -> int:
    with container.db.transaction() as session:
        return session.execute(select(ReviewCase.id).where(ReviewCase.application_id == application_id)).scalar_one()


def test_review_and_recon_desks(browser: Browser, live_server, client, container, clock, backend):
    # The data, made through the real services: two cases and a reconciliation exception.
    loan = active_loan(client, clock, demo_borrower(client, container))  # seeds the demo product and borrowers
    install_test_model(container)
    quick_parties(container)
    referred = apply(client, applicant(client, SHORT_TENURE_PHONE, bureau.CLEAN_FILE_ID, name="李小华")).json()
    asker = applicant(client, "13700137001", bureau.MULTI_BORROWING_ID)
    declined = apply(client, asker).json()
    assert client.post(f"/v1/credit/applications/{declined['id']}/human-review", json={"note": "我已还清"},
                       headers=asker["headers"]).status_code == 201
    with container.db.transaction() as session:
        order_no = session.execute(select(PaymentOrder.order_no).where(PaymentOrder.loan_id == loan["id"])).scalar_one()
    container.channel.tamper_amount(order_no, 999_999)
    recon.run(container, "sandbox", business_date(clock.now()), actor="system:test")
    clock.advance(timedelta(hours=3, minutes=20))  # the first case is near its 4-working-hour deadline
    referred_case, asked_case = _case_of(container, referred["id"]), _case_of(container, declined["id"])
    staff = {name: add_staff(container, name, roles) for name, roles in (
        ("rita.reviewer", ("risk_reviewer",)), ("max.manager", ("risk_manager",)), ("mia.manager", ("risk_manager",)),
        ("fin.one", ("finance",)))}

    def person(name: str, locale: str = "zh-CN") -> Page:
        page = desk(browser, locale).new_page()
        sign_in(page, live_server, clock, name, PASSWORD, staff[name].totp_secret)
        return page

    # A reviewer works the queue: the referred case follows the engine (approve), so it is final at once.
    rita = person("rita.reviewer")
    try:
        rita.get_by_test_id("menu-reviews").click()
        expect(rita.get_by_role("heading", level=1)).to_have_text("信贷审核队列")
        expect(rita.get_by_test_id(f"review-row-{referred_case}")).to_have_attribute("data-sla", "near")
        expect(rita.get_by_test_id(f"review-row-{referred_case}")).to_contain_text("李**")
        snap(rita, f"reviews-01-queue-{backend}")
        rita.get_by_role("link", name=f"#{referred_case}").click()
        expect(rita.get_by_test_id("case-findings")).to_contain_text("CREDIT_PHONE_TENURE_SHORT")
        expect(rita.get_by_test_id("case-bureau")).to_contain_text("已取得报告")
        snap(rita, f"reviews-02-case-{backend}")
        rita.get_by_label("批准额度（元）").fill("8000")
        rita.get_by_label("理由", exact=True).fill("征信良好，仅手机号为新号")
        rita.get_by_test_id("decide").click()
        expect(rita.get_by_test_id("notice")).to_have_text("决定已记录，系统将短信通知借款人。")
        expect(rita.get_by_test_id("first-decision")).to_contain_text("¥8,000.00")
        snap(rita, f"reviews-03-decided-{backend}")
    finally:
        rita.context.close()

    # A risk manager overrides the engine's decline: it waits for someone else.
    max_ = person("max.manager")
    try:
        max_.goto(f"{live_server}/console/reviews/{asked_case}")
        expect(max_.get_by_test_id("case-application")).to_contain_text("我已还清")
        max_.get_by_label("批准并给予额度").check()
        max_.get_by_label("批准额度（元）").fill("10000")
        max_.get_by_label("理由", exact=True).fill("多头查询为同一笔房贷比价所致")
        max_.get_by_test_id("decide").click()
        expect(max_.get_by_test_id("notice")).to_have_text("推翻决定已记录，须经第二位审批人同意后生效。")
        expect(max_.get_by_test_id("awaiting-other")).to_be_visible()
        expect(max_.get_by_test_id("second-form")).to_have_count(0)
        # Approving his own override anyway (a form from an old tab): the service refuses, the page says why.
        max_.evaluate("""(path) => {
            const form = Object.assign(document.createElement('form'), {method: 'post', action: path});
            for (const [name, value] of [['csrf_token', document.querySelector('input[name=csrf_token]').value],
                                         ['verdict', 'approve']]) {
                form.append(Object.assign(document.createElement('input'), {type: 'hidden', name, value}));
            }
            document.body.append(form);
            form.submit();
        }""", f"/console/reviews/{asked_case}/second-approval")
        expect(max_.locator(".problem")).to_have_attribute("data-code", "CREDIT_FOUR_EYES")
        expect(max_.locator(".problem-message")).to_have_text("不能由同一人提出并批准。")
        snap(max_, f"reviews-04-own-override-refused-{backend}")
    finally:
        max_.context.close()

    # A second manager, reading in English, approves it.
    mia = person("mia.manager")
    try:
        mia.goto(f"{live_server}/console/reviews/{asked_case}")
        mia.get_by_test_id("lang-switch").click()
        expect(mia.get_by_role("heading", level=1)).to_have_text(f"Review case #{asked_case}")
        expect(mia.get_by_test_id("first-decision")).to_contain_text("Override")
        snap(mia, f"reviews-05-second-approver-en-{backend}")
        mia.get_by_label("Note (optional)").fill("Agreed: one mortgage, shopped around")
        mia.get_by_test_id("approve-override").check()
        mia.get_by_test_id("send-verdict").click()
        expect(mia.get_by_test_id("notice")).to_have_text(
            "Override approved: the decision is final and the borrower is told by SMS.")
        expect(mia.get_by_test_id("first-decision")).to_contain_text("Mia.Manager @mia.manager")
        snap(mia, f"reviews-06-override-approved-en-{backend}")
        mia.get_by_test_id("menu-reviews").click()
        expect(mia.get_by_test_id("review-queue-empty")).to_be_visible()
    finally:
        mia.context.close()

    # Finance resolves the reconciliation exception.
    fin = person("fin.one")
    try:
        fin.get_by_test_id("menu-recon").click()
        expect(fin.get_by_role("heading", level=1)).to_have_text("对账差异")
        expect(fin.get_by_test_id("recon-exceptions")).to_contain_text("金额不符")
        expect(fin.get_by_test_id("recon-runs")).to_contain_text("金额不符 1")
        snap(fin, f"recon-01-exceptions-{backend}")
        fin.get_by_test_id("recon-exceptions").get_by_role("link").first.click()
        expect(fin.get_by_test_id("evidence-ours")).to_contain_text(order_no)
        expect(fin.get_by_test_id("evidence-channel")).to_contain_text("999999")
        snap(fin, f"recon-02-evidence-{backend}")
        fin.get_by_test_id("resolve").click()  # the browser asks for the note first (required)
        expect(fin.get_by_test_id("notice")).to_have_count(0)
        fin.get_by_label("核实结果与处理方式").fill("通道确认对账单金额录入错误，已重发更正后的对账单")
        fin.get_by_test_id("resolve").click()
        expect(fin.get_by_test_id("notice")).to_have_text("差异已处理，说明已保存并记入审计链。")
        expect(fin.get_by_test_id("resolution-note")).to_have_text("通道确认对账单金额录入错误，已重发更正后的对账单")
        snap(fin, f"recon-03-resolved-{backend}")
        fin.get_by_test_id("lang-switch").click()
        expect(fin.get_by_role("heading", level=2, name="Resolution")).to_be_visible()
        snap(fin, f"recon-04-resolved-en-{backend}")
        fin.get_by_role("link", name="Reconciliation exceptions").first.click()
        expect(fin.get_by_test_id("recon-empty")).to_have_text(
            "No open exception: every statement agreed with our orders.")
        snap(fin, f"recon-05-empty-en-{backend}")
    finally:
        fin.context.close()
