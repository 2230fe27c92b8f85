"""Schemathesis against the real server's OpenAPI schema: no 5xx, no response off-schema."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningServer

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_server_error(model_server: RunningServer) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{model_server.url}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--max-examples", "120", "--seed", "20261126", "--workers", "1",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None, output[-2000:]
    assert int(generated.group(1)) >= 1000, output[-2000:]
