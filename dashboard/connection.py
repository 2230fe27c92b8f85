"""The model server as one browser session sees it: its client, its health, and the banner."""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from typing import Any

import httpx
import panel as pn
import param

from airparadis.schemas import Limits
from dashboard import theme
from dashboard.client import Health, ModelServerClient, RequestRejected, ServerUnavailable
from dashboard.settings import DashboardSettings
from dashboard.words import is_network_detail

logger = logging.getLogger(__name__)


class ServerConnection(pn.viewable.Viewer):  # type: ignore[misc]
    """Holds the client of `server_url` and shows a banner while the server is down or loading.

    Every call that fails with ServerUnavailable raises the banner; the next successful call or
    health check (the pages run one periodically) clears it, so the page recovers by itself.
    """

    server_url = param.String(doc="Model server or InferenceService base URL.")
    status: param.Selector[str] = param.Selector(
        default="unknown", objects=["unknown", "ready", "loading", "down"], doc="Last known state."
    )
    banner = param.String(default="", doc="Problem shown on top of every page; empty when fine.")
    served = param.Dict(default={}, doc="What /v1/info said about the served model.")

    def __init__(
        self,
        settings: DashboardSettings,
        transport: httpx.BaseTransport | None = None,
        **params: Any,
    ) -> None:
        params.setdefault("server_url", settings.server_url)
        super().__init__(**params)
        self.settings = settings
        self._transport = transport
        self._lock = threading.Lock()
        self.client = self._new_client()

    def _new_client(self) -> ModelServerClient:
        return ModelServerClient(self.settings, self.server_url, transport=self._transport)

    @param.depends("server_url", watch=True)
    async def _reconnect(self) -> None:
        """A new URL gets a new client and is checked at once (param awaits this watcher on
        Panel's loop, or to completion when no loop runs)."""
        with self._lock:
            old, self.client = self.client, self._new_client()
        old.close()
        self.status, self.served = "unknown", {}
        await self.check()

    def probe(self) -> tuple[Health, dict[str, Any] | None]:
        """Ask /v2/health/ready (and /v1/info when newly ready); blocking, never raises."""
        client = self.client
        try:
            health = client.health()
        except Exception as exc:
            logger.exception("health check failed")
            return Health(False, False, f"health check failed: {exc}"), None
        info = None
        if health.ready and (self.status != "ready" or not self.served):
            try:
                info = client.info().model_dump(mode="json")
            except (ServerUnavailable, RequestRejected) as exc:
                logger.info("no /v1/info: %s", exc)
        return health, info

    def apply(self, health: Health, info: dict[str, Any] | None = None) -> Health:
        """Show what `probe` found: status, banner and the served model."""
        if info is not None:
            self.served = info
        if health.ready:
            self.mark_up()
        elif health.refused:
            self.status = "down"
            self.banner = (
                f"The model server at {self.server_url} refused access ({health.detail}). "
                "Check AIRPARADIS_DASHBOARD_AUTH_HEADER."
            )
        elif health.reachable:
            self.status = "loading"
            self.banner = (
                f"The model server at {self.server_url} is up but not ready ({health.detail}): "
                "the model is probably still loading. This page retries by itself."
            )
        else:
            self.mark_down(health.detail)
        return health

    async def check(self) -> Health:
        """Check the server now and update the banner; never raises. The one path the page
        load, the periodic check and a new URL take: the HTTP call runs off the event loop."""
        return self.apply(*await asyncio.to_thread(self.probe))

    def mark_down(self, reason: object) -> None:
        """Raise the banner; a socket-level reason ("[Errno 111] …") stays in the log."""
        detail = str(reason)
        logger.info("model server unavailable: %s", detail)
        why = "" if is_network_detail(detail) else f" ({detail})"
        self.status = "down"
        self.banner = (
            f"The model server is unavailable{why}. Predictions and feedback are paused; "
            "this page retries by itself and resumes as soon as the server is back."
        )

    def mark_up(self) -> None:
        self.status = "ready"
        self.banner = ""

    @property
    def limits(self) -> Limits | None:
        """What one request may hold, as the server said in ``/v1/info``; None until it has
        answered (not reached yet, or a server older than the limits in its answer)."""
        return self.client.limits

    @property
    def served_label(self) -> str:
        """One line on the served model, e.g. ``version 3 (@champion) · tfidf_lr``."""
        info = self.served
        if not info:
            return "unknown"
        version = info.get("version")
        text = f"version {version}" if version else "local bundle"
        aliases = info.get("aliases") or []
        if aliases:
            text += " (" + ", ".join(f"@{a}" for a in aliases) + ")"
        if info.get("family"):
            text += f" · {info['family']}"
        return text

    def _badge_html(self, status: str, served: dict[str, Any]) -> str:
        color, text = {
            "ready": ("#1a7f37", "Model server ready"),
            "loading": ("#9a6700", "Model loading"),
            "down": ("#cf222e", "Model server unavailable"),
            "unknown": ("#6e7781", "Checking model server…"),
        }[status]
        detail = f" · {self.served_label}" if status == "ready" and served else ""
        return (
            f'<span class="ap-status" style="--dot:{color}"><span class="ap-dot"></span>'
            f"{text}{html.escape(detail)}</span>"
        )

    def status_view(self) -> pn.viewable.Viewable:
        """The header badge; one pane whose text follows the state (no re-rendering)."""
        return theme.html_pane(
            pn.bind(self._badge_html, self.param.status, self.param.served),
            margin=(0, 10),
            css_classes=["ap-server-status"],
        )

    def banner_view(self) -> pn.viewable.Viewable:
        return pn.pane.Alert(
            self.param.banner,
            alert_type="danger",
            visible=self.param.banner.rx.bool(),
            sizing_mode="stretch_width",
            css_classes=["ap-banner"],
            margin=(8, 5),
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self.banner_view()
