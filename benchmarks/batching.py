"""The micro-batching section of `make bench`: each neural family served with batching on (at
most 64 or 32 tweets a call) and off, swept side by side, against what batching can reach."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.servers import start_server, sweep

NEURAL_CONCURRENCY = (1, 16, 64)
BATCHING_CONFIGS: list[tuple[str, dict[str, str]]] = [
    ("batching on (default, at most 64 tweets a call)", {}),
    ("batching on, at most 32 tweets a call", {"AIRPARADIS_SERVER_MAX_BATCH_SIZE": "32"}),
    ("batching off", {"AIRPARADIS_SERVER_BATCHING": "false"}),
]


def batching_section(
    families: list[str], bundles: dict[str, Path], serve: list[str], home: Path, tweet: str,
    cold: dict[str, float], ceiling_rps: float,
) -> str:  # fmt: skip
    names = {
        "rnn": "recurrent (TFLite)",
        "transformer": "transformer (ONNX)",
    }
    servers = []
    for family in families:
        # Every configuration runs the model off the event loop (inline budget 0), so the
        # ratio is the micro-batcher's alone.
        for name, env in BATCHING_CONFIGS:
            server = start_server(
                f"{names[family]}, {name}", [*serve, str(bundles[family]), "--port"], home,
                "/v2/health/ready", AIRPARADIS_SERVER_INLINE_BUDGET_US="0", **env,
            )  # fmt: skip
            servers.append(server)
            if name == BATCHING_CONFIGS[0][0]:
                cold[names[family]] = server.cold_start_s
    try:
        print("micro-batching sweep", flush=True)
        rows = sweep(servers, tweet, NEURAL_CONCURRENCY).rows
    finally:
        for server in servers:
            server.process.terminate()
    model_gain = {family: _in_process_batch_gain(bundles[family], tweet) for family in families}
    lines = [
        "## Micro-batching (single-tweet v1 predict, models trained on a slice)",
        "",
        "Goal: at concurrency 64, req/s with micro-batching on ≥ 2× off.",
        "",
        "Every configuration runs the model in the model thread (`INLINE_BUDGET_US=0`): `off` "
        "makes one model call per request; `on` combines what is queued (waiting at most 2 ms "
        "while requests arrive together). The server picks inline or batched by the measured "
        "cost of a one-tweet call (300 µs budget): both neural families are batched.",
        "",
        "| server | concurrency | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for label, results in rows.items():
        for r in results:
            lines.append(
                f"| {label} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {r.non_2xx} |"
            )
    lines += [
        "",
        "At concurrency 64, each `on` configuration against `off`. The last two columns bound "
        "what batching can reach: the model's own gain (in-process tweets/s at batch 64 ÷ "
        "batch 1, same tweet) and the HTTP stack's (the trivial model's req/s at the top "
        "level of the single-tweet sweep ÷ `off`), since batching saves neither the model's "
        "arithmetic nor the per-request HTTP work.",
        "",
        "| family | on (64) ÷ off | on (32) ÷ off | p99 on (64) ÷ off | "
        "in-process batch 64 ÷ batch 1 | HTTP ceiling ÷ off |",
        "|---|---|---|---|---|---|",
    ]
    for family in families:
        on64, on32, off = (rows[f"{names[family]}, {name}"][-1] for name, _ in BATCHING_CONFIGS)
        lines.append(
            f"| {names[family]} | {on64.rps / off.rps:.2f}× | {on32.rps / off.rps:.2f}× | "
            f"{on64.p99_ms / off.p99_ms:.2f}× | {model_gain[family]:.2f}× | "
            f"{ceiling_rps / off.rps:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def _in_process_batch_gain(bundle: Path, tweet: str, seconds: float = 3.0) -> float:
    """Tweets/s of `predict_proba` at batch 64 over batch 1, the same tweet, in this process."""
    from airparadis.bundle import load_bundle

    classifier = load_bundle(bundle)
    rates = []
    for size in (1, 64):
        texts = [tweet] * size
        classifier.predict_proba(texts)  # warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            classifier.predict_proba(texts)
            done += size
        rates.append(done / (time.perf_counter() - started))
    return rates[1] / rates[0]
