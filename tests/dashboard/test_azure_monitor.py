"""Azure Monitor alerts: off unless configured, and a real LogsQueryClient over a canned answer."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from dashboard.azure_monitor import (
    ALERT_EVENT,
    WORKSPACE_QUERY,
    AzureMonitorUnavailable,
    query_alerts,
)
from dashboard.ops_data import alerts_frame
from tests.dashboard.conftest import settings_for

pytest.importorskip("azure.monitor.query")
requests = pytest.importorskip("requests")


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("token", int(time.time()) + 3600)


class CannedAdapter(requests.adapters.BaseAdapter):  # type: ignore[misc]
    """Answers every request with one Log Analytics query result, and keeps the requests."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        self.body = body
        self.sent: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        from urllib3.response import HTTPResponse

        data = json.dumps(self.body).encode()
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = HTTPResponse(
            body=io.BytesIO(data), headers=dict(response.headers), status=200,
            preload_content=False,
        )  # fmt: skip
        response._content = data
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def test_not_configured_is_a_note_not_an_error() -> None:
    settings = settings_for("http://x")
    assert not settings.azure_monitor.enabled
    with pytest.raises(AzureMonitorUnavailable, match="not configured"):
        query_alerts(settings)


def test_workspace_query_rows_become_alerts() -> None:
    from azure.core.pipeline.transport import RequestsTransport

    body = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [
                    {"name": "fired_at", "type": "datetime"},
                    {"name": "count", "type": "int"},
                    {"name": "role", "type": "string"},
                ],
                "rows": [["2026-01-02T03:04:05Z", 4, "predictor"]],
            }
        ]
    }
    adapter = CannedAdapter(body)
    session = requests.Session()
    session.mount("https://", adapter)
    settings = settings_for("http://x", azure_monitor={"workspace_id": "workspace-1"})

    result = query_alerts(
        settings, credential=FakeCredential(), transport=RequestsTransport(session=session)
    )

    assert result.partial_error is None
    assert list(result.frame.columns) == ["fired_at", "count", "role"]
    sent = json.loads(adapter.sent[0].body)
    assert "workspace-1" in adapter.sent[0].url
    assert sent["query"] == WORKSPACE_QUERY and ALERT_EVENT in sent["query"]
    frame = alerts_frame([], result.frame)
    assert frame.loc[0, "source"] == "Azure Monitor"
    assert frame.loc[0, "what"] == "4 wrong"  # the count, with its unit
    assert frame.loc[0, "fired_at"].year == 2026
