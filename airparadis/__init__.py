"""Shared core of Air Paradis Sentiment: settings, text cleaning, the model bundle, tracking."""

LABELS: tuple[str, str] = ("negative", "positive")
"""Class names, indexed by the binary target (0 = negative, 1 = positive)."""
