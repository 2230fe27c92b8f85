"""Batch scoring streams Parquet through the serving bundle."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airparadis.bundle import load_bundle
from training_jobs.data import load_sources
from training_jobs.score import ScoringError, score_file


def test_scores_every_row_in_batches(
    tiny_bundle: Path, sentiment140_dir: Path, tmp_path: Path
) -> None:
    frame, _ = load_sources([sentiment140_dir])
    texts = frame["text"].tolist()[:2500]
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(2500)), "text": texts}), source, row_group_size=700)
    model = load_bundle(tiny_bundle)
    report = score_file(model, source, tmp_path / "out" / "scored.parquet", batch_size=1000)
    assert report.rows == 2500
    assert report.batches >= 3  # streamed, never read whole
    out = pq.read_table(tmp_path / "out" / "scored.parquet")
    assert out.column_names == ["id", "text", "label", "probability"]
    assert out.column("id").to_pylist() == list(range(2500))
    np.testing.assert_allclose(out.column("probability").to_numpy(), model.predict_proba(texts))
    labels = out.column("label").to_pylist()
    assert set(labels) == {"negative", "positive"}


def test_missing_text_column_is_named(tiny_bundle: Path, tmp_path: Path) -> None:
    pq.write_table(pa.table({"tweet": ["x"]}), tmp_path / "in.parquet")
    with pytest.raises(ScoringError, match="no column 'text'"):
        score_file(load_bundle(tiny_bundle), tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
