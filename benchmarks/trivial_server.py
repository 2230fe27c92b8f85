"""The ceiling: a kserve.Model that returns a constant, served the same way as ours."""

from __future__ import annotations

import sys
from typing import Any

from kserve import Model

from model_server.server import BoundModelServer


class ConstantModel(Model):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def predict(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "predictions": [{"label": "positive", "probability": 0.5}] * len(payload["instances"])
        }


def main(port: int, name: str) -> None:
    server = BoundModelServer(
        host="127.0.0.1", http_port=port, enable_grpc=False, workers=1,
        enable_latency_logging=False,
    )  # fmt: skip
    server.start([ConstantModel(name)])


if __name__ == "__main__":
    # Usage: python -m benchmarks.trivial_server --port PORT
    main(int(sys.argv[sys.argv.index("--port") + 1]), "air-paradis-sentiment")
