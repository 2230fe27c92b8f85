"""Download and unpack the official Sentiment140 archive, with a progress bar and checksum."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """The archive could not be fetched, or it is not the one we expect."""


def _fetch(url: str, target: Path, timeout: float) -> str:
    """Stream `url` into `target`, returning the MD5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                target.open("wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar,
            ):
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except OSError as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from exc
    return digest.hexdigest()


def download_archive(url: str, dest: Path, md5: str | None, timeout: float = 60.0) -> list[Path]:
    """Fetch the zip into `dest`, check it, and extract its CSV files; returns their paths.

    A file that fails the checksum is deleted, so a later run never trusts a bad download.
    """
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / Path(url.rsplit("/", 1)[-1] or "archive.zip").name
    partial = archive.with_suffix(archive.suffix + ".part")
    got = _fetch(url, partial, timeout)
    if md5 and got != md5.lower():
        partial.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}")
    partial.replace(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.lower().endswith(".csv")]
            if not members:
                raise DownloadError(f"{archive} holds no CSV file")
            extracted = []
            for member in members:
                target = dest / Path(member.filename).name  # flatten; never trust member paths
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
                extracted.append(target)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a zip file: {exc}") from exc
    return extracted
