"""`make bench`: serving speed of the champion family against a trivial kserve.Model ceiling.

Both servers run in this same run, on loopback, one after the other, with the same load
client, so the ratios hold on any machine even when the absolute figures do not.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.load import LoadResult, batch_throughput, wrk_post

MODEL_NAME = "air-paradis-sentiment"
CONCURRENCY = (1, 8, 32)
SECONDS = 5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def _train_bundle(data: list[Path], directory: Path) -> tuple[Path, list[str]]:
    from training_jobs.data import load_sources
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression
    from training_jobs.split import split_data

    frame, _ = load_sources(data)
    split = split_data(frame, 0.1, 0.1, seed=42)
    family = TfidfLogisticRegression()
    family.save(family.fit(split.train, split.validation, {}, seed=42), directory)
    return directory, split.test["text"].tolist()


def _serve(
    command: list[str], home: Path, ready_path: str
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRPARADIS_SERVER_")}
    env["AIRPARADIS_HOME"] = str(home)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    process = subprocess.Popen(
        [*command, str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return process, url, _wait_ready(url + ready_path, process)


def _sweep(url: str, tweet: str) -> list[LoadResult]:
    predict = f"{url}/v1/models/{MODEL_NAME}:predict"
    wrk_post(predict, {"instances": [tweet]}, 8, 1)  # warm-up
    return [wrk_post(predict, {"instances": [tweet]}, c, SECONDS) for c in CONCURRENCY]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--data", type=Path, nargs="+",
        default=[Path(os.environ.get("AIRPARADIS_TRAIN_DATA", "../shared/data/sentiment140"))],
    )  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        print("training the TF-IDF + LR bundle on", *args.data, flush=True)
        bundle, tweets = _train_bundle(args.data, home / "bundle")
        tweet = tweets[0]
        rows: dict[str, list[LoadResult]] = {}
        batch: dict[str, float] = {}
        cold: dict[str, float] = {}
        servers = {
            "trivial constant model (ceiling)": (
                [sys.executable, "-m", "benchmarks.trivial_server", "--port"],
                f"/v2/models/{MODEL_NAME}/ready",
            ),
            "TF-IDF + LR": (
                [sys.executable, "-m", "airparadis", "serve", "--model-uri", str(bundle), "--port"],
                "/v2/health/ready",
            ),
        }
        for name, (command, ready) in servers.items():
            print(f"measuring {name}", flush=True)
            process, url, cold[name] = _serve(command, home, ready)
            try:
                rows[name] = _sweep(url, tweet)
                batch[name] = batch_throughput(
                    f"{url}/v1/models/{MODEL_NAME}:predict",
                    tweets[:1000],
                    rounds=30,
                    max_seconds=20,
                )
            finally:
                process.terminate()
                process.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_report(rows, batch, cold))
    print(f"wrote {args.out}")


def _report(
    rows: dict[str, list[LoadResult]], batch: dict[str, float], cold: dict[str, float]
) -> str:
    names = list(rows)
    ceiling = rows[names[0]]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Figures are from one run on this machine; the ratios "
        "against the trivial model, measured in the same run, are what carry over.",
        "",
        "Load: `wrk` with one thread, keep-alive connections = concurrency, "
        f"{SECONDS} s per point, single-tweet v1 predict on loopback. One server process each.",
        "",
        "## Single-tweet v1 predict",
        "",
        "| server | concurrency | req/s | p50 ms | p99 ms | non-2xx | req/s vs ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for result, base in zip(rows[name], ceiling, strict=True):
            lines.append(
                f"| {name} | {result.concurrency} | {result.rps:,.0f} | {result.p50_ms:.2f} | "
                f"{result.p99_ms:.2f} | {result.non_2xx} | {result.rps / base.rps:.2f}× |"
            )
    lines += [
        "",
        "## Batch of 1,000 tweets per request",
        "",
        "| server | tweets/s | vs ceiling |",
        "|---|---|---|",
    ]
    for name in names:
        lines.append(f"| {name} | {batch[name]:,.0f} | {batch[name] / batch[names[0]]:.2f}× |")
    lines += ["", "## Cold start (process start to ready)", "", "| server | seconds |", "|---|---|"]
    lines += [f"| {name} | {cold[name]:.2f} |" for name in names]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
