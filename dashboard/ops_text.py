"""The words of the ops page: one name per thing, units on every number, one line per rule,
and what to do when something is red.

Free of Panel, so each sentence can be tested on its own. The one name for the share of
verdicts that say a prediction was wrong is "wrong-prediction rate", in the KPIs, the charts,
the alerts, the docs and the server's metric help texts alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WINDOWS = {
    "Last 15 minutes": 900,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 86400,
    "Last 7 days": 7 * 86400,
}
WRONG_RATE = "Wrong-prediction rate"
COUNT_RULE = "negative_feedback"
RATE_RULE = "misprediction_rate"
RULE_NAMES = {COUNT_RULE: "wrong predictions (count)", RATE_RULE: "wrong-prediction rate"}
RUNBOOK_ANCHORS = {
    "upstream": "check-the-upstream-input",
    "replay": "replay-and-calibrate",
    "retrain": "retrain",
    "rollback": "roll-back-to-the-previous-champion",
}
"""Sections of docs/operations.md the action lines link to (GitHub's heading anchors)."""


def duration(seconds: Any) -> str:
    """``300`` as ``5 min``; empty for anything that is not a number."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    seconds = int(seconds)
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def window_name(seconds: int) -> str:
    for name, value in WINDOWS.items():
        if value == seconds:
            return name
    return f"Last {duration(seconds) or '?'}"


def percent(share: float) -> str:
    """A share (0 to 1) as a whole percentage; a dash when unknown."""
    return "–" if math.isnan(share) else f"{100 * share:.0f} %"


def _clients(rule: dict[str, Any]) -> str:
    wanted = rule.get("min_distinct_clients")
    return f" from ≥ {wanted} clients" if isinstance(wanted, int) and wanted > 1 else ""


def count_rule_text(rule: dict[str, Any]) -> str:
    """The count rule in one line: ``≥ 3 wrong in 5 min from ≥ 2 clients``."""
    if not rule:
        return "count rule unknown"
    window = duration(rule.get("window_seconds")) or "?"
    return f"≥ {rule.get('threshold', '?')} wrong in {window}{_clients(rule)}"


def rate_rule_text(rule: dict[str, Any]) -> str:
    """The rate rule in one line: ``rate ≥ 30 % over 1 h (≥ 20 verdicts, ≥ 2 clients)``."""
    threshold = rule.get("threshold")
    if not rule or not isinstance(threshold, int | float):
        return "rate rule unknown"
    window = duration(rule.get("window_seconds")) or "?"
    needs = f"≥ {rule.get('min_feedback', '?')} verdicts"
    wanted = rule.get("min_distinct_clients")
    if isinstance(wanted, int) and wanted > 1:
        needs += f", ≥ {wanted} clients"
    return f"rate ≥ {100 * threshold:.0f} % over {window} ({needs})"


def alert_line(alert: dict[str, Any]) -> str:
    """What an alert saw, with units and its threshold:
    ``3 wrong in 5 min (threshold 3)`` or
    ``wrong-prediction rate 35 % (threshold 30 %) over 20 verdicts in 1 h``."""
    count, threshold = alert.get("count"), alert.get("threshold")
    window = duration(alert.get("window_seconds"))
    within = f" in {window}" if window else ""
    if alert.get("rule") == RATE_RULE:
        verdicts = alert.get("verdicts")
        if isinstance(verdicts, int) and verdicts > 0 and isinstance(count, int | float):
            return (
                f"wrong-prediction rate {100 * count / verdicts:.0f} % (threshold "
                f"{threshold} %) over {verdicts:,} verdicts{within}"
            )
        return f"{count} wrong{within} (threshold: a rate of {threshold} %)"
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return "fired (no count recorded)"
    limit = f" (threshold {threshold})" if threshold is not None else ""
    return f"{int(count)} wrong{within}{limit}"


def clients_line(clients: Any) -> str:
    """``2 clients: ip:10.0.0.1, key:3fa…``; empty when the alert recorded none."""
    if not isinstance(clients, list) or not clients:
        return ""
    noun = "client" if len(clients) == 1 else "clients"
    return f"{len(clients)} {noun}: " + ", ".join(str(c) for c in clients)


def started_text(started_at: datetime | None) -> str:
    """``since the server started (Wed 2 Dec 05:12 UTC)``."""
    if started_at is None:
        return "since the server started"
    return f"since the server started ({started_at.strftime('%a %-d %b %H:%M UTC')})"


def latency_text(ms: float | None, floor_ms: float) -> str:
    """A latency estimate in milliseconds; ``< 5 ms`` when it lies inside the histogram's
    first bucket, where an estimate would only interpolate between 0 and that bound."""
    if ms is None:
        return f"< {floor_ms:g} ms"
    if math.isnan(ms):
        return "–"
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms"


@dataclass(frozen=True)
class Action:
    """One red state and what to do about it, with the runbook sections that say how."""

    state: str
    text: str
    links: tuple[tuple[str, str], ...]  # (link text, anchor in docs/operations.md)


def actions(
    drifting: bool,
    fired_rules: set[str],
    rate_over_threshold: bool,
) -> list[Action]:
    """An action line per red state: input drift, the count rule, the rate rule."""
    found: list[Action] = []
    if drifting:
        found.append(
            Action(
                "drift",
                "Input drift: check the upstream input first (a new source, language or "
                "encoding shows as new words or lengths); if it is genuine new traffic, "
                "replay labelled tweets and calibrate.",
                (("check the upstream input", RUNBOOK_ANCHORS["upstream"]),
                 ("replay and calibrate", RUNBOOK_ANCHORS["replay"])),
            )
        )  # fmt: skip
    if COUNT_RULE in fired_rules:
        found.append(
            Action(
                COUNT_RULE,
                "Wrong predictions reported by several clients: read the flagged tweets, "
                "then replay the labelled ones and calibrate the champion on them.",
                (("replay and calibrate", RUNBOOK_ANCHORS["replay"]),),
            )
        )
    if RATE_RULE in fired_rules or rate_over_threshold:
        found.append(
            Action(
                RATE_RULE,
                "Wrong-prediction rate above its threshold: retrain on the feedback; if it "
                "rose with a new model version, roll back to the previous champion.",
                (("retrain", RUNBOOK_ANCHORS["retrain"]),
                 ("roll back", RUNBOOK_ANCHORS["rollback"])),
            )
        )  # fmt: skip
    return found
