"""The Panel app: the user page at ``/`` and the ops page at ``/ops``, with optional login."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import panel as pn

from dashboard import theme
from dashboard.auth import OPS_PATH, authorize_callback, may_open_ops, oauth_options
from dashboard.connection import ServerConnection
from dashboard.ops import OpsPage
from dashboard.settings import DashboardSettings
from dashboard.user import UserPage

logger = logging.getLogger(__name__)

TITLE = "Air Paradis – Sentiment Analysis"
OPS_TITLE = "Air Paradis – Operations"
# Session endings still sending their held feedback (a task nobody holds may be collected).
_CLOSING: set[asyncio.Task[None]] = set()


def _header(active: str, connection: ServerConnection, show_ops: bool) -> list[Any]:
    # Relative links, so the app also works under a proxy path prefix.
    links = [("./", "Analyze", "user")]
    if show_ops:
        links.append(("ops", "Operations", "ops"))
    nav = "".join(
        f'<a href="{href}" class="{"active" if key == active else ""}">{name}</a>'
        for href, name, key in links
    )
    return [
        theme.html_pane(f'<nav class="ap-nav">{nav}</nav>', margin=(12, 20)),
        pn.layout.HSpacer(),
        connection.status_view(),
    ]


def _template(title: str, main: list[Any], header: list[Any]) -> pn.template.FastListTemplate:
    return pn.template.FastListTemplate(
        title=title,
        meta_viewport="width=device-width, initial-scale=1",
        raw_css=[theme.PAGE_CSS],
        main=main,
        header=header,
        accent=theme.ACCENT,
        header_background=theme.HEADER,
        theme_toggle=False,
        main_layout=None,
        main_max_width="1200px",
        font=theme.FONT,
        font_url="",
        sidebar=[],
        collapsed_sidebar=True,
    )


def _connection(
    settings: DashboardSettings, before_close: Callable[[], Awaitable[None]] | None = None
) -> ServerConnection:
    """The session's server connection; its HTTP client is closed with the session, after
    `before_close` (the user page sends the feedback still held for undo)."""
    connection = ServerConnection(settings)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:

        async def finish() -> None:
            try:
                if before_close is not None:
                    await before_close()
            finally:
                connection.client.close()

        def close(_context: Any) -> None:
            # Bokeh calls this on its event loop and does not await it: the sending goes on
            # as a task of its own, held until it is done.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop running here: finish before returning
                asyncio.run(finish())
                return
            task = loop.create_task(finish())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

        pn.state.on_session_destroyed(close)
    return connection


def _watch_server(connection: ServerConnection, settings: DashboardSettings) -> None:
    """Check the server when the page loads, then periodically, so the banner clears itself."""
    if pn.state.curdoc is None:
        return

    async def check() -> None:
        await connection.check()

    pn.state.onload(check)
    # Panel runs coroutine callbacks (its type hint says otherwise).
    pn.state.add_periodic_callback(
        check,  # type: ignore[arg-type]
        period=int(settings.health_check_seconds * 1000),
    )


def user_app(settings: DashboardSettings) -> pn.template.BaseTemplate:
    """The page of one browser session at ``/``."""
    pn.extension("tabulator", notifications=True)
    page: UserPage | None = None

    async def send_held_feedback() -> None:
        if page is not None:
            await page.flush()

    connection = _connection(settings, before_close=send_held_feedback)
    page = UserPage(connection, settings)
    _watch_server(connection, settings)
    show_ops = may_open_ops(settings, pn.state.user_info)
    return _template(TITLE, [page], _header("user", connection, show_ops))


def ops_app(
    settings: DashboardSettings, read_registry: Callable[[], Any] | None = None
) -> pn.template.BaseTemplate:
    """The ops page at ``/ops``; only for the ops group when login and a group are set."""
    pn.extension("tabulator", notifications=True)
    connection = _connection(settings)
    if not may_open_ops(settings, pn.state.user_info):
        denied = pn.pane.Alert(
            "The operations page is restricted to the ops group.", alert_type="warning"
        )
        return _template(OPS_TITLE, [denied], _header("ops", connection, False))
    page = OpsPage(connection, settings, read_registry=read_registry or _registry(settings))
    if pn.state.curdoc is not None:

        async def load() -> None:
            await page.refresh()

        pn.state.onload(load)
        pn.state.add_periodic_callback(
            page.tick,  # type: ignore[arg-type]
            period=int(settings.refresh_seconds * 1000),
        )
    parts: list[Any] = [page]
    if settings.registry_enabled:  # the same MLflow store the registry card reads
        from airparadis.settings import PlatformSettings
        from dashboard.data_report_view import DataReportView

        parts.append(DataReportView(PlatformSettings()))
    return _template(OPS_TITLE, parts, _header("ops", connection, True))


def _registry(settings: DashboardSettings) -> Callable[[], Any] | None:
    if not settings.registry_enabled:
        return None
    from airparadis.settings import PlatformSettings
    from dashboard.registry import read_aliases

    return functools.partial(read_aliases, PlatformSettings())


def create_app(settings: DashboardSettings) -> pn.template.BaseTemplate:
    """The user page (kept for callers of the first version)."""
    return user_app(settings)


def websocket_origins(settings: DashboardSettings) -> list[str]:
    hosts = {settings.host, "localhost", "127.0.0.1"} - {"0.0.0.0", "::"}  # noqa: S104
    return sorted({f"{h}:{settings.port}" for h in hosts} | set(settings.websocket_origins))


def serve(settings: DashboardSettings) -> None:
    """Serve both pages until interrupted."""
    options = oauth_options()
    # Every page checks the server every few seconds: keep httpx's per-request lines out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if options:
        pn.config.authorize_callback = authorize_callback(settings)
    logger.info(
        "dashboard on http://%s:%d (model server %s, login %s)",
        settings.host,
        settings.port,
        settings.server_url,
        options.get("oauth_provider", "off"),
    )

    # Panel calls each route's function once per browser session (a partial is not called).
    def user_route() -> pn.template.BaseTemplate:
        return user_app(settings)

    def ops_route() -> pn.template.BaseTemplate:
        return ops_app(settings)

    # The blocking calls of every session run on this pool (asyncio.to_thread); the callbacks
    # themselves stay on the event loop, in the order the browser sent the events.
    loop = asyncio.new_event_loop()
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="dashboard-io")
    )
    asyncio.set_event_loop(loop)
    pn.serve(
        {"/": user_route, OPS_PATH: ops_route},
        address=settings.host,
        port=settings.port,
        show=False,
        title={"/": TITLE, OPS_PATH: OPS_TITLE},
        websocket_origin=websocket_origins(settings),
        liveness=True,
        **options,
    )
