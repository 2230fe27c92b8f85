"""`airparadis data report`: run the analysis (`training_jobs.data_report`), write it as
Markdown, PNG plots and ``summary.json`` into a folder, and log that folder to MLflow.

``summary.json`` is the machine-readable face: the dashboard reads the latest one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from airparadis import LABELS
from airparadis.settings import PlatformSettings
from airparadis.text import clean_tweets
from training_jobs.data_report import (
    Overlap,
    SourceSummary,
    metrics_of,
    read_labelled,
    summarise,
    vocabulary_overlap,
)

REPORT_FILE = "report.md"
CLASS_PLOT = "class_balance.png"
LENGTH_PLOT = "token_lengths.png"
SUMMARY_FILE = "summary.json"
REPORTS_DIR = "reports/data"
"""Under the platform home: one folder per report, named by its UTC time."""
ARTIFACT_PATH = "data_report"


@dataclass
class ReportResult:
    out: Path
    summary: SourceSummary
    overlap: Overlap | None
    run_id: str | None
    seconds: float


def default_out(platform: PlatformSettings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return platform.home / REPORTS_DIR / stamp


def latest_summary(home: Path) -> dict[str, Any] | None:
    """The newest report's ``summary.json`` under the home, or None when there is none."""
    found = sorted((home / REPORTS_DIR).glob(f"*/{SUMMARY_FILE}"))
    if not found:
        return None
    summary: dict[str, Any] = json.loads(found[-1].read_text())
    return summary


def data_report(
    source: Path,
    against: Path | None,
    out: Path,
    platform: PlatformSettings,
    log_to_mlflow: bool = True,
) -> ReportResult:
    """Analyse `source` (and its vocabulary against `against`), write, and log the report."""
    started = time.perf_counter()
    tweets = read_labelled(source)
    summary, cleaned = summarise(tweets)
    overlap = None
    if against is not None:
        other = read_labelled(against)
        other_cleaned = clean_tweets(other.frame["text"].astype(str).tolist())
        overlap = vocabulary_overlap(summary.name, cleaned, other.name, other_cleaned)
    out.mkdir(parents=True, exist_ok=True)
    plot_classes(summary, out / CLASS_PLOT)
    plot_lengths(cleaned, tweets.frame["label"].to_numpy(), out / LENGTH_PLOT)
    seconds = time.perf_counter() - started
    (out / REPORT_FILE).write_text(markdown(summary, overlap, seconds), encoding="utf-8")
    payload = {
        "created_at": datetime.now(UTC).isoformat(),
        "source": summary.name,
        "against": None if overlap is None else overlap.b,
        "seconds": seconds,
        "metrics": metrics_of(summary, overlap),
        "summary": asdict(summary),
        "overlap": None if overlap is None else asdict(overlap),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    run_id = _log_run(out, payload, platform) if log_to_mlflow else None
    return ReportResult(out, summary, overlap, run_id, seconds)


def _log_run(out: Path, payload: dict[str, Any], platform: PlatformSettings) -> str:
    """One MLflow run (tagged `DATA_REPORT_STAGE`) with the numbers as metrics, the folder as
    artifacts under ``data_report/``."""
    import mlflow

    from airparadis.tracking import DATA_REPORT_STAGE, configure_tracking

    configure_tracking(platform)
    with mlflow.start_run(run_name="data-report") as run:
        mlflow.set_tags({"stage": DATA_REPORT_STAGE})
        mlflow.log_params({"data.source": payload["source"], "data.against": payload["against"]})
        mlflow.log_metrics({k: float(v) for k, v in payload["metrics"].items()})
        mlflow.log_artifacts(str(out), artifact_path=ARTIFACT_PATH)
    return str(run.info.run_id)


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_classes(summary: SourceSummary, path: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4, 3))
    names = list(summary.class_counts)
    ax.bar(names, [summary.class_counts[n] for n in names], color=["#c0392b", "#27ae60"])
    ax.set_ylabel("tweets")
    ax.set_title("Class balance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_lengths(cleaned: list[str], labels: np.ndarray, path: Path) -> None:
    """Histogram of tokens per cleaned tweet, one series per class (share of the class)."""
    plt = _figure()
    tokens = np.array([len(c.split()) for c in cleaned])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.arange(0, max(int(tokens.max(initial=0)), 1) + 2) - 0.5
    for index, (name, colour) in enumerate(zip(LABELS, ("#c0392b", "#27ae60"), strict=True)):
        values = tokens[labels == index]
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.5, label=name, color=colour)
    ax.set_xlabel("tokens per cleaned tweet")
    ax.set_ylabel("share of the class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def markdown(summary: SourceSummary, overlap: Overlap | None, seconds: float) -> str:
    rows = max(summary.rows, 1)
    lines = [
        f"# Data report: {summary.name}",
        "",
        f"{summary.rows} labelled rows ({summary.neutral} neutral and {summary.malformed} "
        f"malformed rows left out); {summary.vocabulary} distinct cleaned tokens; "
        f"analysed in {seconds:.1f} s.",
        "",
        "## Class balance",
        "",
        "| class | tweets | share |",
        "|---|---|---|",
        *(f"| {k} | {v} | {_pct(v / rows)} |" for k, v in summary.class_counts.items()),
        "",
        f"![class balance]({CLASS_PLOT})",
        "",
        "## Tweet length per class (tokens after cleaning)",
        "",
        "| class | mean | p10 | p50 | p90 | p99 | mean characters |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {k} | {q['mean']:.1f} | {q['p10']:.0f} | {q['p50']:.0f} | {q['p90']:.0f} | "
            f"{q['p99']:.0f} | {summary.chars_mean[k]:.1f} |"
            for k, q in summary.tokens_quantiles.items()
        ),
        "",
        f"![token lengths]({LENGTH_PLOT})",
        "",
        "## Duplicates and conflicting labels (same cleaned text)",
        "",
        f"- duplicate rows (extra copies): {summary.duplicate_rows} "
        f"({_pct(summary.duplicate_rows / rows)})",
        f"- texts with both labels: {summary.conflicting_texts}, over "
        f"{summary.conflicting_rows} rows",
        "",
        "## Encoding",
        "",
        f"- non-ASCII rows: {_pct(summary.non_ascii_share)}",
        f"- mojibake rows (UTF-8 read as latin-1, repaired by cleaning): "
        f"{_pct(summary.mojibake_share)}",
        "",
        "## Most telling words and bigrams per class",
        "",
        "Log-odds ratio z-score with an informative Dirichlet prior (pooled counts); terms seen "
        "at least 5 times.",
        "",
    ]
    for name, kinds in summary.telling.items():
        for kind, terms in kinds.items():
            shown = ", ".join(f"`{t.term}` ({t.z:.1f})" for t in terms) or "none"
            lines.append(f"- **{name} {kind}**: {shown}")
    if overlap is not None:
        lines += [
            "",
            f"## Vocabulary overlap: {overlap.b} against {overlap.a}",
            "",
            f"- tokens of {overlap.b} whose word {overlap.a} has: "
            f"{_pct(overlap.token_coverage)} (OOV rate {_pct(overlap.oov_rate)})",
            f"- distinct words of {overlap.b} that {overlap.a} has: {_pct(overlap.type_coverage)}",
            "- most frequent words missing from "
            + overlap.a
            + ": "
            + ", ".join(f"`{t}` ({c})" for t, c in overlap.top_oov),
        ]
    return "\n".join(lines) + "\n"


def terminal_summary(result: ReportResult) -> str:
    """The few lines the command prints."""
    s = result.summary
    counts = ", ".join(f"{k} {v}" for k, v in s.class_counts.items())
    lines = [
        f"{s.name}: {s.rows} rows ({counts}) in {result.seconds:.1f} s",
        f"duplicates {s.duplicate_rows}, conflicting texts {s.conflicting_texts}, "
        f"non-ASCII {_pct(s.non_ascii_share)}, mojibake {_pct(s.mojibake_share)}",
    ]
    if result.overlap is not None:
        o = result.overlap
        lines.append(
            f"{o.b} against {o.a}: token coverage {_pct(o.token_coverage)}, "
            f"OOV rate {_pct(o.oov_rate)}"
        )
    lines.append(f"report: {result.out / REPORT_FILE}")
    if result.run_id is not None:
        lines.append(f"MLflow run: {result.run_id}")
    return "\n".join(lines)
