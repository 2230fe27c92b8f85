"""Training side of Air Paradis Sentiment: data, models, evaluation, tuning, registry."""
