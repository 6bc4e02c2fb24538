"""``miaodai demo seed``: something to look at on a new install.

Creates, in one transaction and only what is missing: a demo loan product, one demo staff account per role
(:data:`DEMO_STAFF`) whose generated passwords and TOTP secrets are returned once (for the console to print;
they are never stored in plaintext nor logged), and three demo borrowers who have finished onboarding
(verified identity, all four consents), two of them with a credit line and a bound debit card. The
command then adds a year of loans (:mod:`miaodai.demo_portfolio`) for the console's queues and charts.

``demo.reviewer`` (risk_reviewer) works the credit review queue and proposes manual lines; ``demo.admin``
manages staff and reads the audit trail (admin) and, as the demo's first risk_manager, opens the same queue
and approves the reviewer's overrides and proposals. Every other role has its own ``demo.<role>`` account
(``demo.risk_manager``, ``demo.customer_service``, ``demo.finance``, ``demo.collections``,
``demo.compliance``, ``demo.auditor``), so each desk of the console can be shown by the role that works it
and every maker-checker step by two different people; ``demo.admin2``, a second administrator, approves the
staff-account changes ``demo.admin`` proposes (and the other way round). A demo admin created before it had
the risk_manager role is given it (and the grant audited). Every created thing writes its audit entry.
Running it again changes nothing.

The borrowers' data is synthetic: valid-checksum resident ID numbers and phone numbers
outside the sandbox's special test values, so they log in through the sandbox SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from miaodai.cli_render import credentials_panel
from miaodai.container import Container
from miaodai.core.clock import business_date
from miaodai.core.masking import mask_id_number, mask_name
from miaodai.identity import staff_service
from miaodai.identity.models import (
    ID_NUMBER_INDEX,
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    PHONE_INDEX,
    Borrower,
    BorrowerStatus,
    Consent,
    ConsentDocument,
    KycIdentity,
    KycStatus,
    StaffRoleGrant,
    StaffUser,
)
from miaodai.identity.rbac import ROLES, Role
from miaodai.identity.read_models import name_index
from miaodai.loans import line_service
from miaodai.loans.models import LoanProduct
from miaodai.loans.products import ProductSpec
from miaodai.loans.schedule import RepaymentMethod
from miaodai.payments.bins import sandbox_number
from miaodai.payments.methods import record_demo_card

ACTOR = "system:demo-seed"
PRODUCT_CODE = "DEMO-12"
ADMIN_USERNAME = "demo.admin"
ADMIN_ROLES = ("admin", "risk_manager")
REVIEWER_USERNAME = "demo.reviewer"
REVIEWER_ROLES = ("risk_reviewer",)
CONSENT_VERSION = "1.0"


@dataclass(frozen=True)
class DemoStaff:
    username: str
    roles: tuple[str, ...]
    second: bool = False  # a second account of its role (a staff-account change needs another admin)

    @property
    def display_name(self) -> str:
        main = ROLES[Role(self.roles[0])].name
        if self.second:
            return f"演示{main['zh_CN']}二 Demo second {main['en'].lower()}"
        return f"演示{main['zh_CN']} Demo {main['en'].lower()}"

    @property
    def title(self) -> str:
        """What the credentials panel is headed with."""
        return f"{self.display_name} ({', '.join(self.roles)})"


SECOND_ADMIN_USERNAME = "demo.admin2"

# The admin and the reviewer the demo always had, then one account for each other role (a role added to
# roles.toml gets its demo account too), and a second administrator: a change to a staff account is
# four-eyes and never approved by its maker, so the demo needs two admins to show one.
DEMO_STAFF = (
    DemoStaff(ADMIN_USERNAME, ADMIN_ROLES),
    DemoStaff(REVIEWER_USERNAME, REVIEWER_ROLES),
    *(DemoStaff(f"demo.{role.value}", (role.value,)) for role in Role
      if role.value not in (*ADMIN_ROLES[:1], *REVIEWER_ROLES)),
    DemoStaff(SECOND_ADMIN_USERNAME, ("admin",), second=True),
)


@dataclass(frozen=True)
class DemoBorrower:
    phone: str  # E.164, as the login service normalises it
    name: str
    id_number: str
    line_fen: int = 0  # a credit line granted by the seed (0: none)
    card: str | None = None  # a debit card already bound (the sandbox channel pays it out at once)


# Every repayment method; its costliest offer (18 % + 0.1 %/month fee, interest first) is 19.2 % APR, under the cap.
DEMO_PRODUCT = ProductSpec(
    code=PRODUCT_CODE, name_zh="秒贷演示产品", name_en="Miaodai demo loan",
    min_amount_fen=500_00, max_amount_fen=50_000_00, methods=tuple(RepaymentMethod),
    min_annual_rate=Decimal("0.072"), max_annual_rate=Decimal("0.18"), terms_months=(3, 6, 12),
    bullet_max_days=30, monthly_fee_rate=Decimal("0.001"), late_fee_fen=20_00, grace_days=3,
)

DEMO_LINE_RATE = Decimal("0.1548")

DEMO_BORROWERS = (
    DemoBorrower("+8613800138001", "王小明", "110101199003071233", line_fen=20_000_00,
                 card=sandbox_number("622202", 19, "7700000001")),  # 工商银行 debit
    DemoBorrower("+8613800138002", "李晓燕", "31010419881121242X", line_fen=50_000_00,
                 card=sandbox_number("621700", 19, "7700000002")),  # 建设银行 debit
    # No line: staff can try the maker-checker grant on this one.
    DemoBorrower("+8613800138003", "陈建国", "440305199506155319"),
)


@dataclass
class SeedReport:
    product_created: bool = False
    staff: dict[str, staff_service.NewStaff] = field(default_factory=dict)  # username: the new account
    roles_granted: list[str] = field(default_factory=list)  # "username:role" given to an existing account
    borrowers_created: list[DemoBorrower] = field(default_factory=list)

    @property
    def admin(self) -> staff_service.NewStaff | None:
        return self.staff.get(ADMIN_USERNAME)

    @property
    def reviewer(self) -> staff_service.NewStaff | None:
        return self.staff.get(REVIEWER_USERNAME)

    @property
    def changed(self) -> bool:
        return (self.product_created or bool(self.staff) or bool(self.roles_granted)
                or bool(self.borrowers_created))


def seed_demo(container: Container, *, every_role: bool = False) -> SeedReport:
    """The demo data (see the module's docstring). ``every_role``: the ``demo.<role>`` accounts too, as
    ``miaodai demo seed`` makes them; without it only the admin and the reviewer (the many tests that seed the
    demo borrowers need no more, and each account costs an argon2 hash, ~0.35 s of CPU)."""
    report = SeedReport()
    with container.db.transaction() as session:
        now = container.clock.now()
        report.product_created = _ensure_product(session, container, now)
        for demo_staff in DEMO_STAFF if every_role else DEMO_STAFF[:2]:
            created = _ensure_staff(session, container, demo_staff.username, demo_staff.display_name,
                                    demo_staff.roles, report)
            if created is not None:
                report.staff[demo_staff.username] = created
        for demo in DEMO_BORROWERS:
            borrower_id = _ensure_borrower(session, container, demo, now)
            if borrower_id is not None:
                report.borrowers_created.append(demo)
                if demo.line_fen:
                    _add_line(session, container, borrower_id, demo, now)
                if demo.card:
                    record_demo_card(session, container, borrower_id, demo.card, demo.phone, now=now, actor=ACTOR)
    return report


def _add_line(session: Session, container: Container, borrower_id: int, demo: DemoBorrower, now: datetime) -> None:
    product_id = session.execute(select(LoanProduct.id).where(LoanProduct.code == PRODUCT_CODE)).scalar_one()
    line = line_service.grant_line(
        session, borrower_id=borrower_id, product_id=product_id, limit_fen=demo.line_fen,
        annual_rate=DEMO_LINE_RATE, risk_grade="B", expires_on=business_date(now) + timedelta(days=365),
        source=ACTOR, now=now,
    )
    container.audit.record(
        session, actor=ACTOR, action="credit_line.grant", subject=f"credit_line:{line.id}",
        details={"borrower_id": borrower_id, "limit_fen": line.limit_fen, "annual_rate": str(DEMO_LINE_RATE)},
    )


def _ensure_product(session: Session, container: Container, now: datetime) -> bool:
    if session.execute(select(LoanProduct.id).where(LoanProduct.code == PRODUCT_CODE)).first():
        return False
    product = LoanProduct.from_spec(DEMO_PRODUCT, created_at=now, created_by=ACTOR)
    session.add(product)
    session.flush()
    container.audit.record(
        session, actor=ACTOR, action="loan_product.create", subject=f"loan_product:{product.id}",
        details={"code": PRODUCT_CODE, "max_annual_rate": str(DEMO_PRODUCT.max_annual_rate),
                 "monthly_fee_rate": str(DEMO_PRODUCT.monthly_fee_rate), "cost_cap": str(DEMO_PRODUCT.cost_cap)},
    )
    return True


def _ensure_staff(
    session: Session, container: Container, username: str, display_name: str, roles: tuple[str, ...],
    report: SeedReport,
) -> staff_service.NewStaff | None:
    """The new account (its credentials to show once), or None when it exists: then only missing roles are
    granted, e.g. to a demo admin seeded before it was also the demo's risk_manager."""
    staff_id = session.execute(select(StaffUser.id).where(StaffUser.username == username)).scalar_one_or_none()
    if staff_id is None:
        return staff_service.add_staff(
            session, container, username=username, display_name=display_name, roles=roles, actor=ACTOR,
        )
    held = set(session.execute(select(StaffRoleGrant.role).where(StaffRoleGrant.staff_id == staff_id)).scalars())
    missing = sorted(set(roles) - held)
    if missing:
        now = container.clock.now()
        for role in missing:
            session.add(StaffRoleGrant(staff_id=staff_id, role=role, granted_at=now, granted_by=None))
        container.audit.record(
            session, actor=ACTOR, action="staff.roles_granted", subject=f"staff:{staff_id}",
            details={"username": username, "roles": missing},
        )
        report.roles_granted.extend(f"{username}:{role}" for role in missing)
    return None


def _ensure_borrower(session: Session, container: Container, demo: DemoBorrower, now: datetime) -> int | None:
    """The new borrower's id, or None when they already exist."""
    vault = container.vault
    phone_bidx = vault.blind_index(demo.phone, PHONE_INDEX)
    if session.execute(select(Borrower.id).where(Borrower.phone_bidx == phone_bidx)).first():
        return None
    borrower = Borrower(
        phone_enc=vault.encrypt(demo.phone, PHONE_FIELD), phone_bidx=phone_bidx,
        status=BorrowerStatus.ACTIVE, kyc_status=KycStatus.VERIFIED, created_at=now,
    )
    session.add(borrower)
    session.flush()
    subject = f"borrower:{borrower.id}"
    container.audit.record(session, actor=ACTOR, action="borrower.registered", subject=subject,
                           details={"source": "demo_seed"})
    _add_verified_identity(session, container, borrower.id, demo, now)
    container.audit.record(session, actor=ACTOR, action="kyc.verified", subject=subject,
                           details={"source": "demo_seed"})
    for document in session.execute(
        select(ConsentDocument).where(ConsentDocument.version == CONSENT_VERSION).order_by(ConsentDocument.id)
    ).scalars():
        session.add(Consent(
            borrower_id=borrower.id, document_id=document.id, kind=document.kind, version=document.version,
            device_id=None, granted_at=now,
        ))
        container.audit.record(session, actor=ACTOR, action="consent.granted", subject=subject,
                               details={"kind": document.kind.value, "version": document.version})
    return borrower.id


def _add_verified_identity(
    session: Session, container: Container, borrower_id: int, demo: DemoBorrower, now: datetime
) -> None:
    vault = container.vault
    id_number = ric.validate(demo.id_number)
    session.add(KycIdentity(
        borrower_id=borrower_id,
        name_enc=vault.encrypt(demo.name, KYC_NAME_FIELD),
        id_number_enc=vault.encrypt(id_number, KYC_ID_NUMBER_FIELD),
        id_number_bidx=vault.blind_index(id_number, ID_NUMBER_INDEX),
        name_bidx=name_index(vault, demo.name),
        birth_date=ric.get_birth_date(id_number),
        gender="M" if int(id_number[16]) % 2 else "F",
        region_code=id_number[:6],
        carrier_verified_at=now,
        face_verified_at=now,
    ))


def print_report(console: Console, report: SeedReport) -> None:
    if not report.changed:
        console.print("demo data already present; nothing changed")
    elif report.product_created:
        console.print(
            f"created demo loan product {PRODUCT_CODE}: ¥500–¥50,000, 3/6/12 months or up to 30 days, "
            "7.2%–18% a year + 0.1%/month service fee, every repayment method"
        )
    for demo_staff in DEMO_STAFF:
        new_account = report.staff.get(demo_staff.username)
        if new_account is not None:
            console.print(credentials_panel(new_account, demo_staff.title))
    for granted in report.roles_granted:
        username, role = granted.split(":", 1)
        console.print(f"granted the role {role} to the existing staff account {username}")
    table = Table(title="Demo borrowers 演示借款人: verified, 4 consents; log in with the sandbox SMS code")
    for heading in ("phone 手机号", "name 姓名", "ID 身份证", "credit line 额度", "this run"):
        table.add_column(heading)
    created = set(report.borrowers_created)
    for demo in DEMO_BORROWERS:
        table.add_row(
            demo.phone, mask_name(demo.name), mask_id_number(demo.id_number),
            f"¥{demo.line_fen // 100:,} at {DEMO_LINE_RATE * 100}%" if demo.line_fen else "none",
            "created" if demo in created else "already present",
        )
    console.print(table)
