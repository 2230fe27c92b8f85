"""Batch scoring: Parquet in, Parquet out, in record batches, with the serving bundle.

Memory stays bounded by the batch size whatever the input size: pyarrow reads one record
batch at a time and the writer appends it, so a 1M-row file needs no more than a 1k-row one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier


class ScoringError(ValueError):
    """The input cannot be scored (missing file or column)."""


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    batches: int


def score_file(
    model: SentimentClassifier,
    source: Path,
    destination: Path,
    text_column: str = "text",
    batch_size: int = 8192,
) -> ScoreReport:
    """Append `label` and `probability` (P(positive)) to every row of `source`."""
    if not source.is_file():
        raise ScoringError(f"{source}: no such file")
    parquet = pq.ParquetFile(source)
    if text_column not in parquet.schema_arrow.names:
        raise ScoringError(
            f"{source}: no column {text_column!r} (has {parquet.schema_arrow.names})"
        )
    schema = parquet.schema_arrow.append(pa.field("label", pa.string())).append(
        pa.field("probability", pa.float64())
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(destination.suffix + ".partial")
    rows = batches = 0
    threshold = model.info.threshold
    with pq.ParquetWriter(partial, schema) as writer:
        for batch in parquet.iter_batches(batch_size=batch_size):
            texts = pc.fill_null(batch.column(text_column), "").to_pylist()
            proba = model.predict_proba([str(t) for t in texts])
            labels = np.where(proba >= threshold, LABELS[1], LABELS[0])
            out = pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(labels, pa.string()), pa.array(proba, pa.float64())],
                schema=schema,
            )
            writer.write_batch(out)
            rows += batch.num_rows
            batches += 1
    partial.replace(destination)  # a crash never leaves a half-written output in place
    return ScoreReport(rows=rows, batches=batches)
