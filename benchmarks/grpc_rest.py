"""`make bench`: single-tweet predictions over gRPC (v2 Open Inference Protocol) against REST.

One server process answers both protocols with the same TF-IDF + LR model. Each point runs
`benchmarks.protocol_load` as a process of its own, REST (v1 predict) and gRPC (ModelInfer)
interleaved in rounds at each concurrency, so the ratio compares figures taken under the same
conditions; wrk's REST figure is reported beside them. The server's CPU time per request is
read from /proc over each run: steadier than req/s when the load client shares the cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import bench_parser
from benchmarks.families import write_section
from benchmarks.load import wrk_post
from benchmarks.servers import (
    MODEL_NAME,
    Server,
    cpu_seconds,
    free_port,
    start_server,
    train_bundle,
)

SECTION = "## gRPC against REST (single tweet, TF-IDF + LR)"
ROUNDS = 3
SECONDS = 3.0
LEVELS = (1, 8, 32)
TRAIN_ROWS = 100_000
GOAL = 1.3
CLIENTS = ("REST v1", "gRPC v2", "REST v1 (wrk)")


@dataclass(frozen=True)
class Point:
    client: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int
    server_cpu_us: float


def _protocol_load(protocol: str, target: str, tweet: str, level: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.protocol_load", protocol, target, MODEL_NAME,
               tweet, str(level), str(SECONDS)]  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=SECONDS + 60
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _measure(server: Server, grpc_port: int, tweet: str, client: str, level: int) -> Point:
    before = cpu_seconds(server.process.pid)
    if client == "REST v1 (wrk)":
        wrk = wrk_post(server.predict_url, {"instances": [tweet]}, level, int(SECONDS))
        figures = {"requests": wrk.requests, "failures": wrk.non_2xx, "rps": wrk.rps,
                   "p50_ms": wrk.p50_ms, "p99_ms": wrk.p99_ms}  # fmt: skip
    else:
        protocol, port = (
            ("grpc", grpc_port)
            if client == "gRPC v2"
            else ("rest", int(server.url.rsplit(":", 1)[1]))
        )
        figures = _protocol_load(protocol, f"127.0.0.1:{port}", tweet, level)
    cpu = cpu_seconds(server.process.pid) - before
    return Point(
        client, level, figures["rps"], figures["p50_ms"], figures["p99_ms"],
        int(figures["failures"]), 1e6 * cpu / max(figures["requests"], 1),
    )  # fmt: skip


def _median(points: list[Point]) -> Point:
    return sorted(points, key=lambda p: p.rps)[len(points) // 2]


def measure(data: list[Path]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        print("training tfidf_lr", flush=True)
        tweet = train_bundle("tfidf_lr", data, home / "bundle", TRAIN_ROWS)[0]
        grpc_port = free_port()
        server = start_server(
            "TF-IDF + LR",
            [sys.executable, "-m", "airparadis", "serve", "--model-uri", str(home / "bundle"),
             "--port"],
            home, "/v2/health/ready", AIRPARADIS_SERVER_GRPC_PORT=str(grpc_port),
        )  # fmt: skip
        try:
            samples: dict[tuple[str, int], list[Point]] = {}
            for round_ in range(ROUNDS):
                print(f"round {round_ + 1} of {ROUNDS}", flush=True)
                for level in LEVELS:
                    for client in CLIENTS:
                        point = _measure(server, grpc_port, tweet, client, level)
                        samples.setdefault((client, level), []).append(point)
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)
    return render({key: _median(points) for key, points in samples.items()})


def render(points: dict[tuple[str, int], Point]) -> str:
    lines = [
        SECTION,
        "",
        f"Goal: gRPC req/s ≥ {GOAL}× REST for single tweets, same run.",
        "",
        "One server answers both (REST on its HTTP port, gRPC on `AIRPARADIS_SERVER_GRPC_PORT`). "
        f"`REST v1` and `gRPC v2` are the same asyncio client (`benchmarks/protocol_load.py`, "
        "request encoded once; REST on keep-alive connections, one per in-flight request; gRPC "
        "on one HTTP/2 channel), `REST v1 (wrk)` is wrk as in the sections above. "
        f"{ROUNDS} interleaved rounds of {SECONDS:.0f} s per point, median shown; server CPU "
        "is the server process's CPU time over the run ÷ requests answered.",
        "",
        "| client | concurrency | req/s | p50 ms | p99 ms | failures | server CPU µs/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in LEVELS:
        for client in CLIENTS:
            p = points[(client, level)]
            lines.append(
                f"| {client} | {level} | {p.rps:,.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | "
                f"{p.failures} | {p.server_cpu_us:.0f} |"
            )
    lines += [
        "",
        "| concurrency | gRPC ÷ REST (same client) | gRPC ÷ REST (wrk) | "
        "server CPU per request, REST ÷ gRPC |",
        "|---|---|---|---|",
    ]
    for level in LEVELS:
        rest, grpc, wrk = (points[(c, level)] for c in CLIENTS)
        lines.append(
            f"| {level} | {grpc.rps / rest.rps:.2f}× | {grpc.rps / wrk.rps:.2f}× | "
            f"{rest.server_cpu_us / grpc.server_cpu_us:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    section = measure(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.out, section, SECTION)
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
