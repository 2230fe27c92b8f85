"""`airparadis data report` on tiny sources this test writes, with numbers known in advance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from airparadis_cli.app import app
from training_jobs.data_report import read_labelled, summarise, vocabulary_overlap
from training_jobs.data_report_write import SUMMARY_FILE, latest_summary

# 24 rows: 10 negative, 14 positive. "I love it!!" and "i love it" clean alike (a duplicate);
# "meh whatever" is labelled both ways twice (a conflict over 4 rows, 3 of them copies);
# two rows carry mojibake (UTF-8 read as latin-1), one more is plain non-ASCII.
_ROWS = [
    ("I love it!!", 4), ("i love it", 4), ("meh whatever", 0), ("meh whatever", 4),
    ("Meh whatever", 0), ("meh whatever!", 4), ("cafÃ© was great", 4), ("naÃ¯ve crew, bad", 0),
    ("café is fine", 4), ("delayed again, awful service", 0), ("awful delay", 0),
    ("terrible awful flight", 0), ("lost my bag, awful", 0), ("awful awful", 0),
    ("great crew thanks", 4), ("thanks great seats", 4), ("great great day", 4),
    ("thanks so much", 4), ("great landing", 4), ("lovely thanks", 4), ("great view", 4),
    ("so great", 4), ("sad and awful", 0), ("hate waiting", 0),
]  # fmt: skip
_AIRLINE = [
    ("@united flight delayed, rebooked again", "negative"),
    ("@delta great crew", "positive"),
    ("@united where is my bag", "neutral"),
]


def _write(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "tweets.parquet"
    pd.DataFrame({"target": [t for _, t in _ROWS], "text": [x for x, _ in _ROWS]}).to_parquet(
        source
    )
    other = tmp_path / "airline.parquet"
    pd.DataFrame(
        {"label": [lab for _, lab in _AIRLINE], "text": [x for x, _ in _AIRLINE]}
    ).to_parquet(other)
    return source, other


def test_the_report_counts_what_the_data_holds(tmp_path: Path) -> None:
    source, other = _write(tmp_path)
    tweets = read_labelled(source)
    summary, cleaned = summarise(tweets)
    assert summary.rows == 24
    assert summary.class_counts == {"negative": 10, "positive": 14}
    assert summary.duplicate_rows == 4  # one "i love it", three "meh whatever"
    assert summary.conflicting_texts == 1 and summary.conflicting_rows == 4
    assert summary.mojibake_share == pytest.approx(2 / 24)
    assert summary.non_ascii_share == pytest.approx(3 / 24)
    assert summary.tokens_quantiles["positive"]["p50"] == 3.0
    telling = summary.telling
    assert telling["negative"]["words"][0].term == "awful"
    assert telling["positive"]["words"][0].term == "great"
    assert all(t.z > 0 for terms in telling["positive"].values() for t in terms)
    airline = read_labelled(other)
    assert airline.neutral == 1 and len(airline.frame) == 2
    overlap = vocabulary_overlap("a", cleaned, "b", summarise(airline)[1])
    # b: "xxuser flight delayed rebooked again" + "xxuser great crew": of its 8 tokens
    # (7 words), only xxuser (twice) and "rebooked" are missing from a.
    assert overlap.token_coverage == pytest.approx(5 / 8)
    assert overlap.oov_rate == pytest.approx(3 / 8)
    assert overlap.type_coverage == pytest.approx(5 / 7)
    assert overlap.top_oov[0] == ("xxuser", 2)


def test_the_command_writes_markdown_plots_and_logs_them_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    from airparadis.settings import PlatformSettings
    from dashboard.data_report_view import DataReportView, read_latest_data_report

    source, other = _write(tmp_path)
    home, out = tmp_path / "home", tmp_path / "home" / "reports" / "data" / "r1"
    result = CliRunner().invoke(
        app,
        ["data", "report", str(source), "--against", str(other), "--out", str(out)],
        env={"AIRPARADIS_HOME": str(home), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "24 rows (negative 10, positive 14)" in result.output
    assert "OOV rate 37.50 %" in result.output
    for name in ("report.md", "class_balance.png", "token_lengths.png", SUMMARY_FILE):
        assert (out / name).stat().st_size > 0, name
    assert (out / "class_balance.png").read_bytes().startswith(b"\x89PNG")
    report = (out / "report.md").read_text()
    assert "texts with both labels: 1, over 4 rows" in report
    summary = latest_summary(home)
    assert summary is not None and summary["metrics"]["duplicate_rows"] == 4
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary
    run_id = re.search(r"MLflow run: (\w+)", result.output)
    assert run_id is not None
    client = mlflow.MlflowClient()
    run = client.get_run(run_id.group(1))
    assert run.data.metrics["conflicting_texts"] == 1.0
    assert run.data.tags["stage"] == "data-report"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "data_report")}
    assert "data_report/report.md" in logged and "data_report/token_lengths.png" in logged
    # The ops page's card reads the same run back.
    monkeypatch.setenv("AIRPARADIS_HOME", str(home))
    latest = read_latest_data_report(PlatformSettings())
    assert latest is not None and latest.run_id == run.info.run_id
    assert latest.against == str(other) and latest.metrics["rows"] == 24.0
    card = DataReportView(PlatformSettings())._body.object
    assert "24 labelled tweets, 58.33 % positive" in card and "OOV rate 37.50 %" in card
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow set it for `home`
    assert read_latest_data_report(PlatformSettings()) is None
    assert "No data report yet" in DataReportView(PlatformSettings())._body.object


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.csv", "no such file or folder"),
        (lambda d: _text(d / "notes.txt", "hello"), "unsupported file type"),
        (lambda d: _parquet(d / "bad.parquet", {"words": ["a"]}), "needs a 'text' column"),
        (
            lambda d: _parquet(d / "neutral.parquet", {"label": ["neutral"], "text": ["ok"]}),
            "no usable labelled rows",
        ),
    ],
    ids=["missing", "unsupported", "no-text-column", "only-neutral"],
)
def test_bad_input_is_a_message_and_exit_2(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        app,
        ["data", "report", str(make(tmp_path)), "--no-mlflow", "--out", str(tmp_path / "o")],
        env={"AIRPARADIS_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def _text(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def _parquet(path: Path, columns: dict[str, list[str]]) -> Path:
    pd.DataFrame(columns).to_parquet(path)
    return path


def test_the_ops_page_carries_the_data_report_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.app import ops_app
    from tests.dashboard.conftest import settings_for

    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path / "home"))
    page = ops_app(settings_for("http://127.0.0.1:9"))
    cards = [part for part in page.main if "ap-data-report" in part.css_classes]
    assert len(cards) == 1 and "No data report yet" in str(cards[0].objects[1].object)
    without_registry = ops_app(settings_for("http://127.0.0.1:9", registry_enabled=False))
    assert not any("ap-data-report" in part.css_classes for part in without_registry.main)
