"""Borrower phone numbers: mainland China mobile numbers only, normalised to E.164.

Pure rules on top of ``phonenumbers`` (Google's libphonenumber metadata), so number
ranges stay current by upgrading the library rather than by editing regexes here.
Each way a number can be refused has its own :class:`PhoneRejection`; the login
error catalog turns it into a message the borrower can act on.
"""

from __future__ import annotations

from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, shortnumberinfo

MAINLAND_COUNTRY_CODE = 86
# Longer input is not a phone number; refusing it early keeps the parser off junk.
MAX_INPUT_CHARS = 32
# A national number this short is a service/short code (10086, 95588, 12345), never a mobile.
SHORT_NUMBER_MAX_DIGITS = 6


class PhoneRejection(StrEnum):
    INVALID = "invalid"  # not a phone number at all, or a number no operator issues
    LANDLINE = "landline"  # a mainland fixed line (010-12345678): cannot receive SMS codes
    NOT_MOBILE = "not_mobile"  # a mainland service number (400/800, VoIP, premium rate)
    SHORT_NUMBER = "short_number"  # a short/service code such as 10086 or 95588
    NOT_MAINLAND = "not_mainland"  # another country or region, incl. Hong Kong, Macau, Taiwan


class InvalidPhoneNumber(ValueError):
    def __init__(self, rejection: PhoneRejection) -> None:
        super().__init__(f"phone number refused: {rejection.value}")
        self.rejection = rejection


def parse_mainland_mobile(text: str) -> str:
    """Parse what a borrower typed into a mainland mobile number in E.164 (+8613812345678).

    Accepts the usual ways of writing one: ``13812345678``, ``138 1234 5678``,
    ``+86 138-1234-5678``, ``008613812345678``, full-width digits.
    """
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(PhoneRejection.INVALID)
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException:
        raise InvalidPhoneNumber(PhoneRejection.INVALID) from None
    if number.country_code != MAINLAND_COUNTRY_CODE:
        raise InvalidPhoneNumber(PhoneRejection.NOT_MAINLAND)
    raise_unless_mobile(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def raise_unless_mobile(number: phonenumbers.PhoneNumber) -> None:
    if not phonenumbers.is_valid_number(number):
        if _is_short_number(number):
            raise InvalidPhoneNumber(PhoneRejection.SHORT_NUMBER)
        raise InvalidPhoneNumber(PhoneRejection.INVALID)
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.MOBILE:
        return
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidPhoneNumber(PhoneRejection.LANDLINE)
    raise InvalidPhoneNumber(PhoneRejection.NOT_MOBILE)


def _is_short_number(number: phonenumbers.PhoneNumber) -> bool:
    if len(str(number.national_number)) <= SHORT_NUMBER_MAX_DIGITS:
        return True
    return shortnumberinfo.is_valid_short_number_for_region(number, "CN")
