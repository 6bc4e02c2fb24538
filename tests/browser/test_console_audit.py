"""The audit viewer in a real Chromium at a desk (1280×800), in Chinese then English: the log of a seeded install
searched by action prefix and borrower, one entry with its hashes, a CSV download, the chain verified intact,
then an entry's body edited in the database and the check naming it. Screenshots in
``MIAODAI_SCREENSHOTS``/console."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select, update

from miaodai.core.audit import AuditEntry, seal_pending
from miaodai.demo import seed_demo
from tests.browser.console_support import desk, sign_in, snap
from tests.console_support import PASSWORD, add_staff

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def test_search_read_export_and_verify_the_audit_chain(browser: Browser, live_server, container, clock, backend):
    seed_demo(container)
    with container.db.transaction() as session:
        container.audit.record(session, actor="staff:7", action="staff.login_failed", subject="staff:7",
                               details={"reason": "wrong_password"})
        borrower_id = int(session.scalars(select(AuditEntry.subject).where(
            AuditEntry.subject.like("borrower:%")).order_by(AuditEntry.id)).first().split(":")[1])
    auditor = add_staff(container, "audit.one", ("auditor",))
    context = desk(browser)
    page = context.new_page()
    try:
        sign_in(page, live_server, clock, "audit.one", PASSWORD, auditor.totp_secret)
        seal_pending(container.db, container.clock)
        page.get_by_test_id("menu-audit").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("审计日志")
        rows = page.get_by_test_id("audit-entries").locator("tbody tr")
        expect(rows.first).to_contain_text("已封存")
        snap(page, f"audit-01-log-{backend}")

        page.get_by_label("操作代码开头为").fill("staff.")
        page.get_by_test_id("audit-search").click()
        actions = page.get_by_test_id("audit-entries").locator("tbody tr td:nth-child(4)").all_inner_texts()
        assert actions and all(a.startswith("staff.") for a in actions), actions
        expect(page.get_by_test_id("audit-entries")).to_contain_text("wrong_password")
        snap(page, f"audit-02-staff-actions-{backend}")

        page.get_by_role("link", name="清除条件").click()
        page.get_by_label("借款人编号").fill(str(borrower_id))
        page.get_by_test_id("audit-search").click()
        subjects = page.get_by_test_id("audit-entries").locator("tbody tr td:nth-child(5)").all_inner_texts()
        assert subjects and f"borrower:{borrower_id}" in subjects, subjects
        snap(page, f"audit-03-borrower-{backend}")

        with page.expect_download() as download_info:
            page.get_by_test_id("audit-export").click()
        download = download_info.value
        assert download.suggested_filename.startswith("miaodai-audit-")
        assert download.suggested_filename.endswith(".csv")
        with open(download.path(), encoding="utf-8") as exported:
            rows_out = list(csv.DictReader(io.StringIO(exported.read())))
        assert len(rows_out) == len(subjects) and all(r["entry_hash"] for r in rows_out)

        page.get_by_test_id("audit-entries").locator("tbody tr").first.get_by_role("link").click()
        expect(page.get_by_test_id("audit-entry")).to_contain_text("本条哈希")
        snap(page, f"audit-04-entry-{backend}")

        page.goto(f"{live_server}/console/audit")
        page.get_by_test_id("audit-verify").click()
        expect(page.get_by_test_id("audit-verdict")).to_contain_text("审计链完好")
        snap(page, f"audit-05-intact-{backend}")

        with container.db.transaction() as session:
            victim = session.scalar(select(AuditEntry.id).where(AuditEntry.action == "staff.login_failed"))
            session.execute(update(AuditEntry).where(AuditEntry.id == victim).values(
                body=AuditEntry.body + " "))
        page.goto(f"{live_server}/console/audit")
        page.get_by_test_id("audit-verify").click()
        expect(page.get_by_test_id("audit-verdict")).to_contain_text("审计链已损坏")
        expect(page.get_by_test_id("audit-first-bad")).to_contain_text(f"条目 {victim}")
        snap(page, f"audit-06-broken-{backend}")

        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
        page.get_by_label("Action starts with").fill("staff.")
        page.get_by_test_id("audit-search").click()
        snap(page, f"audit-07-log-en-{backend}")
        page.get_by_test_id("audit-verify").click()
        expect(page.get_by_test_id("audit-verdict")).to_contain_text("The audit chain is broken.")
        expect(page.get_by_test_id("audit-first-bad")).to_contain_text(f"entry {victim}")
        snap(page, f"audit-08-broken-en-{backend}")
        page.get_by_test_id("audit-first-bad").get_by_role("link").click()
        expect(page.get_by_test_id("audit-body")).to_contain_text("wrong_password")
        snap(page, f"audit-09-bad-entry-en-{backend}")
    finally:
        context.close()
