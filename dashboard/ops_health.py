"""The ops page's input-drift and in-domain quality cards, as plain DataFrames and sentences.

Free of Panel, like `dashboard.ops_data`, which gathers what these read.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pandas as pd

from dashboard.client import DriftStatus
from dashboard.ops_data import OpsSnapshot

DRIFT_COLUMNS = ["signal", "live", "reference"]
DRIFT_PROBA_COLUMNS = ["p_positive", "source", "share"]
QUALITY_COLUMNS = ["metric", "raw", "calibrated"]
QUALITY_METRICS = (
    ("macro_f1", "Macro-F1"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("recall_negative", "Complaints caught"),
    ("precision_positive", "Positive precision"),
    ("brier", "Brier score ↓"),
    ("ece", "Calibration error (ECE) ↓"),
)
RELIABILITY_COLUMNS = ["p_mean", "frac_positive", "count"]
LIVE, REFERENCE = "live", "training reference"


def drift_frame(drift: DriftStatus | None) -> pd.DataFrame:
    """The drift signals as display text: live window against the training reference."""
    if drift is None or drift.live is None or drift.reference is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    live, ref = drift.live, drift.reference
    stable = f"stable ≤ {drift.psi_threshold:g}"
    rows = [
        ["Mean tokens per tweet", _fixed(live.mean_tokens, 1), _fixed(ref.mean_tokens, 1)],
        ["Out-of-vocabulary tokens (%)", _percent(live.oov_share), _percent(ref.oov_share)],
        ["Predicted positive (%)", _percent(live.positive_share), _percent(ref.positive_share)],
        ["PSI of P(positive)", _fixed(drift.psi_probability, 3), stable],
        ["PSI of length (tokens)", _fixed(drift.psi_length, 3), stable],
        [
            "Positive tweets, EM estimate (%)",
            _percent(drift.estimated_prior),
            _percent(drift.training_prior),
        ],
    ]
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def drift_proba_frame(drift: DriftStatus | None) -> pd.DataFrame:
    """Share (%) of tweets per P(positive) bin, live and reference, long for a grouped bar."""
    if drift is None or drift.live is None or drift.reference is None:
        return pd.DataFrame(columns=DRIFT_PROBA_COLUMNS)
    edges = drift.proba_edges
    bins = [f"{low:.1f}–{high:.1f}" for low, high in pairwise(edges)]
    rows = [
        [name, source, 100.0 * share]
        for source, stats in ((LIVE, drift.live), (REFERENCE, drift.reference))
        for name, share in zip(bins, stats.proba_shares, strict=False)
    ]
    return pd.DataFrame(rows, columns=DRIFT_PROBA_COLUMNS)


def drift_state(drift: DriftStatus) -> tuple[str, str]:
    """(state, sentence) for the drift card: untracked, collecting, drifting or stable."""
    if not drift.tracked:
        return "untracked", f"Not tracked: {drift.reason or 'no drift reference'}."
    count = drift.live.count if drift.live else 0
    if not drift.enough_tweets:
        return "collecting", (
            f"Collecting: {count:,} of {drift.min_tweets:,} tweets needed before PSI is "
            f"computed (window: the last {drift.window:,} tweets)."
        )
    psi = f"P(positive) {_fixed(drift.psi_probability, 3)}, length {_fixed(drift.psi_length, 3)}"
    if drift.drifting:
        return "drifting", (
            f"Drifting: a PSI is above {drift.psi_threshold:g} ({psi}) "
            f"over the last {count:,} tweets."
        )
    return "stable", (
        f"Stable: both PSI ≤ {drift.psi_threshold:g} ({psi}) over the last {count:,} tweets."
    )


def quality_frame(calibration: dict[str, Any] | None) -> pd.DataFrame:
    """Raw vs calibrated scores on held-out (out-of-fold) feedback, one row per metric."""
    heldout = calibration.get("heldout") if calibration else None
    if not isinstance(heldout, dict):
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    raw, calibrated = heldout.get("raw") or {}, heldout.get("calibrated") or {}
    rows = [
        [title, _score(raw.get(key)), _score(calibrated.get(key))]
        for key, title in QUALITY_METRICS
        if key in raw or key in calibrated
    ]
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)


def reliability_frame(calibration: dict[str, Any] | None) -> pd.DataFrame:
    """The calibrated reliability curve: mean predicted P(positive) against the observed
    positive share, per bin that holds feedback."""
    bins = calibration.get("reliability") if calibration else None
    rows = [
        [float(b["p_mean"]), float(b["frac_positive"]), int(b["count"])]
        for b in bins or []
        if isinstance(b, dict)
        and b.get("count")
        and b.get("p_mean") is not None
        and b.get("frac_positive") is not None
    ]
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def quality_state(snap: OpsSnapshot) -> str:
    """One sentence on what the served model learned from the feedback so far."""
    calibration = snap.calibration
    if calibration is None:
        if not snap.served:
            return "Unknown: the model server is unavailable."
        return (
            "Not calibrated: the served model still gives its generic (Sentiment140) "
            "probabilities; `airparadis calibrate` fits it on labelled feedback."
        )
    method = str(calibration.get("method", "?"))
    fitted = str(calibration.get("fitted_at") or "")[:16].replace("T", " ")
    threshold = calibration.get("threshold")
    labels = calibration.get("labels")
    text = f"Calibrated ({method}) on {_count(labels)} labelled feedbacks"
    judged = ((calibration.get("heldout") or {}).get("calibrated") or {}).get("n")
    if isinstance(judged, int | float) and isinstance(labels, int) and judged < labels:
        # A fine-tuned encoder's own training tweets are left out of the held-out figures.
        text += f" (held-out figures on the latest {int(judged):,}, unseen by its encoder)"
    if fitted:
        text += f" at {fitted} UTC"
    if isinstance(threshold, int | float):
        text += f"; positive from P ≥ {threshold:.2f}"
    return text + "."


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _score(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else (math.nan)
    )


def _fixed(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _percent(share: float) -> str:
    return "–" if math.isnan(share) else f"{100 * share:.1f}"
