"""The session's history as rows: one per prediction, drawn in a table and exported as CSV.

The confidence goes through `dashboard.certainty.percent`, the rule of the cards, so both show
the same number; the table draws it as a bar in the label's colour.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, tzinfo

import pandas as pd

from dashboard.certainty import Certainty, percent
from dashboard.words import local_clock

TABLE_COLUMNS = ["time", "tweet", "sentiment", "confidence", "feedback"]
CSV_COLUMNS = [
    "time", "tweet", "sentiment", "predicted_label", "probability_positive",
    "confidence_percent", "model_version", "feedback",
]  # fmt: skip
BAR_COLOR = {"positive": "#2da44e", "negative": "#cf222e", "uncertain": "#8c959f"}
SENTIMENT_TEXT = {"positive": "▲ positive", "negative": "▼ negative", "uncertain": "? uncertain"}


@dataclass
class HistoryRow:
    """One prediction of the session and the feedback given on it so far."""

    created: datetime
    tweet: str
    certainty: Certainty
    probability: float
    model_version: str | None
    feedback: str = "—"


def confidence_bar(certainty: Certainty) -> str:
    """The confidence as a small bar coloured by the verdict, with its number."""
    shown = percent(certainty.confidence)
    color = BAR_COLOR.get(certainty.verdict, BAR_COLOR["uncertain"])
    return (
        f'<div class="ap-bar" title="{shown} % confident">'
        f'<div style="width:{shown}%;background:{color};height:8px;border-radius:4px"></div>'
        f"<span>{shown} %</span></div>"
    )


def table_frame(rows: list[HistoryRow], zone: tzinfo) -> pd.DataFrame:
    """What the history table shows, newest first."""
    return pd.DataFrame(
        [
            {
                "time": local_clock(r.created, zone),
                "tweet": r.tweet,
                "sentiment": SENTIMENT_TEXT.get(r.certainty.verdict, r.certainty.verdict),
                "confidence": confidence_bar(r.certainty),
                "feedback": r.feedback,
            }
            for r in reversed(rows)
        ],
        columns=TABLE_COLUMNS,
    )


def csv_rows(rows: list[HistoryRow], zone: tzinfo) -> list[dict[str, str | float | int]]:
    """The export's rows, oldest first: full tweets, numbers as numbers, local ISO times."""
    return [
        {
            "time": r.created.astimezone(zone).isoformat(timespec="seconds"),
            "tweet": r.tweet,
            "sentiment": r.certainty.verdict,
            "predicted_label": r.certainty.leaning,
            "probability_positive": round(r.probability, 4),
            "confidence_percent": percent(r.certainty.confidence),
            "model_version": r.model_version or "local",
            "feedback": "" if r.feedback == "—" else r.feedback,
        }
        for r in rows
    ]


def to_csv(rows: list[HistoryRow], zone: tzinfo) -> io.StringIO:
    """The CSV file of `rows` (what the Download button hands over)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(rows, zone))
    buffer.seek(0)
    return buffer
