"""Masks for personal data shown in responses, pages and the console."""

from __future__ import annotations


def mask_phone(e164_or_national: str) -> str:
    """+8613812345678 or 13812345678 -> 138****5678."""
    digits = e164_or_national.removeprefix("+86")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_id_number(id_number: str) -> str:
    """110101199003071234 -> 110101********1234."""
    if len(id_number) < 10:
        return "*" * len(id_number)
    return f"{id_number[:6]}{'*' * (len(id_number) - 10)}{id_number[-4:]}"


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***; Latin names keep their first letter."""
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)
