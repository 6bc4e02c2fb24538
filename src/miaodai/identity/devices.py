"""The client's device id (X-Device-Id) and a readable device label. Pure, no I/O.

The device id is chosen by the app on first launch and sent on every request; we
keep only its blind index. The label comes from the User-Agent so a borrower can
recognise their own phones in the device list.
"""

from __future__ import annotations

import re
from enum import StrEnum

DEVICE_KEY_PATTERN = re.compile(r"[\x21-\x7e]{8,64}")  # 8–64 visible ASCII characters
LABEL_MAX_CHARS = 120
UNKNOWN_DEVICE_LABEL = "unknown device"

# Most specific first: an iPad UA also says "Mac OS X", an Android UA also says "Linux".
_PLATFORMS = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("HarmonyOS", "HarmonyOS"), ("Android", "Android"),
    ("Windows", "Windows"), ("Macintosh", "Mac"), ("Linux", "Linux"),
)
_APPS = (("MicroMessenger", "WeChat"), ("Alipay", "Alipay"), ("Edg/", "Edge"), ("Chrome/", "Chrome"),
         ("Firefox/", "Firefox"), ("Safari/", "Safari"))


class DeviceKeyProblem(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"


def check_device_key(raw: str | None) -> DeviceKeyProblem | None:
    if raw is None or raw == "":
        return DeviceKeyProblem.MISSING
    if not DEVICE_KEY_PATTERN.fullmatch(raw):
        return DeviceKeyProblem.INVALID
    return None


def device_label(user_agent: str | None) -> str:
    """"iPhone · WeChat" from a User-Agent; the raw header (printable part) when unrecognised."""
    if not user_agent:
        return UNKNOWN_DEVICE_LABEL
    platform = next((name for marker, name in _PLATFORMS if marker in user_agent), None)
    app = next((name for marker, name in _APPS if marker in user_agent), None)
    if platform:
        return f"{platform} · {app}" if app else platform
    printable = "".join(ch for ch in user_agent if ch.isprintable()).strip()
    return printable[:LABEL_MAX_CHARS] or UNKNOWN_DEVICE_LABEL
