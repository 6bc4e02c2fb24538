"""Credit commands of the ``miaodai`` CLI: ``rules backtest`` (and, with the batch, ``credit rescore``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

rules_app = typer.Typer(help="Credit policy rulesets: backtest a ruleset against stored decisions.",
                        no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def read_ruleset(path: Path):  # noqa: ANN201 - a Ruleset, imported lazily
    from miaodai.credit.rules import Ruleset, RulesetError

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Ruleset.from_document(document)
    except FileNotFoundError:
        raise typer.BadParameter(f"no such file: {path}", param_hint="--ruleset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--ruleset") from None
    except RulesetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ruleset") from None


@rules_app.command("backtest")
def backtest_command(
    ruleset: Path = typer.Option(..., "--ruleset", help="The candidate ruleset (JSON like data/default_ruleset.json)."),
    since: str | None = typer.Option(None, help="Only applications from this date, YYYY-MM-DD."),
    limit: int = typer.Option(10_000, min=1, help="At most this many of the latest applications."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Replay stored decisions under a candidate ruleset and show how approvals would change."""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.credit.backtest import backtest

    candidate = read_ruleset(ruleset)
    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(f"not a date: {since!r} (YYYY-MM-DD)", param_hint="--since") from None
    container = build_container(get_settings())
    try:
        report = backtest(container, candidate, since=since_date, limit=limit)
    finally:
        container.db.dispose()
    if as_json:
        console.print_json(json.dumps({**report.summary(), "changes": report.changed}))
        return
    summary = report.summary()
    table = Table(title=f"回测 backtest: {summary['candidate']} vs active {summary['baseline']}")
    for column in ("", "approved", "review", "declined", "approval rate"):
        table.add_column(column)
    for label, counts, rate in (("active", report.baseline_counts, summary["baseline_approval_rate"]),
                                ("candidate", report.candidate_counts, summary["candidate_approval_rate"])):
        table.add_row(label, *(str(counts[k]) for k in ("approved", "review", "declined")), f"{rate:.2%}")
    console.print(table)
    console.print(f"{summary['applications']} applications replayed; {summary['changed']} would change.")
    for change in report.changed[:20]:
        console.print(f"  #{change['application_id']} {change['application_date']}: "
                      f"{change['baseline']} → {change['candidate']} {', '.join(change['candidate_codes'])}")


credit_app = typer.Typer(help="Credit lines: the re-scoring batch and the model registry.", no_args_is_help=True)


@credit_app.command("rescore")
def rescore_command(
    limit: int | None = typer.Option(None, min=1, help="At most this many lines (default: every active line)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's figures as JSON."),
) -> None:
    """Re-evaluate active lines with fresh bureau data: raise, lower or freeze them, and tell the borrower."""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.credit.rescore import rescore

    container = build_container(get_settings())
    try:
        report = rescore(container, limit=limit)
    finally:
        container.db.dispose()
    summary = {"business_date": report.business_date.isoformat(), "counts": dict(report.counts),
               "changes": report.changes}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table(title=f"额度重评 rescore {summary['business_date']}")
    table.add_column("outcome")
    table.add_column("lines", justify="right")
    for action, count in sorted(report.counts.items()):
        table.add_row(action, str(count))
    console.print(table)


@credit_app.command("register-model")
def register_model_command(
    artifact: Path = typer.Option(..., "--artifact", help="A points-table JSON written by `miaodai model train`."),
) -> None:
    """Register a model as a candidate; promoting it needs two staff members (see docs/model.md)."""
    from miaodai.container import build_container
    from miaodai.core.errors import DomainError
    from miaodai.core.settings import get_settings
    from miaodai.credit.policy_admin import register_model

    try:
        document = json.loads(artifact.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"no such file: {artifact}", param_hint="--artifact") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--artifact") from None
    container = build_container(get_settings())
    try:
        row = register_model(container, "system:cli", document)
    except DomainError as error:
        err_console.print(f"[red]{error.code}[/]: {error.message_zh}\n{error.message_en}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        container.db.dispose()
    console.print(f"registered {row.model_id} (sha256 {row.sha256}) as a candidate")


def monitor_command(
    since: str | None = typer.Option(None, help="First business day, YYYY-MM-DD (default: all)."),
    until: str | None = typer.Option(None, help="Last business day, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Per day: applications, approval rate, score distribution and PSI against training, per-feature PSI;
    and early delinquency of booked loans by grade. (Registered as `miaodai model monitor`.)"""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.credit.monitor import monitor

    def day(text: str | None, option: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise typer.BadParameter(f"not a date: {text!r} (YYYY-MM-DD)", param_hint=option) from None

    container = build_container(get_settings())
    try:
        report = monitor(container, since=day(since, "--since"), until=day(until, "--until"))
    finally:
        container.db.dispose()
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(title=f"模型监控 model monitor: {report['model_id']}")
    for column in ("date", "applications", "approval rate", "score PSI", "features to watch"):
        table.add_column(column)
    for d in report["days"]:
        rate = "" if d["approval_rate"] is None else f"{d['approval_rate']:.1%}"
        psi = "" if d["score_psi"] is None else f"{d['score_psi']:.3f} ({d['score_psi_verdict']})"
        table.add_row(d["date"], str(d["applications"]), rate, psi, ", ".join(d["features_to_watch"]))
    console.print(table)
    grades = Table(title="早期逾期 early delinquency of booked loans by grade")
    for column in ("grade", "loans", "past due now", "30+ days", "written off", "30+ rate"):
        grades.add_column(column)
    for grade, g in report["early_delinquency_by_grade"].items():
        rate = "" if g["dpd30_plus_rate"] is None else f"{g['dpd30_plus_rate']:.1%}"
        grades.add_row(grade, str(g["loans"]), str(g["past_due"]), str(g["dpd30_plus"]), str(g["written_off"]), rate)
    console.print(grades)


def outcomes_command(
    out: Path = typer.Option(..., "--out", help="The CSV to write (features as decided, application_id, bad)."),
    min_days_on_book: int = typer.Option(90, min=1, help="Good loans must be at least this old to count."),
) -> None:
    """Export approved applications with known outcomes for retraining (`miaodai model train --data OUT
    --target bad --ignore application_id`). The file holds personal data: keep it protected, delete it after.
    (Registered as `miaodai model outcomes`.)"""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.credit.outcomes import export_outcomes

    container = build_container(get_settings())
    try:
        counts = export_outcomes(container, out, min_days_on_book=min_days_on_book)
    finally:
        container.db.dispose()
    console.print_json(json.dumps({"out": str(out), **counts}))
