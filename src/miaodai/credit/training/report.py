"""``report.html`` with its PNG plots beside it: ROC, KS, score distribution by outcome, calibration,
and a table of the variables (information value, or the trees' feature importance). Drawn from the
out-of-fold scores (matplotlib, Agg backend)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

PLOTS = ("roc.png", "ks.png", "scores.png", "calibration.png")


def write_report(
    out: Path, *, artifact: dict[str, Any], y: np.ndarray, scores: np.ndarray, table: dict[str, Any],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, -scores)
    metrics = artifact["metrics"]

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {metrics['auc']:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate (goods declined)", ylabel="true positive rate (bads declined)",
           title="ROC (out-of-fold)")
    ax.legend(loc="lower right")
    _save(fig, out / "roc.png")

    order = np.sort(np.unique(scores))
    bad_cdf = np.searchsorted(np.sort(scores[y == 1]), order, side="right") / max(1, int((y == 1).sum()))
    good_cdf = np.searchsorted(np.sort(scores[y == 0]), order, side="right") / max(1, int((y == 0).sum()))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(order, bad_cdf, label="bad")
    ax.plot(order, good_cdf, label="good")
    at = int(np.argmax(bad_cdf - good_cdf))
    ax.vlines(order[at], good_cdf[at], bad_cdf[at], colors="red", label=f"KS {metrics['ks']:.3f}")
    ax.set(xlabel="score", ylabel="cumulative share", title="KS: cumulative score distributions")
    ax.legend()
    _save(fig, out / "ks.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    edges = np.histogram_bin_edges(scores, bins=30)
    ax.hist(scores[y == 0], bins=edges, alpha=0.6, density=True, label="good")
    ax.hist(scores[y == 1], bins=edges, alpha=0.6, density=True, label="bad")
    ax.set(xlabel="score", ylabel="density", title="Score distribution by outcome (out-of-fold)")
    ax.legend()
    _save(fig, out / "scores.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    calibration = artifact["calibration"]
    ax.plot([p["score"] for p in calibration], [p["pd"] for p in calibration], marker="o", label="calibration")
    groups = np.array_split(np.argsort(scores), 10)
    ax.scatter([scores[g].mean() for g in groups], [y[g].mean() for g in groups], color="black", s=14, zorder=3,
               label="observed bad rate (deciles)")
    ax.set(xlabel="score", ylabel="PD", title="Calibration: score → probability of default")
    ax.legend()
    _save(fig, out / "calibration.png")

    path = out / "report.html"
    path.write_text(_html(artifact, table), encoding="utf-8")
    return path


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _html(artifact: dict[str, Any], table: dict[str, Any]) -> str:
    e = html.escape
    m, t = artifact["metrics"], artifact["training"]
    metric_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(m[k]))}</td></tr>"
                          for k in ("auc", "ks", "gini", "brier", "cv"))
    head = "".join(f"<th>{e(str(c))}</th>" for c in table["columns"])
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in table["rows"])
    cal_rows = "".join(f"<tr><td>{p['score']:.2f}</td><td>{p['pd']:.4f}</td></tr>" for p in artifact["calibration"])
    images = "".join(f'<img src="{name}" alt="{name[:-4]}">' for name in PLOTS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(artifact['model_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}img{{max-width:32em;margin:.5em}}</style></head>
<body><h1>{e(artifact['model_id'])}</h1>
<p>{e(artifact['algorithm'])} · {t['n_rows']} rows · bad rate {t['bad_rate']:.4f} · {e(t['description'])}</p>
<h2>Cross-validated performance</h2><table>{metric_rows}</table>
<div>{images}</div>
<h2>{e(table['title'])}</h2>
<table><tr>{head}</tr>{body}</table>
<h2>Calibration table</h2><table><tr><th>score</th><th>PD</th></tr>{cal_rows}</table>
</body></html>
"""
