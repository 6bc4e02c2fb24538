"""Synthetic, valid-checksum resident ID numbers for load tests (never real people)."""

from __future__ import annotations

from datetime import date, timedelta

from stdnum.cn import ric

SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "伟芳娜敏静丽强磊军洋"


def identity_for(n: int) -> tuple[str, str]:
    """The n-th synthetic borrower: a name and an 18-digit ID with a valid check digit."""
    birth = date(1980, 1, 1) + timedelta(days=n % 7000)
    sequence = 100 + (n // 7000) % 800  # 100..899 keeps clear of the sandbox's special values
    body = f"110101{birth:%Y%m%d}{sequence:03d}"
    id_number = body + ric.calc_check_digit(body + "0")  # uses the first 17 characters
    name = SURNAMES[n % 10] + GIVEN[(n // 10) % 10]
    return name, id_number
