"""`airparadis feedback replay` against a real server on loopback, with authentication on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from model_server.feedback import FeedbackStore, default_sqlite_url
from tests.conftest import AIRLINE_FILE, MODEL_NAME, RunningServer, server_env, start_server
from training_jobs.data import load_sources

API_KEY = "replay-test-key"


@pytest.fixture(scope="module")
def airline_file(shared_dir: Path) -> Path:
    return shared_dir / AIRLINE_FILE


@pytest.fixture(scope="module")
def guarded_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path
) -> Iterator[RunningServer]:
    """A server of its own (its own feedback store) that wants an API key for feedback."""
    server = start_server(
        tmp_path_factory.mktemp("replay-home"),
        str(tiny_bundle),
        AIRPARADIS_SERVER_AUTH_REQUIRED="true",
        AIRPARADIS_SERVER_API_KEYS=API_KEY,
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="10000",
        AIRPARADIS_SERVER_ALERT_THRESHOLD="100000",
    )
    yield server
    server.stop()


def replay(server: RunningServer, *args: str, key: str | None = API_KEY) -> tuple[int, str, str]:
    env = server_env(server.home / "client")
    if key is not None:
        env["AIRPARADIS_TRAIN_REPLAY_API_KEY"] = key
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "feedback", "replay", "--server", server.url, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def stored(server: RunningServer) -> pd.DataFrame:
    rows = FeedbackStore(default_sqlite_url(server.home)).export_rows()
    return pd.DataFrame(
        rows, columns=["id", "tweet", "predicted_label", "verdict", "correct_label"]
    )


def first_labelled(path: Path, count: int) -> tuple[pd.DataFrame, int]:
    """The first `count` rows with a binary label, and the neutral rows read before the last."""
    frame = pd.read_parquet(path, columns=["text", "label"])
    labelled = frame[frame["label"] != "neutral"]
    last = labelled.index[count - 1]
    neutral = int((frame.loc[:last, "label"] == "neutral").sum())
    return labelled.head(count).reset_index(drop=True), neutral


def test_replay_posts_in_file_order_and_a_rerun_stores_nothing_twice(
    guarded_server: RunningServer, airline_file: Path, tmp_path: Path
) -> None:
    rc, out, err = replay(guarded_server, "--data", str(airline_file), "--limit", "30", "--json")
    assert rc == 0, out + err
    summary = json.loads(out)
    expected, neutral = first_labelled(airline_file, 30)
    assert neutral > 0  # the file starts with neutral tweets
    assert summary["posted"] == 30 and summary["duplicates"] == 0 and summary["errors"] == 0
    assert summary["skipped_neutral"] == neutral
    assert "replay" in err  # the progress bar, on stderr

    rows = stored(guarded_server)
    assert len(rows) == 30 and rows["id"].is_unique
    assert rows["tweet"].tolist() == expected["text"].tolist()  # file order
    assert rows["correct_label"].tolist() == expected["label"].tolist()
    confirmed = rows["predicted_label"] == rows["correct_label"]
    assert (rows["verdict"] == confirmed.map({True: "correct", False: "wrong"})).all()
    assert summary["wrong_prediction_share"] == pytest.approx(1 - confirmed.mean())

    # A rerun over a longer slice stores only the new tweets.
    rc, out, err = replay(guarded_server, "--data", str(airline_file), "--limit", "40")
    assert rc == 0, err
    assert "10 posted, 30 already stored (duplicates)" in out
    assert len(stored(guarded_server)) == 40
    expected, _ = first_labelled(airline_file, 40)
    collected = httpx.get(
        f"{guarded_server.url}/v1/feedback/labels", headers={"X-API-Key": API_KEY}
    ).json()
    assert collected["total"] == 40
    assert collected["labels"] == expected["label"].value_counts().to_dict()

    # The server's own export replayed into it: the same labelled tweets, nothing new.
    export = tmp_path / "export"
    env = server_env(guarded_server.home)
    subprocess.run(
        [sys.executable, "-m", "airparadis", "feedback", "export", "--out", str(export)],
        env=env, cwd=guarded_server.home, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    rc, out, err = replay(guarded_server, "--data", str(export / "feedback.parquet"), "--json")
    assert rc == 0, err
    again = json.loads(out)
    assert again["read"] == 40 and again["duplicates"] == 40 and again["posted"] == 0
    assert len(stored(guarded_server)) == 40


def test_replay_reads_sentiment140_csv(
    guarded_server: RunningServer, sentiment140_dir: Path, tmp_path: Path
) -> None:
    source = sentiment140_dir / "training.94k.processed.noemoticon.csv"
    lines = source.read_bytes().splitlines(keepends=True)
    sample = tmp_path / "slice.csv"
    # Two negatives, a neutral (target 2), a malformed line and two positives.
    neutral = b'"2","1","d","NO_QUERY","u","so so flight"\n'
    sample.write_bytes(b"".join([*lines[:2], neutral, b'"x"\n', *lines[-2:]]))
    rc, out, err = replay(guarded_server, "--data", str(sample), "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["read"] == 4 and summary["skipped_neutral"] == 1 and summary["malformed"] == 1
    assert summary["posted"] + summary["duplicates"] == 4


def test_replay_refuses_bad_input_and_a_missing_key(
    guarded_server: RunningServer, airline_file: Path, tmp_path: Path
) -> None:
    before = len(stored(guarded_server))
    rc, _, err = replay(guarded_server, "--data", str(airline_file), "--limit", "3", key=None)
    assert rc == 2 and "API key" in err
    rc, _, err = replay(guarded_server, "--data", str(airline_file), "--limit", "3", key="nope")
    assert rc == 2 and "unknown API key" in err
    assert len(stored(guarded_server)) == before

    unlabelled = tmp_path / "unlabelled.parquet"
    pd.DataFrame({"text": ["no label here"]}).to_parquet(unlabelled)
    rc, _, err = replay(guarded_server, "--data", str(unlabelled))
    assert rc == 2 and "'target' or 'label'" in err
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    rc, _, err = replay(guarded_server, "--data", str(broken))
    assert rc == 2 and "not a readable Parquet file" in err
    rc, _, err = replay(guarded_server, "--data", str(tmp_path / "missing.csv"))
    assert rc == 2 and "no such file" in err


def test_an_unreachable_server_is_an_error(airline_file: Path, tmp_path: Path) -> None:
    from tests.conftest import free_port

    result = subprocess.run(
        [sys.executable, "-m", "airparadis", "feedback", "replay", "--data", str(airline_file),
         "--server", f"http://127.0.0.1:{free_port()}", "--limit", "1"],
        env=server_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "cannot reach" in result.stderr


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airparadis", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def _served_labels(server: RunningServer, frame: pd.DataFrame) -> pd.Series:
    """The labels the running server gives `frame`'s tweets, aligned with the frame."""
    response = httpx.post(
        server.predict_url, json={"instances": frame["text"].tolist()}, timeout=60
    )
    assert response.status_code == 200, response.text
    return pd.Series([p["label"] for p in response.json()["predictions"]], index=frame.index)


def _macro_f1(server: RunningServer, frame: pd.DataFrame) -> float:
    return float(f1_score(frame["label"], _served_labels(server, frame), average="macro"))


def test_replay_retrain_and_serve_the_airline_domain(
    tmp_path: Path, sentiment140_dir: Path, airline_file: Path
) -> None:
    """The loop on real data: serve a generic model, replay airline tweets as feedback,
    retrain from it, and the server follows the promoted model, better on later tweets."""
    env = server_env(
        tmp_path,
        AIRPARADIS_TRAIN_DATA=str(sentiment140_dir),
        AIRPARADIS_TRAIN_MAX_ROWS="4000",
        # This test is about the loop; the gate's policy has its own tests (a 400-row generic
        # test split moves by more than the default allowance).
        AIRPARADIS_TRAIN_GATE_GENERIC_MAX_DROP="0.05",
        AIRPARADIS_TRAIN_FEEDBACK_WEIGHT="3",  # choosing the weight is tested with retraining
    )
    _cli(env, tmp_path, "train", "--family", "tfidf_lr")
    server = start_server(
        tmp_path,
        f"models:/{MODEL_NAME}@champion",
        AIRPARADIS_SERVER_RELOAD_INTERVAL_SECONDS="1",
        AIRPARADIS_SERVER_FEEDBACK_PER_MINUTE="100000",
        AIRPARADIS_SERVER_ALERT_THRESHOLD="100000",
    )
    try:
        frame = pd.read_parquet(airline_file, columns=["text", "label"])
        labelled = frame[frame["label"] != "neutral"]
        later = labelled.iloc[1500:1900]  # after the replayed tweets, never replayed
        before = _macro_f1(server, later)

        rc, out, err = replay(
            server, "--data", str(airline_file), "--limit", "500", "--json", key=None
        )
        assert rc == 0, out + err
        summary = json.loads(out)
        assert summary["posted"] + summary["duplicates"] == 500  # the file repeats a few tweets
        assert summary["posted"] > 490 and summary["errors"] == 0

        out = _cli(env, tmp_path, "retrain", "--family", "tfidf_lr")
        assert "-> @champion" in out, out
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/v1/info").json()["version"] != "2":
            assert time.monotonic() < deadline, "the server did not follow the new champion"
            time.sleep(0.25)
        after = _macro_f1(server, later)
        print(f"macro-F1 on later airline tweets: {before:.3f} -> {after:.3f}")
        assert after > before + 0.05, (before, after)
    finally:
        server.stop()


def _live_traffic(server: RunningServer, tweets: list[str]) -> None:
    """Unlabelled traffic, the way clients send it: predictions only, no feedback."""
    for start in range(0, len(tweets), 100):
        response = httpx.post(
            server.predict_url, json={"instances": tweets[start : start + 100]}, timeout=60
        )
        assert response.status_code == 200, response.text


def test_calibrate_live_prior_serves_the_airline_prior_before_any_label(
    tmp_path: Path, sentiment140_dir: Path, airline_file: Path
) -> None:
    """`calibrate --live-prior` on a real server: with generic traffic the live prior is the
    training prior and nothing changes (EM on the raw posteriors read a shift there: the
    held-out map removes it); with airline traffic (mostly complaints) the EM prior from
    /v1/drift is served as a prior correction, through the gate, without one label, and the
    running server follows it: fewer tweets called positive, more complaints caught."""
    window = 700
    env = server_env(
        tmp_path,
        AIRPARADIS_TRAIN_DATA=str(sentiment140_dir),
        # A model that ranks airline tweets about as well as the champion does; on a few
        # thousand tweets the domain's vocabulary is mostly unseen and no prior reads true.
        AIRPARADIS_TRAIN_MAX_ROWS="30000",
        AIRPARADIS_TRAIN_GATE_GENERIC_MAX_DROP="0.05",
    )
    _cli(env, tmp_path, "train", "--family", "tfidf_lr")
    server = start_server(
        tmp_path,
        f"models:/{MODEL_NAME}@champion",
        AIRPARADIS_SERVER_RELOAD_INTERVAL_SECONDS="1",
        AIRPARADIS_SERVER_DRIFT_WINDOW=str(window),
    )
    env["AIRPARADIS_TRAIN_REPLAY_SERVER_URL"] = server.url
    try:
        generic, _ = load_sources([sentiment140_dir])
        _live_traffic(server, generic.sample(window, random_state=7)["text"].tolist())
        out = _cli(env, tmp_path, "calibrate", "--live-prior")
        assert "no prior correction" in out, out
        assert httpx.get(f"{server.url}/v1/info").json()["version"] == "1"

        frame = pd.read_parquet(airline_file, columns=["text", "label"])
        labelled = frame[frame["label"] != "neutral"]
        later = labelled.iloc[1500:1900]  # never part of the traffic the prior is read from
        before = _positive_share_and_recall(server, later)
        _live_traffic(server, labelled["text"].head(window).tolist())
        out = _cli(env, tmp_path, "calibrate", "--live-prior")
        assert "prior correction" in out and "-> @champion" in out, out
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/v1/info").json()["version"] != "2":
            assert time.monotonic() < deadline, "the server did not follow the corrected model"
            time.sleep(0.25)
        after = _positive_share_and_recall(server, later)
        print(f"positive share, complaints caught: {before} -> {after}")
        assert after[0] < before[0] - 0.05 and after[1] > before[1] + 0.05, (before, after)
    finally:
        server.stop()


def _positive_share_and_recall(server: RunningServer, frame: pd.DataFrame) -> tuple[float, float]:
    predicted = _served_labels(server, frame)
    negative = frame["label"] == "negative"
    return (
        round(float((predicted == "positive").mean()), 3),
        round(float((predicted[negative] == "negative").mean()), 3),
    )
