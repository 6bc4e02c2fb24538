"""The contract document: terms rendered through a versioned template, and the SHA-256 of its bytes. Pure.

Rendering is deterministic: the same terms and template version give byte-identical HTML (the only dates
in it are the ones in the terms), so a stored document can be re-rendered and compared. The hash is over
the UTF-8 bytes of the HTML exactly as stored and served; the platform signs that hash
(:mod:`miaodai.contracts.signing`).

A template is never edited once contracts were signed with it: a change is a new file and a new entry
in :data:`TEMPLATES`, and the old version keeps rendering the contracts it produced.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from miaodai.contracts.formatting import date_zh, percent, yuan, yuan_in_words_zh
from miaodai.contracts.terms import REPAYMENT_METHOD_NAMES, ContractTerms

TEMPLATE_VERSION = "loan-contract-v3"
# Every template version ever used to sign a contract, and its file under contracts/templates/.
TEMPLATES: dict[str, str] = {
    "loan-contract-v1": "loan_contract_v1.html.j2",
    "loan-contract-v2": "loan_contract_v2.html.j2",  # article 8 says how the borrower actually confirms
    "loan-contract-v3": "loan_contract_v3.html.j2",  # key terms first in bold; reads inside the app's page
}
MEDIA_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ContractDocument:
    html: str
    sha256: str  # lowercase hex of SHA-256 over html.encode("utf-8")
    template_version: str

    @property
    def content(self) -> bytes:
        """The bytes that are hashed, stored and downloaded."""
        return self.html.encode("utf-8")


def document_sha256(html: str) -> str:
    """The document hash: lowercase hex SHA-256 of the HTML's UTF-8 bytes."""
    return hashlib.sha256(html.encode("utf-8")).hexdigest()


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("miaodai.contracts", "templates"),
        autoescape=True,  # every name and number is escaped: a borrower called "<script>" stays text
        undefined=StrictUndefined,  # a misspelt field fails loudly instead of printing an empty clause
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(yuan=yuan, yuan_zh=yuan_in_words_zh, percent=percent, date_zh=date_zh)
    return env


def _term_text(terms: ContractTerms) -> tuple[str, str]:
    if terms.term_months is not None:
        return f"{terms.term_months} 个月（共 {terms.term_months} 期）", f"{terms.term_months} months"
    return f"{terms.term_days} 天", f"{terms.term_days} days"


def render_contract(terms: ContractTerms, *, template_version: str = TEMPLATE_VERSION) -> ContractDocument:
    """The contract for ``terms`` as printable bilingual HTML, with its hash."""
    if template_version not in TEMPLATES:
        raise ValueError(f"unknown contract template version {template_version!r}")
    method_zh, method_en = REPAYMENT_METHOD_NAMES[terms.repayment_method]
    term_zh, term_en = _term_text(terms)
    html = _environment().get_template(TEMPLATES[template_version]).render(
        terms=terms,
        template_version=template_version,
        method_zh=method_zh,
        method_en=method_en,
        term_zh=term_zh,
        term_en=term_en,
        basis=terms.day_count_basis,
    )
    return ContractDocument(html=html, sha256=document_sha256(html), template_version=template_version)


_BODY = re.compile(r"<body>\n?(.*)</body>", re.DOTALL)
_HEADING = re.compile(r"<(/?)h([1-5])\b")


def readable_body(html: str) -> str:
    """The body of a stored contract document, to be shown inside a page under that page's own heading: the
    text exactly as signed, its headings one level down (the document's title becomes the page's second
    level). The document's own style sheet stays behind; the page styles the same classes. Only documents
    this module rendered are passed here: every value in them was escaped when they were rendered."""
    found = _BODY.search(html)
    if found is None:
        raise ValueError("not a contract document: no <body>")
    return _HEADING.sub(lambda m: f"<{m.group(1)}h{int(m.group(2)) + 1}", found.group(1))
