"""Personal data is masked in responses and scrubbed from logs."""

from __future__ import annotations

import io
import json
import logging

import structlog

from miaodai.core.logging import configure_logging, scrub
from miaodai.core.masking import mask_id_number, mask_name, mask_phone


def test_masks():
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "张*"


def test_scrub_masks_phones_ids_and_cards_inside_text():
    text = "user +8613812345678 id 11010119900307123X card 6222021234567890123 ok"
    cleaned = scrub(text)
    assert "13812345678" not in cleaned and "138****5678" in cleaned
    assert "11010119900307123X" not in cleaned and "110101********123X" in cleaned
    assert "6222021234567890123" not in cleaned and "0123" in cleaned


def test_json_logs_redact_sensitive_keys_and_values():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    structlog.get_logger("t").info("login for 13812345678", phone="13812345678", id_number="x", borrower_id=7)
    logging.getLogger("uvicorn.error").info("peer said 110101199003071234")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["phone"] == "[redacted]" and lines[0]["id_number"] == "[redacted]"
    assert lines[0]["borrower_id"] == 7
    assert "13812345678" not in stream.getvalue()
    assert "110101199003071234" not in stream.getvalue()
    assert lines[1]["event"] == "peer said 110101********1234"
