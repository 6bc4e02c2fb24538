"""A twelve-month demo portfolio for the staff console: hundreds of borrowers' loans, made through the real services.

``seed_portfolio`` replays a year of a small lender's life on a test clock (:class:`~miaodai.core.clock.FixedClock`)
that starts on the first day of the month eleven months before yesterday's and ends at the container's own
"now". Every borrower goes the way the app takes them: an SMS login code read from the sandbox inbox, the
consents, real-name verification (carrier three elements and face liveness in the sandbox), a credit application
decided by the active ruleset and scorecard (some are declined or sent to review, as in life), a debit card bound
with the bank's code, a drawdown, the contract signed with a code sent for it, and the payout sent to the sandbox
channel and settled by its signed callback. Then time passes, day by day:

* every morning the payments worker's pass tries the day's auto-debit instructions (the sandbox channel answers
  and calls back two seconds later);
* borrowers act on their day: repay early (pay off, or part of the loan), catch up after being late (their empty
  card refused for three mornings, their salary moved to a card without auto-debit, then a card that holds money
  bound and what is due repaid), move their salary to a card the lender cannot debit and stop, or borrow again a
  few days after a loan is repaid;
* at each month's end the demo risk manager writes off loans more than 90 days past due (M3+) — most of them;
* every night the end-of-day batch closes the date (penalties, accrual, due dates, buckets, reminders,
  instructions) and the audit chain is sealed.

**Every date is closed.** The batch cannot catch up: it refuses a date out of order (``EOD_OUT_OF_ORDER``) and its
penalty and accrual steps charge one day per run, so skipping quiet dates would leave the book short of penalty
interest and accrual. It runs for each of the ~340 dates (about 0.07 s of CPU a date on this book). The
shortcuts are outside the lender: the sandbox parties answer without their simulated latency
(``MIAODAI_SANDBOX_LATENCY_SECONDS`` is 0 for the seed, as in the benchmarks), the payments worker's pass runs
once each morning (callbacks are delivered right after each action), and the size: about 200 applicants, each
onboarding costing about 0.3 s of CPU, most of them borrowing again, many more than once (a repeat loan costs
half as much): 300-odd loans. What made it cheaper is in the services, for every book: the worker ends the
instructions of borrowers without an auto-debit method in one UPDATE (a defaulter has one per unpaid
installment every day: 6,539 of the 7,276 instructions of the old 145-loan year, 45 % of its CPU), and a
sandbox without latency no longer calls ``sleep(0)``; the rate counters' upsert behind every SMS code and
code check is compiled once (SQLAlchemy never caches a multi-row VALUES insert: 4 ms of CPU a bump, now 1),
and the demo reads only the newest message of a sandbox inbox. The rest is the services' own cost per call,
spread over the ORM's work for each statement: about 100 s of CPU in all, not the issue's minute (the
command prints it by part).

Fates are drawn from :data:`PORTFOLIO_SEED`, so two seeds of the same day build the same book. The consent
documents came into force on 2026-01-01: months before the first date they were in force are left out (a run
in 2027 or later has all twelve).

Runs once: when the book already has closed business dates (someone ran ``eod run``) or the portfolio's first
borrower exists, it does nothing and says why.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from time import process_time
from urllib.parse import urlsplit

from rich.console import Console
from sqlalchemy import func, select
from stdnum.cn import ric

from miaodai.container import Container, build_container
from miaodai.core.audit import seal_pending
from miaodai.core.clock import BUSINESS_TZ, FixedClock, business_date
from miaodai.core.errors import DomainError
from miaodai.credit import service as credit_service
from miaodai.credit.features import Education, LoanPurpose, Occupation
from miaodai.credit.models import Decision
from miaodai.demo import DEMO_PRODUCT
from miaodai.identity import consent_service, kyc_service, login_service
from miaodai.identity.login_service import ClientInfo
from miaodai.identity.models import PHONE_INDEX, Borrower, ConsentDocument, ConsentKind, OtpChannel, StaffUser
from miaodai.identity.sessions import AuthContext
from miaodai.loans import contract_service, line_service, loan_service
from miaodai.loans.eod import book_summary, run_eod
from miaodai.loans.models import EodRun, Loan, LoanInstallment
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.states import LineStatus, LoanStatus
from miaodai.loans.write_off import MINIMUM_DAYS_PAST_DUE, write_off
from miaodai.payments import collections, methods, orders
from miaodai.payments.bins import sandbox_number
from miaodai.sandbox.channel import ACCOUNT_INSUFFICIENT_FUNDS
from miaodai.sandbox.sms import read_sandbox_inbox

PORTFOLIO_SEED = 19
MONTHS = 12
APPLICANTS_PER_MONTH = 17  # a few are declined or sent to review; most borrow again, many more than once
CONSENT_VERSION = "1.0"
WRITE_OFF_MANAGER = "demo.risk_manager"  # the demo's risk manager writes loans off (seeded by demo.py)
ACTOR = "system:demo-seed"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰文辉婷雪梅鹏飞宇浩然思雨子涵欣怡晨阳佳琪"
_REGIONS = ("110101", "110105", "310104", "310110", "440305", "440106", "330106", "320102", "510104", "420102",
            "310101", "610113", "210102", "370102", "430102", "350102")
_MOBILE_PREFIXES = ("135", "136", "137", "150", "151", "152", "158", "159", "182", "186", "187", "188", "198")
_OK_CARD_BINS = ("622202", "621700")  # 工商银行, 建设银行 debit: both support auto-debit
# 浙商银行 debit (docs/sandbox.md): binds, pays out, but the bank offers no auto-debit — where a defaulter's
# salary goes. Each morning's instruction for them then ends NO_AUTO_DEBIT_METHOD without a debit order.
NO_AUTO_DEBIT_CARD = "6210197770000000000"


class Fate(StrEnum):
    ON_TIME = "on_time"  # every installment taken by auto-debit on its due date
    PAYOFF = "payoff"  # pays the whole loan off early from the card (repay now)
    PREPAY = "prepay"  # repays part of the principal early, then on time
    LATE = "late"  # an empty card: the first installment is missed (the debits refused for
    # LATE_DEBIT_DAYS mornings, then a card without auto-debit), caught up ``late_days`` later
    DEFAULT = "default"  # pays ``paid_before_default`` installments, then a card without auto-debit, nothing more


REPEAT_AFTER_DAYS = 3  # a borrower who borrows again draws this many days after the last loan was repaid
LATE_DEBIT_DAYS = 3  # a late borrower's empty card is tried (and refused) on this many mornings

FATE_WEIGHTS = {Fate.ON_TIME: 50, Fate.PAYOFF: 12, Fate.PREPAY: 6, Fate.LATE: 14, Fate.DEFAULT: 18}


@dataclass(frozen=True)
class Applicant:
    n: int
    phone: str  # E.164
    name: str
    id_number: str
    applies_on: date
    monthly_income_fen: int
    occupation: Occupation
    education: Education
    purpose: LoanPurpose
    principal_fen: int  # asked for (drawn up to the line offered)
    term_months: int
    method: RepaymentMethod
    fate: Fate
    months_until_prepay: int  # PAYOFF / PREPAY: after this many installments
    late_days: int  # LATE: days after the first due date
    paid_before_default: int  # DEFAULT
    written_off: bool  # DEFAULT: written off once past M3 (otherwise left in M3+)
    borrows_again: bool  # after a loan repaid in full: draws a new one from the same line a few days later

    @property
    def ip(self) -> str:
        return f"10.{20 + self.n // 62500}.{self.n // 250 % 250}.{self.n % 250 + 1}"

    @property
    def client(self) -> ClientInfo:
        return ClientInfo(ip=self.ip, device_key=f"demo-device-{self.n:06d}",
                          user_agent=IPHONE_UA if self.n % 3 else ANDROID_UA)

    @property
    def card(self) -> str:
        """The card bound first: the payout goes to it and the auto-debits try it."""
        if self.fate is Fate.LATE:
            return ACCOUNT_INSUFFICIENT_FUNDS  # every debit fails INSUFFICIENT_FUNDS until a card with money
        if self.fate is Fate.DEFAULT and not self.paid_before_default:
            return NO_AUTO_DEBIT_CARD
        return self.good_card

    @property
    def good_card(self) -> str:
        return sandbox_number(_OK_CARD_BINS[self.n % 2], 19, f"66{self.n:08d}")


@dataclass
class PortfolioReport:
    skipped: str = ""  # why nothing was done
    first_day: date | None = None
    last_day: date | None = None
    applicants: int = 0
    decisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    loans: int = 0
    months: list[str] = field(default_factory=list)
    business_dates_closed: int = 0
    repayments_requested: int = 0
    written_off: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # this process's, by part


@contextmanager
def _cpu(into: dict[str, float], part: str) -> Iterator[None]:
    started = process_time()
    try:
        yield
    finally:
        into[part] += process_time() - started


# -- the plan ------------------------------------------------------------------------------------------


def disbursement_months(today: date, earliest: date) -> list[tuple[date, date]]:
    """The (first, last) days on which loans are made in each of the twelve months ending with yesterday's
    month, none before ``earliest`` nor after yesterday."""
    yesterday = today - timedelta(days=1)
    months = []
    year, month = yesterday.year, yesterday.month
    for _ in range(MONTHS):
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        last = min(following - timedelta(days=1), yesterday)
        if last >= earliest:
            months.append((max(first, earliest), last))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def plan(today: date, earliest: date, *, seed: int = PORTFOLIO_SEED,
         applicants_per_month: int = APPLICANTS_PER_MONTH) -> list[Applicant]:
    """Who applies when, asks for what, and how their loan goes: all drawn from ``seed``."""
    rng = random.Random(seed)
    applicants: list[Applicant] = []
    phones: set[str] = set()
    ids: set[str] = set()
    for first, last in disbursement_months(today, earliest):
        span = (last - first).days
        for _ in range(applicants_per_month):
            n = len(applicants)
            phone = ""
            while not phone or phone in phones:
                phone = "+86" + rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            phones.add(phone)
            id_number = ""
            while not id_number or id_number in ids or not ric.is_valid(id_number):
                born = date(1972, 1, 1) + timedelta(days=rng.randrange(30 * 365))
                head = f"{rng.choice(_REGIONS)}{born:%Y%m%d}{rng.randrange(10, 890):03d}"
                id_number = head + ric.calc_check_digit(head)
            ids.add(id_number)
            term = rng.choices((3, 6, 12), weights=(6, 4, 2))[0]
            fate = rng.choices(list(FATE_WEIGHTS), weights=list(FATE_WEIGHTS.values()))[0]
            applicants.append(Applicant(
                n=n, phone=phone, name=rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, rng.choice((1, 2)))),
                id_number=id_number, applies_on=first + timedelta(days=rng.randint(0, span)),
                monthly_income_fen=rng.randrange(5_000, 30_001, 500) * 100,
                occupation=rng.choices((Occupation.EMPLOYEE, Occupation.CIVIL_SERVANT, Occupation.SELF_EMPLOYED,
                                        Occupation.FREELANCER), weights=(6, 2, 2, 1))[0],
                education=rng.choice((Education.HIGH_SCHOOL, Education.ASSOCIATE, Education.BACHELOR,
                                      Education.POSTGRADUATE)),
                purpose=rng.choice((LoanPurpose.DAILY_CONSUMPTION, LoanPurpose.HOME_FURNISHING, LoanPurpose.TRAVEL,
                                    LoanPurpose.EDUCATION, LoanPurpose.MEDICAL)),
                principal_fen=rng.randrange(4, 61) * 500_00, term_months=term,
                method=rng.choices((RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL,
                                    RepaymentMethod.INTEREST_FIRST), weights=(6, 2, 1))[0],
                fate=fate, months_until_prepay=rng.randint(1, term - 1), late_days=rng.randint(4, 50),
                paid_before_default=rng.choice((0, 0, 1, 2)) if term > 3 else 0,
                written_off=rng.random() < 0.75, borrows_again=rng.random() < 0.9,
            ))
    return sorted(_every_bucket(applicants, today), key=lambda a: (a.applies_on, a.n))


# Days before today on which a first-payment default lands in each bucket at the end (the first due date is a
# month after the loan is made): M1, M2, M3, and M3+ left on the book. Two applicants of each window (some may
# be declined) are made such defaulters, so every bucket has loans whatever the day the seed runs.
_BUCKET_WINDOWS = ((35, 55), (66, 85), (96, 115), (130, 170))


def _every_bucket(applicants: list[Applicant], today: date) -> list[Applicant]:
    chosen = list(applicants)
    for latest, earliest in _BUCKET_WINDOWS:
        window = [i for i, a in enumerate(chosen)
                  if today - timedelta(days=earliest) <= a.applies_on <= today - timedelta(days=latest)]
        for i in window[:2]:
            chosen[i] = replace(chosen[i], fate=Fate.DEFAULT, paid_before_default=0, written_off=False)
    return chosen


# -- running it ----------------------------------------------------------------------------------------


@dataclass
class _Borrowing:
    applicant: Applicant  # the story of this loan (a repeat loan has its own)
    borrower_id: int
    line_id: int
    loan_id: int
    due_dates: list[date]
    number: int  # the borrower's first loan is 0


class _Replay:
    """The year, day by day, on the portfolio's own container (its clock is the test clock)."""

    def __init__(self, ports: Container, clock: FixedClock, report: PortfolioReport, manager: str,
                 today: date, seed: int) -> None:
        self.ports, self.clock, self.report, self.manager = ports, clock, report, manager
        self.today, self.seed = today, seed
        self.events: dict[date, list[tuple[str, _Borrowing]]] = defaultdict(list)
        self.defaulters: list[_Borrowing] = []
        self.all: list[_Borrowing] = []

    # -- plumbing --

    def at(self, day: date, hour: int, minute: int = 0) -> None:
        self.clock.set(datetime.combine(day, time(hour, minute), tzinfo=BUSINESS_TZ))

    def later(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def callbacks(self) -> None:
        """Let the sandbox channel settle what it accepted and post its signed callbacks, as the payments
        worker's pass does (in process: the callback route's own function)."""
        self.later(3)

        def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
            name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
            return orders.receive_callback(self.ports, name, body, dict(headers))

        self.ports.channel.deliver_due(self.clock.now(), post)  # type: ignore[attr-defined]

    def code(self, phone: str) -> str:
        messages = read_sandbox_inbox(self.ports.db, self.ports.vault, phone_e164=phone, now=self.clock.now(), limit=1)
        found = messages[0].code if messages else None
        if found is None:
            raise RuntimeError("no code has arrived in the sandbox SMS inbox")
        return found

    def log_in(self, who: Applicant) -> AuthContext:
        self.later(61)  # past any resend cooldown
        login_service.request_login_code(self.ports, phone=who.phone, channel=OtpChannel.SMS, client=who.client)
        self.later(15)
        result = login_service.log_in_with_code(self.ports, phone=who.phone, code=self.code(who.phone),
                                                client=who.client)
        return AuthContext(result.borrower.id, result.session.id, result.session.device_id, result.session.step_up_at)

    def bind_card(self, who: Applicant, auth: AuthContext, number: str) -> int:
        self.later(30)
        binding = methods.start_card_binding(self.ports, auth, number, None)
        self.later(20)
        return methods.confirm_card_binding(self.ports, auth, binding.token, self.code(who.phone)).id

    # -- a borrower's first day --

    def onboard(self, who: Applicant) -> None:
        ports = self.ports
        auth = self.log_in(who)
        for kind in (ConsentKind.PRIVACY_POLICY, ConsentKind.USER_AGREEMENT, ConsentKind.CARRIER_DATA):
            self.later(5)
            consent_service.grant(ports, auth, kind, CONSENT_VERSION)
        self.later(40)
        kyc_service.submit_identity(ports, auth, who.name, who.id_number)
        self.later(20)
        kyc_service.submit_face(ports, auth, "sandbox-pass")
        self.later(10)
        consent_service.grant(ports, auth, ConsentKind.CREDIT_BUREAU_QUERY, CONSENT_VERSION)
        self.later(30)
        decided = credit_service.apply(ports, auth, credit_service.ApplicationRequest(
            monthly_income_fen=who.monthly_income_fen, occupation=who.occupation, education=who.education,
            loan_purpose=who.purpose, product_code=ports.settings.credit_default_product))
        self.report.decisions[decided.decision.value] += 1
        if decided.decision is not Decision.APPROVED or decided.credit_line_id is None:
            return
        self.bind_card(who, auth, who.card)
        self.draw(who, auth, decided.credit_line_id, 0)

    def draw(self, who: Applicant, auth: AuthContext, line_id: int, number: int) -> None:
        """Draw, read the contract, sign it with the code sent for it; the payout is sent and called back."""
        ports = self.ports
        self.later(45)
        line = next(line for line in line_service.borrower_lines(ports, auth.borrower_id) if line.id == line_id)
        principal = min(who.principal_fen, line.available_fen // 100_00 * 100_00)
        if line.status is not LineStatus.ACTIVE or principal < DEMO_PRODUCT.min_amount_fen:
            return
        loan, _ = loan_service.request_drawdown(ports, auth, loan_service.DrawdownRequest(
            line_id=line_id, principal_fen=principal, method=who.method, term_months=who.term_months,
            term_days=None, request_key=f"demo-portfolio-{who.n}-{number}"))
        contract, _text = loan_service.open_contract(ports, auth, loan.id)
        self.later(70)  # reads the contract
        contract_service.request_sign_code(ports, auth, loan, read_sha256=contract.sha256, channel=OtpChannel.SMS,
                                           ip=who.ip)
        self.later(20)
        loan_service.sign(ports, auth, loan.id, read_sha256=contract.sha256, code=self.code(who.phone),
                          request_key=f"demo-portfolio-sign-{who.n}-{number}")
        loan_service.send_payout(ports, loan.id)
        self.callbacks()
        with ports.db.transaction() as session:
            due = list(session.execute(select(LoanInstallment.due_date).where(LoanInstallment.loan_id == loan.id)
                                       .order_by(LoanInstallment.period)).scalars())
        self.report.loans += 1
        borrowing = _Borrowing(who, auth.borrower_id, line_id, loan.id, due, number)
        self.all.append(borrowing)
        if who.fate in (Fate.PAYOFF, Fate.PREPAY):
            self.events[due[who.months_until_prepay - 1] + timedelta(days=9)].append((who.fate.value, borrowing))
        elif who.fate is Fate.LATE:  # three mornings of refused debits, then the salary goes elsewhere
            self.events[due[0] + timedelta(days=LATE_DEBIT_DAYS - 1)].append(("stop_paying", borrowing))
            self.events[due[0] + timedelta(days=who.late_days)].append(("catch_up", borrowing))
        elif who.fate is Fate.DEFAULT:
            self.defaulters.append(borrowing)
            if who.paid_before_default:
                self.events[due[who.paid_before_default - 1] + timedelta(days=2)].append(("stop_paying", borrowing))
        if who.borrows_again and who.fate in (Fate.ON_TIME, Fate.LATE, Fate.PREPAY):
            self.events[due[-1] + timedelta(days=REPEAT_AFTER_DAYS)].append(("borrow_again", borrowing))
        elif who.borrows_again and who.fate is Fate.PAYOFF:  # paid off 9 days after a due date
            self.events[due[who.months_until_prepay - 1] + timedelta(days=9 + REPEAT_AFTER_DAYS)].append(
                ("borrow_again", borrowing))

    def again(self, borrowing: _Borrowing) -> Applicant:
        """The story of a repeat loan: asked for on its own draw from the seed; repeat borrowers pay."""
        rng = random.Random(self.seed * 1_000_003 + borrowing.applicant.n * 101 + borrowing.number)
        return replace(
            borrowing.applicant, principal_fen=rng.randrange(4, 61) * 500_00,
            term_months=rng.choices((3, 6, 12), weights=(8, 3, 1))[0],
            fate=rng.choices((Fate.ON_TIME, Fate.PAYOFF), weights=(3, 1))[0],
            months_until_prepay=1, borrows_again=rng.random() < 0.9)

    # -- later days --

    def act(self, what: str, borrowing: _Borrowing) -> None:
        who, ports = borrowing.applicant, self.ports
        with ports.db.transaction() as session:
            status = session.get_one(Loan, borrowing.loan_id).status
        if what == "borrow_again":
            if status is LoanStatus.PAID_OFF:
                self.draw(self.again(borrowing), self.log_in(who), borrowing.line_id, borrowing.number + 1)
            return
        if status not in (LoanStatus.ACTIVE, LoanStatus.OVERDUE):
            return
        auth = self.log_in(who)
        if what == "stop_paying":  # a card the lender cannot debit as the default one; the old card unbound
            old = [m.id for m in methods.borrower_methods(ports, auth.borrower_id)]
            new = self.bind_card(who, auth, NO_AUTO_DEBIT_CARD)
            methods.set_default(ports, auth, new)
            for old_id in old:
                methods.unbind(ports, auth, old_id)
            return
        method_id: int | None = None
        if what == "catch_up":  # a card with money on it becomes the default, then repay what is due
            method_id = self.bind_card(who, auth, who.good_card)
            methods.set_default(ports, auth, method_id)
        purpose, amount, mode = {
            "payoff": (Purpose.PAYOFF, None, None),
            "prepay": (Purpose.PREPAYMENT, self._part_of_principal(borrowing), PrepaymentMode.SHORTER_TERM),
            "catch_up": (Purpose.DUE, None, None),
        }[what]
        self.later(20)
        try:
            collections.request_repayment(ports, auth.borrower_id, borrowing.loan_id, key=f"demo-{what}-{who.n}",
                                          purpose=purpose, amount_fen=amount, mode=mode, method_id=method_id)
        except DomainError:
            return  # e.g. an installment falls due that day: prepayment waits (the borrower would be told)
        self.report.repayments_requested += 1
        self.callbacks()

    def _part_of_principal(self, borrowing: _Borrowing) -> int:
        with self.ports.db.transaction() as session:
            outstanding = session.get_one(Loan, borrowing.loan_id).principal_outstanding_fen
        return max(500_00, outstanding // 3 // 100 * 100)

    def worker_pass(self) -> None:
        """The payments worker's morning: today's auto-debit instructions, then the channel's callbacks (every
        earlier callback was acknowledged when it came: with no debit sent, none is due)."""
        if collections.run_auto_debit(self.ports)["debits"]:
            self.callbacks()

    def write_offs(self) -> None:
        for borrowing in self.defaulters:
            if not borrowing.applicant.written_off:
                continue
            with self.ports.db.transaction() as session:
                loan = session.get_one(Loan, borrowing.loan_id)
                eligible = loan.status is LoanStatus.OVERDUE and loan.days_past_due > MINIMUM_DAYS_PAST_DUE
            if eligible:
                self.later(60)
                write_off(self.ports, borrowing.loan_id, actor=self.manager,
                          reason="M3+: no payment for more than 90 days, collection exhausted (demo)")
                self.report.written_off += 1


def seed_portfolio(container: Container, *, seed: int = PORTFOLIO_SEED,
                   applicants_per_month: int = APPLICANTS_PER_MONTH,
                   progress: Callable[[date], None] | None = None) -> PortfolioReport:
    """Replay the demo year up to the container's "now" (see the module's docstring); once."""
    report = PortfolioReport()
    end = container.clock.now()
    today = business_date(end)
    with container.db.transaction() as session:
        if session.scalar(select(func.count()).select_from(EodRun)):
            report.skipped = "the book already has closed business dates: a past year cannot be added before them"
            return report
        effective = session.scalar(select(func.max(ConsentDocument.effective_at)).where(
            ConsentDocument.version == CONSENT_VERSION))
        manager = session.scalar(select(StaffUser.id).where(StaffUser.username == WRITE_OFF_MANAGER))
    earliest = business_date(effective) + timedelta(days=1) if effective is not None else today
    applicants = plan(today, earliest, seed=seed, applicants_per_month=applicants_per_month)
    if not applicants:
        report.skipped = "no day before today on which the consent documents were in force"
        return report
    with container.db.transaction() as session:
        first = applicants[0]
        if session.scalar(select(Borrower.id).where(
                Borrower.phone_bidx == container.vault.blind_index(first.phone, PHONE_INDEX))):
            report.skipped = "the demo portfolio is already there"
            return report
    clock = FixedClock(end)
    ports = build_container(container.settings.model_copy(update={"sandbox_latency_seconds": 0.0}),
                            clock=clock, db=container.db)
    replay = _Replay(ports, clock, report, f"staff:{manager}" if manager is not None else ACTOR, today, seed)
    by_day: dict[date, list[Applicant]] = defaultdict(list)
    for applicant in applicants:
        by_day[applicant.applies_on].append(applicant)
    report.applicants, report.first_day, report.last_day = len(applicants), applicants[0].applies_on, today
    day = applicants[0].applies_on
    cpu = report.cpu_seconds
    while day < today:
        with _cpu(cpu, "payments worker"):
            replay.at(day, 7)
            replay.worker_pass()
        with _cpu(cpu, "borrowers' later days"):
            replay.at(day, 9, 30)
            for what, borrowing in replay.events.pop(day, []):
                replay.act(what, borrowing)
        with _cpu(cpu, "onboarding and first loans"):
            replay.at(day, 10)
            for applicant in by_day.get(day, []):
                replay.onboard(applicant)
        if (day + timedelta(days=1)).day == 1:  # month end
            with _cpu(cpu, "write-offs"):
                replay.at(day, 18)
                replay.write_offs()
        tomorrow = day + timedelta(days=1)
        clock.set(end if tomorrow == today else datetime.combine(tomorrow, time(0, 5), tzinfo=BUSINESS_TZ))
        with _cpu(cpu, "end-of-day batch"):
            run_eod(ports, day)
        with _cpu(cpu, "audit sealing"):
            seal_pending(ports.db, clock)
        report.business_dates_closed += 1
        if progress is not None:
            progress(day)
        day += timedelta(days=1)
    loan_ids = [b.loan_id for b in replay.all]
    with container.db.transaction() as session:
        report.statuses = {status.value: n for status, n in session.execute(
            select(Loan.status, func.count()).where(Loan.id.in_(loan_ids)).group_by(Loan.status)).all()}
        report.months = sorted({f"{d:%Y-%m}" for d in session.execute(
            select(Loan.start_date).where(Loan.id.in_(loan_ids))).scalars()})
        report.buckets = book_summary(session)
    return report


def print_portfolio(console: Console, report: PortfolioReport) -> None:
    if report.skipped:
        console.print(f"demo portfolio: nothing added ({report.skipped})")
        return
    decisions = ", ".join(f"{n} {decision}" for decision, n in sorted(report.decisions.items()))
    console.print(
        f"demo portfolio 演示贷款组合: {report.applicants} applicants from {report.first_day} ({decisions}), "
        f"{report.loans} loans made in {len(report.months)} months ({report.months[0]} – {report.months[-1]}), "
        f"{report.business_dates_closed} business dates closed by the end-of-day batch through "
        f"{report.last_day - timedelta(days=1) if report.last_day else '-'}")
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    buckets = ", ".join(f"{bucket} {n}" for bucket, n in report.buckets.items())
    console.print(f"  loans: {statuses}; on the book by bucket: {buckets}; {report.written_off} written off by "
                  f"{WRITE_OFF_MANAGER}; {report.repayments_requested} early or catch-up repayments")
    spent = ", ".join(f"{part} {seconds:.1f}" for part, seconds in report.cpu_seconds.items())
    console.print(f"  CPU seconds of this process: {sum(report.cpu_seconds.values()):.1f} ({spent})")
