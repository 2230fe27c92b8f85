"""Every CLI failure path: exit code 2 and a message naming the problem, never a traceback.

A table of commands by bad inputs, each run as the real `airparadis` process. Tests run as
root here, so an unwritable place is one no permission bit can open: a path under a regular
file, or a new file in /proc.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port, server_env

CSV_ROW = '"0","1","Mon Apr 06 2009","NO_QUERY","user","my flight was late"\n'


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.parquet"
    path.write_bytes(b"")
    return path


def _corrupt(tmp: Path) -> Path:
    path = tmp / "corrupt.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    return path


def _csv(tmp: Path) -> Path:
    path = tmp / "tweets.csv"
    path.write_text(CSV_ROW * 3, encoding="latin-1")
    return path


def _utf16(tmp: Path) -> Path:
    path = tmp / "tweets-utf16.csv"
    path.write_text(CSV_ROW * 3, encoding="utf-16")
    return path


def _numeric_text(tmp: Path) -> Path:
    path = tmp / "numeric.parquet"
    pq.write_table(pa.table({"target": [0, 4], "text": [1, 2]}), path)
    return path


def _already_scored(tmp: Path) -> Path:
    path = tmp / "already-scored.parquet"
    pq.write_table(pa.table({"text": ["late again", "great crew"], "label": ["a", "b"]}), path)
    return path


def _no_rows(tmp: Path) -> Path:
    path = tmp / "no-rows.parquet"
    schema = pa.schema([("target", pa.int64()), ("text", pa.string())])
    pq.write_table(schema.empty_table(), path)
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere.parquet"


def _under_a_file(tmp: Path) -> Path:
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    return blocker / "out" / "scored.parquet"


def _in_proc(tmp: Path) -> Path:
    return Path("/proc") / f"airparadis-{tmp.name}" / "scored.parquet"


def _a_folder(tmp: Path) -> Path:
    folder = tmp / "existing-folder"
    folder.mkdir()
    return folder


def _a_file(tmp: Path) -> Path:
    path = tmp / "existing.parquet"
    path.write_text("already here")
    return path


@dataclass(frozen=True)
class Case:
    command: Callable[[Path, Path, Path], list[str]]
    """(bundle, bad path, tmp) -> arguments after `airparadis`."""
    bad: Callable[[Path], Path]
    message: str
    env: tuple[tuple[str, str], ...] = ()


def _prepare(_bundle: Path, data: Path, _tmp: Path) -> list[str]:
    return ["data", "prepare", "--data", str(data)]


def _evaluate(bundle: Path, data: Path, _tmp: Path) -> list[str]:
    return ["evaluate", "--model-uri", str(bundle), "--data", str(data)]


def _score_input(bundle: Path, source: Path, tmp: Path) -> list[str]:
    output = tmp / "scored.parquet"
    return ["score", "--model-uri", str(bundle), "--input", str(source), "--output", str(output)]


def _score_output(bundle: Path, output: Path, tmp: Path) -> list[str]:
    source = tmp / "good.parquet"
    pq.write_table(pa.table({"text": ["lovely crew", "lost my bag"]}), source)
    return ["score", "--model-uri", str(bundle), "--input", str(source), "--output", str(output)]


def _export(_bundle: Path, out: Path, _tmp: Path) -> list[str]:
    return ["feedback", "export", "--out", str(out)]


UNREACHABLE_DB = (
    ("AIRPARADIS_SERVER_FEEDBACK_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:{port}/test"),
)
CASES = {
    "prepare-empty-parquet": Case(_prepare, _empty, "not a readable Parquet file"),
    "prepare-corrupt-parquet": Case(_prepare, _corrupt, "not a readable Parquet file"),
    "prepare-utf16-csv": Case(_prepare, _utf16, "looks UTF-16 encoded"),
    "prepare-numeric-text": Case(_prepare, _numeric_text, "row 0: empty or missing text"),
    "prepare-no-rows": Case(_prepare, _no_rows, "holds no rows"),
    "prepare-missing": Case(_prepare, _missing, "no such file"),
    "evaluate-empty-parquet": Case(_evaluate, _empty, "not a readable Parquet file"),
    "evaluate-corrupt-parquet": Case(_evaluate, _corrupt, "not a readable Parquet file"),
    "evaluate-utf16-csv": Case(_evaluate, _utf16, "looks UTF-16 encoded"),
    "evaluate-numeric-text": Case(_evaluate, _numeric_text, "no usable labelled rows"),
    "score-empty-parquet": Case(_score_input, _empty, "not a readable Parquet file"),
    "score-corrupt-parquet": Case(_score_input, _corrupt, "not a readable Parquet file"),
    "score-csv": Case(_score_input, _csv, "convert a CSV first"),
    "score-utf16": Case(_score_input, _utf16, "not a readable Parquet file"),
    "score-numeric-text": Case(_score_input, _numeric_text, "holds int64, not text"),
    "score-missing": Case(_score_input, _missing, "no such file"),
    "score-already-scored": Case(_score_input, _already_scored, "already has column(s) ['label']"),
    "score-output-under-a-file": Case(_score_output, _under_a_file, "cannot create the folder"),
    "score-output-in-proc": Case(_score_output, _in_proc, "cannot create the folder"),
    "score-output-is-a-folder": Case(_score_output, _a_folder, "is a folder"),
    "export-under-a-file": Case(_export, _under_a_file, "cannot write the export"),
    "export-in-proc": Case(_export, _in_proc, "cannot write the export"),
    "export-onto-a-file": Case(_export, _a_file, "is an existing file"),
    "export-database-unreachable": Case(
        _export, lambda tmp: tmp / "out", "feedback store unreachable", UNREACHABLE_DB
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_failure_is_a_named_usage_error(name: str, tiny_bundle: Path, tmp_path: Path) -> None:
    case = CASES[name]
    bad = case.bad(tmp_path)
    args = case.command(tiny_bundle, bad, tmp_path)
    env = server_env(tmp_path / "home", **{k: v.format(port=free_port()) for k, v in case.env})
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert case.message in result.stderr, result.stderr[-3000:]
    assert not list(tmp_path.rglob("*.partial"))


def test_no_usable_rows_says_why(tmp_path: Path) -> None:
    from training_jobs.data import DataError, load_sources

    source = tmp_path / "neutral-and-bad.parquet"
    pq.write_table(pa.table({"target": [2, 7, 0], "text": ["meh", "x", "  "]}), source)
    with pytest.raises(DataError) as error:
        load_sources([source])
    message = str(error.value)
    assert "3 rows: 1 neutral, 2 malformed" in message
    assert "row 1: target 7 is not 0/4 or 0/1" in message
    assert "row 2: empty or missing text" in message


def test_score_leaves_rows_without_text_unlabelled(tiny_bundle: Path, tmp_path: Path) -> None:
    """Nulls and blank texts get a null label, not the model's answer to nothing."""
    source, output = tmp_path / "in.parquet", tmp_path / "out.parquet"
    texts = ["lovely crew", None, "", " \n", "\u200b", "lost my bag"]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), source)
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "score", "--model-uri", str(tiny_bundle),
         "--input", str(source), "--output", str(output)],
        cwd=tmp_path, env=server_env(tmp_path / "home"), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "4 rows without text left unlabelled" in result.stdout
    table = pq.read_table(output)
    labels = table.column("label").to_pylist()
    assert labels[1:5] == [None] * 4 and None not in (labels[0], labels[5])
    assert table.column("probability").null_count == 4


def test_up_without_data_is_a_usage_error(tmp_path: Path) -> None:
    """`up` outside `make`, with no data where it looks: exit 2 and a hint, no traceback."""
    env = server_env(tmp_path / "home", AIRPARADIS_TRAIN_DATA=str(tmp_path / "nowhere"))
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "up", "--server-port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "no such file or folder" in result.stderr and "AIRPARADIS_TRAIN_DATA" in result.stderr


def test_commands_find_the_data_an_earlier_command_read(tmp_path: Path) -> None:
    """After `make up` (which sets the data path), plain CLI commands in the same home find the
    same data; an explicit setting still wins."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = tmp_path / "tweets.csv"
    data.write_text(CSV_ROW.replace('"0"', '"4"', 1) * 3 + CSV_ROW * 3, encoding="latin-1")

    def prepare(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airparadis", "data", "prepare"],
            cwd=elsewhere, env=server_env(home, **extra), capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip

    assert prepare().returncode == 2  # nothing remembered yet, no data/sentiment140 here
    first = prepare(AIRPARADIS_TRAIN_DATA=str(data))
    assert first.returncode == 0, first.stderr
    again = prepare()
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout and f"{data}: 6 rows, 6 kept" in again.stdout
    moved = prepare(AIRPARADIS_TRAIN_DATA=str(tmp_path / "gone.csv"))
    assert moved.returncode == 2 and "gone.csv" in moved.stderr
