"""`data download` against a local HTTP server serving a zip built here."""

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airparadis_cli.app import app
from training_jobs.data import load_sources
from training_jobs.download import DownloadError, download_archive

CSV = b'"0","1","d","NO_QUERY","u","so sad"\r\n"4","2","d","NO_QUERY","u","so happy"\r\n'


@pytest.fixture
def archive_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    root = tmp_path / "www"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("training.1600000.processed.noemoticon.csv", CSV)
        zf.writestr("testdata.manual.2009.06.14.csv", CSV)
        zf.writestr("README.txt", b"not a csv")
    (root / "trainingandtestdata.zip").write_bytes(buffer.getvalue())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/trainingandtestdata.zip"
    yield url, hashlib.md5(buffer.getvalue(), usedforsecurity=False).hexdigest()
    server.shutdown()


def test_download_checks_md5_and_extracts_csvs(
    archive_server: tuple[str, str], tmp_path: Path
) -> None:
    url, md5 = archive_server
    files = download_archive(url, tmp_path / "data", md5)
    assert sorted(p.name for p in files) == [
        "testdata.manual.2009.06.14.csv",
        "training.1600000.processed.noemoticon.csv",
    ]
    frame, _ = load_sources([tmp_path / "data" / "training.1600000.processed.noemoticon.csv"])
    assert list(frame["text"]) == ["so sad", "so happy"]


def test_checksum_mismatch_fails_and_leaves_nothing(
    archive_server: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = archive_server
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_archive(url, tmp_path / "data", "0" * 32)
    assert list((tmp_path / "data").iterdir()) == []


def test_cli_download_shows_progress_and_reports_errors(
    archive_server: tuple[str, str], tmp_path: Path
) -> None:
    url, md5 = archive_server
    runner = CliRunner()
    ok = runner.invoke(
        app, ["data", "download", "--dest", str(tmp_path / "d"), "--url", url, "--md5", md5]
    )
    assert ok.exit_code == 0, ok.output
    assert "training.1600000.processed.noemoticon.csv" in ok.stdout
    assert "100%" in ok.stderr  # tqdm's progress bar
    missing = runner.invoke(
        app, ["data", "download", "--dest", str(tmp_path / "e"), "--url", url + "x"]
    )
    assert missing.exit_code == 2
    assert "cannot download" in missing.stderr
