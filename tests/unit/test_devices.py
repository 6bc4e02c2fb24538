"""The app's device id header and the device label borrowers see in their device list."""

from __future__ import annotations

import pytest

from miaodai.identity.devices import UNKNOWN_DEVICE_LABEL, DeviceKeyProblem, check_device_key, device_label


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(None, DeviceKeyProblem.MISSING), ("", DeviceKeyProblem.MISSING), ("short", DeviceKeyProblem.INVALID),
     ("x" * 65, DeviceKeyProblem.INVALID), ("has space 123", DeviceKeyProblem.INVALID),
     ("设备编号一二三四五", DeviceKeyProblem.INVALID), ("a" * 8, None), ("A1b2-C3d4_e5:f6.g7", None), ("x" * 64, None)],
)
def test_device_ids_are_8_to_64_visible_ascii_characters(raw, problem):
    assert check_device_key(raw) is problem


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 MicroMessenger/8.0.44",
         "iPhone · WeChat"),
        ("Mozilla/5.0 (Linux; Android 14; PJZ110) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
         "Android · Chrome"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0",
         "Windows · Edge"),
        ("miaodai-app/1.2 (custom)", "miaodai-app/1.2 (custom)"),
        ("", UNKNOWN_DEVICE_LABEL),
        (None, UNKNOWN_DEVICE_LABEL),
    ],
)
def test_device_labels_name_the_platform_and_app(user_agent, label):
    assert device_label(user_agent) == label
