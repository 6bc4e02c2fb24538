"""What the money is for (借款用途) in the app's words: the credit form's choices, and how the loans list, the bills
and the start page name a loan (by its day, amount and this purpose, not its number)."""

from __future__ import annotations

from miaodai.credit.features import LoanPurpose


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


LOAN_PURPOSES = {
    LoanPurpose.DAILY_CONSUMPTION: _("Everyday spending"),
    LoanPurpose.HOME_FURNISHING: _("Home furnishing and appliances"),
    LoanPurpose.EDUCATION: _("Education and training"), LoanPurpose.TRAVEL: _("Travel"),
    LoanPurpose.MEDICAL: _("Medical care"), LoanPurpose.WEDDING: _("Wedding"), LoanPurpose.OTHER: _("Something else"),
}
