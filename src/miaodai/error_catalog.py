"""Every problem code the API can answer with, gathered from the catalogs, and the
reference page ``docs/errors.md`` rendered from them (a test keeps the page current).

Regenerate with ``uv run python -m miaodai.error_catalog > docs/errors.md``.
"""

from __future__ import annotations

from miaodai.backoffice.customer_errors import CustomerErrors
from miaodai.backoffice.errors import BackofficeErrors
from miaodai.contracts.errors import ContractErrors
from miaodai.core.errors import Errors, ErrorSpec
from miaodai.core.idempotency import IdempotencyErrors
from miaodai.credit.errors import CreditErrors
from miaodai.identity.consent_errors import ConsentErrors
from miaodai.identity.kyc_errors import KycErrors
from miaodai.identity.login_errors import LoginErrors
from miaodai.identity.staff_errors import StaffErrors
from miaodai.ledger.errors import LedgerErrors
from miaodai.loans.errors import LoanErrors
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.recon_errors import ReconErrors

CATALOGS: tuple[tuple[str, type], ...] = (
    ("Any request", Errors),
    ("Idempotency-Key of money-moving requests 幂等键", IdempotencyErrors),
    ("Phone login, sessions and step-up", LoginErrors),
    ("Real-name verification 实名认证", KycErrors),
    ("Consents", ConsentErrors),
    ("Staff", StaffErrors),
    ("Loans: products, quotes, credit lines, drawdowns, repayments 借款", LoanErrors),
    ("Loan contracts 借款合同", ContractErrors),
    ("Ledger 总账", LedgerErrors),
    ("Credit decisioning 授信", CreditErrors),
    ("Payment methods: cards and wallets 绑卡", PaymentErrors),
    ("Reconciliation 对账", ReconErrors),
    ("Customer 360 客户视图", CustomerErrors),
    ("Maker-checker and servicing actions 审批与服务操作", BackofficeErrors),
)


def specs_of(catalog: type) -> list[ErrorSpec]:
    return [value for value in vars(catalog).values() if isinstance(value, ErrorSpec)]


def all_specs() -> list[ErrorSpec]:
    return [spec for _, catalog in CATALOGS for spec in specs_of(catalog)]


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    lines = [
        "# Problem codes",
        "",
        "Every error the API returns is an RFC 9457 problem document with one of these stable codes",
        "(see [api.md](api.md#errors)). `{placeholders}` are filled from the problem's `params`.",
        "Generated from the error catalogs by `uv run python -m miaodai.error_catalog`; do not edit by hand.",
    ]
    for title, catalog in CATALOGS:
        lines += ["", f"## {title}", ""]
        lines += ["| Code | HTTP | Message (zh-CN / English) | What the user can do |", "|---|---|---|---|"]
        for spec in sorted(specs_of(catalog), key=lambda s: s.code):
            message = f"{_cell(spec.message_zh)}<br>{_cell(spec.message_en)}"
            action = f"{_cell(spec.action_zh)}<br>{_cell(spec.action_en)}" if spec.action_en else ""
            lines.append(f"| `{spec.code}` | {spec.status} | {message} | {action} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
