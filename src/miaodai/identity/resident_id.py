"""Resident identity numbers (居民身份证号码, GB 11643-1999), names and the age policy.

Pure rules, no I/O. The number itself is checked with ``python-stdnum`` (``stdnum.cn.ric``:
ISO 7064 MOD 11-2 check digit, birth date, and a region code that existed in the birth
year); this module adds the order in which a borrower learns what is wrong, so each
typo gets its own :class:`IdRejection` and the error catalog a message they can act on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

ID_LENGTH = 18
LEGACY_ID_LENGTH = 15  # first-generation cards (before 1999): no century, no check digit
EARLIEST_BIRTH_YEAR = 1900
NAME_MIN_CHARS = 2
NAME_MAX_CHARS = 30
MIDDLE_DOT = "·"  # U+00B7, the separator in transliterated minority names (阿卜杜·热合曼)
# Dots that phone keyboards and IMEs produce in place of U+00B7.
_DOT_LOOKALIKES = str.maketrans({"•": MIDDLE_DOT, "・": MIDDLE_DOT, "‧": MIDDLE_DOT, "∙": MIDDLE_DOT})
# CJK Unified Ideographs with extension A and the supplementary planes: rare characters
# (生僻字) in real names live in the extensions.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f"
_NAME_PATTERN = re.compile(f"^[{_HAN}]+(?:{MIDDLE_DOT}[{_HAN}]+)*$")
_NAME_CHARS = re.compile(f"^[{_HAN}{MIDDLE_DOT}]+$")


class Gender(StrEnum):
    MALE = "M"
    FEMALE = "F"


class IdRejection(StrEnum):
    WRONG_LENGTH = "wrong_length"
    LEGACY_15_DIGIT = "legacy_15_digit"
    BAD_CHARACTERS = "bad_characters"  # 17 digits then a digit or X, nothing else
    BAD_CHECKSUM = "bad_checksum"
    BAD_BIRTH_DATE = "bad_birth_date"  # no such day, before 1900, or in the future
    UNKNOWN_REGION = "unknown_region"  # no such county code in the birth year


class NameRejection(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_CHARACTERS = "bad_characters"
    BAD_DOT = "bad_dot"  # the middle dot must sit between two parts of the name


class AgeRejection(StrEnum):
    TOO_YOUNG = "too_young"
    TOO_OLD = "too_old"


class InvalidResidentId(ValueError):
    def __init__(self, rejection: IdRejection) -> None:
        super().__init__(f"resident ID refused: {rejection.value}")
        self.rejection = rejection


class InvalidName(ValueError):
    def __init__(self, rejection: NameRejection) -> None:
        super().__init__(f"name refused: {rejection.value}")
        self.rejection = rejection


class AgeNotEligible(ValueError):
    def __init__(self, rejection: AgeRejection, eligible_on: date | None = None) -> None:
        super().__init__(f"age refused: {rejection.value}")
        self.rejection = rejection
        # For the too-young: the business date from which they may apply.
        self.eligible_on = eligible_on


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    birth_date: date
    gender: Gender
    region_code: str


def normalize_id_number(text: str) -> str:
    """Full-width digits (IME input) become ASCII, spaces and hyphens go, x becomes X."""
    folded = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s\-]", "", folded).upper()


def parse_resident_id(text: str, *, today: date) -> ResidentId:
    """Validate an 18-digit resident ID number and read what it encodes.

    Checks run from the coarse to the fine (length, characters, check digit, birth
    date, region) so that a typo is reported as the first thing it breaks.
    """
    number = normalize_id_number(text)
    if len(number) != ID_LENGTH:
        if len(number) == LEGACY_ID_LENGTH and number.isascii() and number.isdigit():
            raise InvalidResidentId(IdRejection.LEGACY_15_DIGIT)
        raise InvalidResidentId(IdRejection.WRONG_LENGTH)
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise InvalidResidentId(IdRejection.BAD_CHARACTERS)
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidResidentId(IdRejection.BAD_CHECKSUM)
    try:
        birth_date = ric.get_birth_date(number)
    except ValidationError:
        raise InvalidResidentId(IdRejection.BAD_BIRTH_DATE) from None
    if birth_date.year < EARLIEST_BIRTH_YEAR or birth_date > today:
        raise InvalidResidentId(IdRejection.BAD_BIRTH_DATE)
    try:
        ric.get_birth_place(number)
    except ValidationError:
        raise InvalidResidentId(IdRejection.UNKNOWN_REGION) from None
    # The 17th digit is the order code: odd for men, even for women.
    gender = Gender.MALE if int(number[16]) % 2 else Gender.FEMALE
    return ResidentId(number=number, birth_date=birth_date, gender=gender, region_code=number[:6])


def age_on(birth_date: date, today: date) -> int:
    """Whole years completed on ``today``. Someone born on 29 February turns a year
    older on 1 March in common years (the day after 28 February)."""
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def nth_birthday(birth_date: date, years: int) -> date:
    """The date someone turns ``years`` old (29 February -> 1 March in common years)."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 3, 1)


def check_age(birth_date: date, today: date, *, min_age: int, max_age: int) -> int:
    """Accept ages from ``min_age`` to ``max_age`` inclusive (18–60 means up to the day
    before the 61st birthday); return the age."""
    age = age_on(birth_date, today)
    if age < min_age:
        raise AgeNotEligible(AgeRejection.TOO_YOUNG, eligible_on=nth_birthday(birth_date, min_age))
    if age > max_age:
        raise AgeNotEligible(AgeRejection.TOO_OLD)
    return age


def normalize_name(text: str) -> str:
    """Validate a legal name in Chinese characters and return it in canonical form.

    Chinese names contain no spaces, so any whitespace (incl. the full-width space) is
    a typing artefact and is dropped; dot look-alikes become U+00B7.
    """
    name = re.sub(r"\s+", "", unicodedata.normalize("NFC", text)).translate(_DOT_LOOKALIKES)
    if len(name) < NAME_MIN_CHARS:
        raise InvalidName(NameRejection.TOO_SHORT)
    if len(name) > NAME_MAX_CHARS:
        raise InvalidName(NameRejection.TOO_LONG)
    if not _NAME_CHARS.match(name):
        raise InvalidName(NameRejection.BAD_CHARACTERS)
    if not _NAME_PATTERN.match(name):
        raise InvalidName(NameRejection.BAD_DOT)
    return name
