"""The contract a borrower downloads, as Chromium shows and prints it: the exact terms are on the page
in Chinese glyphs (not tofu), and printing gives a PDF of A4 pages."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Browser

from miaodai.contracts.formatting import percent
from tests.loan_support import active_loan, demo_borrower

SCREENSHOTS = Path(os.environ.get("MIAODAI_SCREENSHOTS", "var/screenshots"))


def test_the_contract_renders_and_prints(client, clock, container, browser: Browser, backend):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    document = client.get(f"/v1/loans/{loan['id']}/contract", headers=borrower["headers"])
    assert document.status_code == 200 and document.headers["content-type"].startswith("text/html")

    page = browser.new_page(viewport={"width": 820, "height": 1100})
    try:
        page.set_content(document.text, wait_until="load")
        text = page.inner_text("body")
        assert loan["loan_no"] in text and "10,000.00" in text
        assert page.inner_text(".apr .figure") == percent(Decimal(loan["apr"]))  # the APR, boxed, as signed
        # A CJK font is installed and used: the glyphs of the title are drawn, not replacement boxes.
        assert page.evaluate("document.fonts.check('16px \"WenQuanYi Zen Hei\"', '借款合同')")
        heading_width = page.evaluate("document.querySelector('h1').getBoundingClientRect().width")
        assert heading_width > 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"contract-{backend}.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page") >= 2  # the page tree and at least one page
