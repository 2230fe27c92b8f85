"""Batch scoring: Parquet in, Parquet out, in record batches, with the serving bundle.

Memory stays bounded by the batch size whatever the input size: pyarrow reads one record
batch at a time and the writer appends it, so a 1M-row file needs no more than a 1k-row one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from airparadis import LABELS
from airparadis.bundle import SentimentClassifier
from airparadis.text import is_blank


class ScoringError(ValueError):
    """The input cannot be scored, or the output cannot be written."""


OUTPUT_COLUMNS = ("label", "probability")
"""Columns `score` appends; an input that already has one would give a file pyarrow cannot read."""


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    batches: int
    unlabelled: int = 0
    """Rows whose text is null or blank: written with a null label and probability."""


def _open_input(source: Path, text_column: str) -> pq.ParquetFile:
    if not source.is_file():
        raise ScoringError(f"{source}: no such file")
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise ScoringError(
            f"{source}: not a readable Parquet file ({exc}); score reads Parquet only "
            "(convert a CSV first)"
        ) from exc
    schema = parquet.schema_arrow
    if text_column not in schema.names:
        raise ScoringError(f"{source}: no column {text_column!r} (has {schema.names})")
    taken = [name for name in OUTPUT_COLUMNS if name in schema.names]
    if taken:
        raise ScoringError(
            f"{source}: already has column(s) {taken}, which score writes; rename or drop them "
            "first (a file with two columns of one name cannot be read back)"
        )
    kind = schema.field(text_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ScoringError(
            f"{source}: column {text_column!r} holds {kind}, not text (a string column)"
        )
    return parquet


def _check_output(destination: Path) -> None:
    if destination.is_dir():
        raise ScoringError(f"{destination}: is a folder; --output takes a file name")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScoringError(f"cannot create the folder of {destination}: {exc}") from exc


def score_file(
    model: SentimentClassifier,
    source: Path,
    destination: Path,
    text_column: str = "text",
    batch_size: int = 8192,
) -> ScoreReport:
    """Append `label` and `probability` (P(positive)) to every row of `source`.

    A row without text (null, empty or only spaces) gets a null label and probability
    rather than the model's answer to nothing.
    """
    parquet = _open_input(source, text_column)
    _check_output(destination)
    label, probability = OUTPUT_COLUMNS
    schema = parquet.schema_arrow.append(pa.field(label, pa.string())).append(
        pa.field(probability, pa.float64())
    )
    partial = destination.with_suffix(destination.suffix + ".partial")
    rows = batches = unlabelled = 0
    threshold = model.info.threshold
    try:
        with pq.ParquetWriter(partial, schema) as writer:
            for batch in parquet.iter_batches(batch_size=batch_size):
                texts = batch.column(text_column).to_pylist()
                usable = [i for i, t in enumerate(texts) if t is not None and not is_blank(t)]
                label_array, proba_array = _score(model, texts, usable, threshold)
                out = pa.RecordBatch.from_arrays(
                    [*batch.columns, label_array, proba_array], schema=schema
                )
                writer.write_batch(out)
                rows += batch.num_rows
                batches += 1
                unlabelled += len(texts) - len(usable)
        partial.replace(destination)  # a crash never leaves a half-written output in place
    except (pa.ArrowException, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise ScoringError(f"cannot score {source} into {destination}: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ScoreReport(rows=rows, batches=batches, unlabelled=unlabelled)


def _score(
    model: SentimentClassifier, texts: list[str | None], usable: list[int], threshold: float
) -> tuple[pa.Array, pa.Array]:
    """Label and probability arrays for `texts`, null where a row is not in `usable`."""
    if len(usable) == len(texts):
        proba = model.predict_proba(texts)  # type: ignore[arg-type]
        labels = np.where(proba >= threshold, LABELS[1], LABELS[0])
        return pa.array(labels, pa.string()), pa.array(proba, pa.float64())
    mask = np.ones(len(texts), dtype=bool)
    mask[usable] = False
    proba = np.zeros(len(texts))
    if usable:
        proba[usable] = model.predict_proba([str(texts[i]) for i in usable])
    labels = np.where(proba >= threshold, LABELS[1], LABELS[0])
    return pa.array(labels, pa.string(), mask=mask), pa.array(proba, pa.float64(), mask=mask)
