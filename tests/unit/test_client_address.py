"""The client's address behind reverse proxies: X-Forwarded-For is believed only as far as our own proxies
wrote it. The client writes the leftmost entries; each proxy appends the address it was reached from."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from miaodai.core.http import client_address
from miaodai.core.settings import Settings

PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    # The peer is not one of our proxies: it wrote the header itself.
    ("203.0.113.9", "10.0.0.1, 198.51.100.7", "203.0.113.9"),
    # Our proxy appended the address it was reached from; the client's own entry on the left is ignored.
    ("10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
    # Two of our proxies in a row: the right-most untrusted hop is the client.
    ("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.1.2.3", "198.51.100.7"),
    # A spoofed entry that claims to be one of our proxies changes nothing: the walk stops at the client.
    ("10.0.0.2", "10.9.9.9, 198.51.100.7", "198.51.100.7"),
    # Only our proxies: the leftmost is as close as we know.
    ("10.0.0.2", "10.0.0.5, 10.0.0.3", "10.0.0.5"),
    # Garbage where an address should be: the walk stops at the last address it could believe.
    ("10.0.0.2", "198.51.100.7, not-an-ip", "10.0.0.2"),
    ("10.0.0.2", "", "10.0.0.2"),
    # Ports, brackets and IPv6.
    ("10.0.0.2", "198.51.100.7:5555", "198.51.100.7"),
    ("2001:db8::1", "1.2.3.4, [2001:db8:ffff::9]:443, 2001:db8::7", "1.2.3.4"),
    ("::ffff:10.0.0.2", "198.51.100.7", "198.51.100.7"),  # a dual-stack socket's mapped IPv4 proxy
    (None, "198.51.100.7", "unknown"),
])
def test_the_client_is_the_right_most_address_our_proxies_did_not_write(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


def test_without_trusted_proxies_no_header_is_believed():
    assert client_address("10.0.0.2", "198.51.100.7", ()) == "10.0.0.2"


@pytest.mark.parametrize(("text", "networks"), [
    ("", ()),
    ("10.0.0.0/8, 127.0.0.1", (ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32"))),
    ('["192.168.1.0/24", "::1"]', (ip_network("192.168.1.0/24"), ip_network("::1/128"))),
])
def test_trusted_proxies_come_from_the_environment_as_a_list_or_json(monkeypatch, text, networks):
    monkeypatch.setenv("MIAODAI_TRUSTED_PROXIES", text)
    assert Settings(_env_file=None).trusted_proxies == networks  # type: ignore[call-arg]


def test_a_malformed_trusted_proxy_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("MIAODAI_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(_env_file=None)  # type: ignore[call-arg]
