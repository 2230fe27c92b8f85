"""KServe predictor for Air Paradis Sentiment: predict, feedback, metrics, alerting."""
