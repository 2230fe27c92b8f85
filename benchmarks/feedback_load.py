"""`make bench`, feedback under load: req/s of POST /v1/feedback against the rows already in
the alert windows, on SQLite and on PostgreSQL, same run.

For each store and each point, a fresh store is filled with that many feedback rows spread
over the last few minutes (inside both alert windows, half of them "wrong"), then the real
server is started on it and wrk posts feedback with 8 connections. The empty store is the
baseline of its backend: a feedback whose cost grows with the window shows as a ratio under 1.
Each point is run `--repeats` times (fresh store and server each time), the points of a
backend taking turns (empty, full, empty, full, ...) so that a busy spell on a shared machine
falls on both, and its median kept. Beside req/s, the server's own CPU time per feedback
(user + system, from /proc) is reported: other tenants of the machine move it far less.
The time the server takes to become ready on the filled store (the rolling counts are seeded
then) is reported beside it. The fill's own write-back (SQLite's WAL checkpoint, PostgreSQL's
VACUUM ANALYZE and CHECKPOINT) is settled before each run. The section "## Feedback under
load" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks import bench_parser
from benchmarks.families import write_section
from benchmarks.load import LoadResult, wrk_post
from benchmarks.servers import Server, cpu_seconds, start_server

SECTION = "## Feedback under load"
POINTS = (0, 50_000)
"""Rows in the window before the run; the first is the baseline."""
CONNECTIONS = 8
SECONDS = 10
REPEATS = 3
POSTGRES_URL = os.environ.get(
    "AIRPARADIS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BODY = {"tweet": "my bag is lost again", "predicted_label": "positive", "verdict": "wrong"}


@dataclass(frozen=True)
class FeedbackPoint:
    backend: str
    rows: int
    ready_s: float
    load: LoadResult
    cpu_ms: float
    """The server process's CPU time per feedback during the measured run."""


def _train_bundle(data: list[Path], directory: Path) -> Path:
    """A small TF-IDF + LR bundle: the feedback route does not depend on the model's size."""
    from training_jobs.data import load_sources
    from training_jobs.families.tfidf_lr import TfidfLogisticRegression
    from training_jobs.split import split_data, stratified_sample

    frame, _ = load_sources(data)
    split = split_data(stratified_sample(frame, 4000, 42), 0.1, 0.1, 42)
    family = TfidfLogisticRegression()
    family.save(family.fit(split.train, split.validation, {"min_df": 1}, seed=42), directory)
    return directory


def _fill(url: str, rows: int) -> None:
    """`rows` feedbacks created over the last four minutes, half of them wrong."""
    from model_server.feedback import FeedbackStore, feedback_table

    store = FeedbackStore(url)
    now = datetime.now(UTC)
    chunk = 5000
    with store.engine.begin() as conn:
        for start in range(0, rows, chunk):
            conn.execute(
                feedback_table.insert(),
                [
                    {
                        "id": uuid.uuid4().hex,
                        "created_at": now - timedelta(seconds=240 * (i / max(rows, 1))),
                        "tweet": f"prefilled feedback {i}",
                        "predicted_label": "positive",
                        "verdict": "wrong" if i % 2 else "correct",
                        "model_name": "bench",
                    }
                    for i in range(start, min(rows, start + chunk))
                ],
            )
    # Settle the fill's own write-back (WAL checkpoint, PostgreSQL's statistics) before the
    # run, so that the run measures feedback against the rows, not the fill's I/O.
    if url.startswith("sqlite"):
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE feedback")
            conn.exec_driver_sql("CHECKPOINT")
    store.engine.dispose()


def _postgres_schema() -> tuple[str, str]:
    """(store URL on a fresh schema, schema name)."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    admin.dispose()
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def _drop_schema(schema: str) -> None:
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    admin.dispose()


def serve_bundle(bundle: Path, home: Path, **env: str) -> Server:
    """`airparadis serve` on `bundle` under `home`, its settings from `env` alone."""
    return start_server(
        "TF-IDF + LR",
        [sys.executable, "-m", "airparadis", "serve", "--model-uri", str(bundle), "--port"],
        home, "/v2/health/ready", **env,
    )  # fmt: skip


def measure_point(backend: str, rows: int, bundle: Path, tmp: Path) -> FeedbackPoint:
    home = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{backend}-{rows}-"))
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{home / 'feedback.db'}"
    else:
        url, schema = _postgres_schema()
    try:
        _fill(url, rows)
        server = serve_bundle(
            bundle, home, AIRPARADIS_SERVER_FEEDBACK_DB_URL=url,
            AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="1000000000",  # the load is one address
        )  # fmt: skip
        try:
            wrk_post(f"{server.url}/v1/feedback", BODY, CONNECTIONS, 2)  # warm-up
            cpu_before = cpu_seconds(server.process.pid)
            load = wrk_post(f"{server.url}/v1/feedback", BODY, CONNECTIONS, SECONDS)
            cpu_ms = 1000 * (cpu_seconds(server.process.pid) - cpu_before) / max(load.requests, 1)
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)
    finally:
        if schema is not None:
            _drop_schema(schema)
    return FeedbackPoint(backend, rows, server.cold_start_s, load, cpu_ms)


def _median(runs: list[FeedbackPoint]) -> FeedbackPoint:
    """The run of median throughput: one busy moment on a shared machine moves no figure."""
    return sorted(runs, key=lambda p: p.load.rps)[len(runs) // 2]


def render(points: list[FeedbackPoint], load_at_start: float) -> str:
    baseline = {p.backend: p.load.rps for p in points if p.rows == POINTS[0]}
    cpu_baseline = {p.backend: p.cpu_ms for p in points if p.rows == POINTS[0]}
    lines = [
        SECTION,
        "",
        f"`python -m benchmarks.feedback_load`, {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs: POST "
        f"/v1/feedback with wrk ({CONNECTIONS} connections, {SECONDS} s after a 2 s warm-up) "
        "against a store already holding the given feedback rows inside both alert windows; "
        f"each point is the median of {REPEATS} runs, each on a fresh store and server, the "
        "points of a backend taking turns. The machine is shared: its 1-minute load average "
        f"was {load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end. "
        "Ratios: against the empty store of the same backend, same run.",
        "",
        "| store | rows in the window | feedback req/s | p50 ms | p99 ms | non-2xx "
        "| vs empty store | server CPU ms per feedback | vs empty store | server ready in |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        ratio = p.load.rps / baseline[p.backend] if baseline.get(p.backend) else float("nan")
        cpu = p.cpu_ms / cpu_baseline[p.backend] if cpu_baseline.get(p.backend) else float("nan")
        lines.append(
            f"| {p.backend} | {p.rows:,} | {p.load.rps:.0f} | {p.load.p50_ms:.1f} | "
            f"{p.load.p99_ms:.1f} | {p.load.non_2xx} | {ratio:.2f}x | {p.cpu_ms:.2f} | "
            f"{cpu:.2f}x | {p.ready_s:.1f} s |"
        )
    worst = min(
        (p.load.rps / baseline[p.backend], p.backend)
        for p in points
        if p.rows != POINTS[0] and baseline.get(p.backend)
    )
    lines += [
        "",
        f"With {POINTS[-1]:,} rows in the window, the slowest store ran at {worst[0]:.2f}x its "
        f"empty-store rate ({worst[1]}); the goal is at least 0.9x.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=int, default=SECONDS, help="Per measured point.")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs per point; median kept.")
    args = parser.parse_args()
    globals()["SECONDS"] = args.seconds
    globals()["REPEATS"] = args.repeats
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = _train_bundle(args.data, tmp / "bundle")
        points = []
        for backend in args.backends:
            runs: dict[int, list[FeedbackPoint]] = {rows: [] for rows in POINTS}
            for _ in range(args.repeats):
                for rows in POINTS:
                    runs[rows].append(measure_point(backend, rows, bundle, tmp))
            points += [_median(runs[rows]) for rows in POINTS]
    section = render(points, load_at_start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.out, section, SECTION)
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
