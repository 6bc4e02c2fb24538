"""Loan-engine commands of the ``miaodai`` CLI: ``quote`` (registered on the top-level app)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation

import typer
from rich.console import Console
from rich.table import Table

from miaodai.core.errors import DomainError
from miaodai.core.formatting import percent, yuan
from miaodai.core.money import Money
from miaodai.loans.quotes import DEFAULT_COST_CAP, quote, quote_json, terms_or_error
from miaodai.loans.schedule import DayCount, RepaymentMethod, Schedule

console = Console()
err_console = Console(stderr=True)


def _bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=option)


def _decimal(option: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _bad(option, f"not a decimal number: {text!r} (e.g. 0.18)") from None
    if not value.is_finite():
        raise _bad(option, f"not a decimal number: {text!r}")
    return value


def quote_command(
    principal: str = typer.Option(..., help="Principal in yuan, e.g. 10000.00."),
    annual_rate: str = typer.Option(..., help="Nominal annual interest rate as a decimal, e.g. 0.18 for 18%."),
    method: RepaymentMethod = typer.Option(RepaymentMethod.EQUAL_INSTALLMENT, help="Repayment method."),
    term: int | None = typer.Option(None, help="Term in months (monthly methods)."),
    term_days: int | None = typer.Option(None, help="Term in days (bullet only, at most 365)."),
    monthly_fee_rate: str = typer.Option("0", help="Monthly service fee on the original principal, e.g. 0.003."),
    start_date: str | None = typer.Option(None, help="Payout date YYYY-MM-DD (default: today in Beijing)."),
    day_count: DayCount = typer.Option(DayCount.ACT_360, help="Day-count basis for daily interest."),
    cost_cap: str = typer.Option(str(DEFAULT_COST_CAP), help="Refuse terms whose APR is above this annual rate."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (money in fen, APR a decimal string)."),
) -> None:
    """Quote a loan: the full repayment schedule and the annualized rate (IRR method), before anything is signed."""
    try:
        principal_fen = Money.from_yuan(principal).fen
    except ValueError as exc:
        raise _bad("--principal", str(exc)) from None
    if start_date is None:
        from miaodai.core.clock import SystemClock, business_date

        start = business_date(SystemClock().now())
    else:
        try:
            start = date.fromisoformat(start_date)
        except ValueError:
            raise _bad("--start-date", f"not a date: {start_date!r} (YYYY-MM-DD)") from None
    try:
        terms = terms_or_error(
            principal_fen=principal_fen, annual_rate=_decimal("--annual-rate", annual_rate), method=method,
            start_date=start, term_months=term, term_days=term_days,
            monthly_fee_rate=_decimal("--monthly-fee-rate", monthly_fee_rate), day_count=day_count,
        )
        schedule = quote(terms, cost_cap=_decimal("--cost-cap", cost_cap))
    except DomainError as error:
        err_console.print(f"[red]{error.code}[/]: {error.message_zh}\n{error.message_en}", highlight=False)
        if error.code == "LOAN_APR_ABOVE_CAP":
            err_console.print("(for analysis only, --cost-cap 0.36 prints the schedule anyway)")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(quote_json(schedule), ensure_ascii=False, indent=2))
    else:
        console.print(schedule_table(schedule))


def schedule_table(schedule: Schedule) -> Table:
    terms = schedule.terms
    term = f"{terms.term_months} 个月 months" if terms.method.is_monthly else f"{terms.term_days} 天 days"
    table = Table(
        title=f"{yuan(terms.principal_fen)} 元 · {term} · {terms.method.name_zh} {terms.method.value}",
        caption=(
            f"年化利率 APR (IRR) {percent(schedule.apr)} · 名义年利率 nominal {percent(terms.annual_rate)}\n"
            f"利息 interest {yuan(schedule.total_interest_fen)} · "
            f"服务费 fees {yuan(schedule.total_fee_fen)} · "
            f"总成本 total cost {yuan(schedule.total_cost_fen)} · "
            f"应还合计 total repayment {yuan(schedule.total_repayment_fen)}"
        ),
    )
    for header in ("期数\nPeriod", "还款日\nDue", "本金\nPrincipal", "利息\nInterest", "服务费\nFee", "合计\nTotal"):
        table.add_column(header, justify="right")
    for row in schedule.installments:
        table.add_row(
            str(row.period), row.due_date.isoformat(), yuan(row.principal_fen),
            yuan(row.interest_fen), yuan(row.fee_fen), yuan(row.total_fen),
        )
    return table


contract_app = typer.Typer(help="Loan contracts: check a signed contract end to end.", no_args_is_help=True)


@contract_app.command("verify")
def contract_verify(
    contract: str = typer.Argument(..., help="Contract number (e.g. MD20261122AB12CD34) or loan id."),
) -> None:
    """Check that the stored text hashes to the signed hash, the platform signature verifies under the
    named key, and the signing record sits in the audit log. Exit 0 when all hold, 1 naming what fails."""
    from sqlalchemy import or_, select

    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.loans import contract_service
    from miaodai.loans.models import LoanContract

    container = build_container(get_settings())
    condition = LoanContract.contract_no == contract
    if contract.isdigit():
        condition = or_(condition, LoanContract.loan_id == int(contract))
    with container.db.transaction() as session:
        found = session.execute(select(LoanContract).where(condition)).scalars().first()
        if found is None:
            err_console.print(f"[red]no contract {contract}[/]")
            raise typer.Exit(1)
        result = contract_service.verify(session, container, found, container.signer)
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"[red]contract {result.contract_no}[/]: {problem}")
        raise typer.Exit(1)
    console.print(f"[green]contract {result.contract_no} verified[/]: text, platform signature and audit record agree")


@contract_app.command("rotate-key")
def contract_rotate_key() -> None:
    """Retire the platform's contract-signing key (its public half kept, so signed contracts still verify)
    and write a new one. Restart the servers afterwards so they sign with the new key."""
    from miaodai.contracts.signing import rotate
    from miaodai.core.settings import get_settings

    retired, signer = rotate(get_settings().contract_signing_key_file)
    console.print(f"retired key {retired}; new signing key {signer.key_id} — restart the servers to use it")


loan_app = typer.Typer(help="Loans: statements.", no_args_is_help=True)


@loan_app.command("statement")
def loan_statement(
    loan_id: int = typer.Argument(..., help="The loan's id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (amounts in fen)."),
) -> None:
    """Every transaction of a loan with running balances, each traceable to its journal entry."""
    from miaodai.core.db import Database
    from miaodai.core.settings import get_settings
    from miaodai.loans.models import Loan
    from miaodai.loans.statement import statement

    db = Database(get_settings().database_url)
    try:
        with db.transaction() as session:
            loan = session.get(Loan, loan_id)
            if loan is None:
                err_console.print(f"[red]no loan {loan_id}[/]")
                raise typer.Exit(1)
            lines = statement(session, loan_id)
            loan_no = loan.loan_no
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps([line.as_dict() for line in lines], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Statement 对账单 · loan {loan_id} {loan_no}")
    for column in ("entry", "date 日期", "what 摘要", "cash 收付", "principal 本金", "interest 利息", "fee 费用",
                   "penalty 罚息", "held 溢缴"):
        table.add_column(column, justify="left" if column.startswith(("date", "what")) else "right")
    for line in lines:
        b = line.balance
        table.add_row(str(line.entry_id), line.business_date.isoformat(), f"{line.name_zh} {line.name_en}",
                      yuan(line.cash_fen), *(yuan(v) for v in (
                          b.principal_fen, b.interest_fen, b.fee_fen, b.penalty_fen, b.overpayment_fen)))
    console.print(table)
