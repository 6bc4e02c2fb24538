"""Phone numbers: only mainland China mobiles get in, each refusal with its own reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaodai.identity.phone import InvalidPhoneNumber, PhoneRejection, parse_mainland_mobile


@pytest.mark.parametrize(
    "typed",
    ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678",
     "008613812345678", "8613812345678", "１３８１２３４５６７８", " 13812345678 "],
)
def test_the_ways_a_borrower_writes_a_mobile_number_all_normalise_to_e164(typed):
    assert parse_mainland_mobile(typed) == "+8613812345678"


@pytest.mark.parametrize("typed", ["17012345678", "19912345678", "16612345678", "14712345678", "13900000001"])
def test_every_mainland_mobile_range_is_accepted(typed):
    assert parse_mainland_mobile(typed) == "+86" + typed


@pytest.mark.parametrize(
    ("typed", "rejection"),
    [
        ("010-12345678", PhoneRejection.LANDLINE),  # Beijing landline
        ("02112345678", PhoneRejection.LANDLINE),  # Shanghai landline
        ("+86 10 1234 5678", PhoneRejection.LANDLINE),
        ("4008123123", PhoneRejection.NOT_MOBILE),  # 400 service number
        ("10086", PhoneRejection.SHORT_NUMBER),  # carrier hotline
        ("95588", PhoneRejection.SHORT_NUMBER),  # bank hotline
        ("110", PhoneRejection.SHORT_NUMBER),
        ("12345", PhoneRejection.SHORT_NUMBER),
        ("+85291234567", PhoneRejection.NOT_MAINLAND),  # Hong Kong mobile
        ("+886912345678", PhoneRejection.NOT_MAINLAND),  # Taiwan mobile
        ("+14155552671", PhoneRejection.NOT_MAINLAND),
        ("abc", PhoneRejection.INVALID),
        ("", PhoneRejection.INVALID),
        ("   ", PhoneRejection.INVALID),
        ("+86", PhoneRejection.INVALID),
        ("1381234567", PhoneRejection.INVALID),  # one digit short
        ("138123456789", PhoneRejection.INVALID),  # one digit too many
        ("12012345678", PhoneRejection.INVALID),  # no operator issues 120…
        ("1" * 40, PhoneRejection.INVALID),  # too long to be a number
    ],
)
def test_numbers_that_cannot_receive_a_login_code_are_refused_with_their_reason(typed, rejection):
    with pytest.raises(InvalidPhoneNumber) as refused:
        parse_mainland_mobile(typed)
    assert refused.value.rejection is rejection


@given(st.text(max_size=40))
def test_any_text_is_either_a_mainland_mobile_or_a_typed_refusal(text):
    try:
        e164 = parse_mainland_mobile(text)
    except InvalidPhoneNumber as refused:
        assert refused.rejection in PhoneRejection
    else:
        assert e164.startswith("+861") and len(e164) == 14


@given(st.sampled_from("3456789"), st.integers(min_value=0, max_value=999_999_999))
def test_normalising_is_idempotent(second_digit, rest):
    typed = f"1{second_digit}{rest:09d}"
    try:
        e164 = parse_mainland_mobile(typed)
    except InvalidPhoneNumber:
        return  # unallocated ranges (e.g. 140…) are refused, which is fine
    assert parse_mainland_mobile(e164) == e164
