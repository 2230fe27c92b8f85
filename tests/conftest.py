"""Fixtures shared by every suite: where ../shared lives and a private platform home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder beside the checkout (override with AIRPARADIS_SHARED_DIR)."""
    path = Path(os.environ.get("AIRPARADIS_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()
    if not (path / "README.md").is_file():
        pytest.fail(f"shared data folder not found at {path}; set AIRPARADIS_SHARED_DIR")
    return path
