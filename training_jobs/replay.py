"""`airparadis feedback replay`: labelled tweets posted through the real feedback API.

Each tweet goes the way a user's does: the server classifies it (v1 predict), then the verdict
is sent (`correct`, or `wrong` with the correct label). Feedback ids are derived from the row
(its text and label), so a rerun, or a second file holding the same labelled tweet, stores
nothing twice. Sources are the ones training reads (`training_jobs.data`: Sentiment140 CSV,
Parquet with `text` and `target`/`label`, such as the airline file) and feedback exports
(`airparadis feedback export`: `tweet` with `verdict`/`correct_label`), read in file order.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

from airparadis import LABELS
from airparadis.label_shift import PriorEstimate
from training_jobs.data import DataError, SourceReport, expand_sources, iter_source

FEEDBACK_EXPORT_COLUMNS = frozenset({"tweet", "predicted_label", "verdict"})
ID_PREFIX = "replay-"
_RETRIES = 4


class ReplayError(RuntimeError):
    """The server cannot take the replay (unreachable, failing): stop."""


class ReplayRefused(ReplayError):
    """The server refuses this client (401/403): a wrong or missing API key."""


@dataclass(frozen=True)
class LabelledTweet:
    text: str
    label: int

    @property
    def feedback_id(self) -> str:
        """Stable across runs and files: the same labelled tweet always has the same id."""
        digest = hashlib.sha256(f"{self.label}\t{self.text}".encode()).hexdigest()
        return ID_PREFIX + digest[:40]


@dataclass
class ReplaySummary:
    read: int = 0
    posted: int = 0
    duplicates: int = 0
    wrong: int = 0
    skipped_neutral: int = 0
    malformed: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    throttled_seconds: float = 0.0
    aborted: str | None = None

    @property
    def verdicts(self) -> int:
        return self.posted + self.duplicates

    @property
    def wrong_share(self) -> float | None:
        """Share of the sent verdicts where the served prediction was wrong."""
        return self.wrong / self.verdicts if self.verdicts else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "posted": self.posted,
            "duplicates": self.duplicates,
            "skipped_neutral": self.skipped_neutral,
            "malformed": self.malformed,
            "errors": self.errors,
            "wrong_prediction_share": self.wrong_share,
            "aborted": self.aborted,
        }

    def text(self) -> str:
        share = "–" if self.wrong_share is None else f"{100 * self.wrong_share:.1f} %"
        lines = [
            f"replayed {self.read} labelled tweets: {self.posted} posted, "
            f"{self.duplicates} already stored (duplicates), {self.errors} errors",
            f"skipped: {self.skipped_neutral} neutral (no binary label), "
            f"{self.malformed} malformed rows",
            f"wrong predictions: {self.wrong} of {self.verdicts} verdicts ({share})",
        ]
        if self.throttled_seconds:
            lines.append(
                f"waited {self.throttled_seconds:.0f} s on the server's feedback rate limit "
                "(AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE)"
            )
        lines.extend(f"  {message}" for message in self.error_messages)
        if self.aborted:
            lines.append(f"stopped early: {self.aborted}")
        return "\n".join(lines)


def read_labelled(path: Path, report: SourceReport) -> Iterator[LabelledTweet]:
    """Labelled tweets of one file in file order; neutral and malformed rows are counted in
    `report` as they are passed."""
    if (
        path.suffix.lower() == ".parquet"
        and set(pq.read_schema(path).names) >= FEEDBACK_EXPORT_COLUMNS
    ):
        yield from _read_feedback_export(path, report)
        return
    for text, label in iter_source(path, report):
        yield LabelledTweet(text, label)


def _read_feedback_export(path: Path, report: SourceReport) -> Iterator[LabelledTweet]:
    """The label a user gave: the correct_label, else the prediction a 'correct' verdict
    confirmed, else (a bare 'wrong') the other class; the same rule as retraining."""
    table = pq.read_table(path)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    corrections = columns.get("correct_label") or [None] * table.num_rows
    for index, (text, predicted, verdict, correct) in enumerate(
        zip(
            columns["tweet"], columns["predicted_label"], columns["verdict"], corrections,
            strict=True,
        )
    ):  # fmt: skip
        report.rows += 1
        if not isinstance(text, str) or not text.strip():
            report.reject(f"row {index}", "empty or missing tweet")
            continue
        if correct in LABELS:
            label = LABELS.index(correct)
        elif predicted in LABELS and verdict in ("correct", "wrong"):
            label = LABELS.index(predicted) ^ (verdict == "wrong")
        else:
            report.reject(f"row {index}", f"no usable label ({predicted!r}, {verdict!r})")
            continue
        report.kept += 1
        yield LabelledTweet(text, label)


class FeedbackClient:
    """The two calls a user's client makes: classify a tweet, then send the verdict."""

    def __init__(
        self,
        server_url: str,
        api_key: str | None = None,
        model_name: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=server_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._sleep = sleep
        self.throttled_seconds = 0.0
        self.model_name = model_name or self._served_name()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call, retried on a dropped connection, 503 and 429 (after their Retry-After)."""
        for attempt in range(_RETRIES + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == _RETRIES:
                    raise ReplayError(f"cannot reach {self._http.base_url}: {exc}") from exc
                self._sleep(0.5 * 2**attempt)
                continue
            if response.status_code == 429 or (response.status_code == 503 and attempt < _RETRIES):
                wait = _retry_after(response)
                self.throttled_seconds += wait if response.status_code == 429 else 0.0
                self._sleep(wait)
                continue
            if response.status_code in (401, 403):
                raise ReplayRefused(
                    f"the server refused the feedback ({response.status_code}: "
                    f"{_detail(response)}); pass its API key with --api-key"
                )
            if response.status_code >= 500:
                raise ReplayError(f"{path} answered {response.status_code}: {_detail(response)}")
            return response
        raise ReplayError(f"{path}: still refused after {_RETRIES} retries")

    def _served_name(self) -> str:
        response = self._send("GET", "/v1/info")
        if response.status_code != 200:
            raise ReplayError(f"/v1/info answered {response.status_code}: {_detail(response)}")
        return str(response.json()["name"])

    def live_prior(self) -> PriorEstimate | None:
        """The server's EM estimate of the live positive share (`/v1/drift`), or None while
        its window holds too few tweets."""
        response = self._send("GET", "/v1/drift")
        if response.status_code != 200:
            raise ReplayError(f"/v1/drift answered {response.status_code}: {_detail(response)}")
        shift = response.json().get("label_shift") or {}
        if shift.get("estimated_prior") is None:
            return None
        return PriorEstimate(
            float(shift["estimated_prior"]), float(shift["training_prior"]),
            int(shift.get("iterations") or 0), bool(shift.get("converged")), int(shift["tweets"]),
        )  # fmt: skip

    def predict(self, text: str) -> dict[str, Any] | str:
        """The server's prediction for one tweet, or why it refused the tweet (4xx)."""
        response = self._send(
            "POST", f"/v1/models/{self.model_name}:predict", json={"instances": [text]}
        )
        if response.status_code != 200:
            return f"predict answered {response.status_code}: {_detail(response)}"
        prediction: dict[str, Any] = response.json()["predictions"][0]
        return prediction

    def send_verdict(
        self, tweet: LabelledTweet, prediction: dict[str, Any]
    ) -> dict[str, Any] | str:
        """The stored feedback (`duplicate` says whether it was there already), or why the
        server refused it (4xx)."""
        body = {
            "feedback_id": tweet.feedback_id,
            "tweet": tweet.text,
            "predicted_label": prediction["label"],
            "probability": prediction["probability"],
            "correct_label": LABELS[tweet.label],
            "model_version": prediction.get("model_version"),
        }
        response = self._send("POST", "/v1/feedback", json=body)
        if response.status_code != 201:
            return f"feedback answered {response.status_code}: {_detail(response)}"
        stored: dict[str, Any] = response.json()
        return stored


def replay(
    paths: list[Path],
    client: FeedbackClient,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Post the labelled tweets of `paths`, in file order, until `limit` verdicts were sent.

    A tweet the server refuses (4xx: too long, say) is counted as an error and the replay goes
    on; a server that stops answering ends it, with `aborted` saying why (what was stored
    stays stored, and a rerun resumes without duplicates). A refused API key raises
    `ReplayRefused`.
    """
    summary = ReplaySummary()
    try:
        for path in expand_sources(paths):
            if limit is not None and summary.read >= limit:
                break
            report = SourceReport(path=str(path))
            try:
                for tweet in read_labelled(path, report):
                    summary.read += 1
                    _replay_one(client, tweet, summary)
                    if progress is not None:
                        progress(1)
                    if limit is not None and summary.read >= limit:
                        break
            finally:
                summary.skipped_neutral += report.neutral
                summary.malformed += report.malformed
                summary.throttled_seconds = client.throttled_seconds
    except ReplayRefused:
        raise
    except ReplayError as exc:
        summary.aborted = str(exc)
    return summary


def _replay_one(client: FeedbackClient, tweet: LabelledTweet, summary: ReplaySummary) -> None:
    prediction = client.predict(tweet.text)
    if isinstance(prediction, str):
        _count_error(summary, tweet, prediction)
        return
    stored = client.send_verdict(tweet, prediction)
    if isinstance(stored, str):
        _count_error(summary, tweet, stored)
        return
    if stored.get("duplicate"):
        summary.duplicates += 1
    else:
        summary.posted += 1
    if prediction["label"] != LABELS[tweet.label]:
        summary.wrong += 1


def _count_error(summary: ReplaySummary, tweet: LabelledTweet, message: str) -> None:
    summary.errors += 1
    if len(summary.error_messages) < 10:
        summary.error_messages.append(f"{tweet.feedback_id}: {message}")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:300]


def check_sources(paths: list[Path]) -> list[Path]:
    """The files a replay would read; DataError when one is missing or of an unknown kind."""
    files = expand_sources(paths)
    for path in files:
        if path.suffix.lower() == ".parquet":
            try:
                names = set(pq.read_schema(path).names)
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
            if not names >= FEEDBACK_EXPORT_COLUMNS and not (
                "text" in names and {"target", "label"} & names
            ):
                raise DataError(
                    f"{path}: expected a 'text' column with 'target' or 'label', or a feedback "
                    "export ('tweet', 'predicted_label', 'verdict')"
                )
    return files
