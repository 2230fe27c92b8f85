"""`make bench`, the soak: the server's memory and throughput over `--minutes` (10) of mixed
traffic from ever-new client identities.

The real server runs on a fresh embedded store with its default limits, behind loopback
declared as its trusted proxy (as the ingress is in the chart), so that the X-Forwarded-For
each request carries is the client. wrk (one thread, 8 connections) sends half predict, three
tenths feedback and two tenths explain; every request but one in seven comes from an address
never seen before, the seventh from one of four busy clients that go over the per-client
feedback limit (429), so per-identity state is created all along and must be let go. The
server's resident memory (its process and any children, from /proc) is read before the load,
after each minute and at the end; req/s and answers by status are counted per minute. The
section "## Soak" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import bench_parser
from benchmarks.families import write_section
from benchmarks.feedback_load import _train_bundle, serve_bundle

SECTION = "## Soak"
MODEL_NAME = "air-paradis-sentiment"
CONNECTIONS = 8
BUSY_CLIENTS = 4
TWEETS = (
    "my flight was delayed three hours and nobody told us anything",
    "great crew, smooth landing, thank you",
    "lost my bag again, this airline never learns",
    "the seats were comfortable and the food was fine",
    "worst customer service ever, on hold for an hour",
    "upgrade to business class, what a treat",
    "cancelled flight and no hotel voucher",
    "on time departure and friendly staff",
)
_LUA = """
local counter = {offset}
local tweets = {tweets}
local kinds = {{"predict", "feedback", "predict", "explain", "predict",
                "feedback", "predict", "explain", "feedback", "predict"}}
statuses = {{}}
function request()
  counter = counter + 1
  local client
  if counter % 7 == 0 then
    client = "10.255.255." .. (counter % {busy} + 1)
  else
    client = string.format("10.%d.%d.%d", math.floor(counter / 65536) % 255,
                           math.floor(counter / 256) % 256, counter % 256)
  end
  local headers = {{["Content-Type"] = "application/json", ["X-Forwarded-For"] = client}}
  local tweet = tweets[counter % #tweets + 1]
  local kind = kinds[counter % #kinds + 1]
  if kind == "feedback" then
    local verdict = (counter % 3 == 0) and "wrong" or "correct"
    return wrk.format("POST", "/v1/feedback", headers, string.format(
      '{{"tweet": "%s", "predicted_label": "positive", "verdict": "%s", "feedback_id": "s%d"}}',
      tweet, verdict, counter))
  end
  return wrk.format("POST", "/v1/models/{model}:" .. kind, headers,
                    string.format('{{"instances": ["%s"]}}', tweet))
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %d %d\\n", status, count))
    end
  end
end
"""


@dataclass(frozen=True)
class Minute:
    minute: int
    requests: int
    seconds: float
    statuses: dict[int, int]
    rss_mib: float


def _rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, MiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while being read
            children.setdefault(parent, []).append(int(entry.name))
    total_kib, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total_kib += int(match.group(1)) if match else 0
        pending += children.get(current, [])
    return total_kib / 1024


def _wrk_minute(url: str, offset: int, seconds: int) -> tuple[int, float, dict[int, int]]:
    """(requests, seconds, answers by status) of one run of the mixed load."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only ever sent to loopback")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/system_deps.sh)")
    tweets = "{" + ", ".join(json.dumps(t) for t in TWEETS) + "}"
    script = _LUA.format(offset=offset, tweets=tweets, busy=BUSY_CLIENTS, model=MODEL_NAME)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        started = time.perf_counter()
        out = subprocess.run(
            [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", handle.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout  # fmt: skip
        elapsed = time.perf_counter() - started
    finally:
        Path(handle.name).unlink()
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"wrk printed no request count:\n{out}")
    statuses = {int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    return int(match.group(1)), elapsed, statuses


def soak(
    data: list[Path], minutes: int, minute_seconds: int = 60
) -> tuple[float, list[Minute], int]:
    """(RSS before the load, the minutes, identities used)."""
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = _train_bundle(data, tmp / "bundle")
        home = tmp / "home"
        home.mkdir()
        server = serve_bundle(bundle, home, AIRPARADIS_SERVER_TRUSTED_PROXIES="127.0.0.1")
        process, url = server.process, server.url
        try:
            start_rss = _rss_mib(process.pid)
            sent, rows = 0, []
            for minute in range(1, minutes + 1):
                requests, seconds, statuses = _wrk_minute(url, sent, minute_seconds)
                sent += requests
                rss = _rss_mib(process.pid)
                rows.append(Minute(minute, requests, seconds, statuses, rss))
                print(f"minute {minute}: {requests / seconds:.0f} req/s, {rss:.0f} MiB", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return start_rss, rows, sent - sent // 7 + BUSY_CLIENTS


def render(start_rss: float, minutes: list[Minute], identities: int, load: float) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m benchmarks.soak --minutes {len(minutes)}`, {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared: 1-minute "
        f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end): the "
        f"server on a fresh embedded store, wrk with {CONNECTIONS} connections sending half "
        "predict, three tenths feedback (default limit: 120 a minute per client) and two tenths "
        "explain, each request from a new client address (X-Forwarded-For through loopback as "
        f"the trusted proxy) except one in seven, from {BUSY_CLIENTS} busy clients that go "
        f"over the feedback limit; {identities:,} client identities in all. Resident memory "
        "of the server process before the load and after each minute.",
        "",
        "| minute | req/s | 2xx | 429 | other 4xx | 5xx | server RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| 0 (before the load) | | | | | | {start_rss:.0f} |",
    ]
    for m in minutes:
        ok = sum(n for s, n in m.statuses.items() if 200 <= s < 300)
        limited = m.statuses.get(429, 0)
        other = sum(n for s, n in m.statuses.items() if 400 <= s < 500 and s != 429)
        errors = sum(n for s, n in m.statuses.items() if s >= 500)
        lines.append(
            f"| {m.minute} | {m.requests / m.seconds:.0f} | {ok:,} | {limited:,} | {other:,} | "
            f"{errors:,} | {m.rss_mib:.0f} |"
        )
    total = sum(m.requests for m in minutes)
    seconds = sum(m.seconds for m in minutes)
    first_minute = minutes[0].rss_mib
    lines += [
        "",
        f"{total:,} requests in {seconds / 60:.1f} min ({total / seconds:.0f} req/s). Resident "
        f"memory: {start_rss:.0f} MiB before the load, {first_minute:.0f} MiB after the first "
        f"minute, {minutes[-1].rss_mib:.0f} MiB at the end "
        f"({minutes[-1].rss_mib - first_minute:+.0f} MiB over the last {len(minutes) - 1} "
        f"minutes), {max(m.rss_mib for m in minutes):.0f} MiB at most.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--minutes", type=int, default=10, help="Length of the soak.")
    parser.add_argument(
        "--minute-seconds", type=int, default=60, help="Length of a 'minute' (a quick check)."
    )
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")
    load = os.getloadavg()[0]
    start_rss, minutes, identities = soak(args.data, args.minutes, args.minute_seconds)
    section = render(start_rss, minutes, identities, load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.out, section, SECTION)
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
