"""Fixtures of the container tests: the images (built once per run by `make images`), the
test-only stand-ins of the chart's upstream images, and the chart rendered for the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.containers.kube import DOCKER, Cluster, Container, docker, pod_of

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHART = REPO_ROOT / "charts" / "airparadis"
VALUES = HERE / "values.yaml"
RELEASE = NAMESPACE = "airparadis"
KSERVE_API = "serving.kserve.io/v1beta1"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    """The Docker daemon (scripts/system_deps.sh starts it); a missing one fails, never skips."""
    if not Path(DOCKER).is_file():
        pytest.fail(f"{DOCKER} missing: run `make system-deps` (Debian's docker.io)")
    result = docker("version", "--format", "{{.Server.Version}}", check=False)
    if result.returncode != 0:
        pytest.fail(f"Docker daemon not reachable (make system-deps starts it): {result.stderr}")


@pytest.fixture(scope="session")
def base_image(docker_daemon: None) -> str:
    """The PYTHON_IMAGE of the project images: upstream, or the local debootstrapped base."""
    explicit = os.environ.get("PYTHON_IMAGE")
    if explicit:
        return explicit
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "base_image.sh")],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=1200,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"scripts/base_image.sh failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def project_images(base_image: str) -> None:
    """`make images`, once per session: layer caching makes it a no-op when nothing changed."""
    env = {**os.environ, "PYTHON_IMAGE": base_image, "IMAGE_TAG": "dev"}
    out = subprocess.run(
        ["make", "--no-print-directory", "images"],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT, env=env, timeout=3600,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"make images failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")


def build_stand_in(base_image: str, folder: str, tag: str) -> str:
    """Build a test-only image from tests/containers/<folder>/Dockerfile on the same base."""
    args = ["build", "--network=host", "--build-arg", f"PYTHON_IMAGE={base_image}", "-t", tag]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=cacert,src={CA_BUNDLE}"]
    result = subprocess.run(
        [DOCKER, *args, str(HERE / folder)],
        capture_output=True, text=True, check=False, timeout=1800,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"building {tag} failed:\n{result.stderr[-4000:]}")
    return tag


@pytest.fixture(scope="session")
def stand_in_images(base_image: str, rendered: list[dict[str, Any]]) -> None:
    """Local equivalents of the chart's MLflow and PostgreSQL images, under the tags the test
    values give them (the rendered chart names the image; the test builds it)."""
    images = {
        _image_of(rendered, "Deployment", "mlflow"),
        _image_of(rendered, "StatefulSet", "postgresql"),
    }
    for image in sorted(images):
        folder = "mlflow" if "mlflow" in image else "postgres"
        build_stand_in(base_image, folder, image)


def _image_of(docs: list[dict[str, Any]], kind: str, component: str) -> str:
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        if doc["kind"] == kind and labels.get("app.kubernetes.io/component") == component:
            return str(doc["spec"]["template"]["spec"]["containers"][0]["image"])
    raise LookupError(f"no {kind} {component} in the render")


def helm_binary() -> str:
    local = REPO_ROOT / ".tools" / "bin" / "helm"
    if not local.is_file():
        subprocess.run(
            [os.environ.get("PYTHON", "python3"), str(REPO_ROOT / "scripts" / "install_k8s_tools.py")],
            check=True, cwd=REPO_ROOT,
        )  # fmt: skip
    return str(local)


def render(*extra: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with the test values (and extra --set flags)."""
    result = subprocess.run(
        [helm_binary(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
         "--api-versions", KSERVE_API, "-f", str(VALUES), *extra],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="session")
def readable_bundle(tiny_bundle: Path) -> Iterator[Path]:
    """The tiny bundle in a folder the containers' user (10001) can read."""
    folder = Path(tempfile.mkdtemp(prefix="airparadis-bundle-"))
    folder.chmod(0o755)
    target = folder / "bundle"
    shutil.copytree(tiny_bundle, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


def start_postgresql(cluster: Cluster) -> Container:
    """The chart's PostgreSQL StatefulSet, its data claim bound to a fresh volume, ready; then
    the chart's feedback-database Job (its post-install hook) run to completion against it."""
    statefulset = cluster.find("StatefulSet", component="postgresql")
    pod, _ = pod_of(statefulset)
    for volume in pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            cluster.bind_volume(claim, pod.get("securityContext", {}).get("fsGroup"))
    postgresql = cluster.start(statefulset)
    postgresql.wait_ready(timeout=120)
    code, logs = cluster.run_to_completion(cluster.find("Job", component="feedback-db"), 300)
    assert code == 0, logs
    return postgresql
