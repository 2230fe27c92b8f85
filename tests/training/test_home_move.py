"""A moved embedded home still serves and compares: MLflow's absolute artifact locations are
rewritten to the new place, and nothing reads the old one (it is gone)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL_NAME, server_env, start_server


def _airparadis(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airparadis", *args],
        env=server_env(home, **env), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _in_a_terminal(home: Path, *args: str) -> str:
    """The command's output as a terminal shows it (stdout is a pseudo-terminal)."""
    env = server_env(home, AIRPARADIS_MODEL_NAME=MODEL_NAME, COLUMNS="200")
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execve(sys.executable, [sys.executable, "-m", "airparadis", *args], env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))


@pytest.mark.slow
def test_moved_home_serves_and_compares(tmp_path: Path, sentiment140_dir: Path) -> None:
    old, new = tmp_path / "old-home", tmp_path / "elsewhere" / "home"
    trained = _airparadis(
        old, "train", "--data", str(sentiment140_dir), "--max-rows", "2000",
        AIRPARADIS_MODEL_NAME=MODEL_NAME,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]

    refused = _airparadis(old, "home", "move", str(old), str(tmp_path))  # exists already
    assert refused.returncode == 2 and "already exists" in refused.stderr
    moved = _airparadis(old, "home", "move", str(old), str(new))
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert not old.exists() and "artifact locations rewritten" in moved.stdout
    assert str(old) not in (new / "mlflow.db").read_bytes().decode("latin-1")

    compared = _airparadis(new, "compare", AIRPARADIS_MODEL_NAME=MODEL_NAME)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "| tfidf_lr | sklearn |" in compared.stdout
    assert "Downloading artifacts" not in compared.stdout + compared.stderr  # no progress bars
    table = _in_a_terminal(new, "compare")
    assert "┃ family" in table and "tfidf_lr" in table and "| tfidf_lr |" not in table
    server = start_server(new, f"models:/{MODEL_NAME}@champion")
    try:
        response = httpx.post(
            f"{server.url}/v1/models/{MODEL_NAME}:predict",
            json={"instances": ["my flight was cancelled again"]}, timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text
    finally:
        server.stop()
    again = _airparadis(new, "home", "relocate")
    assert again.returncode == 0 and again.stdout.startswith("0 artifact locations")
