"""JSON answers without FastAPI's deprecated ORJSONResponse, and the API page.

kserve 0.21 makes ORJSONResponse its app's default response class and builds one for every v1
`:predict` and `:explain` answer; FastAPI deprecates that class and warns each time one is
built, so `make up` printed a warning per request. `use_orjson_answers` puts a subclass of
FastAPI's JSONResponse in its place: the same orjson encoding (NaN as null, numpy arrays,
non-string keys), no deprecated class ever built. Remove it once kserve stops using it.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from kserve.protocol.rest import v1_endpoints

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"


class OrjsonResponse(JSONResponse):
    """JSON encoded by orjson, as kserve's answers always were."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def use_orjson_answers(app: FastAPI) -> None:
    """Before kserve adds its routes: they, and its v1 endpoints, answer `OrjsonResponse`."""
    app.router.default_response_class = OrjsonResponse
    v1_endpoints.ORJSONResponse = OrjsonResponse  # type: ignore[misc]


def add_api_page(app: FastAPI, title: str) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, over the app's /openapi.json.

    kserve builds its app at import time with the docs off (unless a command-line flag it
    parses from sys.argv says otherwise), so the pages are added here, from a setting.
    """
    openapi_url = app.openapi_url or "/openapi.json"

    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - Swagger UI")

    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc")

    app.add_api_route(DOCS_PATH, swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC_PATH, redoc, methods=["GET"], include_in_schema=False)
