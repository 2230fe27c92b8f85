"""Load generation on loopback: wrk for concurrency sweeps, httpx for large batches.

Every run is bounded in count and time; nothing here targets any address but 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_post(url: str, body: Mapping[str, object], concurrency: int, seconds: int) -> LoadResult:
    """POST `body` to `url` with `concurrency` connections for `seconds` (one wrk thread)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only ever sent to loopback")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/system_deps.sh)")
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", handle.name, url],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout  # fmt: skip
    finally:
        Path(handle.name).unlink()

    def field(pattern: str) -> str:
        match = re.search(pattern, out, re.M)
        if match is None:
            raise RuntimeError(f"wrk printed no {pattern!r}:\n{out}")
        return match.group(1)

    requests = int(field(r"(\d+) requests in"))
    rps = float(field(r"Requests/sec:\s+([\d.]+)"))
    # Percentile lines ("     50%    1.23ms") only: the "+/- Stdev" column also ends in %.
    p50 = _ms(field(r"^\s+50%\s+(\S+)\s*$"))
    p99 = _ms(field(r"^\s+99%\s+(\S+)\s*$"))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return LoadResult(concurrency, requests, rps, p50, p99, int(non2xx.group(1)) if non2xx else 0)


def batch_throughput(url: str, tweets: list[str], rounds: int, max_seconds: float) -> float:
    """Tweets/s posting `tweets` as one request, sequentially, bounded by rounds and time."""
    done = 0
    with httpx.Client(timeout=60) as client:
        client.post(url, json={"instances": tweets}).raise_for_status()  # warm-up
        started = time.perf_counter()
        for _ in range(rounds):
            client.post(url, json={"instances": tweets}).raise_for_status()
            done += len(tweets)
            if time.perf_counter() - started > max_seconds:
                break
        return done / (time.perf_counter() - started)
