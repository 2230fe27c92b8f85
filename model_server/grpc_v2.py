"""The v2 Open Inference Protocol over gRPC, beside REST, on the same model.

kserve's gRPC servicer answers with the same `SentimentModel`, so a gRPC request is checked,
micro-batched and counted in /metrics exactly as a REST one. What differs from kserve's own
gRPC server is what `airparadis.server` already does for REST:

- it binds `host` (kserve binds every interface; the embedded mode must stay on loopback);
- the REST limits have their gRPC forms: `max_body_bytes` caps a message,
  `max_in_flight_requests` the RPCs in progress (RESOURCE_EXHAUSTED beyond), and a full
  batcher answers UNAVAILABLE, which gRPC clients retry;
- a client's mistake is one escaped INFO line and its status code, never a traceback, and no
  line is logged per request;
- with authentication on and `predict` not open, ModelInfer needs an API key or a bearer
  token in the call's metadata, as the REST predict routes do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

import grpc
from grpc import HandlerCallDetails, RpcMethodHandler, ServicerContext, StatusCode, aio
from grpc_interceptor import AsyncExceptionToStatusInterceptor
from grpc_interceptor.exceptions import GrpcException
from kserve.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from model_server.batching import Overloaded
from model_server.errors import escape
from model_server.security import Authenticator, Unauthorized

logger = logging.getLogger("airparadis.grpc")
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
_CLIENT_ERRORS: tuple[tuple[tuple[type[BaseException], ...], StatusCode], ...] = (
    ((InvalidInput, UnsupportedProtocol, NotImplementedError), StatusCode.INVALID_ARGUMENT),
    ((ModelNotFound,), StatusCode.NOT_FOUND),
    ((ModelNotReady, ServerNotReady, ServerNotLive, Overloaded), StatusCode.UNAVAILABLE),
    ((Unauthorized,), StatusCode.UNAUTHENTICATED),
)


def status_of(error: BaseException) -> StatusCode | None:
    """The status a client error is answered with; None for a server error."""
    for kinds, status in _CLIENT_ERRORS:
        if isinstance(error, kinds):
            return status
    return None


class ErrorStatus(AsyncExceptionToStatusInterceptor):  # type: ignore[misc]
    """Exceptions as gRPC status codes, logged like the REST server's (`model_server.errors`)."""

    async def handle_exception(  # type: ignore[override]  # it returns once aborted
        self, ex: Exception, request_or_iterator: Any, context: ServicerContext, method_name: str
    ) -> None:
        if isinstance(ex, GrpcException):
            await super().handle_exception(ex, request_or_iterator, context, method_name)
            return
        status = status_of(ex)
        message = str(getattr(ex, "reason", None) or ex) or type(ex).__name__
        if status is None:
            logger.error(
                "server error on %s: %s: %s", method_name, type(ex).__name__, escape(ex, 1000),
                exc_info=ex,
            )  # fmt: skip
            await context.abort(StatusCode.INTERNAL, f"{type(ex).__name__}: {message}")
            return
        logger.info("answered %s to %s: %s", status.name, method_name, escape(message))
        await context.abort(status, message)


class PredictAuthentication(aio.ServerInterceptor):  # type: ignore[misc]
    """ModelInfer needs credentials in the metadata (x-api-key, or authorization with an
    ApiKey or Bearer value); the health and metadata methods stay open, as on REST."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[HandlerCallDetails], Awaitable[RpcMethodHandler]],
        details: HandlerCallDetails,
    ) -> RpcMethodHandler:
        if details.method == INFER_METHOD:
            metadata = {k.lower(): v for k, v in (details.invocation_metadata or ())}
            try:
                # A bearer token may mean fetching the issuer's keys: off the event loop.
                await asyncio.to_thread(self.authenticator.identify, metadata, None, True)
            except Unauthorized as exc:
                logger.info("answered UNAUTHENTICATED to %s: %s", details.method, escape(exc))
                return _refusal(str(exc))
        return await continuation(details)


def _refusal(message: str) -> RpcMethodHandler:
    async def refuse(request: Any, context: ServicerContext) -> None:
        await context.abort(StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


class GrpcServer:
    """kserve's v2 gRPC servicer on `host:port`, with the limits and interceptors above."""

    def __init__(
        self,
        host: str,
        port: int,
        data_plane: DataPlane,
        repository: ModelRepositoryExtension,
        *,
        max_message_bytes: int,
        max_in_flight: int,
        authenticator: Authenticator | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.data_plane = data_plane
        self.repository = repository
        self.max_message_bytes = max_message_bytes
        self.max_in_flight = max_in_flight
        self.authenticator = authenticator
        self.grace_seconds = grace_seconds
        self._server: aio.Server | None = None

    async def start(self) -> None:
        interceptors: list[aio.ServerInterceptor] = [ErrorStatus()]
        if self.authenticator is not None:
            interceptors.insert(0, PredictAuthentication(self.authenticator))
        self._server = aio.server(
            # The servicer is async: this pool only runs what gRPC itself hands to threads.
            futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="grpc"),
            interceptors=interceptors,
            maximum_concurrent_rpcs=self.max_in_flight,
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.max_send_message_length", -1),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self.data_plane, self.repository), self._server
        )
        self._server.add_insecure_port(self.address)
        await self._server.start()
        logger.info("gRPC v2 (Open Inference Protocol) on %s", self.address)
        await self._server.wait_for_termination()

    async def stop(self, sig: int | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace=self.grace_seconds)
