"""The loader on real-format fixture files written here: latin-1, quoting, bad rows, target 2."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training_jobs.data import DataError, expand_sources, load_sources, read_source_cached
from training_jobs.split import split_data, stratified_sample

ROWS = [
    b'"0","1467810369","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","_TheSpecialOne_","@switchfoot http://twitpic.com/2y1zl - Awww, that\'s a bummer"\r\n',
    b'"4","1467822272","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","ersle","I LOVE @Health4UandPets u guys r the best, caf\xe9 ok"\r\n',
    b'"2","14072","Sun Jun 07 23:24:55 UTC 2009","obama","x","neutral, with a comma"\r\n',
    b'"4","1467822273","date","NO_QUERY","user","text, with, commas ""and quotes"""\r\n',
    b'"7","1","date","NO_QUERY","user","bad target"\r\n',
    b'"0","2","only four fields"\r\n',
    b'"0","3","date","NO_QUERY","user",""\r\n',
    b'"0","4","date","NO_QUERY","user","last good row"\r\n',
]


@pytest.fixture
def official_csv(tmp_path: Path) -> Path:
    path = tmp_path / "training.sample.csv"
    path.write_bytes(b"".join(ROWS))
    return path


def test_official_csv_latin1_quoting_and_bad_rows(official_csv: Path) -> None:
    frame, report = load_sources([official_csv])
    assert list(frame["label"]) == [0, 1, 1, 0]
    assert frame["text"][1].endswith("caf\u00e9 ok")  # latin-1 byte 0xE9
    assert frame["text"][2] == 'text, with, commas "and quotes"'
    source = report.sources[0]
    assert (source.rows, source.kept, source.neutral, source.malformed) == (8, 4, 1, 3)
    assert source.errors == [
        "line 5: target '7' is not 0, 2 or 4",
        "line 6: expected 6 fields, got 3",
        "line 7: empty text",
    ]
    assert "3 malformed" in report.summary()


def test_parquet_target_and_label_columns(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"target": pa.array([0, 4, 2, 9], pa.int8()), "text": ["a", "b", "c", "d"]}),
        tmp_path / "t04.parquet",
    )
    pq.write_table(pa.table({"target": [0, 1], "text": ["e", "f"]}), tmp_path / "t01.parquet")
    pq.write_table(
        pa.table(
            {"label": ["negative", "positive", "neutral", "angry"], "text": ["g", "h", "i", "j"]}
        ),
        tmp_path / "labels.parquet",
    )
    frame, report = load_sources([tmp_path])
    assert sorted(zip(frame["text"], frame["label"], strict=True)) == [
        ("a", 0), ("b", 1), ("e", 0), ("f", 1), ("g", 0), ("h", 1),
    ]  # fmt: skip
    assert report.neutral == 2
    assert report.malformed == 2


def test_combines_sources_and_drops_exact_duplicates(official_csv: Path, tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"target": [4, 0], "text": ["last good row", "last good row"]}),
        tmp_path / "dup.parquet",
    )
    frame, report = load_sources([official_csv, tmp_path / "dup.parquet"])
    assert report.duplicates == 1  # ("last good row", 0) twice; the positive copy stays
    assert len(frame) == 5


def test_cache_round_trip_keeps_report(official_csv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, report1 = read_source_cached(official_csv, cache)
    assert len(list(cache.glob("*.parquet"))) == 1
    second, report2 = read_source_cached(official_csv, cache)
    pd.testing.assert_frame_equal(first, second)
    assert report1 == report2


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.csv", "no such file"), ("notes.txt", "unsupported file type")],
)
def test_unusable_sources_are_named(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".txt"):
        (tmp_path / name).write_text("x")
    with pytest.raises(DataError, match=message):
        expand_sources([tmp_path / name])


def test_split_is_stratified_deterministic_and_fingerprinted() -> None:
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(1000)], "label": [i % 4 == 0 for i in range(1000)]}
    )
    frame["label"] = frame["label"].astype("int8")
    a = split_data(frame, 0.1, 0.1, seed=1)
    b = split_data(frame, 0.1, 0.1, seed=1)
    c = split_data(frame, 0.1, 0.1, seed=2)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    pd.testing.assert_frame_equal(a.test, b.test)
    assert len(a.test) == 100 and len(a.validation) == 100
    assert a.test["label"].mean() == pytest.approx(0.25, abs=0.01)
    assert set(a.train["text"]).isdisjoint(a.test["text"])
    assert len(stratified_sample(frame, 200, seed=1)) == 200


def test_real_shared_files_load(sentiment140_dir: Path) -> None:
    frame, report = load_sources([sentiment140_dir])
    assert report.malformed == 0
    assert len(frame) > 160_000
    assert set(frame["label"].unique()) == {0, 1}


def test_a_null_target_reads_the_label_beside_it(tmp_path: Path) -> None:
    """The airline file: neutral rows have no target but a 'neutral' label."""
    path = tmp_path / "airline.parquet"
    table = pa.table(
        {
            "text": ["late again", "meh", "great crew", "??"],
            "label": ["negative", "neutral", "positive", None],
            "target": pa.array([0, None, 1, None], type=pa.int8()),
        }
    )
    pq.write_table(table, path)
    frame, report = load_sources([path])
    assert frame["label"].tolist() == [0, 1]
    assert (report.neutral, report.malformed) == (1, 1)
