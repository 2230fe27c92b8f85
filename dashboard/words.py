"""Plain words for what went wrong and for when, as an analyst reads them.

Technical details (``[Errno 111] Connection refused``, a status code) go to the log, where the
operator looks; the page says what happened and what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dashboard.client import RequestRejected, ServerUnavailable

SERVER_DOWN = "The model server cannot be reached right now."
EXPLAIN_FAILED = "No word highlighting: the server could not explain these tweets this time."


def plain_error(error: BaseException | str) -> str:
    """One sentence for the page about a failed call (the detail stays in the log)."""
    if isinstance(error, RequestRejected):
        return "The server did not accept this request. Check the text and try again."
    if isinstance(error, ServerUnavailable | ConnectionError | TimeoutError) or is_network_detail(
        str(error)
    ):
        return SERVER_DOWN
    return "Something went wrong on our side. Try again in a moment."


def is_network_detail(detail: str) -> bool:
    """Whether `detail` is a socket-level message that means nothing to an analyst."""
    lowered = detail.lower()
    return any(
        hint in lowered
        for hint in ("errno", "connection refused", "cannot reach", "timed out", "connecterror")
    )


def browser_zone(name: str | None, offset_minutes: float | None) -> tzinfo:
    """The browser's time zone (Panel's `browser_info`), else the dashboard host's."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return _offset_zone(offset_minutes)  # an unknown name: the offset still holds
    return _offset_zone(offset_minutes)


def _offset_zone(offset_minutes: float | None) -> tzinfo:
    if offset_minutes is not None:
        # JavaScript's getTimezoneOffset is minutes *behind* UTC.
        return timezone(-timedelta(minutes=float(offset_minutes)))
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


def local_clock(when: datetime, zone: tzinfo) -> str:
    """``14:03`` in the user's zone (seconds add nothing a person needs)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).strftime("%H:%M")


def session_zone() -> tzinfo:
    """The zone of the current browser session, when Panel knows it."""
    import panel as pn

    info: Any = pn.state.browser_info
    if info is None:
        return browser_zone(None, None)
    return browser_zone(getattr(info, "timezone", None), getattr(info, "timezone_offset", None))
