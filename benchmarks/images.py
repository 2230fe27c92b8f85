"""`make bench`, images: size of each project image and build times, against the base image.

Sizes are the daemon's uncompressed image sizes (what a node stores), each also as a ratio to
the Python base image of the same build (the baseline: what every image starts from). The
largest packages of the serving image show where its size goes, and each image's last layer
(the project's own files) what a source change ships. Build times: `make images` as the run
finds the layer cache (source changes since the last build are rebuilt), after a one-line
change to a source file (`airparadis/__init__.py`, restored afterwards: the dependencies'
layers must stay cached), then with every layer cached (what a CI run pays once the images
exist), and the serving image rebuilt with no layer cache (its packages then come from
pip's download cache, a BuildKit cache mount: the network is not measured). The section
"## Images" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import bench_parser
from benchmarks.families import write_section

SECTION = "## Images"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
TAG = os.environ.get("IMAGE_TAG", "dev")
IMAGES = {
    "serving": ("airparadis-model-server", "model_server/Dockerfile"),
    "training": ("airparadis-training", "training_jobs/Dockerfile"),
    "dashboard": ("airparadis-dashboard", "dashboard/Dockerfile"),
}
SERVING_LIMIT_MB = 700


def _docker(*args: str) -> str:
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, check=True, timeout=3600
    ).stdout


def base_image() -> str:
    out = subprocess.run(
        ["bash", "scripts/base_image.sh"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def size_mb(image: str) -> float:
    return float(json.loads(_docker("image", "inspect", image))[0]["Size"]) / 1e6


def make_images(base: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["make", "--no-print-directory", "images", f"PYTHON_IMAGE={base}", f"IMAGE_TAG={TAG}"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


SOURCE_FILE = Path("airparadis/__init__.py")


def source_change_build(base: str) -> float:
    """`make images` after a one-line change to a source file (content, not mtime: BuildKit
    keys its cache on checksums), which is restored afterwards."""
    original = SOURCE_FILE.read_bytes()
    try:
        SOURCE_FILE.write_bytes(original + b"\n# benchmarks.images: a one-line source change\n")
        return make_images(base)
    finally:
        SOURCE_FILE.write_bytes(original)


def project_layer_mb(image: str) -> float:
    """Size of the image's layer holding the project's installed files (/staging)."""
    out = _docker("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", image)
    sizes = [line.split("\t")[0] for line in out.splitlines() if "/staging" in line]
    if not sizes:
        raise LookupError(f"{image}: no layer copies the project's files from /staging")
    return _human_mb(sizes[0])


def _human_mb(size: str) -> float:
    """docker history's human size ("1.23MB", "980kB", "0B") in MB."""
    units = {"GB": 1e3, "MB": 1.0, "kB": 1e-3, "B": 1e-6}
    for unit, factor in units.items():
        if size.endswith(unit):
            return float(size[: -len(unit)]) * factor
    raise ValueError(f"unknown size {size!r}")


def uncached_serving_build(base: str) -> float:
    """The serving image with no layer cache, tagged apart so the tested image stays."""
    args = ["build", "--no-cache", "--network=host", "--build-arg", f"PYTHON_IMAGE={base}"]
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        args += ["--secret", f"id=cacert,src={bundle}"]
    started = time.perf_counter()
    subprocess.run(
        [DOCKER, *args, "-f", IMAGES["serving"][1], "-t", "airparadis-bench-uncached:dev", "."],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    seconds = time.perf_counter() - started
    _docker("image", "rm", "airparadis-bench-uncached:dev")
    return seconds


def largest_packages(image: str, count: int = 8) -> list[tuple[str, int]]:
    script = (
        "import pathlib, sysconfig\n"
        "root = pathlib.Path(sysconfig.get_paths()['purelib'])\n"
        "for p in root.iterdir():\n"
        "    if p.is_dir() and not p.name.endswith(('.dist-info', '.data')):\n"
        "        print(sum(f.stat().st_size for f in p.rglob('*') if f.is_file()), p.name)\n"
    )
    out = _docker("run", "--rm", "--entrypoint", "python", image, "-c", script)
    rows = [(line.split(" ", 1)[1], int(line.split(" ", 1)[0])) for line in out.splitlines()]
    return sorted(rows, key=lambda row: -row[1])[:count]


def measure(uncached: bool) -> str:
    base = base_image()
    found_s = make_images(base)  # whatever changed since the last build is rebuilt here
    changed_s = source_change_build(base)
    cached_s = make_images(base)  # the restored source: its layers are still cached
    uncached_s = uncached_serving_build(base) if uncached else None
    base_mb = size_mb(base)
    rows = []
    for label, (repository, dockerfile) in IMAGES.items():
        mb = size_mb(f"{repository}:{TAG}")
        layer = project_layer_mb(f"{repository}:{TAG}")
        rows.append(f"| {label} (`{dockerfile}`) | {mb:,.0f} | {mb / base_mb:.1f}x | {layer:.1f} |")
    serving_mb = size_mb(f"{IMAGES['serving'][0]}:{TAG}")
    packages = largest_packages(f"{IMAGES['serving'][0]}:{TAG}")
    server = _docker("version", "--format", "{{.Server.Version}}").strip()
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()}, "
        f"{os.cpu_count()} cores (shared; 1-minute load average {os.getloadavg()[0]:.1f} "
        f"at the end of the run), Docker {server}; "
        f"base `{base}` ({base_mb:,.0f} MB) is the baseline. "
        f"Serving target: at most {SERVING_LIMIT_MB} MB "
        f"({'met' if serving_mb <= SERVING_LIMIT_MB else 'NOT met'}).",
        "",
        "| image | size (MB) | vs base | project layer (MB) |",
        "|---|---:|---:|---:|",
        f"| base (`{base}`) | {base_mb:,.0f} | 1.0x | |",
        *rows,
        "",
        "Largest packages of the serving image (MB): "
        + ", ".join(f"{name} {size / 1e6:.0f}" for name, size in packages)
        + ".",
        "",
        "| build | seconds |",
        "|---|---:|",
        f"| `make images` as this run found the layer cache (the three images) | {found_s:.0f} |",
        f"| `make images` after a one-line change to `{SOURCE_FILE}` | {changed_s:.0f} |",
        f"| `make images` again, every layer cached | {cached_s:.0f} |",
    ]
    if uncached_s is not None:
        lines.append(
            f"| serving image, no layer cache (pip download cache warm) | {uncached_s:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--skip-uncached", action="store_true", help="Do not rebuild the serving image uncached."
    )
    args = parser.parse_args()
    section = measure(uncached=not args.skip_uncached)
    write_section(args.out, section, SECTION)
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
