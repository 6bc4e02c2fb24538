"""Resident ID numbers, names and the age policy: exact known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from miaodai.core.clock import business_date
from miaodai.identity.resident_id import (
    AgeNotEligible,
    AgeRejection,
    Gender,
    IdRejection,
    InvalidName,
    InvalidResidentId,
    NameRejection,
    age_on,
    check_age,
    normalize_name,
    nth_birthday,
    parse_resident_id,
)

TODAY = date(2026, 11, 22)


def test_a_valid_number_yields_birth_date_gender_and_region():
    rid = parse_resident_id("110101199003070011", today=TODAY)
    assert rid.number == "110101199003070011"
    assert rid.birth_date == date(1990, 3, 7)
    assert rid.gender is Gender.MALE  # order code 001 is odd
    assert rid.region_code == "110101"  # 北京市东城区


def test_an_x_check_digit_and_an_even_order_code_mean_a_woman():
    rid = parse_resident_id("11010119900307002x", today=TODAY)
    assert rid.number == "11010119900307002X"
    assert rid.gender is Gender.FEMALE


@pytest.mark.parametrize(
    "typed",
    ["110101 19900307 0011", "110101-19900307-0011", "１１０１０１１９９００３０７００１１", " 110101199003070011\t"],
)
def test_spaces_hyphens_and_full_width_digits_are_forgiven(typed):
    assert parse_resident_id(typed, today=TODAY).number == "110101199003070011"


@pytest.mark.parametrize(
    ("typed", "rejection"),
    [
        ("11010119900307001", IdRejection.WRONG_LENGTH),  # 17 characters
        ("1101011990030700111", IdRejection.WRONG_LENGTH),
        ("", IdRejection.WRONG_LENGTH),
        ("110101900307001", IdRejection.LEGACY_15_DIGIT),  # first-generation card
        ("11010119900307001A", IdRejection.BAD_CHARACTERS),
        ("1101011990O3070011", IdRejection.BAD_CHARACTERS),  # letter O for zero
        ("110101199003070012", IdRejection.BAD_CHECKSUM),  # last digit typed wrong
        ("110101199003700011", IdRejection.BAD_CHECKSUM),  # two digits swapped
        ("110101199002300014", IdRejection.BAD_BIRTH_DATE),  # 30 February, valid check digit
        ("11010118991231001X", IdRejection.BAD_BIRTH_DATE),  # before 1900
        ("11010120261123001X", IdRejection.BAD_BIRTH_DATE),  # born tomorrow
        ("999999199003070012", IdRejection.UNKNOWN_REGION),
        ("31011519880229002X", IdRejection.UNKNOWN_REGION),  # Pudong New Area did not exist in 1988
    ],
)
def test_each_way_a_number_can_be_wrong_has_its_own_rejection(typed, rejection):
    with pytest.raises(InvalidResidentId) as caught:
        parse_resident_id(typed, today=TODAY)
    assert caught.value.rejection is rejection


def test_a_birth_date_of_today_is_possible():
    assert parse_resident_id("110101202611220014", today=TODAY).birth_date == TODAY


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2008, 11, 22), date(2026, 11, 22), 18),  # the 18th birthday itself
        (date(2008, 11, 23), date(2026, 11, 22), 17),  # the day before the 18th birthday
        (date(1990, 3, 7), date(2026, 11, 22), 36),
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day birthday in a common year...
        (date(2008, 2, 29), date(2026, 3, 1), 18),  # ...counts from 1 March
        (date(2008, 2, 29), date(2028, 2, 29), 20),
    ],
)
def test_age_in_whole_years(born, today, age):
    assert age_on(born, today) == age


def test_nth_birthday_of_a_leap_day_baby_in_a_common_year_is_1_march():
    assert nth_birthday(date(2008, 2, 29), 18) == date(2026, 3, 1)
    assert nth_birthday(date(2008, 2, 29), 20) == date(2028, 2, 29)


def test_the_age_policy_accepts_18_to_60_inclusive():
    assert check_age(date(2008, 11, 22), TODAY, min_age=18, max_age=60) == 18
    assert check_age(date(1965, 11, 23), TODAY, min_age=18, max_age=60) == 60  # 61 tomorrow


def test_too_young_says_when_they_become_eligible():
    with pytest.raises(AgeNotEligible) as caught:
        check_age(date(2008, 11, 23), TODAY, min_age=18, max_age=60)
    assert caught.value.rejection is AgeRejection.TOO_YOUNG
    assert caught.value.eligible_on == date(2026, 11, 23)


def test_too_old_from_the_61st_birthday():
    with pytest.raises(AgeNotEligible) as caught:
        check_age(date(1965, 11, 22), TODAY, min_age=18, max_age=60)
    assert caught.value.rejection is AgeRejection.TOO_OLD


def test_the_age_is_taken_on_the_beijing_business_date():
    # 16:30 UTC on 21 November is already 00:30 on 22 November in Beijing: the 18th birthday.
    late_utc = datetime(2026, 11, 21, 16, 30, tzinfo=UTC)
    assert business_date(late_utc) == date(2026, 11, 22)
    assert check_age(date(2008, 11, 22), business_date(late_utc), min_age=18, max_age=60) == 18
    with pytest.raises(AgeNotEligible):
        check_age(date(2008, 11, 22), late_utc.date(), min_age=18, max_age=60)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("张三", "张三"),
        ("  张三 ", "张三"),
        ("张 三", "张三"),
        ("\u3000欧阳娜娜\u3000", "欧阳娜娜"),  # full-width spaces
        ("阿卜杜·热合曼", "阿卜杜·热合曼"),
        ("阿卜杜•热合曼", "阿卜杜·热合曼"),  # bullet typed for the middle dot
        ("阿卜杜・热合曼", "阿卜杜·热合曼"),  # katakana middle dot from a Japanese IME
        ("阿卜杜 · 热合曼", "阿卜杜·热合曼"),
        ("买买提·艾力·吐尔逊", "买买提·艾力·吐尔逊"),
        ("王𠈌", "王𠈌"),  # a rare character outside the Basic Multilingual Plane
        ("李" * 30, "李" * 30),
    ],
)
def test_names_are_trimmed_and_canonical(typed, canonical):
    assert normalize_name(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "rejection"),
    [
        ("", NameRejection.TOO_SHORT),
        ("张", NameRejection.TOO_SHORT),
        ("  张 ", NameRejection.TOO_SHORT),
        ("李" * 31, NameRejection.TOO_LONG),
        ("Zhang San", NameRejection.BAD_CHARACTERS),
        ("张3", NameRejection.BAD_CHARACTERS),
        ("张三!", NameRejection.BAD_CHARACTERS),
        ("·张三", NameRejection.BAD_DOT),
        ("张三·", NameRejection.BAD_DOT),
        ("阿卜杜··热合曼", NameRejection.BAD_DOT),
    ],
)
def test_bad_names_are_refused_with_a_reason(typed, rejection):
    with pytest.raises(InvalidName) as caught:
        normalize_name(typed)
    assert caught.value.rejection is rejection


@pytest.mark.parametrize(
    ("number", "outcome"),
    [
        ("110101199003070011", "valid"),  # docs/sandbox.md: the everyday test identity (male)
        ("11010119900307002X", "valid"),  # female, X check digit
        ("110101199003070038", "valid"),  # a second person, for a second account
        ("110101199003070012", IdRejection.BAD_CHECKSUM),
        ("110101199002300014", IdRejection.BAD_BIRTH_DATE),
        ("999999199003070012", IdRejection.UNKNOWN_REGION),
        ("110101900307001", IdRejection.LEGACY_15_DIGIT),
        ("11010119900307001", IdRejection.WRONG_LENGTH),
        ("11010119900307001Y", IdRejection.BAD_CHARACTERS),
        ("110101201001010015", AgeRejection.TOO_YOUNG),  # born 2010-01-01
        ("110101195001010017", AgeRejection.TOO_OLD),  # born 1950-01-01
    ],
)
def test_the_documented_sandbox_id_numbers_do_what_the_docs_say(number, outcome):
    try:
        rid = parse_resident_id(number, today=TODAY)
        check_age(rid.birth_date, TODAY, min_age=18, max_age=60)
    except InvalidResidentId as exc:
        assert exc.rejection is outcome
    except AgeNotEligible as exc:
        assert exc.rejection is outcome
    else:
        assert outcome == "valid"
