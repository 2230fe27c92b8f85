"""The extension's builds: under ASan/UBSan (memory safety), and none at all (no compiler).

Both compile or package the project, so they run once per CI run and stay out of the fast loop.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.build


def test_the_extension_is_memory_safe_under_asan_and_ubsan() -> None:
    """The equality tests, against a build with -fsanitize=address,undefined."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "sanitize_fastpath.sh"), sys.executable, "-x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    report = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, report
    assert "sanitized build:" in result.stdout and " passed" in result.stdout, report
    assert "Sanitizer" not in result.stderr, report


def test_the_project_installs_without_a_c_compiler(tmp_path: Path) -> None:
    """`optional = true`: with no working compiler the wheel builds, without the extension."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.so", "__pycache__", ".*_cache", "node_modules", "test-artifacts"
        ),
    )
    env = {**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "airparadis/fastpath.py" in names and "airparadis/text.py" in names
    assert not [n for n in names if n.startswith("airparadis/_fastpath") and n.endswith(".so")]
