"""Servers side by side on loopback, and the interleaved load sweeps that compare them: the
harness `make bench` (`benchmarks.run`) and the gRPC and feedback benches share.

Each server is an `airparadis serve` (or the trivial ceiling) in its own process, given its
settings by environment alone; a sweep measures every server at every concurrency level in
the same round, so their ratios are taken under the same conditions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load import LoadResult, wrk_post

MODEL_NAME = "air-paradis-sentiment"
ROUNDS = 3
SECONDS = 3
NEURAL_PARAMS: dict[str, dict[str, Any]] = {
    "rnn": {"epochs": 1},
    "transformer": {"mode": "frozen", "head_epochs": 2},
}
"""Short fits of the neural families on a slice: the bench measures serving, not accuracy."""


@dataclass
class Server:
    label: str
    process: subprocess.Popen[bytes]
    url: str
    cold_start_s: float

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{MODEL_NAME}:predict"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(label: str, command: list[str], home: Path, ready: str, **env: str) -> Server:
    port = free_port()
    # The server gets its settings from `env` alone, never from the shell running the bench.
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRPARADIS_", "MLFLOW_"))
    }
    environment.update(
        {
            "AIRPARADIS_HOME": str(home),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            # Servers run side by side: no gRPC (its default port would be shared) unless asked.
            "AIRPARADIS_SERVER_GRPC_PORT": "0",
            **env,
        }
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, str(port)], env=environment, cwd=home,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 300:
        if process.poll() is not None:
            raise RuntimeError(f"{label} exited with {process.returncode}")
        try:
            if httpx.get(url + ready, timeout=1).status_code == 200:
                return Server(label, process, url, time.perf_counter() - started)
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{label} not ready in 300 s")


def train_bundle(
    family_name: str, data: list[Path], directory: Path, max_rows: int | None
) -> list[str]:
    from training_jobs.data import load_sources
    from training_jobs.families import get_family
    from training_jobs.split import split_data, stratified_sample

    frame, _ = load_sources(data)
    frame = stratified_sample(frame, max_rows, seed=42)
    split = split_data(frame, 0.1, 0.1, seed=42)
    family = get_family(family_name)
    params = {} if max_rows is None else NEURAL_PARAMS.get(family_name, {})
    family.save(family.fit(split.train, split.validation, params, seed=42), directory)
    return [str(t) for t in split.test["text"]]


@dataclass
class Sweep:
    rows: dict[str, list[LoadResult]]
    """Per server, the median over rounds at each concurrency level."""
    cpu_us_per_request: dict[str, float]
    """Per server, its process CPU time over the whole sweep ÷ requests answered: steadier
    than req/s, which also moves with where the scheduler puts the load client."""


def sweep(servers: list[Server], tweet: str, levels: tuple[int, ...]) -> Sweep:
    """Interleaved rounds over every server and concurrency level."""
    body: dict[str, object] = {"instances": [tweet]}
    for server in servers:
        wrk_post(server.predict_url, body, 8, 1)  # warm-up
    samples: dict[tuple[str, int], list[LoadResult]] = {}
    cpu = dict.fromkeys((s.label for s in servers), 0.0)
    for _ in range(ROUNDS):
        for level in levels:
            for server in servers:
                before = cpu_seconds(server.process.pid)
                result = wrk_post(server.predict_url, body, level, SECONDS)
                cpu[server.label] += cpu_seconds(server.process.pid) - before
                samples.setdefault((server.label, level), []).append(result)
    answered = {
        label: sum(r.requests for (name, _), runs in samples.items() if name == label for r in runs)
        for label in cpu
    }
    return Sweep(
        {
            server.label: [_median(samples[(server.label, level)]) for level in levels]
            for server in servers
        },
        {label: 1e6 * cpu[label] / max(answered[label], 1) for label in cpu},
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def predict_stage_us(server: Server) -> float:
    """Mean of kserve's `request_predict_seconds` over everything the server answered, in µs:
    the model's share of each request, measured inside the same process."""
    from dashboard.metrics import parse_metrics

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    stage = parse_metrics(text).latency.get("predict")
    return 1e6 * stage.sum / stage.total if stage and stage.total else float("nan")


def _median(results: list[LoadResult]) -> LoadResult:
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]
