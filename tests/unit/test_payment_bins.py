"""Telling a borrower's card from its number: known BINs, longest prefix, every refusal, and the data file itself."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from stdnum import luhn

from miaodai.payments import bins
from miaodai.payments.bins import BinDataError, CardProblem, CardType, check_card, lookup, parse_table, sandbox_number
from tests.mutation import DELETE, mutated

DOCUMENT: dict[str, Any] = json.loads(
    resources.files("miaodai.payments").joinpath("data/bin_ranges.json").read_text("utf-8"))

BIG_18 = ("ICBC", "CCB", "ABC", "BOC", "BOCOM", "PSBC", "CMB", "CIB", "CITIC", "SPDB", "CMBC", "CEB", "PAB", "HXB",
          "CGB", "BOB", "BOS", "CZB")


@pytest.mark.parametrize(("prefix", "length", "bank", "card_type", "brand"), [
    ("622202", 19, "ICBC", "debit", "unionpay"),  # 牡丹灵通卡 E时代卡
    ("621226", 19, "ICBC", "debit", "unionpay"),
    ("370247", 15, "ICBC", "credit", "amex"),  # 牡丹运通卡
    ("621700", 19, "CCB", "debit", "unionpay"),  # 龙卡通
    ("622700", 19, "CCB", "debit", "unionpay"),
    ("622166", 16, "CCB", "credit", "unionpay"),
    ("622848", 19, "ABC", "debit", "unionpay"),  # 金穗通宝卡
    ("625908", 16, "BOC", "credit", "unionpay"),
    ("601428", 17, "BOCOM", "debit", "unionpay"),  # 太平洋万事顺卡, an ISO BIN carried by UnionPay
    ("622188", 19, "PSBC", "debit", "unionpay"),
    ("622588", 16, "CMB", "debit", "unionpay"),  # 一卡通
    ("622609", 16, "CMB", "debit", "unionpay"),
    ("622575", 16, "CMB", "credit", "unionpay"),
    ("439225", 16, "CMB", "credit", "visa"),
    ("518710", 16, "CMB", "credit", "mastercard"),
    ("356390", 16, "CITIC", "credit", "jcb"),
    ("622909", 18, "CIB", "debit", "unionpay"),
    ("6223093310", 19, "CZB", "debit", "unionpay"),
])
def test_well_known_bins_name_the_issuing_bank(prefix: str, length: int, bank: str, card_type: str, brand: str) -> None:
    info = lookup(sandbox_number(prefix, length, "12345"))
    assert info is not None
    assert (info.bin, info.bank_code, info.card_type, info.brand) == (prefix, bank, CardType(card_type), brand)


def test_a_borrowers_icbc_debit_card_is_accepted_with_the_bank_named() -> None:
    number = sandbox_number("622202", 19, "1000000001")
    assert number == "6222021000000001007"
    check = check_card(number)
    assert check.ok and check.problem is None and check.number == number
    assert check.info == bins.CardInfo(bin="622202", bank_code="ICBC", bank_name_zh="中国工商银行",
                                       bank_name_en="Industrial and Commercial Bank of China",
                                       card_type=CardType.DEBIT, brand="unionpay", payout=True, auto_debit=True)


def test_a_zheshang_branch_card_inside_an_icbc_bin_is_zheshang() -> None:
    # 622309 is ICBC's; 浙商银行's Ningbo branch issues under 6223093320: the longer prefix wins.
    zheshang = lookup(sandbox_number("6223093320", 19, "7"))
    icbc = lookup(sandbox_number("622309", 18, "3321"))  # same six digits, not a Zheshang branch prefix
    assert zheshang is not None and (zheshang.bank_code, zheshang.bin) == ("CZB", "6223093320")
    assert icbc is not None and (icbc.bank_code, icbc.bin) == ("ICBC", "622309")


def test_the_longest_prefix_wins_whatever_the_order_in_the_file() -> None:
    document = {"version": "t", "banks": {"A": _bank(), "B": _bank()},
                "ranges": [_range("62220299", "B"), _range("622202", "A"), _range("6222029912", "A")]}
    table = parse_table(document)
    assert table.lookup("6222029912000000").bin == "6222029912"  # type: ignore[union-attr]
    assert table.lookup("6222029913000000").bin == "62220299"  # type: ignore[union-attr]
    assert table.lookup("6222021000000000").bin == "622202"  # type: ignore[union-attr]
    assert table.lookup("6222031000000000") is None
    assert table.lengths == (10, 8, 6)


@pytest.mark.parametrize("typed", [
    "6222 0210 0000 0001 007",
    "6222-0210-0000-0001-007",
    " 6222021000000001007\n",
    "6222\t0210 0000-0001 007",
    "６２２２　０２１０　００００　０００１　００７",  # full-width digits and spaces from a Chinese keyboard
])
def test_spaces_hyphens_and_full_width_digits_are_accepted(typed: str) -> None:
    check = check_card(typed)
    assert (check.number, check.problem) == ("6222021000000001007", None)
    assert bins.normalise(typed) == "6222021000000001007"


@pytest.mark.parametrize("typed", [
    "", "   ", "abc", "6222021000000001OO7", "6222.0210.0000.0001.007", "622202100007",  # 12 digits
    "62220210000000010070",  # 20 digits
    "6222021000000001007" * 4,  # far too long to be a card
    None, 6222021000000001007,  # not even text
])
def test_what_is_not_a_card_number_says_so(typed: Any) -> None:
    check = check_card(typed)
    assert (check.problem, check.info) == (CardProblem.NOT_A_NUMBER, None)


def test_a_mistyped_digit_fails_the_check_digit_before_any_bank_is_looked_up() -> None:
    good = sandbox_number("622202", 19, "1000000001")
    typo = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert (check_card(typo).problem, check_card(typo).info) == (CardProblem.CHECK_DIGIT, None)
    unknown = sandbox_number("999999", 16)
    unknown_with_typo = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    assert check_card(unknown_with_typo).problem is CardProblem.CHECK_DIGIT


def test_a_card_of_a_bank_not_in_the_data_is_unknown() -> None:
    assert check_card("4111 1111 1111 1111").problem is CardProblem.UNKNOWN_BANK  # the usual Visa test card
    check = check_card(sandbox_number("999999", 16))
    assert (check.problem, check.info) == (CardProblem.UNKNOWN_BANK, None)


def test_a_rural_bank_debit_card_is_refused_naming_the_bank() -> None:
    check = check_card(sandbox_number("621066", 19, "42"))  # 北京农村商业银行 惠通卡
    assert check.problem is CardProblem.BANK_NOT_SUPPORTED
    assert check.info is not None and (check.info.bank_code, check.info.bank_name_zh) == ("BJRCB", "北京农村商业银行")


def test_a_credit_card_cannot_receive_a_payout() -> None:
    check = check_card(sandbox_number("622230", 16, "42"))  # 工商银行 牡丹贷记卡
    assert check.problem is CardProblem.CREDIT_CARD
    assert check.info is not None and (check.info.bank_code, check.info.card_type) == ("ICBC", CardType.CREDIT)
    assert not check.ok


def test_a_zheshang_debit_card_binds_but_repayments_are_not_collected_automatically() -> None:
    check = check_card(sandbox_number("621019", 19, "5"))
    assert check.problem is None
    assert check.info is not None and (check.info.bank_code, check.info.auto_debit) == ("CZB", False)


def test_lookup_reads_what_a_borrower_typed_and_nothing_else() -> None:
    assert lookup("6222 0210 0000 0001 007").bank_code == "ICBC"  # type: ignore[union-attr]
    assert lookup("not a card") is None
    assert lookup("62") is None


def test_supported_banks_list_the_alternatives_sorted_by_code() -> None:
    banks = bins.supported_banks()
    codes = [b.code for b in banks]
    assert codes == sorted(BIG_18)
    assert "CZB" not in [b.code for b in bins.supported_banks(auto_debit=True)]
    assert len(bins.supported_banks(auto_debit=True)) == 17
    assert all(b.payout for b in banks)
    assert bins.bank("CMB").name_zh == "招商银行"  # type: ignore[union-attr]
    assert bins.bank("NOPE") is None


def test_the_data_version_is_the_files() -> None:
    assert bins.data_version() == DOCUMENT["version"]


# The data file itself.


def test_the_eighteen_largest_banks_are_all_supported_for_payouts() -> None:
    banks = DOCUMENT["banks"]
    assert all(banks[code]["payout"] is True for code in BIG_18)
    assert [code for code in BIG_18 if not banks[code]["auto_debit"]] == ["CZB"]
    unsupported = [code for code, bank in banks.items() if not bank["payout"]]
    assert 2 <= len(unsupported) <= 3 and all(not banks[code]["auto_debit"] for code in unsupported)


def test_every_bank_has_a_debit_range_and_the_big_ones_credit_ranges_too() -> None:
    kinds = {(r["bank"], r["type"]) for r in DOCUMENT["ranges"]}
    assert all((code, "debit") in kinds for code in DOCUMENT["banks"])
    # No public source lists a 浙商银行 credit BIN (see the file's notes).
    assert all((code, "credit") in kinds for code in BIG_18 if code != "CZB")


def test_no_prefix_appears_twice_and_every_prefix_is_a_bin() -> None:
    prefixes = [r["prefix"] for r in DOCUMENT["ranges"]]
    assert len(prefixes) == len(set(prefixes))
    assert all(p.isascii() and p.isdigit() and 6 <= len(p) <= 10 for p in prefixes)


def test_brands_follow_the_leading_digits() -> None:
    def brand(prefix: str) -> str:
        if prefix.startswith("4"):
            return "visa"
        if "51" <= prefix[:2] <= "55":
            return "mastercard"
        if "3528" <= prefix[:4] <= "3589":
            return "jcb"
        if prefix[:2] in ("34", "37"):
            return "amex"
        return "unionpay"

    assert [r["prefix"] for r in DOCUMENT["ranges"] if r["brand"] != brand(r["prefix"])] == []


def test_a_sandbox_card_of_every_range_is_valid_and_lands_in_its_own_range() -> None:
    expected = {(True, CardType.DEBIT): None, (True, CardType.CREDIT): CardProblem.CREDIT_CARD,
                (False, CardType.DEBIT): CardProblem.BANK_NOT_SUPPORTED}
    for prefix, length, info in bins.ranges():
        number = sandbox_number(prefix, length)
        assert len(number) == length and luhn.is_valid(number)
        check = check_card(number)
        assert check.info == info, prefix
        assert check.problem is expected[(info.payout, info.card_type)], prefix


def test_sandbox_numbers_refuse_what_cannot_be_a_card() -> None:
    for prefix, length, body in (("62220a", 19, ""), ("622202", 19, "1234567890123"), ("622202", 12, ""),
                                 ("622202", 20, "")):
        with pytest.raises(ValueError, match="cannot make"):
            sandbox_number(prefix, length, body)


# Load-time validation: a bad edit fails when the file is read, saying where.


def _bank(payout: bool = True, auto_debit: bool = True) -> dict[str, Any]:
    return {"name_zh": "测试银行", "name_en": "Test Bank", "payout": payout, "auto_debit": auto_debit}


def _range(prefix: str, bank: str, card_type: str = "debit", length: int = 19) -> dict[str, Any]:
    return {"prefix": prefix, "length": length, "bank": bank, "type": card_type, "brand": "unionpay"}


def _broken(path: str, value: Any) -> dict[str, Any]:
    return mutated(DOCUMENT, path, value)


_DELETE = DELETE


@pytest.mark.parametrize(("path", "value", "message"), [
    ("version", "", "version must be a non-empty string"),
    ("version", _DELETE, "version must be a non-empty string"),
    ("banks", {}, "banks must be a non-empty object"),
    ("ranges", [], "ranges must be a non-empty list"),
    ("ranges.0.bank", "XYZ", r"range 0 \(prefix 622200\): unknown bank 'XYZ'"),
    ("ranges.0.bank", ["ICBC"], "unknown bank"),
    ("ranges.1.type", "prepaid", r"range 1 \(prefix 622202\): type must be debit or credit"),
    ("ranges.1.brand", "discover", "brand must be one of amex, jcb, mastercard, unionpay, visa"),
    ("ranges.1.brand", ["visa"], "brand must be one of"),
    ("ranges.1.prefix", "622200", "range 1: prefix 622200 appears twice"),
    ("ranges.1.prefix", "62220", "prefix must be 6 to 10 digits"),
    ("ranges.1.prefix", "62220a", "prefix must be 6 to 10 digits"),
    ("ranges.1.prefix", "62220212345", "prefix must be 6 to 10 digits"),
    ("ranges.1.prefix", 622202, "prefix must be 6 to 10 digits"),
    ("ranges.1.length", 20, "length must be 13 to 19"),
    ("ranges.1.length", "19", "length must be 13 to 19"),
    ("ranges.1.length", True, "length must be 13 to 19"),
    ("ranges.1", "622202", "range 1 must be an object"),
    ("banks.ICBC.name_en", "", "bank ICBC needs name_zh and name_en"),
    ("banks.ICBC.payout", "yes", "bank ICBC: payout and auto_debit must be true or false"),
    ("banks.BJRCB.auto_debit", True, "bank BJRCB: auto_debit needs payout"),
    ("banks.icbc", _bank(), "bank code 'icbc' must be upper-case ASCII"),
])
def test_a_broken_document_is_refused_at_load_saying_where(path: str, value: Any, message: str) -> None:
    with pytest.raises(BinDataError, match=message):
        parse_table(_broken(path, value))


@pytest.mark.parametrize("document", [None, [], "ranges", {"version": "x"}])
def test_not_a_bin_document_at_all(document: Any) -> None:
    with pytest.raises(BinDataError):
        parse_table(document)


def test_the_packaged_file_parses() -> None:
    table = parse_table(DOCUMENT)
    assert len(table.banks) == len(DOCUMENT["banks"]) and len(table.ranges) == len(DOCUMENT["ranges"])
