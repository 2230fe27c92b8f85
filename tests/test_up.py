"""`airparadis up`, the embedded mode's one command, as a user runs it: it trains when there is
no champion, serves and opens the dashboard, answers, and stops both children on Ctrl-C or
SIGTERM. The test may itself run with SIGINT ignored (started in the background), as `up`
may: it must stop all the same."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import MODEL_NAME, free_port, server_env


def _run_up(home: Path, data: Path) -> tuple[subprocess.Popen[bytes], str, str, list[str]]:
    """Start `up` with its output (and its children's) in a file, as a terminal would take
    it: a pipe nobody reads once it is up would fill and block the children."""
    server_port, dashboard_port = free_port(), free_port()
    log = home / f"up-{server_port}.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "airparadis", "up",
             "--server-port", str(server_port), "--dashboard-port", str(dashboard_port)],
            cwd=home, stdout=out, stderr=subprocess.STDOUT,
            env=server_env(
                home, AIRPARADIS_TRAIN_DATA=str(data), AIRPARADIS_TRAIN_MAX_ROWS="3000"
            ),
        )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        if any("Press Ctrl-C to stop." in line for line in lines):
            break
        if process.poll() is not None:
            raise AssertionError("up exited early:\n" + "\n".join(lines[-40:]))
        time.sleep(0.5)
    else:
        raise AssertionError("up did not start within 300 s")
    return (
        process,
        f"http://127.0.0.1:{server_port}",
        f"http://127.0.0.1:{dashboard_port}",
        lines,
    )


def _stop(
    process: subprocess.Popen[bytes], server: str, dashboard: str, how: signal.Signals
) -> None:
    process.send_signal(how)
    assert process.wait(timeout=60) == 0
    for url in (f"{server}/v2/health/live", dashboard):
        try:
            httpx.get(url, timeout=2)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"{url} still answers after Ctrl-C")


def test_up_trains_serves_and_stops_cleanly(tmp_path: Path, sentiment140_dir: Path) -> None:
    process, server, dashboard, lines = _run_up(tmp_path, sentiment140_dir)
    try:
        assert any("training the TF-IDF + LR baseline" in line for line in lines)
        assert any(f"/v1/models/{MODEL_NAME}:predict" in line for line in lines)
        response = httpx.post(
            f"{server}/v1/models/{MODEL_NAME}:predict",
            json={"instances": ["I love this airline, great crew!"]},
        )
        assert response.status_code == 200
        assert response.json()["predictions"][0]["label"] == "positive"
        assert httpx.get(f"{server}/v1/info").json()["aliases"] == ["champion"]
        assert httpx.get(dashboard, timeout=30).status_code == 200
        assert httpx.get(f"{server}/docs").status_code == 200
        # The terminal stays quiet: no warning, per request (kserve's deprecated response
        # class) or at start, in the output of `up` and of the processes it runs.
        output = (tmp_path / f"up-{server.rsplit(':', 1)[1]}.log").read_text(errors="replace")
        assert "Warning" not in output, output[-3000:]
    finally:
        if process.poll() is None:
            _stop(process, server, dashboard, signal.SIGINT)  # Ctrl-C

    # A second `up` finds the champion and serves it without training again.
    process, server, dashboard, lines = _run_up(tmp_path, sentiment140_dir)
    try:
        assert not any("training" in line for line in lines)
        assert httpx.get(f"{server}/v1/info").json()["version"] == "1"
    finally:
        _stop(process, server, dashboard, signal.SIGTERM)  # a service manager
