"""Assemble and run the predictor on kserve's ModelServer, with our routes on its FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kserve
from fastapi import FastAPI
from kserve.logging import trace_logger
from kserve.model_server import app
from prometheus_client import REGISTRY

from airparadis.settings import PlatformSettings
from airparadis.tracking import connect, needs_registry
from model_server.alerting import MispredictionRateRule, NegativeFeedbackRule
from model_server.api import build_health_router, build_router
from model_server.batching import Overloaded
from model_server.drift import DriftCollector
from model_server.errors import install as install_error_handlers
from model_server.feedback import FeedbackStore
from model_server.grpc_v2 import GrpcServer
from model_server.limits import DISABLED_PREFIX, RequestLimits, overload_handler
from model_server.metrics import MISPREDICTION_RATE
from model_server.model import SentimentModel
from model_server.model_info import ModelInfoCollector
from model_server.request_ids import RequestIds
from model_server.responses import add_api_page, use_orjson_answers
from model_server.security import AccessControl, Authenticator, protected_routes
from model_server.settings import ServerSettings
from model_server.telemetry import Telemetry, observe_health_gauges
from model_server.telemetry import configure as configure_telemetry

logger = logging.getLogger(__name__)
ACCESS_LOGGER = "uvicorn.access"
API_TITLE = "Air Paradis sentiment model server"
RETRY_AFTER_SECONDS = 1
"""Retry-After of a 503 (overloaded): load sheds in well under a second once the queue drains,
and a client that honours the header should come straight back, not wait a minute."""
API_DESCRIPTION = (
    "Tweet sentiment behind KServe's v1 and v2 (Open Inference Protocol) routes, with "
    "feedback, alerts, drift and model information. Python client: `airparadis.client`."
)


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
    started_at = datetime.now(UTC)
    # First: every router included from here on takes the app's response class.
    use_orjson_answers(app)
    app.title = API_TITLE
    app.description = API_DESCRIPTION
    telemetry = configure_telemetry(settings.applicationinsights_connection_string)
    model = build_model(settings, platform, telemetry)
    REGISTRY.register(DriftCollector(model.drift))
    REGISTRY.register(ModelInfoCollector(model))
    if needs_registry(model.model_uri):
        connect(platform)
    store = FeedbackStore(
        platform.feedback_url,
        windows=(settings.alert.window_seconds, settings.misprediction.window_seconds),
        pool_size=settings.feedback_db_pool_size,
    )
    store.start_sync(settings.alert.sync_seconds)
    rule = NegativeFeedbackRule(
        store,
        settings.alert.threshold,
        settings.alert.window_seconds,
        settings.alert.min_distinct_clients,
    )
    # Our routes go first so that our model-aware /v2/health/ready wins over kserve's.
    misprediction = MispredictionRateRule(
        store,
        settings.misprediction.threshold,
        settings.misprediction.window_seconds,
        settings.misprediction.min_feedback,
        settings.alert.min_distinct_clients,
    )
    MISPREDICTION_RATE.set_function(misprediction.scraped_rate)
    if telemetry.enabled:
        observe_health_gauges(model.drift, misprediction.scraped_rate)
    app.include_router(build_health_router(model))
    app.add_exception_handler(Overloaded, overload_handler(RETRY_AFTER_SECONDS))

    def after_kserve(application: FastAPI) -> None:
        # Behind kserve's routes: a predict request is matched without trying ours first.
        application.include_router(
            build_router(
                model, store, rule, misprediction, settings, telemetry, authenticator, started_at
            )
        )
        if settings.api_docs:
            add_api_page(application, API_TITLE)
        # Outermost: a refused request skips kserve's timing, logging and exception layers.
        application.add_middleware(
            RequestLimits,
            max_body_bytes=settings.max_body_bytes,
            max_in_flight=settings.max_in_flight_requests,
            retry_after=RETRY_AFTER_SECONDS,
            queue_full=model.batcher.full,
        )
        # In front of the limits: a client without credentials costs no body read.
        application.add_middleware(
            AccessControl, authenticator=authenticator, protected=protected_routes(settings)
        )
        if platform.log_format == "json":
            # Outermost: every line logged while answering, a refusal's too, names the request.
            application.add_middleware(RequestIds)

    authenticator = Authenticator(settings)
    grpc_auth = settings.auth_required and "predict" in protected_routes(settings)
    server = BoundModelServer(
        host=settings.host,
        trusted_proxies=settings.trusted_proxies,
        request_logging=settings.request_logging,
        after_kserve=after_kserve,
        grpc=grpc_factory(settings, authenticator if grpc_auth else None),
        http_port=settings.http_port,
        # kserve's own gRPC server binds every interface and logs each call: ours instead.
        enable_grpc=False,
        workers=1,
        # Per-request latency lines at INFO: /metrics holds the same histograms.
        enable_latency_logging=False,
    )
    server.register_model(model)
    model.start_background_loading()
    server.start([])


def grpc_factory(
    settings: ServerSettings, authenticator: Authenticator | None
) -> Callable[[BoundModelServer], GrpcServer] | None:
    """The gRPC v2 server of a model server, on its data plane; None when `grpc_port` is 0."""
    if not settings.grpc_port:
        return None

    def build(bound: BoundModelServer) -> GrpcServer:
        return GrpcServer(
            settings.host,
            settings.grpc_port,
            bound.dataplane,
            bound.model_repository_extension,
            max_message_bytes=settings.max_body_bytes,
            max_in_flight=settings.max_in_flight_requests,
            authenticator=authenticator,
        )

    return build


class BoundModelServer(kserve.ModelServer):  # type: ignore[misc]
    """kserve binds 0.0.0.0; the embedded mode must stay on loopback.

    uvicorn believes X-Forwarded-For from loopback unless told otherwise, so any local client
    could claim any address: forwarded headers are read only from `trusted_proxies`.

    `after_kserve` runs once kserve has added its routes and middleware to the app: routes it
    adds come behind kserve's (FastAPI tries them in order), middleware in front of kserve's.
    Without `request_logging`, neither uvicorn's access line nor kserve's two timing lines are
    written per request: under load they cost as much as the model, and /metrics holds them.
    """

    def __init__(
        self,
        host: str,
        trusted_proxies: list[str] | None = None,
        request_logging: bool = False,
        after_kserve: Callable[[FastAPI], None] | None = None,
        grpc: Callable[[BoundModelServer], GrpcServer] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self._trusted_proxies = list(trusted_proxies or [])
        self._request_logging = request_logging
        self._after_kserve = after_kserve
        # kserve's stop() stops `_grpc_server` on SIGTERM, whichever class it is.
        self._grpc_server = grpc(self) if grpc is not None else None

    async def _serve(self) -> None:
        if self._grpc_server is not None:
            self.servers.append(self._grpc_server.start())
        rest = self._rest_server
        if rest is not None:
            rest.config.host = self._host
            rest.config.proxy_headers = bool(self._trusted_proxies)
            rest.config.forwarded_allow_ips = self._trusted_proxies
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
                # kserve's handlers log a traceback for any error, a client's included.
                install_error_handlers(app)
                # The model-repository API would let any client reload or unload the served
                # model: RequestLimits answers 404 there, and the schema no longer lists it.
                app.openapi = _openapi_without(app.openapi, DISABLED_PREFIX)

            rest.create_application = create_then_adjust
        await super()._serve()


def _openapi_without(openapi: Callable[[], dict[str, Any]], prefix: str) -> Any:
    """The schema without `prefix`'s routes, and with the v1 body kserve leaves undescribed
    (its routes read the raw request), so clients and fuzzers know what predict takes."""

    def schema() -> dict[str, Any]:
        document = openapi()
        document["paths"] = {
            path: item for path, item in document["paths"].items() if not path.startswith(prefix)
        }
        for suffix in (":predict", ":explain"):
            operation = document["paths"].get(f"/v1/models/{{model_name}}{suffix}", {}).get("post")
            if operation is not None and "requestBody" not in operation:
                operation["requestBody"] = V1_REQUEST_BODY
        return document

    return schema


V1_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["instances"],
                "properties": {
                    "instances": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                {"type": "string", "minLength": 1},
                                {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {"text": {"type": "string", "minLength": 1}},
                                },
                            ]
                        },
                    }
                },
            }
        }
    },
}
