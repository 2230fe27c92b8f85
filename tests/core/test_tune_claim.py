"""Two tuning workers finishing together retrain the best trial once, on real PostgreSQL."""

import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest

from airparadis.settings import PlatformSettings
from training_jobs import tune
from training_jobs.settings import TrainingSettings
from training_jobs.train import TrainResult

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORKERS = 2
ROUNDS = 8


def test_concurrent_workers_retrain_each_best_trial_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"claim-{uuid.uuid4().hex}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.setenv("AIRPARADIS_HOME", str(tmp_path))
    settings = TrainingSettings(tune_storage=POSTGRES_URL, tune_study=name)
    study = optuna.create_study(study_name=name, storage=POSTGRES_URL, direction="maximize")
    retrained: list[tuple[int, str]] = []

    def train(family, settings, platform, params, **kwargs):  # type: ignore[no-untyped-def]
        """The retrain itself is not under test: record who ran it, taking some time."""
        retrained.append((params["round"], threading.current_thread().name))
        time.sleep(0.05)
        return TrainResult(f"run-{params['round']}", {}, "", "", None)

    monkeypatch.setattr(tune, "train", train)

    def worker(barrier: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            own = optuna.load_study(study_name=name, storage=POSTGRES_URL)  # its own connection
            barrier.wait()
            tune.retrain_best("tfidf_lr", own, settings, PlatformSettings())
        except BaseException as exc:
            errors.append(exc)

    try:
        for round_ in range(ROUNDS):  # each round, a new best trial that every worker sees
            study.add_trial(
                optuna.trial.create_trial(
                    params={"round": round_}, distributions={"round": _ROUND}, value=round_
                )
            )
            barrier, errors = threading.Barrier(WORKERS), []
            threads = [
                threading.Thread(target=worker, args=(barrier, errors), name=f"worker-{i}")
                for i in range(WORKERS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert errors == []
            assert [r for r, _ in retrained].count(round_) == 1, retrained
        reloaded = optuna.load_study(study_name=name, storage=POSTGRES_URL)
        assert reloaded.user_attrs[tune.RETRAINED_ATTR] == ROUNDS - 1
        assert reloaded.user_attrs["retrained_run_id"] == f"run-{ROUNDS - 1}"
    finally:
        optuna.delete_study(study_name=name, storage=POSTGRES_URL)


_ROUND = optuna.distributions.IntDistribution(0, ROUNDS)
