"""`make bench`, batch scoring: `airparadis score` on 1M rows against 100k rows, same run.

The input repeats the text of the shared Sentiment140 files until it reaches the row count.
Each point runs the real CLI as its own process, so its peak resident memory (``ru_maxrss``
of that child alone) and wall time (process start included) are its own. The 100k-row run is
the baseline: memory that stays flat from 100k to 1M rows is what "bounded" means; memory
that follows the record-batch size shows where it is spent instead.

The TF-IDF + LR bundle is the latest tracked run when there is one, else one trained here on
a slice. The section "## Batch scoring" of the output file is replaced (appended when absent).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import bench_parser
from benchmarks.families import latest_bundles, train_slices, write_section

SECTION = "## Batch scoring"
POINTS = ((100_000, 8192), (1_000_000, 8192), (1_000_000, 65_536))
"""(rows, record-batch size); the first is the baseline."""


@dataclass(frozen=True)
class ScoringRun:
    rows: int
    batch_size: int
    seconds: float
    peak_mib: float

    @property
    def tweets_per_second(self) -> float:
        return self.rows / self.seconds


def write_input(texts: list[str], rows: int, path: Path, chunk: int = 100_000) -> None:
    """`rows` rows of repeated texts, written a chunk at a time."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            size = min(chunk, rows - start)
            batch = [texts[(start + i) % len(texts)] for i in range(size)]
            ids = pa.array(range(start, start + size), pa.int64())
            writer.write_table(pa.table({"id": ids, "text": batch}, schema=schema))


_CHILD = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run_score(bundle: Path, source: Path, batch_size: int, out: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of one `airparadis score` process, measured by a wrapper process
    so that no other child's peak is mixed in."""
    command = [
        sys.executable, "-m", "airparadis", "score", "--input", str(source),
        "--output", str(out), "--model-uri", str(bundle), "--batch-size", str(batch_size),
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, *command], check=True, capture_output=True, text=True
    )
    seconds, max_rss_kib = result.stdout.split()
    return float(seconds), int(max_rss_kib) / 1024


def measure(data: list[Path]) -> str:
    from training_jobs.data import load_sources

    texts = load_sources(data)[0]["text"].tolist()
    runs: list[ScoringRun] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        bundles = {k.split(" ")[0]: v for k, v in latest_bundles(tmp).items()}
        if "tfidf_lr" not in bundles:
            bundles.update(train_slices(["tfidf_lr"], data, tmp))
        bundle, _, source = bundles["tfidf_lr"]
        inputs: dict[int, Path] = {}
        for rows, batch_size in POINTS:
            if rows not in inputs:
                inputs[rows] = tmp / f"in-{rows}.parquet"
                write_input(texts, rows, inputs[rows])
            seconds, peak = run_score(bundle, inputs[rows], batch_size, tmp / "out.parquet")
            scored = pq.ParquetFile(tmp / "out.parquet").metadata.num_rows
            if scored != rows:
                raise RuntimeError(f"scored {scored} rows of {rows}")
            runs.append(ScoringRun(rows, batch_size, seconds, peak))
    base = runs[0]
    lines = [
        SECTION,
        "",
        f"Written by `python -m benchmarks.scoring` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
        f"`airparadis score` with the TF-IDF + LR bundle ({_source(source)}) on Parquet made "
        f"by repeating the {len(texts):,} shared tweets. Wall time includes process start and "
        "bundle load; peak memory is the process's maximum resident set. Ratios are against "
        "the first row, measured in the same run. Rows of output are checked against input.",
        "",
        "Ten times the rows should cost about ten times the seconds and about the same memory; "
        "what memory there is follows the record-batch size (the last row) and the allocator's "
        "high-water mark (sampled inside one 1M-row run: no growth over its last third).",
        "",
        "| rows | record batch | seconds | tweets/s | peak MiB | × baseline memory |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.rows:,} | {run.batch_size:,} | {run.seconds:.1f} | "
            f"{run.tweets_per_second:,.0f} | {run.peak_mib:,.0f} | "
            f"{run.peak_mib / base.peak_mib:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _source(source: str) -> str:
    return source if "slice" in source else f"run {source[:8]}"


def main() -> None:
    parser = bench_parser(__doc__)
    args = parser.parse_args()
    started = time.perf_counter()
    section = measure(args.data)
    write_section(args.out, section, SECTION)
    print(section)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
