"""``miaodai model``: train a scoring model on a labelled CSV, make synthetic applicants (docs/model.md).

Both commands need the ``model`` extra (``uv sync --extra model``); it is imported inside the commands,
so ``miaodai --help`` and ``miaodai model --help`` work without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

model_app = typer.Typer(
    help="Scoring models: train on a labelled CSV (scorecard or LightGBM), synthetic training data. "
    "Needs the model extra: uv sync --extra model.",
    no_args_is_help=True,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _need_extra() -> None:
    import logging

    logging.getLogger("__cvxpy__").disabled = True  # cvxpy (under optbinning) logs a solver it does not need
    try:
        import lightgbm  # noqa: F401
        import optbinning  # noqa: F401
    except ImportError:
        _fail("the model extra is not installed: run `uv sync --extra model` (or pip install 'miaodai[model]')")


@model_app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Labelled CSV: one row per applicant, a header line."),
    target: str = typer.Option(..., "--target", help="The outcome column."),
    out: Path = typer.Option(..., "--out", help="Folder for the artifact, report.html and its plots."),
    bad_value: str | None = typer.Option(
        None, "--bad-value", help="The target value meaning bad (default: the target is 0/1 with 1 = bad)."),
    algorithm: str = typer.Option("scorecard", "--algorithm", help="scorecard (points table) or lightgbm."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fold split (and of LightGBM)."),
    description: str | None = typer.Option(None, "--description", help="Kept in the artifact's training section."),
    model_id: str | None = typer.Option(
        None, "--model-id", help="Unique model id (default: <file>-<data sha256[:8]>-<algorithm>)."),
    ignore: list[str] = typer.Option(  # noqa: B006 - typer reads the default
        [], "--ignore", help="A column not to use as a feature (repeatable), e.g. an id or true_pd."),
) -> None:
    """Cross-validate and fit a model; the last line printed is a JSON summary."""
    _need_extra()
    from miaodai.credit.training.dataset import TrainingDataError
    from miaodai.credit.training.pipeline import TrainOptions, train

    if model_id is not None and not 0 < len(model_id) <= 64:
        _fail("--model-id must have 1-64 characters")
    options = TrainOptions(data=data, target=target, out=out, bad_value=bad_value, algorithm=algorithm, seed=seed,
                           description=description, model_id=model_id, ignore=tuple(ignore))
    try:
        summary = train(options)
    except TrainingDataError as exc:
        _fail(str(exc))
    typer.echo(f"{summary['algorithm']} {summary['model_id']}: AUC {summary['auc']:.4f}, KS {summary['ks']:.4f}, "
               f"Gini {summary['gini']:.4f}, Brier {summary['brier']:.4f} (stratified 5-fold, seed {seed})")
    typer.echo(f"artifact {summary['artifact']}  report {summary['report']}")
    typer.echo(json.dumps(summary, ensure_ascii=False))


@model_app.command("synth")
def synth_command(
    rows: int = typer.Option(..., "--rows", min=1, help="How many synthetic applicants."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives the same file."),
    out: Path = typer.Option(..., "--out", help="CSV to write (the features, bad and true_pd)."),
) -> None:
    """Synthetic applicants with a known ground truth (docs/model.md): train the default model on them."""
    _need_extra()
    from miaodai.credit.training.synthetic import write_csv

    summary = write_csv(out, rows=rows, seed=seed)
    typer.echo(json.dumps(summary, ensure_ascii=False))
