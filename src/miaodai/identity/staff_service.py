"""Staff accounts: creation, login (password + TOTP), sessions and logout.

Each use case is one transaction and writes its audit entry in it. A failed login
must still *commit* (the failure counters, the audit entry), so the login use case
returns its error out of the transaction and raises it after the commit.

Failures are counted against the caller's network (:mod:`miaodai.identity.counters`), never by locking
the account (staff_rules explains why); an unknown username costs the same argon2 check (against a dummy
hash), is counted the same and gets the same answer as a wrong password.

Passwords are argon2 hashes (re-hashed on login when the parameters change); the TOTP
secret is stored encrypted (field ``staff.totp_secret``); session tokens are stored
only as a keyed hash, like borrower sessions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.identity import counters, rbac, staff_rules
from miaodai.identity.login_errors import retry_later
from miaodai.identity.models import IP_INDEX, STAFF_TOTP_FIELD, StaffRoleGrant, StaffSession, StaffUser
from miaodai.identity.sessions import hash_token
from miaodai.identity.staff_errors import StaffErrors

TOKEN_PREFIX = "mdst_"  # noqa: S105 - a public marker, not a secret
ISSUER = "Miaodai"
# Module-level so tests (and a future settings knob) can swap the cost parameters.
PASSWORD_HASHER = PasswordHasher()


@dataclass(frozen=True)
class NewStaff:
    """A created account with its initial secrets, to be shown to the person once."""

    staff_id: int
    username: str
    password: str
    totp_secret: str

    @property
    def otpauth_uri(self) -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.username, issuer_name=ISSUER)


@dataclass(frozen=True)
class StaffContext:
    """Who is calling the staff API: the account, its roles and the session."""

    staff_id: int
    username: str
    display_name: str
    roles: frozenset[str]
    session_id: int

    @property
    def permissions(self) -> frozenset[str]:
        return rbac.permissions_for(self.roles)

    @property
    def actor(self) -> str:
        return f"staff:{self.staff_id}"


@dataclass(frozen=True)
class StaffLogin:
    token: str
    expires_at: datetime
    staff: StaffContext
    # The session may only finish the first login: change the password and/or enrol TOTP (scope "setup").
    setup_required: bool = False


class Scope:
    """What a staff session token opens: the API (bearer), the console (cookie), or only first-login setup."""

    API = "api"
    CONSOLE = "console"
    SETUP = "setup"


@dataclass(frozen=True)
class StaffClient:
    """Where a login comes from, as the staff member's login history shows it (the address masked)."""

    ip: str = "unknown"
    user_agent: str | None = None

    @property
    def ip_masked(self) -> str:
        return mask_ip(self.ip)


def mask_ip(ip: str) -> str:
    """``203.0.113.x`` / ``2001:db8:85a3::x``: enough to tell the office from elsewhere, not the machine."""
    if ip.count(".") == 3:
        return ip.rsplit(".", 1)[0] + ".x"
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::x"
    return ip[:64]


def add_staff(
    session: Session, ports: Platform, *, username: str, display_name: str, roles: Iterable[str],
    actor: str, password: str | None = None, setup_on_first_login: bool = False,
) -> NewStaff:
    """Create an account inside the caller's transaction; a password is generated when none is given.

    ``setup_on_first_login``: the password is a one-time password and the TOTP secret is not handed over (an
    account an administrator made in the console): the first login must change the one and enrol a new one.
    Without it (the CLI, which prints both once), the account is ready to use."""
    username = staff_rules.normalise_username(username)
    roles = sorted(set(roles))
    _check_new_account(session, username, roles, password)
    password = password or secrets.token_urlsafe(18)
    totp_secret = pyotp.random_base32()
    now = ports.clock.now()
    user = StaffUser(
        username=username, display_name=display_name[:120], password_hash=PASSWORD_HASHER.hash(password),
        totp_secret_enc=ports.vault.encrypt(totp_secret, STAFF_TOTP_FIELD), active=True, failed_logins=0,
        created_at=now, totp_enrolled_at=None if setup_on_first_login else now,
        must_change_password=setup_on_first_login,
    )
    session.add(user)
    session.flush()
    grantor = int(actor.split(":", 1)[1]) if actor.startswith("staff:") else None
    for role in roles:
        session.add(StaffRoleGrant(staff_id=user.id, role=role, granted_at=now, granted_by=grantor))
    ports.audit.record(
        session, actor=actor, action="staff.created", subject=f"staff:{user.id}",
        details={"username": username, "roles": roles},
    )
    return NewStaff(user.id, username, password, totp_secret)


def _check_new_account(session: Session, username: str, roles: list[str], password: str | None) -> None:
    if not staff_rules.is_valid_username(username):
        raise DomainError(StaffErrors.INVALID_USERNAME, params={"username": username[:64]})
    for role in roles:
        if not rbac.is_known_role(role):
            known = ", ".join(sorted(rbac.KNOWN_ROLES))
            raise DomainError(StaffErrors.UNKNOWN_ROLE, params={"role": role, "known": known})
    if password is not None and not staff_rules.password_is_acceptable(password):
        raise DomainError(StaffErrors.WEAK_PASSWORD, params={"min_length": staff_rules.MIN_PASSWORD_LENGTH})
    if session.execute(select(StaffUser.id).where(StaffUser.username == username)).first():
        raise DomainError(StaffErrors.USERNAME_TAKEN, params={"username": username})


@dataclass(frozen=True)
class _PasswordCheck:
    """The outcome of the (slow) argon2 check, made before the recording transaction opens."""

    checked_hash: str | None
    matches: bool
    rehashed: str | None  # a new hash when the stored one used outdated parameters
    judged: bool = True  # False: skipped, the network looked throttled before the check


@dataclass(frozen=True)
class _Network:
    """The caller's network as the failure counters know it: all its failures, and those at this username."""

    ip_key: str
    ip_username_key: str

    def bumps(self, delta: int) -> list[counters.Bump]:
        return [counters.Bump(counters.Kind.STAFF_IP_HOUR, self.ip_key, delta),
                counters.Bump(counters.Kind.STAFF_IP_USER_HOUR, self.ip_username_key, delta)]


def login(ports: Platform, *, username: str, password: str, totp_code: str,
          ip: str = "unknown", scope: str = Scope.API, user_agent: str | None = None) -> StaffLogin:
    """Check password then TOTP from the network ``ip``; count failures against that network and refuse it
    once it has had its hour's failures. Raises a DomainError on failure.

    An account that must still change its one-time password or enrol TOTP gets a ``setup`` session instead
    (:attr:`StaffLogin.setup_required`); without TOTP enrolled, the password alone opens only that. The API
    (``scope="api"``) refuses such an account with STAFF_SETUP_REQUIRED: first login happens in the console."""
    username = staff_rules.normalise_username(username)
    client = StaffClient(ip, user_agent)
    ip_key = ports.vault.blind_index(ip, IP_INDEX)
    network = _Network(ip_key, counters.pair_key(ip_key, username))
    now = ports.clock.now()
    with ports.db.transaction() as session:
        stored = session.execute(
            select(StaffUser.password_hash).where(StaffUser.username == username)
        ).scalar_one_or_none()
        throttled = staff_rules.network_throttled(
            counters.peek(session, counters.Kind.STAFF_IP_HOUR, network.ip_key, now).n,
            counters.peek(session, counters.Kind.STAFF_IP_USER_HOUR, network.ip_username_key, now).n)
    # argon2 costs ~0.1 s by design: run it outside any transaction so no lock is held meanwhile
    # (on SQLite every transaction holds the database's write lock). Unknown users cost the same; a network
    # already throttled costs nothing (its answer does not depend on the username either).
    if throttled:
        check = _PasswordCheck(None, False, None, judged=False)
    else:
        matches = _password_matches(stored or _dummy_hash(), password) and stored is not None
        rehashed = (PASSWORD_HASHER.hash(password)
                    if matches and stored is not None and PASSWORD_HASHER.check_needs_rehash(stored) else None)
        check = _PasswordCheck(stored, matches, rehashed)
    with ports.db.transaction() as session:
        outcome = _attempt_login(session, ports, username, check, totp_code, network, scope, client)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _attempt_login(
    session: Session, ports: Platform, username: str, check: _PasswordCheck, totp_code: str,
    network: _Network, scope: str, client: StaffClient,
) -> StaffLogin | DomainError:
    now = ports.clock.now()
    # The network's counters, read under their row locks (held to the end of this transaction), so attempts
    # released together are judged one after another and a network gets exactly its failures, never more.
    before = counters.bump(session, network.bumps(0), now)
    ip_count, ip_user_count = before[counters.Kind.STAFF_IP_HOUR], before[counters.Kind.STAFF_IP_USER_HOUR]
    if staff_rules.network_throttled(ip_count.n, ip_user_count.n):
        ports.audit.record(session, actor="anonymous", action="staff.login_throttled", subject="staff:network",
                               details={"ip_failures": ip_count.n, "ip_username_failures": ip_user_count.n})
        return retry_later(StaffErrors.LOGIN_THROTTLED, now=now, retry_at=ip_count.resets_at,
                           limit=staff_rules.FAILURES_PER_IP_PER_USERNAME_PER_HOUR)
    if not check.judged:  # the hour ended between the two looks: nothing was checked, nothing is counted
        return _login_failed()
    user = session.execute(
        select(StaffUser).where(StaffUser.username == username).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        counters.bump(session, network.bumps(1), now)
        _audit_login_failure(session, ports, "staff:unknown", "unknown_user")
        return _login_failed()
    subject = f"staff:{user.id}"
    # A password changed between the check and now counts as wrong.
    if not check.matches or user.password_hash != check.checked_hash:
        return _count_failure(session, ports, user, network, now, "wrong_password")
    if not user.active:
        _audit_login_failure(session, ports, subject, "inactive")
        return DomainError(StaffErrors.INACTIVE)
    if check.rehashed is not None:
        user.password_hash = check.rehashed
    if user.totp_enrolled_at is None:  # nothing to check a code against yet: the password opens only setup
        return _setup_or_refuse(session, ports, user, None, now, scope, client)
    secret = ports.vault.decrypt(user.totp_secret_enc, STAFF_TOTP_FIELD)
    step = staff_rules.matching_totp_step(secret, totp_code, now)
    if step is None:
        return _count_failure(session, ports, user, network, now, "wrong_totp")
    if staff_rules.is_replayed_step(step, user.last_totp_step):
        return _count_failure(session, ports, user, network, now, "totp_reused")
    if user.must_change_password:
        user.last_totp_step = step
        return _setup_or_refuse(session, ports, user, step, now, scope, client)
    return _complete_login(session, ports, user, step, now, scope, client)


# A first login's setup session: long enough to install an authenticator app, short enough not to linger.
SETUP_MINUTES = 15


def _setup_or_refuse(session: Session, ports: Platform, user: StaffUser, step: int | None, now: datetime,
                     scope: str, client: StaffClient) -> StaffLogin | DomainError:
    if scope != Scope.CONSOLE:
        ports.audit.record(session, actor=f"staff:{user.id}", action="staff.login_setup_required",
                           subject=f"staff:{user.id}", details={"scope": scope})
        return DomainError(StaffErrors.SETUP_REQUIRED)
    pending = None if user.totp_enrolled_at is not None else ports.vault.encrypt(pyotp.random_base32(),
                                                                                 STAFF_TOTP_FIELD)
    token, record = open_session(session, ports, user, Scope.SETUP, client, now,
                                 expires_at=now + timedelta(minutes=SETUP_MINUTES), setup_totp_secret_enc=pending)
    ports.audit.record(
        session, actor=f"staff:{user.id}", action="staff.setup_started", subject=f"staff:{user.id}",
        details={"session_id": record.id, "change_password": bool(user.must_change_password),
                 "enrol_totp": pending is not None},
    )
    return StaffLogin(token, record.expires_at, _context(session, user, record.id), setup_required=True)


def open_session(session: Session, ports: Platform, user: StaffUser, scope: str, client: StaffClient,
                 now: datetime, *, expires_at: datetime | None = None,
                 setup_totp_secret_enc: str | None = None) -> tuple[str, StaffSession]:
    """A new session row of ``scope`` for ``user``; the token is returned, only its keyed hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = StaffSession(
        staff_id=user.id, token_hash=hash_token(token, ports.settings.session_pepper), created_at=now,
        expires_at=expires_at or now + timedelta(hours=ports.settings.staff_session_ttl_hours), scope=scope,
        last_seen_at=now, ip_masked=client.ip_masked, user_agent=(client.user_agent or "")[:200] or None,
        setup_totp_secret_enc=setup_totp_secret_enc,
    )
    session.add(record)
    session.flush()
    return token, record


def _complete_login(
    session: Session, ports: Platform, user: StaffUser, step: int, now: datetime, scope: str, client: StaffClient,
) -> StaffLogin:
    failures = user.failed_logins or 0
    user.failed_logins, user.locked_until, user.last_totp_step = 0, None, step
    token, record = open_session(session, ports, user, scope, client, now)
    expires_at = record.expires_at
    ports.audit.record(
        session, actor=f"staff:{user.id}", action="staff.login", subject=f"staff:{user.id}",
        details={"session_id": record.id, "scope": scope, "ip": client.ip_masked,
                 **({"after_failures": failures} if failures else {})},
    )
    if failures >= staff_rules.REVIEW_AFTER_FAILURES:
        # The owner got in after a run of failures (theirs, or someone's guessing): in, but looked at.
        ports.audit.record(
            session, actor="system", action="staff.review_flagged", subject=f"staff:{user.id}",
            details={"reason": "login_after_failures", "failures": failures, "session_id": record.id},
        )
    return StaffLogin(token, expires_at, _context(session, user, record.id))


def _count_failure(
    session: Session, ports: Platform, user: StaffUser, network: _Network, now: datetime, reason: str
) -> DomainError:
    counters.bump(session, network.bumps(1), now)
    outcome = staff_rules.after_failure(user.failed_logins or 0)
    user.failed_logins = outcome.failed_logins
    subject = f"staff:{user.id}"
    _audit_login_failure(session, ports, subject, reason)
    if outcome.flag_for_review:
        ports.audit.record(
            session, actor="system", action="staff.review_flagged", subject=subject,
            details={"reason": "failures_in_a_row", "failures": outcome.failed_logins, "after": reason},
        )
    if reason == "totp_reused":
        return DomainError(StaffErrors.TOTP_REUSED)
    return _login_failed()


def _audit_login_failure(session: Session, ports: Platform, subject: str, reason: str) -> None:
    ports.audit.record(
        session, actor="anonymous", action="staff.login_failed", subject=subject, details={"reason": reason}
    )


def _login_failed() -> DomainError:
    return DomainError(
        StaffErrors.LOGIN_FAILED,
        params={"limit": staff_rules.FAILURES_PER_IP_PER_USERNAME_PER_HOUR},
    )


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return PASSWORD_HASHER.hash(secrets.token_urlsafe(18))


def _context(session: Session, user: StaffUser, session_id: int) -> StaffContext:
    roles = session.execute(select(StaffRoleGrant.role).where(StaffRoleGrant.staff_id == user.id)).scalars()
    return StaffContext(user.id, user.username, user.display_name, frozenset(roles), session_id)


# How often a console session's last use is written: a page view a minute is enough for a 15-minute timeout.
TOUCH_EVERY = timedelta(seconds=60)


def authenticate(session: Session, token: str, *, pepper: str, now: datetime, scope: str = Scope.API,
                 idle_minutes: int | None = None) -> StaffContext | None:
    """The staff context of a live session token of ``scope``, or None (unknown, another scope, revoked,
    expired, idle longer than ``idle_minutes``, account disabled). A live one's last use is brought up to date."""
    row = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == hash_token(token, pepper))
    ).first()
    if row is None:
        return None
    record, user = row
    if record.revoked_at is not None or record.expires_at <= now or not user.active or record.scope != scope:
        return None
    last_seen = record.last_seen_at or record.created_at
    if idle_minutes is not None and now - last_seen >= timedelta(minutes=idle_minutes):
        return None
    if now - last_seen >= TOUCH_EVERY:
        record.last_seen_at = now
    return _context(session, user, record.id)


def logout(ports: Platform, staff: StaffContext) -> None:
    with ports.db.transaction() as session:
        record = session.get(StaffSession, staff.session_id)
        if record is not None and record.revoked_at is None:
            record.revoked_at = ports.clock.now()
        ports.audit.record(
            session, actor=staff.actor, action="staff.logout", subject=staff.actor,
            details={"session_id": staff.session_id},
        )
