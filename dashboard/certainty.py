"""How sure the binary model is, in the words and numbers the user page shows.

The model knows two labels only (negative, positive). Its probability of the predicted label
can be close to a coin toss: within `band` of the served decision threshold the page says
"uncertain" rather than pretend. Every percentage on the page goes through `percent`, so the
card and the history always show the same number, and never 100 % (nor 0 %): a calibrated
model is never certain.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.5
"""The threshold assumed until the server's /v1/info says which one it serves."""
MAX_SHOWN_PERCENT = 99
MIN_SHOWN_PERCENT = 1


@dataclass(frozen=True)
class Certainty:
    """What the page says about one prediction.

    `verdict` is ``positive``, ``negative`` or ``uncertain``; `leaning` is the label the model
    predicted (the side of the threshold the probability falls on), kept for an uncertain one.
    """

    verdict: str
    leaning: str
    confidence: float

    @property
    def uncertain(self) -> bool:
        return self.verdict == "uncertain"

    @property
    def shown(self) -> str:
        """The confidence as the page writes it, e.g. ``86 %``."""
        return f"{percent(self.confidence)} %"


def certainty(probability: float, label: str, threshold: float | None, band: float) -> Certainty:
    """`label` as the server predicted it, or uncertain when P(positive) lies within `band`
    of `threshold` (either side)."""
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    confidence = probability if label == "positive" else 1.0 - probability
    verdict = "uncertain" if abs(probability - cut) < band else label
    return Certainty(verdict, label, confidence)


def percent(share: float) -> int:
    """One rounding rule for every percentage shown: whole percent, between 1 and 99."""
    return min(MAX_SHOWN_PERCENT, max(MIN_SHOWN_PERCENT, round(100 * share)))
