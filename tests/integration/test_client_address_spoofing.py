"""What the app takes for the client's address (per-address caps on login codes, the address recorded with a
signing) when a client sends X-Forwarded-For itself, directly or through our proxy."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from fastapi.testclient import TestClient

from miaodai.app import create_app
from miaodai.core.http import ClientIp

PINNED_FIXTURES = ("backend",)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # no database work: the address is read from the request alone


def _client(container, peer: str) -> TestClient:
    app = create_app(container=container)

    @app.get("/test/client-address")
    def seen(ip: ClientIp) -> dict[str, str]:
        return {"ip": ip}

    return TestClient(app, client=(peer, 50000))


def _seen(client: TestClient, *forwarded: str) -> str:
    headers = [("x-forwarded-for", value) for value in forwarded]
    return client.get("/test/client-address", headers=headers).json()["ip"]


def test_by_default_no_forwarded_header_is_believed(container):
    assert container.settings.trusted_proxies == ()
    with _client(container, "203.0.113.9") as client:
        assert _seen(client, "1.2.3.4") == "203.0.113.9"
        assert _seen(client) == "203.0.113.9"


def test_through_a_trusted_proxy_the_client_cannot_choose_its_address(container):
    container.settings.trusted_proxies = (ip_network("10.0.0.0/8"),)
    with _client(container, "10.0.0.2") as client:
        # The proxy appended the address it was reached from; what the client wrote before it is ignored.
        assert _seen(client, "1.2.3.4, 198.51.100.7") == "198.51.100.7"
        assert _seen(client, "10.0.0.9, 198.51.100.7") == "198.51.100.7"
        # A second header from the client is part of the same list, to the left of the proxy's entry.
        assert _seen(client, "1.2.3.4", "198.51.100.7") == "198.51.100.7"
        assert _seen(client) == "10.0.0.2"
    with _client(container, "203.0.113.9") as client:  # not through our proxy: the header is the client's own
        assert _seen(client, "198.51.100.7") == "203.0.113.9"
