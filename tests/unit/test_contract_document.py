"""The loan contract document: deterministic bilingual HTML with every disclosed figure, escaped, hashed."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from miaodai.contracts.document import TEMPLATE_VERSION, TEMPLATES, document_sha256, readable_body, render_contract
from miaodai.contracts.formatting import date_zh, percent, yuan, yuan_in_words_zh
from miaodai.contracts.terms import ContractInstallment, ContractTerms, InvalidContractTerms
from miaodai.loans.schedule import LoanTerms, RepaymentMethod, build_schedule

START = date(2026, 11, 22)


def contract_terms(
    *, principal_fen: int = 1_000_000, method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT,
    term_months: int | None = 12, term_days: int | None = None, **overrides: object,
) -> ContractTerms:
    """A 10,000-yuan, 12-month loan at 18 % with a 0.05 % monthly fee, as the loan service would describe it."""
    schedule = build_schedule(LoanTerms(
        principal_fen=principal_fen, annual_rate=Decimal("0.18"), method=method, start_date=START,
        term_months=term_months, term_days=term_days, monthly_fee_rate=Decimal("0.0005"),
    ))
    fields: dict[str, object] = dict(
        contract_no="MD-20261122-000123", lender_name_zh="秒贷示范小额贷款有限公司",
        lender_name_en="Miaodai Demo Microcredit Co., Ltd.", borrower_name="张三",
        borrower_id_number_masked="1101**********1234", borrower_phone_masked="138****5678",
        principal_fen=principal_fen, term_months=term_months, term_days=term_days, repayment_method=method.value,
        annual_rate=Decimal("0.18"), apr=schedule.apr, monthly_fee_rate=Decimal("0.0005"),
        total_interest_fen=schedule.total_interest_fen, total_fee_fen=schedule.total_fee_fen,
        total_cost_fen=schedule.total_cost_fen, penalty_annual_rate=Decimal("0.27"), late_fee_fen=20_00,
        grace_days=3, cost_cap_annual_rate=Decimal("0.24"), day_count="ACT/360", start_date=START,
        installments=tuple(
            ContractInstallment(i.period, i.due_date, i.principal_fen, i.interest_fen, i.fee_fen, i.total_fen)
            for i in schedule.installments
        ),
        signed_on=START, payout_account_masked="招商银行 ****1234",
    )
    fields.update(overrides)
    return ContractTerms(**fields)  # type: ignore[arg-type]


class _TagBalance(HTMLParser):
    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def test_the_same_terms_render_byte_identical_html_and_hash():
    first, second = render_contract(contract_terms()), render_contract(contract_terms())
    assert first.html == second.html
    assert first.sha256 == second.sha256 == hashlib.sha256(first.html.encode("utf-8")).hexdigest()
    assert first.sha256 == document_sha256(first.html)
    assert first.content == first.html.encode("utf-8")
    assert first.template_version == TEMPLATE_VERSION == "loan-contract-v3"


def test_one_fen_more_anywhere_changes_the_hash():
    base = render_contract(contract_terms()).sha256
    assert render_contract(contract_terms(late_fee_fen=20_01)).sha256 != base
    assert render_contract(contract_terms(principal_fen=1_000_001)).sha256 != base


def test_the_html_is_a_well_formed_printable_document():
    html = render_contract(contract_terms()).html
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"zh-CN\">")
    checker = _TagBalance()
    checker.feed(html)
    assert checker.errors == [] and checker.open == []
    assert "size: A4" in html and '"Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif' in html
    assert '<meta name="template-version" content="loan-contract-v3">' in html


def test_apr_amounts_and_every_installment_appear_in_yuan():
    terms = contract_terms()
    html = render_contract(terms).html
    # 10,000 yuan at 18 % over 12 months with a 0.05 % monthly fee: APR 19.0492 % by the IRR method.
    assert terms.apr == Decimal("0.190492")
    assert '<div class="figure">19.0492%</div>' in html
    assert "18.00%" in html and "0.05%" in html
    assert "人民币 ¥10,000.00 元</strong>（大写：壹万元整）" in html
    assert "¥1,001.61" in html and "¥60.00" in html and "¥1,061.61" in html and "¥11,061.61" in html
    for i in terms.installments:
        row = (
            f'<td class="num">{i.period}</td><td class="num">{i.due_date.isoformat()}</td>'
            f'<td class="num">{yuan(i.principal_fen)}</td><td class="num">{yuan(i.interest_fen)}</td>'
            f'<td class="num">{yuan(i.fee_fen)}</td><td class="num">{yuan(i.total_fen)}</td>'
        )
        assert row in html, row
    assert '<td class="num">921.81</td></tr>' in html  # the last installment absorbs the rounding
    assert "招商银行 ****1234" in html


def test_penalty_rules_cap_and_no_deduction_from_principal_are_stated():
    html = render_contract(contract_terms()).html
    assert "还款日后 3 日内（含第 3 日）还清当期应还款项的，不视为逾期" in html
    assert "逾期未还本金 × 罚息年利率 27.00% ÷ 360 × 实际逾期天数" in html
    assert "每期逾期一次性收取 ¥20.00" in html
    assert "折算年化利率<strong>不超过 24.00%</strong>，超出部分不予收取" in html
    assert "never exceed an annualized 24.00%" in html
    assert "不从本金中预先扣除利息、服务费或任何其他费用（不收取“砍头息”）" in html
    assert "不收取提前还款违约金、手续费或任何其他费用" in html


def test_the_contract_claims_only_the_confirmation_the_signing_enforces():
    """v1 said "confirmed with an SMS code" whichever way the borrower confirmed; v2 says what signing demands
    (a code sent for this contract, bound to its hash) and leaves the method used to the signing record."""
    html = render_contract(contract_terms()).html
    assert "短信验证码确认" not in html and "Confirmed with an SMS code" not in html
    assert "专为本合同发送" in html and "与本合同文本的 SHA-256 摘要绑定" in html and "签署记录" in html
    assert "bound to the SHA-256 digest of this text" in html
    old = render_contract(contract_terms(), template_version="loan-contract-v1")  # still renders what it signed
    assert old.template_version == "loan-contract-v1" and "短信验证码确认" in old.html


def test_the_borrowers_rights_are_stated():
    html = render_contract(contract_terms()).html
    assert "借款发放前，借款人可随时撤回本次借款并解除本合同" in html
    assert "15 日内" in html and "30 日内" in html and "12378" in html
    assert "《中华人民共和国个人信息保护法》" in html and "撤回同意" in html
    assert "Personal Information Protection Law" in html


def test_hostile_names_are_escaped():
    html = render_contract(contract_terms(
        borrower_name="<script>alert(1)</script>", lender_name_en='Evil "Lender" & <b>Co</b>',
        payout_account_masked="<img src=x onerror=alert(1)>",
    )).html
    assert "<script>" not in html and "<img" not in html and "<b>Co" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Evil &#34;Lender&#34; &amp; &lt;b&gt;Co&lt;/b&gt;" in html


def test_a_bullet_loan_states_its_days_and_daily_formula():
    terms = contract_terms(method=RepaymentMethod.BULLET, term_months=None, term_days=30, grace_days=0, late_fee_fen=0)
    html = render_contract(terms).html
    assert "30 天，自 2026年11月22日 起至 2026年12月22日 止" in html
    assert "利息 = 借款本金 × 名义年利率 ÷ 360 × 借款天数" in html
    assert "本合同不设宽限期" in html and "不收取滞纳金" in html
    assert percent(terms.apr) in html


def test_unknown_template_version_is_refused():
    with pytest.raises(ValueError, match="unknown contract template"):
        render_contract(contract_terms(), template_version="loan-contract-v0")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"total_interest_fen": 1}, "interest"),
        ({"total_cost_fen": 1}, "total_cost_fen"),
        ({"apr": Decimal("0.25")}, "cost cap"),
        ({"contract_no": "<x>"}, "contract_no"),
        ({"repayment_method": "bullet"}, "term_days only"),
        ({"repayment_method": "payday"}, "repayment method"),
        ({"annual_rate": 0.18}, "annual_rate"),
        ({"borrower_name": " "}, "borrower_name"),
    ],
)
def test_self_contradictory_terms_are_refused(overrides, message):
    with pytest.raises(InvalidContractTerms, match=message):
        contract_terms(**overrides)


def test_an_installment_total_must_add_up():
    with pytest.raises(InvalidContractTerms, match="total_fen"):
        ContractInstallment(1, START, 100, 10, 1, 112)


def test_terms_are_frozen():
    terms = contract_terms()
    with pytest.raises(dataclasses.FrozenInstanceError):
        terms.principal_fen = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fen", "text", "words"),
    [
        (0, "0.00", "零元整"),
        (5, "0.05", "伍分"),
        (105, "1.05", "壹元零伍分"),
        (150, "1.50", "壹元伍角"),
        (1000, "10.00", "壹拾元整"),
        (1_050_050, "10,500.50", "壹万零伍佰元伍角"),
        (10_001_000, "100,010.00", "壹拾万零壹拾元整"),
        (1_010_101_000, "10,101,010.00", "壹仟零壹拾万壹仟零壹拾元整"),
        (10_000_001_000, "100,000,010.00", "壹亿零壹拾元整"),
        (12_345_678, "123,456.78", "壹拾贰万叁仟肆佰伍拾陆元柒角捌分"),
    ],
)
def test_yuan_with_thousands_separators_and_in_words(fen, text, words):
    assert yuan(fen) == text
    assert yuan_in_words_zh(fen) == words


def test_formatting_refuses_floats_and_keeps_apr_digits():
    assert yuan(-123_456) == "-1,234.56"
    with pytest.raises(TypeError):
        yuan(12.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        yuan_in_words_zh(-1)
    assert percent(Decimal("0.195618")) == "19.5618%"
    assert percent(Decimal("0.24")) == "24.00%"
    assert percent(Decimal("0.00125")) == "0.125%"
    assert date_zh(date(2027, 1, 5)) == "2027年1月5日"


def test_the_key_terms_come_first_in_bold():
    """v3: amount, annualized rate, total cost, installments, late payment and early repayment summarised before
    article 1, each figure in the bold cells of the summary, and each the figure the articles state."""
    terms = contract_terms()
    html = render_contract(terms).html
    summary = html[html.index('<section class="keyterms"'):html.index("</section>")]
    assert html.index("重要条款摘要") < html.index("第一条")
    assert ".keyterms td { font-weight: bold; }" in html
    assert '<span class="figure">19.0492%</span>' in summary
    assert "人民币 ¥10,000.00 元" in summary and "¥1,061.61" in summary  # principal, total cost
    first = terms.installments[0]
    assert f"共 12 期，首期 {date_zh(first.due_date)} 应还 ¥{yuan(first.total_fen)}，应还总额 ¥11,061.61" in summary
    assert "宽限期 3 日；逾期本金按罚息年利率 27.00% 计收罚息；每期滞纳金 ¥20.00；合计折算年化不超过 24.00%" in summary
    assert "随时可提前还全部或部分，不收取违约金或任何费用" in summary
    no_fee = render_contract(contract_terms(late_fee_fen=0, grace_days=0)).html
    assert "不收取滞纳金；" in no_fee and "宽限期" not in no_fee[:no_fee.index("第一条")]


def test_every_english_part_is_marked_and_earlier_versions_render_as_they_did():
    html = render_contract(contract_terms()).html
    assert '<span class="en">' not in html and '<div class="en">按' not in html  # each marked lang="en"
    v2 = render_contract(contract_terms(), template_version="loan-contract-v2")
    assert v2.template_version == "loan-contract-v2" and "重要条款摘要" not in v2.html
    assert set(TEMPLATES) == {"loan-contract-v1", "loan-contract-v2", "loan-contract-v3"}


def test_the_readable_body_is_the_documents_body_under_the_pages_heading():
    html = render_contract(contract_terms()).html
    body = readable_body(html)
    assert body.startswith("<h2>借款合同<span class=\"en\" lang=\"en\">Loan Contract</span></h2>")
    assert "<h1" not in body and "<style" not in body and "<h3>第一条" in body and "<h3 id=\"key-terms\">" in body
    assert body.replace("<h3", "<h2").replace("</h3", "</h2").count("<h2") == html.count("<h2") + html.count("<h1")
    with pytest.raises(ValueError, match="no <body>"):
        readable_body("<p>not a contract</p>")
