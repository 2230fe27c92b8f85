"""Shared core of Air Paradis Sentiment: settings, text cleaning, the model bundle, tracking."""

LABELS: tuple[str, str] = ("negative", "positive")
"""Class names, indexed by the binary target (0 = negative, 1 = positive)."""

DEFAULT_THRESHOLD: float = 0.5
"""Decision threshold on P(positive) of a model not calibrated on feedback: a bundle's
`threshold` until calibration replaces it, and the threshold of in-training validation."""
