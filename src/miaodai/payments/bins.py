"""Bank-card BIN data: from the number a borrower types, which bank issued the card, debit or credit, and brand.

The ranges live in ``data/bin_ranges.json`` (versioned data compiled from public BIN tables, sources named
in the file). A card belongs to the range with the longest prefix it starts with: banks issue inside each
other's six-digit BINs under longer prefixes (浙商银行 branches inside 中国工商银行's 622309). The file is
validated when first read, so a bad edit fails at start-up with the range it is about, not at a borrower.

``check_card`` is what binding a card asks: a plausible number (digits, Luhn), a known bank, a bank we pay
out to, and a debit card: a payout to a credit card would be a cash advance on the borrower's card, which
we refuse.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from stdnum import luhn

BRANDS = frozenset({"unionpay", "visa", "mastercard", "jcb", "amex"})
PREFIX_DIGITS = range(6, 11)  # a BIN is the leading 6 to 10 digits
CARD_DIGITS = range(13, 20)  # ISO/IEC 7812 card numbers in use here: 13 to 19 digits
_MAX_INPUT = 64  # longer than any card number typed with separators; not worth normalising


class CardType(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class CardProblem(StrEnum):
    """Why a card cannot be bound, in the order they are checked."""

    NOT_A_NUMBER = "not_a_number"  # non-digits, or not 13 to 19 digits
    CHECK_DIGIT = "check_digit"  # Luhn fails: a typo
    UNKNOWN_BANK = "unknown_bank"  # no BIN range matches
    BANK_NOT_SUPPORTED = "bank_not_supported"  # a real bank we do not pay out to
    CREDIT_CARD = "credit_card"  # payouts go to debit cards only


@dataclass(frozen=True, slots=True)
class Bank:
    code: str
    name_zh: str
    name_en: str
    payout: bool  # its cards may be bound for payouts and repayments
    auto_debit: bool  # repayments may be collected automatically (代扣)


@dataclass(frozen=True, slots=True)
class CardInfo:
    bin: str  # the matched prefix, 6 to 10 digits
    bank_code: str
    bank_name_zh: str
    bank_name_en: str
    card_type: CardType
    brand: str
    payout: bool
    auto_debit: bool


class BinRange(NamedTuple):
    prefix: str
    length: int  # digits of the cards in this range, as the sources give it
    info: CardInfo


@dataclass(frozen=True, slots=True)
class CardCheck:
    number: str  # digits only, unless the problem is NOT_A_NUMBER
    info: CardInfo | None
    problem: CardProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class BinDataError(ValueError):
    """The BIN document is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class BinTable:
    version: str
    banks: Mapping[str, Bank]
    ranges: tuple[BinRange, ...]  # in file order
    # prefix length → prefix → range; lengths longest first, so the first hit is the longest match
    by_length: Mapping[int, Mapping[str, BinRange]]
    lengths: tuple[int, ...]

    def lookup(self, digits: str) -> CardInfo | None:
        for length in self.lengths:
            found = self.by_length[length].get(digits[:length]) if len(digits) >= length else None
            if found is not None:
                return found.info
        return None


def parse_table(document: Any) -> BinTable:
    """The BIN table from its JSON document; raises BinDataError saying what is wrong and where."""
    if not isinstance(document, Mapping):
        raise BinDataError("the BIN document must be an object")
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise BinDataError("version must be a non-empty string")
    banks_doc = document.get("banks")
    if not isinstance(banks_doc, Mapping) or not banks_doc:
        raise BinDataError("banks must be a non-empty object")
    banks = {code: _bank(code, entry) for code, entry in banks_doc.items()}
    ranges_doc = document.get("ranges")
    if not isinstance(ranges_doc, list) or not ranges_doc:
        raise BinDataError("ranges must be a non-empty list")
    ranges: list[BinRange] = []
    by_length: dict[int, dict[str, BinRange]] = {}
    for index, entry in enumerate(ranges_doc):
        bin_range = _range(index, entry, banks)
        same_length = by_length.setdefault(len(bin_range.prefix), {})
        if bin_range.prefix in same_length:
            raise BinDataError(f"range {index}: prefix {bin_range.prefix} appears twice")
        same_length[bin_range.prefix] = bin_range
        ranges.append(bin_range)
    return BinTable(version=version, banks=banks, ranges=tuple(ranges), by_length=by_length,
                    lengths=tuple(sorted(by_length, reverse=True)))


def _bank(code: Any, entry: Any) -> Bank:
    if not isinstance(code, str) or not code.isascii() or not code.isupper():
        raise BinDataError(f"bank code {code!r} must be upper-case ASCII")
    if not isinstance(entry, Mapping):
        raise BinDataError(f"bank {code} must be an object")
    names = entry.get("name_zh"), entry.get("name_en")
    if not all(isinstance(name, str) and name for name in names):
        raise BinDataError(f"bank {code} needs name_zh and name_en")
    payout, auto_debit = entry.get("payout"), entry.get("auto_debit")
    if not isinstance(payout, bool) or not isinstance(auto_debit, bool):
        raise BinDataError(f"bank {code}: payout and auto_debit must be true or false")
    if auto_debit and not payout:
        raise BinDataError(f"bank {code}: auto_debit needs payout (its cards cannot be bound)")
    return Bank(code=code, name_zh=names[0], name_en=names[1], payout=payout, auto_debit=auto_debit)


def _range(index: int, entry: Any, banks: Mapping[str, Bank]) -> BinRange:
    if not isinstance(entry, Mapping):
        raise BinDataError(f"range {index} must be an object")
    prefix = entry.get("prefix")
    if not isinstance(prefix, str) or not _digits(prefix) or len(prefix) not in PREFIX_DIGITS:
        raise BinDataError(f"range {index}: prefix must be 6 to 10 digits, not {prefix!r}")
    where = f"range {index} (prefix {prefix})"
    length = entry.get("length")
    if type(length) is not int or length not in CARD_DIGITS or length <= len(prefix):
        raise BinDataError(f"{where}: length must be 13 to 19 and longer than the prefix, not {length!r}")
    code = entry.get("bank")
    bank = banks.get(code) if isinstance(code, str) else None
    if bank is None:
        raise BinDataError(f"{where}: unknown bank {code!r}")
    try:
        card_type = CardType(entry.get("type"))
    except ValueError:
        raise BinDataError(f"{where}: type must be debit or credit, not {entry.get('type')!r}") from None
    brand = entry.get("brand")
    if not isinstance(brand, str) or brand not in BRANDS:
        raise BinDataError(f"{where}: brand must be one of {', '.join(sorted(BRANDS))}, not {brand!r}")
    info = CardInfo(bin=prefix, bank_code=bank.code, bank_name_zh=bank.name_zh, bank_name_en=bank.name_en,
                    card_type=card_type, brand=brand, payout=bank.payout, auto_debit=bank.auto_debit)
    return BinRange(prefix=prefix, length=length, info=info)


@cache
def _table() -> BinTable:
    # Read once per process: the data changes with a release, not at run time.
    text = resources.files("miaodai.payments").joinpath("data/bin_ranges.json").read_text("utf-8")
    return parse_table(json.loads(text))


def _digits(text: str) -> bool:
    # str.isdigit alone accepts "²" and other Unicode digits.
    return text.isascii() and text.isdigit()


def normalise(number: str) -> str:
    """The number without spaces and hyphens, full-width characters (typed on a Chinese keyboard) folded."""
    folded = unicodedata.normalize("NFKC", number)
    return "".join(folded.split()).replace("-", "")


def lookup(number: str) -> CardInfo | None:
    """The range with the longest prefix the number starts with, or None."""
    digits = normalise(number) if isinstance(number, str) and len(number) <= _MAX_INPUT else ""
    return _table().lookup(digits) if _digits(digits) else None


def check_card(number: str) -> CardCheck:
    """Whether a card can be bound for payouts, and if not the first reason why. Never raises."""
    if not isinstance(number, str) or len(number) > _MAX_INPUT:
        return CardCheck(number="", info=None, problem=CardProblem.NOT_A_NUMBER)
    digits = normalise(number)
    if not _digits(digits) or len(digits) not in CARD_DIGITS:
        return CardCheck(number=digits, info=None, problem=CardProblem.NOT_A_NUMBER)
    if not luhn.is_valid(digits):
        return CardCheck(number=digits, info=None, problem=CardProblem.CHECK_DIGIT)
    info = _table().lookup(digits)
    if info is None:
        problem: CardProblem | None = CardProblem.UNKNOWN_BANK
    elif not info.payout:
        problem = CardProblem.BANK_NOT_SUPPORTED
    elif info.card_type is CardType.CREDIT:
        problem = CardProblem.CREDIT_CARD
    else:
        problem = None
    return CardCheck(number=digits, info=info, problem=problem)


def bank(code: str) -> Bank | None:
    return _table().banks.get(code)


def supported_banks(*, auto_debit: bool = False) -> list[Bank]:
    """Banks whose debit cards can be bound (with ``auto_debit``, only those that also collect automatically),
    by code: the alternatives an error message lists."""
    return sorted((b for b in _table().banks.values() if b.payout and (b.auto_debit or not auto_debit)),
                  key=lambda b: b.code)


def ranges() -> tuple[BinRange, ...]:
    return _table().ranges


def data_version() -> str:
    """Stored with each bound card, so a later data change can be traced to the cards it affects."""
    return _table().version


def sandbox_number(prefix: str, length: int, body: str = "") -> str:
    """A valid test number: ``prefix`` then ``body``, padded with zeros, then the Luhn check digit."""
    head = prefix + body
    if not _digits(head) or length not in CARD_DIGITS or len(head) >= length:
        raise ValueError(f"cannot make a {length}-digit card number from {head!r}")
    head = head.ljust(length - 1, "0")
    return head + luhn.calc_check_digit(head)
