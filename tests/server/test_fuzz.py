"""Schemathesis against the real server's OpenAPI schema: no 5xx, no response off-schema, and
no traceback in the server's log, with positive and negative data and the stateful phase."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
CLIENT_ROUTES = r"(:predict|:explain|/infer|/v1/feedback)$"


@pytest.fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """Its own server: the fuzzer's feedback must reach validation, not the rate limit."""
    server = start_server(
        tmp_path_factory.mktemp("fuzzed"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="1000000",
    )
    yield server
    server.stop()


def _schemathesis(server: RunningServer, max_examples: int, *selection: str) -> int:
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{server.url}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all",
            "--max-examples", str(max_examples), "--seed", "20261126", "--workers", "1",
            *selection,
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None, output[-2000:]
    return int(generated.group(1))


def test_client_routes_survive_fuzzing(fuzzed_server: RunningServer) -> None:
    """v1 predict and explain, v2 infer, and feedback: at least 2,000 cases."""
    cases = _schemathesis(fuzzed_server, 200, "--include-path-regex", CLIENT_ROUTES)
    assert cases >= 2000
    assert "Traceback" not in fuzzed_server.log.read_text(errors="replace")


def test_other_routes_survive_fuzzing(fuzzed_server: RunningServer) -> None:
    cases = _schemathesis(fuzzed_server, 30, "--exclude-path-regex", CLIENT_ROUTES)
    assert cases >= 200
    assert "Traceback" not in fuzzed_server.log.read_text(errors="replace")
