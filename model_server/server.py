"""Assemble and run the predictor on kserve's ModelServer, with our routes on its FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import kserve
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
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
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight_requests,
        retry_after=settings.retry_after_seconds,
        queue_full=model.batcher.full,
    )

    server = BoundModelServer(
        host=settings.host,
        routers_after_kserve=[build_router(model, store, rule, misprediction, settings, telemetry)],
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

    `routers_after_kserve` are included once kserve has added its routes, behind them: FastAPI
    tries routes in order, so the predict path stays as short as kserve's own.
    """

    def __init__(
        self, host: str, routers_after_kserve: Sequence[APIRouter] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self._routers_after_kserve = tuple(routers_after_kserve)

    async def _serve(self) -> None:
        rest = self._rest_server
        if rest is not None:
            rest.config.host = self._host
            create_application = rest.create_application

            def create_then_adjust() -> None:
                create_application()
                for router in self._routers_after_kserve:
                    app.include_router(router)
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
