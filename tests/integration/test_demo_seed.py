"""`miaodai demo seed`: a product, a staff account per role that can log in, and three onboarded borrowers — once.

The year of demo loans the command adds after them is tested in test_demo_portfolio.py (here: ``--no-portfolio``)."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from stdnum.cn import ric

from miaodai.core.audit import AuditEntry
from miaodai.demo import ADMIN_USERNAME, DEMO_BORROWERS, DEMO_STAFF, PRODUCT_CODE, REVIEWER_USERNAME, seed_demo
from miaodai.identity import staff_service
from miaodai.identity.models import Borrower, Consent, ConsentKind, KycIdentity, KycStatus, StaffRoleGrant, StaffUser
from miaodai.identity.phone import parse_mainland_mobile
from miaodai.identity.rbac import Role
from miaodai.loans.models import CreditLine, LoanProduct
from miaodai.loans.schedule import RepaymentMethod
from miaodai.payments.models import PaymentMethod
from tests.cli_support import run_cli


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch):
    monkeypatch.setattr(staff_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


def count(container, model):
    with container.db.transaction() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_demo_data_is_synthetic_but_valid():
    for demo in DEMO_BORROWERS:
        assert ric.is_valid(demo.id_number)
        assert parse_mainland_mobile(demo.phone) == demo.phone
        # Not one of the sandbox numbers that make SMS or the carrier check fail.
        assert not demo.phone.startswith("+86139000000")


def test_the_seed_creates_a_product_an_admin_and_onboarded_borrowers(container):
    report = seed_demo(container, every_role=True)
    assert report.product_created and report.admin is not None and len(report.borrowers_created) == 3
    assert report.reviewer is not None and report.roles_granted == []
    vault = container.vault
    with container.db.transaction() as session:
        product = session.execute(select(LoanProduct).where(LoanProduct.code == PRODUCT_CODE)).scalar_one()
        assert (product.min_amount_fen, product.max_amount_fen) == (50_000, 5_000_000)
        assert product.terms_months == "3,6,12" and product.max_annual_rate == Decimal("0.18")
        assert product.spec().methods == tuple(RepaymentMethod)
        for demo in DEMO_BORROWERS:
            borrower = session.execute(
                select(Borrower).where(Borrower.phone_bidx == vault.blind_index(demo.phone, "phone"))
            ).scalar_one()
            assert borrower.kyc_status is KycStatus.VERIFIED
            assert vault.decrypt(borrower.phone_enc, "borrower.phone") == demo.phone
            identity = session.execute(
                select(KycIdentity).where(KycIdentity.borrower_id == borrower.id)
            ).scalar_one()
            assert vault.decrypt(identity.name_enc, "kyc.name") == demo.name
            assert vault.decrypt(identity.id_number_enc, "kyc.id_number") == demo.id_number
            assert identity.id_number_bidx == vault.blind_index(demo.id_number, "id_number")
            assert identity.face_verified_at is not None
            in_force = session.execute(
                select(Consent.kind).where(Consent.borrower_id == borrower.id, Consent.revoked_at.is_(None))
            ).scalars().all()
            assert sorted(in_force) == sorted(ConsentKind) and all(
                v == "1.0" for v in session.execute(select(Consent.version)).scalars()
            )
    # product + a staff account per demo account + 3 × (registered, verified, 4 consents) + 2 lines + 2 cards
    assert count(container, AuditEntry) == 1 + len(DEMO_STAFF) + 3 * 6 + 2 + 2
    with container.db.transaction() as session:
        lines = session.execute(select(CreditLine.limit_fen, CreditLine.available_fen).order_by(CreditLine.id)).all()
        cards = session.execute(select(PaymentMethod.bank_code, PaymentMethod.is_default, PaymentMethod.number_enc)
                                .order_by(PaymentMethod.id)).all()
    assert [tuple(line) for line in lines] == [(2_000_000, 2_000_000), (5_000_000, 5_000_000)]
    assert [(bank, default) for bank, default, _ in cards] == [("ICBC", True), ("CCB", True)]
    assert [container.vault.decrypt(enc, "payment.card_number") for _, _, enc in cards] == [
        d.card for d in DEMO_BORROWERS if d.card]


def test_a_second_run_changes_nothing(container):
    seed_demo(container, every_role=True)
    before = {model: count(container, model) for model in (LoanProduct, StaffUser, Borrower, Consent, AuditEntry)}
    again = seed_demo(container, every_role=True)
    assert not again.changed and again.admin is None and again.reviewer is None
    assert {model: count(container, model) for model in before} == before


def test_the_printed_admin_credentials_log_in_once_and_are_not_stored_or_logged(
    client, container, settings, clock, caplog, backend
):
    caplog.set_level(logging.DEBUG)
    first = run_cli(settings, "demo", "seed", "--no-portfolio")
    assert first.exit_code == 0, first.output
    password = re.search(r"password\s+(\S+)", first.output).group(1)
    secret = re.search(r"TOTP secret\s+([A-Z2-7]+)", first.output).group(1)
    unwrapped = re.sub(r"[\s│]", "", first.output)  # the panel wraps the long URI
    assert f"otpauth://totp/Miaodai:demo.admin?secret={secret}" in unwrapped
    for phone in (d.phone for d in DEMO_BORROWERS):
        assert phone in first.output

    response = client.post("/v1/staff/login", json={
        "username": ADMIN_USERNAME, "password": password, "totp_code": pyotp.TOTP(secret).at(clock.now()),
    })
    assert response.status_code == 200, response.json()
    assert sorted(response.json()["staff"]["roles"]) == ["admin", "risk_manager"]

    second = run_cli(settings, "demo", "seed", "--no-portfolio")
    assert "nothing changed" in second.output and password not in second.output and secret not in second.output
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert password not in logged and secret not in logged
    with container.db.transaction() as session:
        row = session.execute(select(StaffUser.password_hash, StaffUser.totp_secret_enc)
                              .where(StaffUser.username == ADMIN_USERNAME)).one()
    assert password not in row.password_hash and secret not in row.totp_secret_enc
    if backend == "sqlite":
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        assert password.encode() not in raw and secret.encode() not in raw


def test_a_demo_borrower_logs_in_with_the_sandbox_sms_and_cannot_use_staff_routes(client, container):
    from tests.helpers import login

    seed_demo(container)
    phone_bidx = container.vault.blind_index(DEMO_BORROWERS[0].phone, "phone")
    with container.db.transaction() as session:
        expected = session.execute(select(Borrower.id).where(Borrower.phone_bidx == phone_bidx)).scalar_one()
    session_info = login(client, DEMO_BORROWERS[0].phone.removeprefix("+86"))
    assert session_info["borrower_id"] == expected  # the existing, verified borrower, not a new one
    staff = client.get("/v1/staff/me", headers=session_info["headers"])
    assert staff.status_code == 401 and staff.json()["code"] == "STAFF_UNAUTHENTICATED"
    audit = client.get("/v1/staff/audit-entries", headers=session_info["headers"])
    assert audit.status_code == 401


def _printed_credentials(output: str) -> dict[str, tuple[str, str]]:
    """username -> (password, TOTP secret) of every credentials panel the command printed."""
    usernames = re.findall(r"username\s+(\S+)", output)
    passwords = re.findall(r"password\s+(\S+)", output)
    secrets = re.findall(r"TOTP secret\s+([A-Z2-7]+)", output)
    assert len(usernames) == len(passwords) == len(secrets), output
    return {user: (password, secret) for user, password, secret in zip(usernames, passwords, secrets, strict=True)}


def test_every_role_has_a_demo_account_that_logs_in_with_the_printed_password_and_totp(client, settings, clock):
    seeded = run_cli(settings, "demo", "seed", "--no-portfolio")
    assert seeded.exit_code == 0, seeded.output
    printed = _printed_credentials(seeded.output)
    assert set(printed) == {staff.username for staff in DEMO_STAFF}
    # The accounts the demo always had keep their names and roles; every other role has its own account.
    expected = {ADMIN_USERNAME: ["admin", "risk_manager"], REVIEWER_USERNAME: ["risk_reviewer"],
                **{f"demo.{role.value}": [role.value] for role in Role if role.value not in ("admin", "risk_reviewer")},
                "demo.admin2": ["admin"]}  # a second admin: staff-account changes are four-eyes
    assert {staff.username: sorted(staff.roles) for staff in DEMO_STAFF} == expected
    held: set[str] = set()
    for username, roles in expected.items():
        password, secret = printed[username]
        login = client.post("/v1/staff/login", json={
            "username": username, "password": password, "totp_code": pyotp.TOTP(secret).at(clock.now()),
        })
        assert login.status_code == 200, (username, login.json())
        assert sorted(login.json()["staff"]["roles"]) == roles
        held.update(roles)
        me = client.get("/v1/staff/me", headers={"Authorization": f"Bearer {login.json()['token']}"})
        assert me.status_code == 200 and me.json()["username"] == username, me.json()
    assert held == {role.value for role in Role}
    again = run_cli(settings, "demo", "seed", "--no-portfolio")
    assert "nothing changed" in again.output and _printed_credentials(again.output) == {}


def test_the_demo_admin_and_the_demo_reviewer_open_the_credit_review_queue(client, settings, clock):
    seeded = run_cli(settings, "demo", "seed", "--no-portfolio")
    assert seeded.exit_code == 0, seeded.output
    printed = _printed_credentials(seeded.output)
    for username, expected_roles in ((ADMIN_USERNAME, ["admin", "risk_manager"]),
                                     (REVIEWER_USERNAME, ["risk_reviewer"])):
        password, secret = printed[username]
        login = client.post("/v1/staff/login", json={
            "username": username, "password": password, "totp_code": pyotp.TOTP(secret).at(clock.now()),
        })
        assert login.status_code == 200, login.json()
        assert sorted(login.json()["staff"]["roles"]) == expected_roles
        queue = client.get("/v1/staff/credit/review-cases",
                           headers={"Authorization": f"Bearer {login.json()['token']}"})
        assert queue.status_code == 200, (username, queue.json())
        assert queue.json() == []


def test_a_demo_admin_seeded_before_gets_the_review_role_once(container):
    with container.db.transaction() as session:  # as an earlier `demo seed` left it: the admin role only
        staff_service.add_staff(session, container, username=ADMIN_USERNAME, display_name="old demo admin",
                                roles=["admin"], actor="system:demo-seed")
    report = seed_demo(container)
    assert report.admin is None and report.roles_granted == [f"{ADMIN_USERNAME}:risk_manager"]
    with container.db.transaction() as session:
        roles = session.execute(select(StaffRoleGrant.role).join(StaffUser, StaffUser.id == StaffRoleGrant.staff_id)
                                .where(StaffUser.username == ADMIN_USERNAME).order_by(StaffRoleGrant.role)).scalars()
        assert list(roles) == ["admin", "risk_manager"]
        grants = session.execute(select(AuditEntry.action).where(AuditEntry.action == "staff.roles_granted")).all()
        assert len(grants) == 1
    again = seed_demo(container)
    assert not again.changed
