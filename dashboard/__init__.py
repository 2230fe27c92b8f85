"""Panel dashboard of Air Paradis Sentiment: predictions and feedback for users, health for ops."""
