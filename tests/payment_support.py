"""Bank cards and the sandbox payment channel for tests: bind a card through the API, and let the
channel's time pass and its callbacks arrive (posted to the app as the real channel would)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from miaodai.sandbox.channel import ACCOUNT_OK
from tests.helpers import latest_code


def bind_card(client: TestClient, who: dict[str, Any], phone: str, number: str = ACCOUNT_OK) -> dict[str, Any]:
    """Bind ``number`` (by default the channel's always-succeeding test card) with the bank's code."""
    started = client.post("/v1/payment-methods/cards", json={"card_number": number}, headers=who["headers"])
    assert started.status_code == 202, started.text
    confirmed = client.post(f"/v1/payment-methods/cards/{started.json()['binding_id']}/confirm",
                            json={"code": latest_code(client, phone)}, headers=who["headers"])
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()


def poster(client: TestClient):
    """How the sandbox channel reaches the app in tests: the callback URL's path, through the client."""

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        response = client.post(urlsplit(url).path, content=body, headers=dict(headers))
        return response.status_code, response.content

    return post


def channel_time_passes(client: TestClient, container: Any, clock: Any, seconds: float = 2) -> int:
    """Advance the clock and let the channel deliver every callback then due; returns how many."""
    clock.advance(timedelta(seconds=seconds))
    return container.channel.deliver_due(clock.now(), poster(client))


def sign_in_wallet(client: TestClient, started: dict[str, Any], login: str, decision: str = "approve") -> str:
    """What the borrower does in the wallet's app: open the signing page, log in, decide; returns the auth code."""
    page = urlsplit(started["authorize_url"]).path
    assert client.get(page).status_code == 200
    signed = client.post(f"{page}/authorize", json={"login": login, "decision": decision})
    assert signed.status_code == 200, signed.text
    return signed.json()["auth_code"]


def bind_wallet(client: TestClient, who: dict[str, Any], login: str, kind: str = "alipay") -> dict[str, Any]:
    """Bind an Alipay or WeChat Pay account (``login`` is the wallet's login, see docs/sandbox.md)."""
    started = client.post("/v1/payment-methods/wallets", json={"kind": kind}, headers=who["headers"])
    assert started.status_code == 202, started.text
    code = sign_in_wallet(client, started.json(), login)
    confirmed = client.post(f"/v1/payment-methods/wallets/{started.json()['binding_id']}/confirm",
                            json={"auth_code": code}, headers=who["headers"])
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()
