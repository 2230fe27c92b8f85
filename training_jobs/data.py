"""Loading Sentiment140-style sources into one labelled frame, with an honest report.

Sources are the official CSV (no header, ISO-8859-1, six columns) and Parquet files with a
``text`` column and either ``target`` (0/4 or 0/1) or ``label`` (negative/neutral/positive).
Neutral rows are left out of binary work and counted; malformed rows are counted by line.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("target", "id", "date", "flag", "user", "text")
CSV_ENCODING = "ISO-8859-1"
SUPPORTED_SUFFIXES = (".csv", ".parquet")
_TARGETS = {"0": 0, "4": 1}
_NEUTRAL_TARGETS = {"2"}
_LABEL_NAMES = {"negative": 0, "positive": 1}
_MAX_REPORTED_ERRORS = 20


class DataError(ValueError):
    """A source cannot be used at all (missing, unknown format, no usable column)."""


@dataclass
class SourceReport:
    path: str
    rows: int = 0
    kept: int = 0
    neutral: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        self.malformed += 1
        if len(self.errors) < _MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {reason}")


@dataclass
class LoadReport:
    sources: list[SourceReport] = field(default_factory=list)
    duplicates: int = 0

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.sources) - self.duplicates

    @property
    def neutral(self) -> int:
        return sum(s.neutral for s in self.sources)

    @property
    def malformed(self) -> int:
        return sum(s.malformed for s in self.sources)

    def summary(self) -> str:
        lines = []
        for s in self.sources:
            lines.append(
                f"{s.path}: {s.rows} rows, {s.kept} kept, {s.neutral} neutral left out, "
                f"{s.malformed} malformed"
            )
            lines.extend(f"  {e}" for e in s.errors)
            if s.malformed > len(s.errors):
                lines.append(f"  ... and {s.malformed - len(s.errors)} more malformed rows")
        lines.append(
            f"total: {self.kept} examples ({self.duplicates} exact duplicates dropped), "
            f"{self.neutral} neutral left out, {self.malformed} malformed"
        )
        return "\n".join(lines)


def expand_sources(paths: Iterable[Path]) -> list[Path]:
    """Folders stand for every CSV and Parquet file directly inside them."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise DataError(f"{path}: folder holds no .csv or .parquet file")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise DataError(f"{path}: unsupported file type (expected .csv or .parquet)")
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return files


def _check_csv_encoding(path: Path) -> None:
    """Latin-1 decodes any bytes, so a UTF-16 file would only show up as garbled rows."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        raise DataError(
            f"{path}: looks UTF-16 encoded (byte-order mark or NUL bytes); "
            "save it as UTF-8 or ISO-8859-1 CSV"
        )


def _iter_csv(path: Path, report: SourceReport) -> Iterator[tuple[str, int]]:
    _check_csv_encoding(path)
    with path.open(encoding=CSV_ENCODING, newline="") as handle:
        reader = csv.reader(handle)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.rows += 1
                report.reject(f"line {reader.line_num}", f"unparseable CSV ({exc})")
                continue
            report.rows += 1
            where = f"line {reader.line_num}"
            if len(row) != len(CSV_COLUMNS):
                report.reject(where, f"expected 6 fields, got {len(row)}")
                continue
            target, text = row[0].strip(), row[5]
            if target in _NEUTRAL_TARGETS:
                report.neutral += 1
                continue
            if target not in _TARGETS:
                report.reject(where, f"target {target!r} is not 0, 2 or 4")
                continue
            if not text.strip():
                report.reject(where, "empty text")
                continue
            report.kept += 1
            yield text, _TARGETS[target]


def _parquet_label(value: object) -> int | str | None:
    """Return 0/1, None for neutral, or a string describing why the value is unusable."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name == "neutral":
            return None
        return _LABEL_NAMES.get(name, f"label {value!r} is not negative/neutral/positive")
    if value is None or (isinstance(value, float) and value != value):
        return "missing target"
    if value in (0, 4, 1, 2) and not isinstance(value, bool):
        return {0: 0, 4: 1, 1: 1, 2: None}[int(value)]  # type: ignore[call-overload]
    return f"target {value!r} is not 0/4 or 0/1"


def _iter_parquet(path: Path, report: SourceReport) -> Iterator[tuple[str, int]]:
    try:
        schema = pq.read_schema(path)
        label_columns = [c for c in ("target", "label") if c in schema.names]
        if not label_columns or "text" not in schema.names:
            raise DataError(
                f"{path}: Parquet needs a 'text' column and a 'target' or 'label' column"
            )
        table = pq.read_table(path, columns=[*label_columns, "text"])
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    targets = table.column(label_columns[0]).to_pylist()
    # A null target with a 'label' beside it (the airline file: neutral rows have no target)
    # takes the label's meaning.
    names = table.column("label").to_pylist() if len(label_columns) == 2 else [None] * len(targets)
    texts = table.column("text").to_pylist()
    for index, (target, name, text) in enumerate(zip(targets, names, texts, strict=True)):
        report.rows += 1
        where = f"row {index}"
        label = _parquet_label(name if target is None and name is not None else target)
        if label is None:
            report.neutral += 1
            continue
        if isinstance(label, str):
            report.reject(where, label)
            continue
        if not isinstance(text, str) or not text.strip():
            report.reject(where, "empty or missing text")
            continue
        report.kept += 1
        yield text, label


def iter_source(path: Path, report: SourceReport) -> Iterator[tuple[str, int]]:
    """(text, label) rows of one CSV or Parquet source in file order, counting into `report`
    as it goes: stopping early leaves the counts of the rows read so far."""
    reader = _iter_csv if path.suffix.lower() == ".csv" else _iter_parquet
    return reader(path, report)


def read_source(path: Path) -> tuple[pd.DataFrame, SourceReport]:
    report = SourceReport(path=str(path))
    rows = list(iter_source(path, report))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["label"] = frame["label"].astype("int8")
    return frame, report


def _cache_key(path: Path) -> str:
    stat = path.stat()
    raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v2"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def read_source_cached(path: Path, cache_dir: Path | None) -> tuple[pd.DataFrame, SourceReport]:
    """Converted sources are cached as Parquet, keyed on the file's path, size and mtime."""
    if cache_dir is None:
        return read_source(path)
    cached = cache_dir / f"{path.stem}-{_cache_key(path)}.parquet"
    if cached.is_file():
        try:
            table = pq.read_table(cached)
        except (pa.ArrowException, OSError) as exc:
            logger.warning("ignoring the unreadable cache %s: %s", cached, exc)
            return read_source(path)
        meta = table.schema.metadata or {}
        report = SourceReport(path=str(path))
        for key in ("rows", "kept", "neutral", "malformed"):
            setattr(report, key, int(meta.get(key.encode(), b"0")))
        report.errors = [e for e in meta.get(b"errors", b"").decode().split("\n") if e]
        return table.to_pandas(), report
    frame, report = read_source(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {k: str(getattr(report, k)) for k in ("rows", "kept", "neutral", "malformed")}
    meta["errors"] = "\n".join(report.errors)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    # One scratch name per process: parallel tuning workers may fill the same cache at once.
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp)
        tmp.replace(cached)
    except OSError as exc:
        raise DataError(f"cannot write the data cache in {cache_dir}: {exc}") from exc
    return frame, report


def load_sources(
    paths: Iterable[Path], cache_dir: Path | None = None
) -> tuple[pd.DataFrame, LoadReport]:
    """Load and combine every source; exact (text, label) duplicates are dropped and counted."""
    report = LoadReport()
    frames = []
    for path in expand_sources(paths):
        frame, source_report = read_source_cached(path, cache_dir)
        frames.append(frame)
        report.sources.append(source_report)
    combined = pd.concat(frames, ignore_index=True)
    before = len(combined)
    combined = combined.drop_duplicates(subset=["text", "label"], ignore_index=True)
    report.duplicates = before - len(combined)
    if combined.empty:
        raise DataError(
            "no usable labelled rows in " + "; ".join(_why_unusable(s) for s in report.sources)
        )
    return combined, report


def _why_unusable(source: SourceReport) -> str:
    """What a source held instead of labelled rows, with its first rejection reasons."""
    if source.rows == 0:
        return f"{source.path} (it holds no rows)"
    reasons = ", ".join(source.errors[:3])
    return (
        f"{source.path} ({source.rows} rows: {source.neutral} neutral, {source.malformed} "
        f"malformed" + (f"; first: {reasons}" if reasons else "") + ")"
    )
