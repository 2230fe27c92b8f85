"""The model card of a registered version: what it is for, what it learned from, how well it
does, how it is calibrated, where it fails, and how it passed the behavioural checks.

Training writes it at registration (`training_jobs.model_card`) as two artifacts of the run:
`model_card.md` for people, and `model_card.json` (this schema) for the dashboard's
champion/challenger view, which reads it from MLflow beside the run's metrics.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"

INTENDED_USE = (
    "Tells negative from positive tweets about Air Paradis, so the airline's social-media "
    "analysts can spot complaints early and follow the mood of its customers."
)
USERS = "Air Paradis social-media analysts, through the dashboard and the model server's API."
OUT_OF_SCOPE = (
    "Binary only: there is no neutral class, so a neutral or off-topic tweet still gets "
    "'negative' or 'positive'. Not for decisions about individual customers, nor for languages "
    "other than English."
)
LIMITATIONS = (
    "Sarcasm: 'great, another 3-hour delay' reads positive to a bag of words and often to the "
    "neural families too.",
    "Negation: 'not bad' and 'not good' hinge on one word; the behavioural direction check "
    "below says how this version handles the simple cases.",
    "Out-of-domain prior: Sentiment140 is half positive and not about airlines; airline "
    "tweets lean negative, so without a calibration on feedback the threshold assumes the "
    "wrong prior and complaints are missed.",
    "Trained on 2009 tweets with emoticon-derived labels: slang, emoji and new topics since "
    "then are out of distribution.",
)
METRIC_TITLES = {
    "n": "tweets",
    "accuracy": "accuracy",
    "roc_auc": "ROC-AUC",
    "macro_f1": "macro-F1",
    "balanced_accuracy": "balanced accuracy",
    "recall_negative": "complaints caught (recall negative)",
    "precision_positive": "precision positive",
    "brier": "Brier",
    "ece": "ECE",
}
GENERIC = "generic test split"
IN_DOMAIN = "in-domain held-out feedback"


class _Card(BaseModel):
    # A newer trainer may add fields: an older dashboard still reads the card.
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class TrainingData(_Card):
    sources: str | None = None
    fingerprint: str | None = Field(default=None, description="Hash of the data split.")
    rows_train: int | None = None
    rows_validation: int | None = None
    rows_test: int | None = None


class CalibrationSummary(_Card):
    kind: str = Field(description="Calibrator: none, identity, temperature, platt, ...")
    threshold: float = Field(description="Served decision threshold on P(positive).")
    raw_threshold: float | None = None
    labels: int | None = Field(default=None, description="Feedback labels it was fitted on.")
    brier: float | None = Field(default=None, description="Held-out Brier score.")
    ece: float | None = Field(default=None, description="Held-out expected calibration error.")
    measured_on: str = Field(default=GENERIC, description="Where Brier and ECE were read.")


class BehaviourCheck(_Card):
    name: str
    kind: str
    cases: int
    failures: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class ModelCard(_Card):
    model_name: str
    version: str
    alias: str | None = None
    family: str
    format: str
    stage: str | None = None
    run_id: str | None = None
    created_at: str
    intended_use: str = INTENDED_USE
    users: str = USERS
    out_of_scope: str = OUT_OF_SCOPE
    data: TrainingData
    metrics: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Served metrics by evaluation set."
    )
    calibration: CalibrationSummary
    limitations: list[str] = Field(default_factory=lambda: list(LIMITATIONS))
    behaviour: list[BehaviourCheck] = Field(default_factory=list)
    gate: str | None = Field(default=None, description="The registry gate's decision.")

    @property
    def behaviour_passed(self) -> int:
        return sum(check.passed for check in self.behaviour)

    def to_markdown(self) -> str:
        """The card for people, as MLflow's artifact viewer and the dashboard show it."""
        d, c = self.data, self.calibration
        lines = [
            f"# Model card: {self.model_name} version {self.version}",
            "",
            f"`{self.family}` ({self.format}), stage `{self.stage or 'train'}`, "
            f"registered {self.created_at}"
            + (f" as `@{self.alias}`" if self.alias else "")
            + (f", run `{self.run_id}`" if self.run_id else "") + ".",
            "",
            "## Intended use",
            "",
            self.intended_use,
            "",
            f"**Users:** {self.users}",
            "",
            f"**Out of scope:** {self.out_of_scope}",
            "",
            "## Training data",
            "",
            f"- sources: {d.sources or 'not recorded'}",
            f"- fingerprint: `{d.fingerprint or 'not recorded'}`",
            f"- rows: {_count(d.rows_train)} train, {_count(d.rows_validation)} validation, "
            f"{_count(d.rows_test)} test",
        ]  # fmt: skip
        lines += ["", "## Metrics (served probabilities at the served threshold)", ""]
        lines += _metrics_table(self.metrics) or ["No evaluation set was scored."]
        if IN_DOMAIN not in self.metrics:
            lines += ["", "No held-out in-domain feedback yet: in-domain quality is unknown."]
        lines += [
            "",
            "## Calibration",
            "",
            f"- calibrator: {c.kind}" + (f" (fitted on {c.labels:,} labels)" if c.labels else ""),
            f"- served threshold: {c.threshold:.3f}"
            + (f" (raw model: {c.raw_threshold:.3f})" if c.raw_threshold is not None else ""),
            f"- Brier {_num(c.brier)}, ECE {_num(c.ece)} ({c.measured_on})",
            "",
            "## Known limitations",
            "",
            *(f"- {item}" for item in self.limitations),
            "",
            f"## Behavioural checks: {self.behaviour_passed} of {len(self.behaviour)} pass",
            "",
            "| check | kind | cases | result |",
            "|---|---|---|---|",
        ]  # fmt: skip
        for check in self.behaviour:
            result = "pass" if check.passed else "FAIL: " + "; ".join(check.failures)
            lines.append(f"| {check.name} | {check.kind} | {check.cases} | {result} |")
        if self.gate:
            lines += ["", "## Registry gate", "", self.gate]
        return "\n".join(lines) + "\n"


def _metrics_table(metrics: dict[str, dict[str, float]]) -> list[str]:
    if not metrics:
        return []
    sets = list(metrics)
    lines = ["| metric | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for key, title in METRIC_TITLES.items():
        if any(key in metrics[s] for s in sets):
            cells = [
                _count(int(metrics[s][key])) if key == "n" and key in metrics[s]
                else _num(metrics[s].get(key))
                for s in sets
            ]  # fmt: skip
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"
