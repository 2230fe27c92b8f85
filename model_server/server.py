"""Assemble and run the predictor on kserve's ModelServer, with our routes on its FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kserve
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kserve.logging import trace_logger
from kserve.model_server import app
from prometheus_client import REGISTRY

from airparadis.settings import PlatformSettings
from airparadis.tracking import connect, needs_registry
from model_server.alerting import (
    MispredictionRateRule,
    NegativeFeedbackRule,
    submit_retraining_job,
)
from model_server.api import build_health_router, build_router
from model_server.batching import Overloaded
from model_server.drift import DriftCollector
from model_server.feedback import FeedbackStore, default_sqlite_url
from model_server.limits import DISABLED_PREFIX, RequestLimits, overload_handler
from model_server.metrics import MISPREDICTION_RATE
from model_server.model import SentimentModel
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry, observe_health_gauges
from model_server.telemetry import configure as configure_telemetry

logger = logging.getLogger(__name__)
ACCESS_LOGGER = "uvicorn.access"


def build_model(
    settings: ServerSettings, platform: PlatformSettings, telemetry: Telemetry
) -> SentimentModel:
    return SentimentModel(
        name=settings.served_name or platform.model_name,
        model_uri=settings.model_uri or platform.champion_uri,
        settings=settings,
        telemetry=telemetry,
    )


def run(settings: ServerSettings, platform: PlatformSettings) -> None:
    """Serve until SIGTERM. The model loads in the background: live at once, ready when loaded."""
    telemetry = configure_telemetry(settings.applicationinsights_connection_string)
    model = build_model(settings, platform, telemetry)
    REGISTRY.register(DriftCollector(model.drift))
    if needs_registry(model.model_uri):
        connect(platform)
    store = FeedbackStore(settings.feedback_db_url or default_sqlite_url(platform.home))
    rule = NegativeFeedbackRule(store, settings.alert_threshold, settings.alert_window_seconds)
    # Our routes go first so that our model-aware /v2/health/ready wins over kserve's.
    misprediction = MispredictionRateRule(
        store,
        settings.misprediction_threshold,
        settings.misprediction_window_seconds,
        settings.misprediction_min_feedback,
        on_alert=submit_retraining_job if settings.retrain_on_alert else None,
    )
    MISPREDICTION_RATE.set_function(misprediction.scraped_rate)
    if telemetry.enabled:
        observe_health_gauges(model.drift, misprediction.scraped_rate)
    app.include_router(build_health_router(model))
    app.add_exception_handler(Overloaded, overload_handler(settings.retry_after_seconds))

    def after_kserve(application: FastAPI) -> None:
        # Behind kserve's routes: a predict request is matched without trying ours first.
        application.include_router(
            build_router(model, store, rule, misprediction, settings, telemetry)
        )
        # Outermost: a refused request skips kserve's timing, logging and exception layers.
        application.add_middleware(
            RequestLimits,
            max_body_bytes=settings.max_body_bytes,
            max_in_flight=settings.max_in_flight_requests,
            retry_after=settings.retry_after_seconds,
            queue_full=model.batcher.full,
        )

    server = BoundModelServer(
        host=settings.host,
        request_logging=settings.request_logging,
        after_kserve=after_kserve,
        http_port=settings.http_port,
        enable_grpc=False,
        workers=1,
        # Per-request latency lines at INFO: /metrics holds the same histograms.
        enable_latency_logging=False,
    )
    server.register_model(model)
    model.start_background_loading()
    server.start([])


class BoundModelServer(kserve.ModelServer):  # type: ignore[misc]
    """kserve binds 0.0.0.0; the embedded mode must stay on loopback.

    `after_kserve` runs once kserve has added its routes and middleware to the app: routes it
    adds come behind kserve's (FastAPI tries them in order), middleware in front of kserve's.
    Without `request_logging`, neither uvicorn's access line nor kserve's two timing lines are
    written per request: under load they cost as much as the model, and /metrics holds them.
    """

    def __init__(
        self,
        host: str,
        request_logging: bool = False,
        after_kserve: Callable[[FastAPI], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self._request_logging = request_logging
        self._after_kserve = after_kserve

    async def _serve(self) -> None:
        rest = self._rest_server
        if rest is not None:
            rest.config.host = self._host
            if not self._request_logging:
                # What uvicorn itself does for access_log=False (kserve builds its Config with
                # logging already set up, so the flag alone is not read): no handler, no line.
                access = logging.getLogger(ACCESS_LOGGER)
                access.handlers.clear()
                access.propagate = False
                trace_logger.setLevel(logging.WARNING)  # kserve's per-request timing lines
            create_application = rest.create_application

            def create_then_adjust() -> None:
                create_application()
                if self._after_kserve is not None:
                    self._after_kserve(app)
                # kserve answers 501 to a model_version it cannot address: the client's error.
                app.add_exception_handler(NotImplementedError, _client_error)
                # The model-repository API would let any client reload or unload the served
                # model: RequestLimits answers 404 there, and the schema no longer lists it.
                app.openapi = _openapi_without(app.openapi, DISABLED_PREFIX)

            rest.create_application = create_then_adjust
        await super()._serve()


def _openapi_without(openapi: Callable[[], dict[str, Any]], prefix: str) -> Any:
    def schema() -> dict[str, Any]:
        document = openapi()
        document["paths"] = {
            path: item for path, item in document["paths"].items() if not path.startswith(prefix)
        }
        return document

    return schema


async def _client_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc) or "not supported"}, status_code=400)
